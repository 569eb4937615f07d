//! Docker credential helpers: `docker-credential-<name> get`, the server's
//! `host[:port]` on stdin, `{"ServerURL","Username","Secret"}` on stdout
//! (a `Username` of `<token>` makes `Secret` an identity token), as Docker
//! runs them for `credsStore` and `credHelpers`.
//!
//! The helper is found on `PATH` and run without a shell; it gets no
//! terminal input, its stderr is discarded and its answer never appears in
//! a message (it holds a secret), and it has [`TIMEOUT`] to answer.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::credentials::Secret;
use crate::error::{Error, Result};

/// How long a helper may take (it may ask the user to unlock a keychain).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);
/// The most of a helper's answer that is read.
const MAX_ANSWER: u64 = 64 << 10;
/// What helpers print when they hold nothing for a server.
const NOT_FOUND: &str = "credentials not found";

/// Asks helper `name` for `server`'s credentials; `Ok(None)` when it holds
/// none.
pub(crate) fn get(name: &str, server: &str, timeout: Duration) -> Result<Option<Secret>> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(Error::invalid_argument(format!(
            "the Docker credential helper name {name:?} is not a plain name"
        )));
    }
    let program = format!("docker-credential-{name}");
    let failed =
        |why: String| Error::invalid_argument(format!("{program} get for {server}: {why}"));
    let mut child = spawn(&program, server).map_err(|e| failed(format!("cannot run it: {e}")))?;
    let answer = read_answer(&mut child);
    let status = wait(&mut child, timeout).map_err(failed)?;
    let answer = answer
        .recv_timeout(Duration::from_secs(1))
        .map_err(|_| failed("its output did not end".into()))?;
    if !status.success() {
        if String::from_utf8_lossy(&answer).contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(failed(format!("it failed ({status})")));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Answer {
        #[serde(default)]
        username: String,
        #[serde(default)]
        secret: String,
    }
    // Deliberately no detail: a parse error could quote the secret.
    let answer: Answer = serde_json::from_slice(&answer)
        .map_err(|_| failed("its answer is not the expected JSON".into()))?;
    Ok(match (answer.username.as_str(), answer.secret) {
        (_, secret) if secret.is_empty() => None,
        ("<token>", token) => Some(Secret::IdentityToken(token)),
        (_, password) => Some(Secret::Password {
            user: answer.username,
            password,
        }),
    })
}

/// Starts the helper with `server` waiting on its stdin. On Unix the input
/// is written into a pipe before the helper starts, so a helper that exits
/// without reading can never raise `SIGPIPE` in the calling process.
#[cfg(unix)]
fn spawn(program: &str, server: &str) -> std::io::Result<Child> {
    let (reader, mut writer) = pipe()?;
    std::io::Write::write_all(&mut writer, server.as_bytes())?;
    drop(writer);
    helper_command(program).stdin(Stdio::from(reader)).spawn()
}

/// Starts the helper with `server` waiting on its stdin. Windows has no
/// `SIGPIPE`: the input goes through the child's stdin pipe (far smaller
/// than the pipe's buffer, so the write cannot block), and a helper that
/// exited without reading is judged by its exit status alone.
#[cfg(windows)]
fn spawn(program: &str, server: &str) -> std::io::Result<Child> {
    let mut child = helper_command(program).stdin(Stdio::piped()).spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut stdin, server.as_bytes());
    }
    Ok(child)
}

/// `program get`, found on `PATH` (with `.exe` on Windows), no shell, its
/// answer piped, its stderr discarded.
fn helper_command(program: &str) -> Command {
    let mut command = Command::new(program);
    command
        .arg("get")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    command
}

/// The helper's stdout, read on a thread (at most [`MAX_ANSWER`] bytes).
fn read_answer(child: &mut Child) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.take(MAX_ANSWER).read_to_end(&mut out);
            let _ = tx.send(out);
        });
    }
    rx
}

/// Waits for the helper to exit, killing it after `timeout`.
fn wait(
    child: &mut Child,
    timeout: Duration,
) -> std::result::Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {}s", timeout.as_secs_f64()));
            }
            Err(e) => return Err(format!("cannot wait for it: {e}")),
        }
    }
}

#[cfg(unix)]
fn pipe() -> std::io::Result<(std::fs::File, std::fs::File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for fd in fds {
        // Not inherited by programs other threads start meanwhile.
        // SAFETY: `fd` was just returned by pipe(2).
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    // SAFETY: both descriptors are open and owned by nothing else.
    Ok(unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain() {
        for bad in ["", "../x", "a/b", "a b", "x;y"] {
            assert!(get(bad, "h", TIMEOUT).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_missing_helper_is_named() {
        let err = get("olreg-test-absent", "r.example", TIMEOUT)
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("docker-credential-olreg-test-absent get for r.example: cannot run it"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_helper_that_hangs_is_killed_after_the_timeout() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-olreg-test-hang");
        std::fs::write(&helper, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut child = spawn(helper.to_str().unwrap(), "h").unwrap();
        let answer = read_answer(&mut child);
        let started = Instant::now();
        let err = wait(&mut child, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("no answer within 0.3s"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            answer.recv_timeout(Duration::from_secs(5)).is_ok(),
            "stdout closed"
        );
    }
}
