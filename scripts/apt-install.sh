# Sourced by scripts/deps.sh and scripts/cross-deps.sh: apt_install WHO PKG...
# installs Debian packages quietly, through sudo when not root. WHO names
# the caller in the one line it prints.
apt_install() {
    local who=$1 sudo=""
    shift
    (($#)) || return 0
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    echo "$who: installing $*" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
