//! The runtime bridge: each operation is a blocking call on the caller's
//! thread whose job runs on olreg's tokio runtime.
//!
//! Like libcurl's easy interface, the calling thread waits for the job's
//! events and runs the caller's progress and log callbacks itself, so
//! callbacks always run on the caller's own thread. The calling thread never
//! enters the runtime, so a call from inside another async runtime is safe,
//! and a call from inside one of olreg's callbacks is refused (`Reentrant`).
//!
//! The bridge also counts the calls in progress, so that closing a client
//! can cancel them and wait for them to return, once, here: bindings need
//! not track calls themselves.

use std::cell::Cell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::FutureExt as _;
use tokio_util::sync::CancellationToken;

use super::LogFn;
use crate::cancel::CancelToken;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{Event, LogLevel, Progress, ProgressEvent, Reporter};

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

/// A client's runtime, its log callback and the calls in progress.
pub(crate) struct Bridge {
    /// Taken (and shut down) when the client is closed.
    runtime: Mutex<Option<tokio::runtime::Runtime>>,
    handle: tokio::runtime::Handle,
    log: Option<LogFn>,
    log_level: LogLevel,
    calls: Mutex<Calls>,
    /// Signalled when the last call in progress returns.
    idle: Condvar,
    /// Cancelled when the client is closed; every operation follows it.
    closing: CancellationToken,
}

/// The calls in progress on a client.
#[derive(Default)]
struct Calls {
    running: usize,
    closed: bool,
}

/// One call in progress: counted from [`Bridge::enter`] until dropped.
pub(crate) struct Call<'a> {
    bridge: &'a Bridge,
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        let mut calls = self.bridge.calls();
        calls.running -= 1;
        if calls.running == 0 {
            self.bridge.idle.notify_all();
        }
    }
}

/// How long closing a client waits for its worker threads to stop (they
/// only drop their tasks and sockets: far less in practice).
const THREADS_STOP: Duration = Duration::from_secs(5);

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
            handle: runtime.handle().clone(),
            runtime: Mutex::new(Some(runtime)),
            log,
            log_level,
            calls: Mutex::new(Calls::default()),
            idle: Condvar::new(),
            closing: CancellationToken::new(),
        })
    }

    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` inside the runtime's context (for things that spawn into it
    /// when they are built, like the HTTP client's connection pool).
    pub(crate) fn within<T>(&self, f: impl FnOnce() -> T) -> T {
        let _guard = self.handle.enter();
        f()
    }

    /// Starts a call: refused from inside one of olreg's callbacks
    /// (`Reentrant`) and once the client is closed (`Closed`).
    pub(crate) fn enter(&self) -> Result<Call<'_>> {
        if IN_CALLBACK.with(Cell::get) {
            return Err(Error::new(ErrorKind::Reentrant));
        }
        let mut calls = self.calls();
        if calls.closed {
            return Err(Error::new(ErrorKind::Closed));
        }
        calls.running += 1;
        Ok(Call { bridge: self })
    }

    /// Closes the client: later calls fail with `Closed`, the calls in
    /// progress are cancelled, and once they have returned the runtime's
    /// threads stop. From inside a callback it cannot wait for them (the
    /// callback's own call is one): it cancels them and returns `Reentrant`.
    pub(crate) fn close(&self) -> Result<()> {
        self.calls().closed = true;
        self.closing.cancel();
        if IN_CALLBACK.with(Cell::get) {
            return Err(Error::new(ErrorKind::Reentrant));
        }
        let mut calls = self.calls();
        while calls.running > 0 {
            calls = self.idle.wait(calls).unwrap_or_else(|p| p.into_inner());
        }
        drop(calls);
        self.shut_down();
        Ok(())
    }

    /// Stops the runtime. Outside any runtime (a C caller, a plain Rust
    /// thread) it waits, up to [`THREADS_STOP`], for the worker threads to
    /// stop, so that none is still running library code when the host
    /// exits or unloads the library (under Wine a process exiting while
    /// they close their sockets was killed). Inside a runtime, where
    /// blocking is not allowed, it does not wait.
    fn shut_down(&self) {
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(runtime) = runtime {
            if tokio::runtime::Handle::try_current().is_ok() {
                runtime.shutdown_background();
            } else {
                runtime.shutdown_timeout(THREADS_STOP);
            }
        }
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
        let _call = self.enter()?;
        let (tx, rx) = mpsc::channel();
        let reporter = Arc::new(Reporter::new(tx, self.log_level));
        let cancel = match watch.cancel {
            Some(token) => token.0.child_token(),
            None => CancellationToken::new(),
        };
        let result_slot: Arc<Mutex<Option<Result<T>>>> = Arc::new(Mutex::new(None));
        let slot = result_slot.clone();
        let job = job(reporter.clone(), cancel.clone());
        // Closing the client cancels the operation too.
        let (closing, on_close) = (self.closing.clone(), cancel.clone());
        let future = async move {
            tokio::pin!(job);
            tokio::select! {
                result = &mut job => result,
                _ = closing.cancelled() => {
                    on_close.cancel();
                    job.await
                }
            }
        };
        self.handle.spawn(async move {
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
                        // After FINISHED the work is done: stopping changes nothing.
                        if !as_callback(|| cb(&p)) && p.event != ProgressEvent::Finished {
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
        match taken {
            // Events reach the callback after the fact: the job may have got
            // to the end before the callback asked to stop. The call is
            // cancelled all the same, as the callback's contract says.
            Some(Ok(_)) if stopped_by_callback => Err(Error::cancelled()),
            Some(result) => result,
            None => Err(Error::internal("the operation ended without a result")),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.shut_down();
    }
}
