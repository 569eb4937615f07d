"""Where output goes: stdout only for list and show, progress and logs on
stderr (live on a terminal, plain lines elsewhere, nothing with --quiet),
and which store, streams and mirrors the program uses."""

import os
import re
import select
import subprocess

from cli_helpers import ANSI, error_line, stderr_lines
from conftest import PULL_EXAMPLE, Olreg

TINY = "library/tiny:latest"
BIG = "library/big:latest"
STALL_1M = {"stall": {"after_bytes": 1 << 20, "millis": 1500}}


def test_quiet_prints_nothing(olreg, registry):
    for args in (["pull", registry.name(TINY)], ["verify"], ["verify", registry.name(TINY)],
                 ["push", registry.name(TINY)], ["rm", registry.name(TINY)], ["prune"]):
        result = olreg("--quiet", *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), args
    assert olreg("-q", "list").stderr == b""


def test_plain_progress_on_stderr(olreg, registry):
    name = registry.name(TINY)
    result = olreg("pull", name)
    assert result.returncode == 0
    assert result.stdout == b""
    assert b"\x1b" not in result.stderr  # not a terminal: no cursor movement
    lines = stderr_lines(result)
    assert lines[0] == f"pulling {name}: 4 blobs, 303.4 KiB"
    assert re.fullmatch(rf"pulled {re.escape(name)}: 4 blobs, 303\.4 KiB in [\d.]+s( \(.*/s\))?", lines[-1])
    for line in lines[1:-1]:
        assert re.fullmatch(r"pulling sha256:[0-9a-f]{12}: (done [\d.]+ (B|KiB|MiB)|cached|.*)", line), line
    assert sum(" done " in line for line in lines) == 4

    again = olreg("pull", name)
    assert sum(line.endswith(": cached") for line in stderr_lines(again)) == 4
    assert stderr_lines(again)[-1].endswith(", 4 cached")


def test_plain_progress_shows_bytes(olreg, registry):
    """A transfer that takes a while gets byte-count lines with percent, rate and ETA."""
    registry.fault({"blob_store": {"digest": None}}, STALL_1M)
    try:
        result = olreg("pull", registry.name(BIG))
    finally:
        registry.clear_faults()
    assert result.returncode == 0, result.stderr
    assert any(re.fullmatch(r"pulling sha256:[0-9a-f]{12}: [\d.]+ (B|KiB|MiB)/8\.0 MiB \(\d+%\) \S+/s ETA \S+", line)
               for line in stderr_lines(result)), result.stderr


def read_pty(fd, proc, timeout=60):
    """Everything written to a pseudo-terminal until the process exits."""
    out = b""
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            proc.kill()
            raise AssertionError("no output for a minute")
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        out += chunk
    return out


def test_live_progress_on_a_terminal(olreg, registry):
    registry.fault({"blob_store": {"digest": None}}, STALL_1M)
    controller, terminal = os.openpty()
    try:
        proc = olreg.popen("pull", registry.name(BIG), stdout=subprocess.PIPE, stderr=terminal,
                           env={"TERM": "xterm"})
        os.close(terminal)
        screen = read_pty(controller, proc)
        stdout = proc.stdout.read()
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(controller)
        registry.clear_faults()
    assert stdout == b""
    # Redrawn in place: cursor up, clear line, clear below.
    assert re.search(rb"\x1b\[\d+A", screen)
    assert b"\x1b[K" in screen and b"\x1b[J" in screen
    text = ANSI.sub(b"", screen).decode()
    assert "total" in text and "ETA" in text and "/8.0 MiB" in text
    # It ends with the final frame: every blob done, then the summary, and nothing after.
    final = screen[screen.rindex(b"\x1b[J", 0, len(screen) - 3):]
    final_text = ANSI.sub(b"", final).decode()
    assert final_text.count(" done") == 2
    assert re.search(r"pulled .*: 2 blobs, 8\.0 MiB in", final_text)
    assert screen.endswith(b"\x1b[J")


def test_quiet_on_a_terminal(olreg, registry):
    controller, terminal = os.openpty()
    try:
        proc = olreg.popen("-q", "pull", registry.name(TINY), stdout=subprocess.PIPE, stderr=terminal)
        os.close(terminal)
        screen = read_pty(controller, proc)
        assert proc.wait(timeout=30) == 0
    finally:
        os.close(controller)
    assert screen == b""


def test_verbose_logs(olreg, registry):
    name = registry.name(TINY)
    quiet = olreg("pull", name)
    assert not any(line.startswith(("olreg: info:", "olreg: debug:")) for line in stderr_lines(quiet))

    info = olreg("-v", "pull", name)
    assert info.returncode == 0 and info.stdout == b""
    assert any(line.startswith("olreg: info: ") for line in stderr_lines(info))
    assert not any(line.startswith("olreg: debug: ") for line in stderr_lines(info))

    for flags in (["-vv"], ["-v", "-v"], ["--verbose", "--verbose"]):
        debug = olreg(*flags, "pull", name)
        assert debug.returncode == 0 and debug.stdout == b""
        assert any(line.startswith("olreg: debug: GET ") for line in stderr_lines(debug)), flags

    # Logs never reach stdout, even for the commands that print there.
    listed = olreg("-vv", "list")
    assert listed.stdout == f"{registry.listed(TINY)}\n".encode()
    shown = olreg("-vv", "show", name)
    assert shown.stdout == registry.manifest("library/tiny", "latest")


def test_streams(olreg):
    def announced(result):
        line = next(line for line in stderr_lines(result) if line.startswith("olreg: info: store "))
        return int(re.search(r"(\d+) streams", line).group(1))

    assert announced(olreg("-v", "list", env={"OLLAMA_REGISTRY_MAXSTREAMS": "3"})) == 3
    assert announced(olreg("-v", "--streams", "5", "list", env={"OLLAMA_REGISTRY_MAXSTREAMS": "3"})) == 5


def test_store_location(registry, tmp_path, home):
    """--models, else $OLLAMA_MODELS, else ~/.ollama/models."""
    name = registry.name("other/b:v2")
    plain = Olreg(None, home)
    from_env, from_flag = tmp_path / "env", tmp_path / "flag"

    assert plain("-q", "pull", name, models=False, env={"OLLAMA_MODELS": str(from_env)}).returncode == 0
    assert (from_env / "manifests").is_dir()

    assert plain("-q", "--models", str(from_flag), "pull", name, models=False,
                 env={"OLLAMA_MODELS": str(from_env)}).returncode == 0
    assert (from_flag / "manifests").is_dir()
    assert plain("list", models=False, env={"OLLAMA_MODELS": str(from_flag)}).stdout.strip()

    assert plain("-q", "pull", name, models=False).returncode == 0
    assert (home / ".ollama" / "models" / "manifests").is_dir()
    assert plain("list", models=False).stdout == f"{registry.listed('other/b:v2')}\n".encode()


def test_mirrors(olreg, registry):
    """A mirror serves the pull; the model is filed under its own name."""
    name = "example.invalid/library/tiny:latest"
    result = olreg("-q", "--mirror", f"example.invalid={registry.url}", "pull", name)
    assert result.returncode == 0, result.stderr
    assert olreg("list").stdout == f"{name}\n".encode()
    assert olreg("rm", name).returncode == 0

    result = olreg("-q", "pull", name, env={"OLREG_MIRRORS": f"example.invalid={registry.url}"})
    assert result.returncode == 0, result.stderr
    assert olreg("list").stdout == f"{name}\n".encode()


def test_bad_mirror_fails(olreg):
    result = olreg("--mirror", "ftp://nowhere", "list")
    assert result.returncode == 1
    assert "mirror" in error_line(result)


def test_pull_example(registry, store, home):
    """examples-c/pull: pulls into $OLLAMA_MODELS, explains failures."""
    env = Olreg(store, home).env({"OLLAMA_MODELS": str(store)})
    done = subprocess.run([str(PULL_EXAMPLE), registry.name(TINY)], env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert Olreg(store, home)("list").stdout == f"{registry.listed(TINY)}\n".encode()

    missing = subprocess.run([str(PULL_EXAMPLE), registry.name("library/absent:v1")], env=env,
                             capture_output=True, timeout=60)
    assert missing.returncode == 1
    assert b"HTTP 404" in missing.stderr and b"MANIFEST_UNKNOWN" in missing.stderr
