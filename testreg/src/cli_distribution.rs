//! `olreg-testreg distribution [--auth none|basic|token] [--user U]
//! [--password P] [--ttl SECS] [--relative-urls]`: runs Docker Distribution
//! (plus its token server for `--auth token`) for tests outside Rust.
//!
//! Prints one JSON line `{"url","host","auth","user","password",
//! "token_url","identity_token","log_path"}` once the registry answers,
//! then runs until SIGINT, SIGTERM or EOF on stdin (so a
//! parent that dies, closing the pipe, also stops it). The registry child is
//! killed and its directory removed on the way out; `PR_SET_PDEATHSIG`
//! covers the case where this process is killed outright.

use olreg_testreg::distribution::{Distribution, DistributionAuth, DistributionOptions};
use std::io::{Read, Write};

const USAGE: &str = "usage: olreg-testreg distribution [--auth none|basic|token] \
                     [--user U] [--password P] [--ttl SECS] [--relative-urls]";

/// Parsed command line.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    mode: String,
    user: String,
    password: String,
    ttl_secs: u64,
    relative_urls: bool,
}

fn parse(args: Vec<String>) -> Result<Args, String> {
    let mut parsed = Args {
        mode: "none".to_string(),
        user: "olreg".to_string(),
        password: "olreg-secret".to_string(),
        ttl_secs: 300,
        relative_urls: false,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--auth" => parsed.mode = value()?,
            "--user" => parsed.user = value()?,
            "--password" => parsed.password = value()?,
            "--ttl" => {
                parsed.ttl_secs = value()?
                    .parse()
                    .map_err(|_| "--ttl needs a number of seconds".to_string())?
            }
            "--relative-urls" => parsed.relative_urls = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if !["none", "basic", "token"].contains(&parsed.mode.as_str()) {
        return Err(format!(
            "--auth must be none, basic or token, not {:?}",
            parsed.mode
        ));
    }
    Ok(parsed)
}

impl Args {
    fn auth(&self) -> DistributionAuth {
        match self.mode.as_str() {
            "basic" => DistributionAuth::Htpasswd {
                user: self.user.clone(),
                password: self.password.clone(),
            },
            "token" => DistributionAuth::Token {
                user: self.user.clone(),
                password: self.password.clone(),
                ttl_secs: self.ttl_secs,
            },
            _ => DistributionAuth::None,
        }
    }
}

/// The JSON line describing a running registry.
fn describe(registry: &Distribution) -> serde_json::Value {
    serde_json::json!({
        "url": registry.url(),
        "host": registry.host(),
        "version": registry.version(),
        "auth": registry.auth().mode(),
        "user": registry.user(),
        "password": registry.password(),
        "token_url": registry.token_server().map(|t| t.realm()),
        "identity_token": registry
            .token_server()
            .zip(registry.user())
            .and_then(|(t, user)| t.identity_token(user)),
        "log_path": registry.log_path(),
    })
}

pub fn main(args: Vec<String>) -> i32 {
    let args = match parse(args) {
        Ok(a) => a,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("olreg-testreg distribution: {message}");
            }
            eprintln!("{USAGE}");
            return 2;
        }
    };
    let registry = match Distribution::start_with(DistributionOptions {
        auth: args.auth(),
        relative_urls: args.relative_urls,
        ..DistributionOptions::default()
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("olreg-testreg distribution: {e}");
            return 1;
        }
    };
    // The signal handlers are in place before the line that tells the
    // parent it may signal us.
    let code = match wait_for_stop(|| {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{}", describe(&registry)).and_then(|()| stdout.flush())
    }) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("olreg-testreg distribution: {e}");
            1
        }
    };
    drop(registry);
    code
}

/// Runs `ready`, then blocks until SIGINT, SIGTERM (Ctrl-C or Ctrl-Break on
/// Windows) or EOF on stdin (the signals are caught from before `ready` runs).
fn wait_for_stop(ready: impl FnOnce() -> std::io::Result<()>) -> std::io::Result<()> {
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel::<()>();
    // A plain thread: a blocking stdin read cannot be cancelled, and this
    // one is simply abandoned when the process exits.
    std::thread::Builder::new()
        .name("stdin-eof".to_string())
        .spawn(move || {
            let mut sink = [0u8; 4096];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = eof_tx.send(());
        })?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        let (mut interrupt, mut terminate) = {
            use tokio::signal::unix::{signal, SignalKind};
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        // Windows has Ctrl-C and Ctrl-Break in place of both signals.
        #[cfg(windows)]
        let (mut interrupt, mut terminate) = {
            use tokio::signal::windows::{ctrl_break, ctrl_c};
            (ctrl_c()?, ctrl_break()?)
        };
        ready()?;
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = eof_rx => {}
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_flags_in_both_spellings() {
        let a = parse(args(&[
            "--auth=token",
            "--user",
            "u",
            "--password=p",
            "--ttl",
            "7",
        ]))
        .unwrap();
        assert_eq!(a.mode, "token");
        assert_eq!(
            (a.user.as_str(), a.password.as_str(), a.ttl_secs),
            ("u", "p", 7)
        );
        assert_eq!(parse(args(&[])).unwrap().mode, "none");
        assert!(parse(args(&["--auth", "bogus"])).is_err());
        assert!(parse(args(&["--ttl"])).is_err());
        assert!(parse(args(&["--ttl", "x"])).is_err());
    }
}
