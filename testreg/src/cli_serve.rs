//! `olreg-testreg serve`: the test registry as a program, for the C, Go and
//! Python tests and the README demo.
//!
//! It prints one JSON line describing itself (URLs, CA, the models it made)
//! and then serves until SIGINT/SIGTERM or until stdin reaches EOF, so a
//! test process that dies takes its server with it. Everything else is
//! driven through the `/_testreg/` control API on the registry host.

use std::io::Write;

use olreg_testreg::{Auth, BlobMode, Model, Options, Realm, TestRegistry, UploadMode};

const USAGE: &str = "usage: olreg-testreg serve [--tls] [--direct] [--session-uploads]
       [--auth none|legacy|challenge|basic:USER:PASS] [--public-key 'ssh-ed25519 AAAA...']...
       [--token-ttl SECS] [--realm URL --service NAME]
       [--model NS/MODEL:TAG=SIZE[,SIZE...]]... [--seed N] [--port N] [--ignore-stdin]
SIZE is bytes with an optional K, M or G suffix (powers of 1024).";

/// What the command line asked for.
#[derive(Debug, Default)]
struct Args {
    opts: Options,
    auth: String,
    public_keys: Vec<String>,
    token_ttl: u64,
    models: Vec<(String, Vec<u64>)>,
    seed: u64,
    ignore_stdin: bool,
}

/// Runs the command; returns the exit status.
pub fn main(args: Vec<String>) -> i32 {
    let args = match parse(&args) {
        Ok(args) => args,
        Err(why) => {
            eprintln!("olreg-testreg serve: {why}\n{USAGE}");
            return 2;
        }
    };
    // Signal handlers go in before the ready line: a test may send SIGTERM
    // as soon as it has read it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("olreg-testreg serve: {e}");
            return 1;
        }
    };
    let signals = {
        let _context = runtime.enter();
        Signals::install()
    };
    let registry = match TestRegistry::try_start(args.opts) {
        Ok(registry) => registry,
        Err(why) => {
            eprintln!("olreg-testreg serve: {why}");
            return 1;
        }
    };
    let models: Vec<Model> = args
        .models
        .iter()
        .map(|(name, sizes)| registry.add_model(name, sizes, args.seed))
        .collect();
    let ready = serde_json::json!({
        "url": registry.url(),
        "host": registry.host(),
        "blob_store_url": registry.blob_store_url(),
        "ca_pem": registry.ca_pem(),
        "models": models,
    });
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return 1;
    }
    drop(stdout);
    runtime.block_on(async {
        let stdin_closed = async {
            if args.ignore_stdin {
                std::future::pending::<()>().await;
            }
            stdin_eof().await;
        };
        tokio::select! {
            _ = signals.wait() => {}
            _ = stdin_closed => {}
        }
    });
    drop(registry);
    0
}

/// SIGINT and SIGTERM handlers, registered when made (a handler that
/// cannot be registered just never fires).
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Registers the handlers; must run inside a runtime context.
    fn install() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// Completes when either signal arrives.
    async fn wait(self) {
        #[cfg(unix)]
        {
            async fn recv(signal: Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(self.interrupt) => {}
                _ = recv(self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Completes when stdin reaches EOF (or fails). The read runs on a plain
/// thread: it can stay parked in `read()` forever, and the process exits
/// without joining it.
async fn stdin_eof() {
    use std::io::Read;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("stdin-watch".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
            let _ = tx.send(());
        });
    match spawned {
        Ok(_) => {
            let _ = rx.await;
        }
        Err(_) => std::future::pending().await,
    }
}

fn parse(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        auth: "none".into(),
        token_ttl: 300,
        ..Args::default()
    };
    let (mut realm, mut service) = (None, None);
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--tls" => args.opts.tls = true,
            "--direct" => args.opts.blob_mode = BlobMode::Direct,
            "--session-uploads" => args.opts.upload_mode = UploadMode::Session,
            "--ignore-stdin" => args.ignore_stdin = true,
            "--auth" => args.auth = value("--auth")?,
            "--public-key" => args.public_keys.push(value("--public-key")?),
            "--token-ttl" => args.token_ttl = number(&value("--token-ttl")?)?,
            "--realm" => realm = Some(value("--realm")?),
            "--service" => service = Some(value("--service")?),
            "--seed" => args.seed = number(&value("--seed")?)?,
            "--port" => {
                let port = value("--port")?;
                args.opts.port = port.parse().map_err(|_| format!("bad port {port:?}"))?;
            }
            "--model" => args.models.push(model_spec(&value("--model")?)?),
            "-h" | "--help" => return Err("help requested".into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    args.opts.auth = auth(&args.auth, &args.public_keys, args.token_ttl)?;
    args.opts.realm = match (realm, service) {
        (Some(url), Some(service)) => Some(Realm { url, service }),
        (None, None) => None,
        _ => return Err("--realm and --service go together".into()),
    };
    Ok(args)
}

fn auth(spec: &str, public_keys: &[String], token_ttl_secs: u64) -> Result<Auth, String> {
    Ok(match spec {
        "none" => Auth::None,
        "legacy" => Auth::Ed25519Legacy {
            public_keys: public_keys.to_vec(),
        },
        "challenge" => Auth::OllamaChallenge {
            public_keys: public_keys.to_vec(),
            token_ttl_secs,
        },
        _ => match spec.strip_prefix("basic:").and_then(|r| r.split_once(':')) {
            Some((user, password)) => Auth::Basic {
                user: user.to_string(),
                password: password.to_string(),
            },
            None => return Err(format!("unknown auth {spec:?}")),
        },
    })
}

/// `NS/MODEL:TAG=SIZE[,SIZE...]`.
fn model_spec(spec: &str) -> Result<(String, Vec<u64>), String> {
    let (name, sizes) = spec
        .split_once('=')
        .ok_or_else(|| format!("model {spec:?} is not NAME=SIZE[,SIZE...]"))?;
    let sizes = sizes.split(',').map(size).collect::<Result<Vec<_>, _>>()?;
    Ok((name.to_string(), sizes))
}

/// Bytes with an optional K/M/G (1024-based) suffix.
fn size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("bad size {text:?}")),
    };
    let n = number(digits)?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("size {text:?} too large"))
}

fn number(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("bad number {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sizes_and_models_parse() {
        assert_eq!(size("10"), Ok(10));
        assert_eq!(size("3k"), Ok(3072));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert!(size("1T").is_err());
        assert!(size("x").is_err());
        assert_eq!(
            model_spec("a/b:c=1M,5"),
            Ok(("a/b:c".to_string(), vec![1 << 20, 5]))
        );
    }

    #[test]
    fn flags_parse() {
        let args = parse(&strings(&[
            "--tls",
            "--direct",
            "--session-uploads",
            "--auth",
            "basic:u:p:w",
            "--model",
            "x/y:z=1",
            "--seed",
            "4",
        ]))
        .expect("parse");
        assert!(args.opts.tls);
        assert_eq!(args.opts.blob_mode, BlobMode::Direct);
        assert_eq!(args.opts.upload_mode, UploadMode::Session);
        assert_eq!(
            args.opts.auth,
            Auth::Basic {
                user: "u".into(),
                password: "p:w".into()
            }
        );
        assert_eq!(args.seed, 4);
        assert!(parse(&strings(&["--auth", "magic"])).is_err());
        let other =
            parse(&strings(&["--realm", "http://a/token", "--service", "a"])).expect("realm");
        assert_eq!(other.opts.realm.map(|r| r.service), Some("a".into()));
        assert!(parse(&strings(&["--realm", "http://a/token"])).is_err());
        assert!(parse(&strings(&["--bogus"])).is_err());
    }
}
