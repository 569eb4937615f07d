//! `olreg-testreg distribution`: one JSON line, a working registry, and no
//! leftovers however the program is stopped. Needs the `docker-registry`
//! binary, like `tests/distribution.rs`; fails without it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Running {
    child: Child,
    info: serde_json::Value,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        if let Err(e) = olreg_testreg::distribution::Distribution::binary() {
            panic!("these tests need Docker Distribution 2.8: {e}");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_olreg-testreg"))
            .arg("distribution")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let info = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        Running { child, info }
    }

    fn field(&self, name: &str) -> String {
        self.info[name].as_str().unwrap_or_default().to_string()
    }

    fn dir(&self) -> PathBuf {
        PathBuf::from(self.field("log_path"))
            .parent()
            .unwrap()
            .to_path_buf()
    }

    fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "olreg-testreg did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status line of `GET /v2/` with optional Basic credentials, or `None`
/// if nothing listens.
fn get_v2(host: &str, basic: Option<&str>) -> Option<String> {
    let mut s = TcpStream::connect(host).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = basic.map_or(String::new(), |b| format!("Authorization: Basic {b}\r\n"));
    write!(
        s,
        "GET /v2/ HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.lines().next().map(str::to_string)
}

fn gone(host: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if TcpStream::connect(host).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn basic_mode_prints_its_line_and_stops_on_stdin_eof() {
    let mut running = Running::start(&["--auth", "basic", "--user", "u", "--password", "p"]);
    assert_eq!(running.field("auth"), "basic");
    assert_eq!(running.field("user"), "u");
    assert_eq!(running.field("password"), "p");
    assert!(running.info["token_url"].is_null());
    let host = running.field("host");
    assert_eq!(running.field("url"), format!("http://{host}"));
    // base64("u:p")
    assert_eq!(get_v2(&host, Some("dTpw")).unwrap(), "HTTP/1.1 200 OK");
    assert_eq!(get_v2(&host, None).unwrap(), "HTTP/1.1 401 Unauthorized");

    drop(running.child.stdin.take());
    assert!(running.wait().success());
    assert!(gone(&host), "the registry outlived the program");
    assert!(
        !running.dir().exists(),
        "{} was not removed",
        running.dir().display()
    );
}

#[cfg(unix)]
#[test]
fn token_mode_stops_on_sigterm() {
    let mut running = Running::start(&["--auth=token", "--ttl", "30"]);
    assert_eq!(running.field("auth"), "token");
    assert_eq!(running.field("user"), "olreg");
    let token_url = running.field("token_url");
    assert!(token_url.starts_with("http://127.0.0.1:") && token_url.ends_with("/token"));
    let host = running.field("host");
    assert_eq!(get_v2(&host, None).unwrap(), "HTTP/1.1 401 Unauthorized");

    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(running.child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    assert!(running.wait().success());
    assert!(gone(&host));
    assert!(!running.dir().exists());
}

#[test]
fn the_registry_dies_with_a_killed_program() {
    let mut running = Running::start(&[]);
    assert_eq!(running.field("auth"), "none");
    assert!(running.info["user"].is_null());
    let host = running.field("host");
    assert_eq!(get_v2(&host, None).unwrap(), "HTTP/1.1 200 OK");

    running.child.kill().unwrap();
    running.wait();
    assert!(gone(&host), "PR_SET_PDEATHSIG did not stop the registry");
    // A SIGKILLed program cannot clean up its directory.
    let _ = std::fs::remove_dir_all(running.dir());
}

#[test]
fn bad_arguments_exit_2() {
    let status = Command::new(env!("CARGO_BIN_EXE_olreg-testreg"))
        .args(["distribution", "--auth", "kerberos"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
