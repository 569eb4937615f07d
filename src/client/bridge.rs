//! The runtime bridge: each operation is a blocking call on the caller's
//! thread whose job runs on olreg's tokio runtime.
//!
//! Like libcurl's easy interface, the calling thread waits for the job's
//! events and runs the caller's progress and log callbacks itself, so
//! callbacks always run on the caller's own thread. The calling thread never
//! enters the runtime, so a call from inside another async runtime is safe,
//! and a call from inside one of olreg's callbacks is refused (`Reentrant`).

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;

use super::LogFn;
use crate::cancel::CancelToken;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Event, LogLevel, Progress, Reporter};

/// How the caller follows one operation: a progress callback (return `false`
/// to cancel) and a cancel token another thread may fire.
#[derive(Default)]
pub struct Watch<'a> {
    pub progress: Option<&'a mut (dyn FnMut(&Progress) -> bool + 'a)>,
    pub cancel: Option<&'a CancelToken>,
}

thread_local! {
    /// Set while this thread runs one of the library's callbacks.
    static IN_CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` marked as a callback, so a nested blocking call is refused.
fn as_callback<T>(f: impl FnOnce() -> T) -> T {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_CALLBACK.with(|c| c.set(false));
        }
    }
    IN_CALLBACK.with(|c| c.set(true));
    let _reset = Reset;
    f()
}

/// A client's runtime and its log callback.
pub(crate) struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
    log: Option<LogFn>,
    log_level: LogLevel,
}

impl Bridge {
    /// Starts the runtime: one worker per core, at least two.
    pub(crate) fn start(log: Option<(LogLevel, LogFn)>) -> Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(
                std::thread::available_parallelism()
                    .map_or(2, |n| n.get())
                    .max(2),
            )
            .thread_name("olreg-worker")
            .on_thread_start(crate::remote::block_sigpipe)
            .enable_all()
            .build()
            .map_err(|e| Error::invalid_argument(format!("cannot start the runtime: {e}")))?;
        let (log_level, log) = match log {
            Some((level, f)) => (level, Some(f)),
            None => (LogLevel::Error, None),
        };
        Ok(Bridge {
            runtime: Some(runtime),
            log,
            log_level,
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bridge")
    }

    /// Runs `f` inside the runtime's context (for things that spawn into it
    /// when they are built, like the HTTP client's connection pool).
    pub(crate) fn within<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.runtime().enter();
        f()
    }

    /// Refuses a blocking call made from inside one of olreg's callbacks.
    pub(crate) fn guard(&self) -> Result<()> {
        if IN_CALLBACK.with(Cell::get) {
            return Err(Error::new(ErrorKind::Reentrant));
        }
        Ok(())
    }

    /// Hands a log line to the caller's log function, on this thread.
    pub(crate) fn log(&self, level: LogLevel, message: &str) {
        if let Some(log) = &self.log {
            if level <= self.log_level {
                as_callback(|| log(level, message));
            }
        }
    }

    /// Runs `job` on the runtime and serves its events on this thread until
    /// it ends. `job` receives the operation's reporter and cancel token.
    pub(crate) fn run<T, F, Fut>(&self, watch: Watch<'_>, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Reporter>, CancellationToken) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
    {
        self.guard()?;
        let (tx, rx) = mpsc::channel();
        let reporter = Arc::new(Reporter::new(tx, self.log_level));
        let cancel = match watch.cancel {
            Some(token) => token.0.child_token(),
            None => CancellationToken::new(),
        };
        let result_slot: Arc<Mutex<Option<Result<T>>>> = Arc::new(Mutex::new(None));
        let slot = result_slot.clone();
        let future = job(reporter.clone(), cancel.clone());
        self.runtime().spawn(async move {
            let ticker = {
                let reporter = reporter.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    loop {
                        tick.tick().await;
                        reporter.flush();
                    }
                })
            };
            let result = AssertUnwindSafe(future)
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(Error::panic(panic)));
            ticker.abort();
            reporter.flush();
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            reporter.finished();
        });

        let mut progress = watch.progress;
        let mut stopped_by_callback = false;
        while let Ok(event) = rx.recv() {
            match event {
                Event::Progress(p) => {
                    if let (Some(cb), false) = (progress.as_mut(), stopped_by_callback) {
                        if !as_callback(|| cb(&p)) {
                            stopped_by_callback = true;
                            cancel.cancel();
                        }
                    }
                }
                Event::Log(level, message) => self.log(level, &message),
                Event::Finished => break,
            }
        }
        let taken = result_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
        taken.unwrap_or_else(|| Err(Error::internal("the operation ended without a result")))
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        // Never blocks, and is safe from any thread, even inside a runtime.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
