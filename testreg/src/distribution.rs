//! Docker Distribution (Debian's `docker-registry` 2.8, or a 3.x `registry`
//! named by `$OLREG_DOCKER_REGISTRY`) as a real test peer:
//! a fresh registry per [`Distribution`] with its own storage, config and
//! log in a temporary directory, without auth, with htpasswd (`Basic`) auth,
//! or with token (`Bearer`) auth backed by a [`TokenServer`].
//!
//! The child process is killed and reaped, and the directory removed, on
//! drop. On Linux it also gets `PR_SET_PDEATHSIG`, so a test binary killed
//! mid-run does not leave registries behind. Note that the kernel sends that
//! signal when the *thread* that started the child exits, so keep a
//! `Distribution` on the thread that started it (a test function, `main`),
//! or turn [`DistributionOptions::die_with_parent_thread`] off.

use crate::token::{Grant, KeyHint, TokenServer, TokenServerConfig, TokenUser};
use ring::rand::{SecureRandom, SystemRandom};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Environment variable naming the registry binary to use.
pub const BINARY_ENV: &str = "OLREG_DOCKER_REGISTRY";
/// Set this environment variable to keep the temporary directory (config,
/// storage, log) after the registry stops, for post-mortems.
pub const KEEP_DIR_ENV: &str = "OLREG_KEEP_DISTRIBUTION_DIR";
/// Where Debian's `docker-registry` package installs the binary.
const DEBIAN_BINARY: &str = "/usr/bin/docker-registry";
/// How long the registry gets to answer `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Attempts at finding a free port (another process may grab the one we
/// picked before the registry binds it).
const PORT_ATTEMPTS: usize = 5;
/// bcrypt cost of the htpasswd entry: the minimum `htpasswd -B` uses, so
/// every authenticated request stays cheap.
const BCRYPT_COST: u32 = 5;

/// How the registry authenticates clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DistributionAuth {
    /// Anyone may pull and push.
    None,
    /// `auth.htpasswd`: `Basic` credentials checked against one bcrypt entry.
    Htpasswd { user: String, password: String },
    /// `auth.token`: `Bearer` tokens from a [`TokenServer`] where `user` may
    /// do everything; tokens live `ttl_secs`.
    Token {
        user: String,
        password: String,
        ttl_secs: u64,
    },
}

impl DistributionAuth {
    /// `"none"`, `"basic"` or `"token"`: the mode's name on the command line.
    pub fn mode(&self) -> &'static str {
        match self {
            DistributionAuth::None => "none",
            DistributionAuth::Htpasswd { .. } => "basic",
            DistributionAuth::Token { .. } => "token",
        }
    }

    fn credentials(&self) -> Option<(&str, &str)> {
        match self {
            DistributionAuth::None => None,
            DistributionAuth::Htpasswd { user, password }
            | DistributionAuth::Token { user, password, .. } => Some((user, password)),
        }
    }
}

/// Everything [`Distribution::start_with`] can vary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DistributionOptions {
    pub auth: DistributionAuth,
    /// `http.relativeurls`: upload `Location`s become relative paths
    /// (`/v2/...`) instead of absolute URLs built from the `Host` header.
    pub relative_urls: bool,
    /// Give the child `PR_SET_PDEATHSIG(SIGKILL)` (Linux only; see the
    /// module docs for the thread caveat).
    pub die_with_parent_thread: bool,
    /// How the token server's JWTs name their key (token auth only);
    /// `None`: what this registry's version reads (2.x: `kid`, 3.x: `x5c`).
    pub token_key_hint: Option<KeyHint>,
    /// Run as a pull-through cache (`proxy:` in the config) of another
    /// registry instead of as a registry of its own.
    pub proxy: Option<ProxyOf>,
}

/// The registry a pull-through cache stands in front of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyOf {
    /// `http://127.0.0.1:PORT` of the origin.
    pub remote_url: String,
    /// The credentials the cache uses with the origin, if it needs any.
    pub credentials: Option<(String, String)>,
}

impl Default for DistributionOptions {
    fn default() -> Self {
        DistributionOptions {
            auth: DistributionAuth::None,
            relative_urls: false,
            die_with_parent_thread: true,
            token_key_hint: None,
            proxy: None,
        }
    }
}

/// A running Docker Distribution on `127.0.0.1`.
pub struct Distribution {
    child: Child,
    port: u16,
    version: String,
    auth: DistributionAuth,
    token: Option<TokenServer>,
    log_path: PathBuf,
    dir: Option<tempfile::TempDir>,
}

impl Distribution {
    /// The registry binary: `$OLREG_DOCKER_REGISTRY`, else `docker-registry`
    /// on `PATH`, else `/usr/bin/docker-registry`.
    pub fn binary() -> io::Result<PathBuf> {
        find_binary(std::env::var_os(BINARY_ENV), std::env::var_os("PATH"))
    }

    /// Whether [`binary`](Self::binary) finds a registry to run.
    pub fn available() -> bool {
        Distribution::binary().is_ok()
    }

    /// Starts a registry with `auth` and default options.
    pub fn start(auth: DistributionAuth) -> io::Result<Distribution> {
        Distribution::start_with(DistributionOptions {
            auth,
            ..DistributionOptions::default()
        })
    }

    /// Starts a registry and waits until `GET /v2/` answers 200 or 401.
    pub fn start_with(options: DistributionOptions) -> io::Result<Distribution> {
        let binary = Distribution::binary()?;
        let version = registry_version(&binary)?;
        let key_hint = options.token_key_hint.unwrap_or(if major(&version) >= 3 {
            KeyHint::CertChain
        } else {
            KeyHint::KeyId
        });
        let dir = tempfile::Builder::new()
            .prefix("olreg-distribution-")
            .tempdir()?;
        let (section, token) = match &options.auth {
            DistributionAuth::None => (String::new(), None),
            DistributionAuth::Htpasswd { user, password } => {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, htpasswd_line(user, password)?)?;
                (htpasswd_section(&path), None)
            }
            DistributionAuth::Token {
                user,
                password,
                ttl_secs,
            } => {
                let server = TokenServer::start(TokenServerConfig {
                    users: vec![TokenUser::new(user, password, Grant::everything())],
                    ttl_secs: *ttl_secs,
                    key_hint,
                    ..TokenServerConfig::default()
                })?;
                let bundle = dir.path().join("token-root.pem");
                server.write_root_cert_bundle(&bundle)?;
                (token_section(&server, &bundle), Some(server))
            }
        };
        let log_path = dir.path().join("registry.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let config = dir.path().join("config.yml");
            let log_start = read_lossy(&log_path).len();
            std::fs::write(&config, config_yaml(dir.path(), port, &options, &section)?)?;
            let mut child = spawn(&binary, &config, &log_path, options.die_with_parent_thread)?;
            match wait_ready(&mut child, port, &log_path) {
                Ok(()) => {
                    return Ok(Distribution {
                        child,
                        port,
                        version,
                        auth: options.auth,
                        token,
                        log_path,
                        dir: Some(dir),
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let port_taken = read_lossy(&log_path)
                        .get(log_start..)
                        .is_some_and(|new| new.contains("address already in use"));
                    last_error = Some(e);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("registry did not start")))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `127.0.0.1:PORT`: the host part of model names on this registry.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's log (its stdout and stderr, access log included).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The log so far, for failure messages.
    pub fn log_contents(&self) -> String {
        read_lossy(&self.log_path)
    }

    /// The registry's version as it reports it, without a leading `v`
    /// (`2.8.2+ds1`, `3.1.2+unknown`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// `"distribution"`: which kind of test peer this is.
    pub fn kind(&self) -> &'static str {
        "distribution"
    }

    pub fn auth(&self) -> &DistributionAuth {
        &self.auth
    }

    /// The user clients authenticate as (`None` without auth).
    pub fn user(&self) -> Option<&str> {
        self.auth.credentials().map(|(u, _)| u)
    }

    /// That user's password.
    pub fn password(&self) -> Option<&str> {
        self.auth.credentials().map(|(_, p)| p)
    }

    /// The token server, with token auth: add users, change the TTL, read
    /// the recorded requests.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// The temporary directory holding config, storage and log.
    pub fn dir(&self) -> &Path {
        self.log_path.parent().unwrap_or(Path::new("/"))
    }

    /// The registry's process ID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with this `Content-Type` and
    /// body, as any client does it (for what olreg never pushes itself:
    /// image indexes, manifest lists). Registries without auth only.
    /// Returns the status and the body of the answer.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> io::Result<(u16, String)> {
        if self.auth != DistributionAuth::None {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "put_manifest speaks to registries without auth only",
            ));
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "PUT /v2/{repo}/manifests/{reference} HTTP/1.1\r\nHost: {}\r\n\
             Content-Type: {media_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.host(),
            body.len()
        )?;
        stream.write_all(body)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        let answer = String::from_utf8_lossy(&answer);
        let status = answer
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("not an HTTP answer: {answer:?}")))?;
        let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        Ok((status, body.to_owned()))
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::env::var_os(KEEP_DIR_ENV).is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("olreg-testreg: kept {}", dir.keep().display());
            }
        }
    }
}

/// [`Distribution::binary`] with the environment passed in.
fn find_binary(explicit: Option<OsString>, search_path: Option<OsString>) -> io::Result<PathBuf> {
    if let Some(path) = explicit {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{BINARY_ENV}={} is not a file", path.display()),
            ))
        };
    }
    search_path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("docker-registry"))
        .find(|candidate| candidate.is_file())
        .or_else(|| Some(PathBuf::from(DEBIAN_BINARY)).filter(|p| p.is_file()))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "Docker Distribution not found (no ${BINARY_ENV}, no docker-registry on PATH, \
                     no {DEBIAN_BINARY}): install it with `apt-get install docker-registry` \
                     (Debian bookworm ships 2.8.2) or point {BINARY_ENV} at a registry binary"
                ),
            )
        })
}

/// The version `binary --version` reports: its last word, without `v`
/// (`docker-registry github.com/docker/distribution 2.8.2+ds1`,
/// `registry github.com/distribution/distribution/v3 v3.1.2+unknown`).
fn registry_version(binary: &Path) -> io::Result<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", binary.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .map(|v| v.trim_start_matches('v').to_owned())
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        .ok_or_else(|| {
            io::Error::other(format!(
                "{} --version printed no version: {text:?}",
                binary.display()
            ))
        })
}

/// The major number of a version such as `3.1.2+unknown`.
fn major(version: &str) -> u32 {
    version
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// One htpasswd line with a `$2y$` bcrypt hash (what `htpasswd -B` writes;
/// Go's bcrypt, which Distribution uses, reads `$2a$`, `$2b$` and `$2y$`).
fn htpasswd_line(user: &str, password: &str) -> io::Result<String> {
    if user.contains(':') || user.contains('\n') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "htpasswd user names cannot contain ':' or newlines",
        ));
    }
    let hash = bcrypt::hash_with_result(password, BCRYPT_COST)
        .map_err(|e| io::Error::other(format!("bcrypt: {e}")))?
        .format_for_version(bcrypt::Version::TwoY);
    Ok(format!("{user}:{hash}\n"))
}

fn htpasswd_section(path: &Path) -> String {
    format!(
        "auth:\n  htpasswd:\n    realm: olreg-test\n    path: {}\n",
        yaml_str(&path.to_string_lossy())
    )
}

fn token_section(server: &TokenServer, bundle: &Path) -> String {
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        yaml_str(&server.realm()),
        yaml_str(&server.service()),
        yaml_str(&server.issuer()),
        yaml_str(&bundle.to_string_lossy()),
    )
}

/// The `proxy:` section of a pull-through cache.
fn proxy_section(proxy: &ProxyOf) -> String {
    let mut out = format!("proxy:\n  remoteurl: {}\n", yaml_str(&proxy.remote_url));
    if let Some((user, password)) = &proxy.credentials {
        out.push_str(&format!(
            "  username: {}\n  password: {}\n",
            yaml_str(user),
            yaml_str(password)
        ));
    }
    out
}

/// The registry's config: filesystem storage in `dir`, deletes on, upload
/// purging off (it would race with slow tests), text logs with access log.
fn config_yaml(
    dir: &Path,
    port: u16,
    options: &DistributionOptions,
    auth_section: &str,
) -> io::Result<String> {
    let mut secret = [0u8; 16];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| io::Error::other("no randomness for http.secret"))?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: {secret}\n  relativeurls: {relative}\n\
         {auth_section}{proxy_section}",
        storage = yaml_str(&dir.join("storage").to_string_lossy()),
        relative = options.relative_urls,
        proxy_section = options
            .proxy
            .as_ref()
            .map(proxy_section)
            .unwrap_or_default(),
    ))
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn yaml_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// A port that was free a moment ago.
fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn spawn(
    binary: &Path,
    config: &Path,
    log_path: &Path,
    die_with_parent: bool,
) -> io::Result<Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if die_with_parent {
        set_parent_death_signal(&mut command);
    }
    command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", binary.display())))
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only the
    // async-signal-safe prctl and getppid, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_command: &mut Command) {}

/// Polls `GET /v2/` until it answers 200 or 401, the child exits, or the
/// timeout passes; errors carry the log's tail.
fn wait_ready(child: &mut Child, port: u16, log_path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "docker-registry exited ({status}) before answering; log {}:\n{}",
                log_path.display(),
                tail(&read_lossy(log_path), 20)
            )));
        }
        if matches!(probe_v2(port), Some(200 | 401)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "docker-registry did not answer GET /v2/ within {READY_TIMEOUT:?}; log {}:\n{}",
                    log_path.display(),
                    tail(&read_lossy(log_path), 20)
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The status of `GET /v2/`, by hand so the harness needs no HTTP client.
fn probe_v2(port: u16) -> Option<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    // "HTTP/1.1 200"
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_line_is_2y_bcrypt_that_verifies() {
        let line = htpasswd_line("alice", "s3cret").unwrap();
        let hash = line.trim_end().strip_prefix("alice:").unwrap();
        assert!(hash.starts_with("$2y$05$"), "{hash}");
        assert!(bcrypt::verify("s3cret", hash).unwrap());
        assert!(htpasswd_line("a:b", "x").is_err());
    }

    #[test]
    fn binary_lookup_honours_the_override_and_explains_absence() {
        let missing = find_binary(Some("/nonexistent/registry".into()), None).unwrap_err();
        assert!(missing.to_string().contains(BINARY_ENV), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("docker-registry");
        std::fs::write(&fake, "").unwrap();
        assert_eq!(find_binary(None, Some(dir.path().into())).unwrap(), fake);
        if !Path::new(DEBIAN_BINARY).exists() {
            let err = find_binary(None, Some("/nonexistent".into())).unwrap_err();
            assert!(
                err.to_string().contains("apt-get install docker-registry"),
                "{err}"
            );
        }
    }

    #[test]
    fn versions_have_a_major_number() {
        assert_eq!(major("2.8.2+ds1"), 2);
        assert_eq!(major("3.1.2+unknown"), 3);
        assert_eq!(major("junk"), 0);
    }

    #[test]
    fn yaml_strings_are_quoted() {
        assert_eq!(yaml_str("/tmp/a b\"c"), "\"/tmp/a b\\\"c\"");
    }
}
