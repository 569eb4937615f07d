//! One operation's conversation with one registry: every request goes
//! through [`Session::send`], which attaches credentials (only to the
//! registry's own origin), answers `401` challenges, follows redirects by
//! olreg's rules, detects stalls, and retries transient failures with
//! backoff — all interruptible by the operation's cancel token.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, Response, StatusCode, Url};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::error_body::{self, MAX_ERROR_BODY};
use super::redact::{redact, redact_text};
use super::redirect::{next_hop, same_origin};
use super::retry::parse_retry_after;
use super::token::Negotiation;
#[cfg(target_os = "linux")]
use super::zero_copy;
use super::Transport;
use crate::error::{Error, ErrorKind, Result};
use crate::progress::{LogLevel, Reporter};
use crate::store::fsutil;

/// What an operation does at the repository, which decides token scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Pull,
    Push,
}

/// A request body that can be produced again for a retry.
#[derive(Clone)]
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a file from `offset`, read as they are sent. `open`
    /// opens the file afresh for each attempt (the store's safe open);
    /// `on_sent` hears each piece handed to the connection.
    File {
        open: FileOpener,
        offset: u64,
        len: u64,
        on_sent: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    },
    /// `len` bytes passing through from elsewhere (a blob being copied
    /// between registries). It can be sent only once: a request carrying it
    /// that has to be repeated fails with a retryable error instead, and its
    /// caller starts over with a fresh stream.
    Stream {
        len: u64,
        pieces: Arc<Mutex<Option<PieceReceiver>>>,
    },
}

/// The receiving end of a [`Body::Stream`]; an `Err` piece aborts the request.
pub(crate) type PieceReceiver = tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>;

/// Opens the file a [`Body::File`] is read from.
pub(crate) type FileOpener = Arc<dyn Fn() -> std::io::Result<std::fs::File> + Send + Sync>;

/// A response whose body is being read, and how fast it has been coming:
/// time spent waiting for it (not time spent by its reader) and bytes, in
/// windows of the stall timeout.
pub(crate) struct ResponseBody {
    resp: Response,
    window_wait: Duration,
    window_bytes: u64,
    /// Waiting since the last byte.
    idle: Duration,
}

impl ResponseBody {
    pub(crate) fn new(resp: Response) -> ResponseBody {
        ResponseBody {
            resp,
            window_wait: Duration::ZERO,
            window_bytes: 0,
            idle: Duration::ZERO,
        }
    }
}

/// A whole answer, read at once.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// A request to send.
#[derive(Clone)]
pub(crate) struct Req {
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(HeaderName, String)>,
    pub body: Body,
    /// Follow 3xx answers (by [`next_hop`]'s rules) instead of failing on
    /// them.
    pub follow: bool,
    /// Retry transient failures (off for requests whose caller retries).
    pub retry: bool,
    /// Send the registry's credentials to its origin and answer its `401`
    /// challenges (off for requests to a token realm).
    pub registry_auth: bool,
}

impl Req {
    pub(crate) fn new(method: Method, url: Url) -> Req {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            follow: false,
            retry: true,
            registry_auth: true,
        }
    }

    pub(crate) fn header(mut self, name: HeaderName, value: impl Into<String>) -> Req {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn body(mut self, body: Body) -> Req {
        self.body = body;
        self
    }

    pub(crate) fn follow(mut self) -> Req {
        self.follow = true;
        self
    }

    pub(crate) fn no_retry(mut self) -> Req {
        self.retry = false;
        self
    }

    pub(crate) fn without_registry_auth(mut self) -> Req {
        self.registry_auth = false;
        self
    }
}

/// Time of the last sign of life of a request, for stall detection.
struct Clock {
    start: Instant,
    last: AtomicU64,
}

impl Clock {
    fn new() -> Arc<Clock> {
        Arc::new(Clock {
            start: Instant::now(),
            last: AtomicU64::new(0),
        })
    }
    fn touch(&self) {
        self.last
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last.load(Ordering::Relaxed))
    }
}

/// One operation's view of one registry.
pub(crate) struct Session {
    transport: Arc<Transport>,
    base: Url,
    repo: String,
    /// Any certificate is accepted and https may redirect to http.
    insecure: bool,
    access: Access,
    negotiation: Negotiation,
    cancel: CancellationToken,
    reporter: Arc<Reporter>,
}

impl Session {
    pub(crate) fn new(
        transport: Arc<Transport>,
        base: Url,
        repo: String,
        insecure: bool,
        access: Access,
        cancel: CancellationToken,
        reporter: Arc<Reporter>,
    ) -> Session {
        let insecure = insecure || transport.config.insecure;
        Session {
            transport,
            base,
            repo,
            insecure,
            access,
            negotiation: Negotiation::default(),
            cancel,
            reporter,
        }
    }

    /// `<base>/v2/<repo>/<rest>`.
    pub(crate) fn url(&self, rest: &str) -> Result<Url> {
        let text = format!("{}v2/{}/{rest}", self.base, self.repo);
        Url::parse(&text)
            .map_err(|e| Error::invalid_argument(format!("cannot form a URL from {text:?}: {e}")))
    }

    /// The repository, as sent to the registry.
    pub(crate) fn repo(&self) -> &str {
        &self.repo
    }

    /// Whether any certificate is accepted and https may redirect to http.
    pub(crate) fn is_insecure(&self) -> bool {
        self.insecure
    }

    /// The registry's origin.
    pub(crate) fn base(&self) -> &Url {
        &self.base
    }

    pub(crate) fn cancel_token(&self) -> &CancellationToken {
        &self.cancel
    }

    pub(super) fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    pub(super) fn access(&self) -> Access {
        self.access
    }

    pub(super) fn negotiation(&self) -> &Negotiation {
        &self.negotiation
    }

    pub(super) fn log(&self, level: LogLevel, message: impl FnOnce() -> String) {
        self.reporter.log(level, message);
    }

    /// The stall timeout: how long a connection may deliver nothing.
    pub(crate) fn stall_timeout(&self) -> Duration {
        self.transport.config.stall_timeout
    }

    /// The bytes a body must bring in a stall timeout's worth of waiting
    /// (the minimum speed over the stall timeout; at least 1).
    pub(crate) fn least_progress(&self) -> u64 {
        let speed = self.transport.config.min_speed as f64;
        ((speed * self.stall_timeout().as_secs_f64()).ceil() as u64).max(1)
    }

    /// The retry policy.
    pub(crate) fn retry_policy(&self) -> super::retry::RetryPolicy {
        self.transport.config.retry
    }

    /// Counts `n` bytes moved against the client's bandwidth cap, waiting
    /// as long as the cap asks (or until the operation is cancelled).
    pub(crate) async fn pace(&self, n: u64) -> Result<()> {
        match &self.transport.rate {
            None => Ok(()),
            Some(rate) => {
                self.cancellable(async {
                    rate.take(n).await;
                    Ok(())
                })
                .await
            }
        }
    }

    /// Runs `fut` unless the operation is cancelled first.
    pub(crate) async fn cancellable<T>(
        &self,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Error::cancelled()),
            r = fut => r,
        }
    }

    /// Waits `delay`, or returns `Cancelled` at once if cancelled meanwhile.
    pub(crate) async fn sleep(&self, delay: Duration) -> Result<()> {
        self.cancellable(async {
            tokio::time::sleep(delay).await;
            Ok(())
        })
        .await
    }

    /// Waits before retry number `failures` after `err`, telling the caller.
    pub(crate) async fn backoff(&self, failures: u32, err: &Error, what: &str) -> Result<()> {
        let policy = self.retry_policy();
        let delay = policy.delay(failures, err.retry_after());
        self.reporter.log(LogLevel::Warn, || {
            format!(
                "{what}: {err}; retrying in {:.1}s (attempt {} of {})",
                delay.as_secs_f64(),
                failures + 1,
                policy.attempts
            )
        });
        self.sleep(delay).await
    }

    /// Sends `req` and reads its whole answer with `read`, retrying
    /// transient failures of either — a refused connection, a 503, a body
    /// cut short — per the retry policy. Every request except a blob's
    /// bytes goes this way.
    pub(crate) async fn fetch<T, Fut>(&self, req: &Req, read: impl Fn(Response) -> Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.retrying(req, || async {
            let resp = self.send_once(req).await?;
            read(resp).await
        })
        .await
    }

    /// [`Session::fetch`] for answers that are small or empty (tokens,
    /// upload steps): at most [`MAX_ERROR_BODY`] bytes of body.
    pub(crate) async fn fetch_small(&self, req: &Req) -> Result<Answer> {
        self.fetch(req, |resp| async {
            let (status, headers, url) =
                (resp.status(), resp.headers().clone(), resp.url().clone());
            let body = if req.method == Method::HEAD {
                Vec::new()
            } else {
                self.read_body(resp, MAX_ERROR_BODY, &url).await?
            };
            Ok(Answer {
                status,
                headers,
                body,
            })
        })
        .await
    }

    /// Sends `req` and returns the answer with its body unread: a blob's
    /// bytes, whose reader resumes a broken body itself. Retries transient
    /// failures until the headers arrive.
    pub(crate) async fn send(&self, req: &Req) -> Result<Response> {
        self.retrying(req, || self.send_once(req)).await
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retry
    /// policy (when `req` allows retries) is used up.
    async fn retrying<T, Fut>(&self, req: &Req, attempt: impl Fn() -> Fut) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        let attempts = if req.retry {
            self.retry_policy().attempts.max(1)
        } else {
            1
        };
        let mut failures = 0;
        loop {
            match attempt().await {
                Err(e) if e.is_retryable() && failures + 1 < attempts => {
                    failures += 1;
                    self.backoff(
                        failures,
                        &e,
                        &format!("{} {}", req.method, redact(&req.url)),
                    )
                    .await?;
                }
                other => return other,
            }
        }
    }

    /// One attempt: follows redirects and answers auth challenges.
    async fn send_once(&self, req: &Req) -> Result<Response> {
        let mut url = req.url.clone();
        let mut visited: Vec<Url> = Vec::new();
        let mut auth_rounds = 0;
        let mut fresh_token = false;
        loop {
            let to_registry = req.registry_auth && same_origin(&url, &self.base);
            let sent_state = self.negotiation.state();
            let sent_auth = if to_registry {
                self.authorization(&sent_state)
            } else {
                None
            };
            let resp = self.exchange(req, &url, sent_auth.as_deref()).await?;
            let status = resp.status();
            if status.is_success() {
                return Ok(resp);
            }
            if status.is_redirection() {
                let location = header_str(resp.headers(), &LOCATION).map(str::to_owned);
                if !req.follow {
                    // An upload step (or a token request) that was redirected
                    // did not happen, whatever the answer's class says.
                    return Err(Error::protocol(
                        &redact(&url),
                        format!(
                            "HTTP {status} to {}{}: this request is never redirected",
                            req.method,
                            location
                                .map_or(String::new(), |l| format!(" (to {})", redact_text(&l)))
                        ),
                    ));
                }
                let location = location.ok_or_else(|| {
                    Error::protocol(&redact(&url), format!("HTTP {status} without a Location"))
                })?;
                visited.push(url.clone());
                url = next_hop(
                    &url,
                    &location,
                    &visited,
                    self.insecure || self.base.scheme() == "http",
                )
                .map_err(|why| Error::protocol(&redact(&visited[visited.len() - 1]), why))?;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED && to_registry && auth_rounds < 3 {
                auth_rounds += 1;
                if self
                    .authenticate(resp.headers(), &sent_state, &mut fresh_token)
                    .await?
                {
                    continue;
                }
            }
            return Err(self.error_from(resp, &url).await);
        }
    }

    /// One HTTP exchange, the only place a request goes out: `req`'s method,
    /// headers and body to `url` with `authorization`, until the answer's
    /// headers arrive, the connection stalls, or the operation is cancelled.
    async fn exchange(
        &self,
        req: &Req,
        url: &Url,
        authorization: Option<&str>,
    ) -> Result<Response> {
        let clock = Clock::new();
        #[cfg(target_os = "linux")]
        if self.transport.zero_copy_to(url) && matches!(req.body, Body::File { .. }) {
            return self
                .send_file_zero_copy(req, url, authorization, &clock)
                .await;
        }
        let mut rb = self
            .transport
            .client(self.insecure)
            .request(req.method.clone(), url.clone());
        for (name, value) in &req.headers {
            rb = rb.header(name, value);
        }
        if let Some(value) = authorization {
            rb = rb.header(AUTHORIZATION, value);
        }
        rb = match &req.body {
            Body::Empty => rb,
            Body::Bytes(b) => rb.body(b.clone()),
            Body::File {
                open,
                offset,
                len,
                on_sent,
            } => rb.header(CONTENT_LENGTH, len.to_string()).body(file_body(
                open.clone(),
                *offset,
                *len,
                clock.clone(),
                on_sent.clone(),
                self.transport.clone(),
            )),
            Body::Stream { len, pieces } => {
                let taken = pieces.lock().unwrap_or_else(|p| p.into_inner()).take();
                let Some(pieces) = taken else {
                    return Err(Error::network(
                        &redact(url),
                        "the request must be sent again and its streamed body is spent",
                    ));
                };
                rb.header(CONTENT_LENGTH, len.to_string())
                    .body(stream_body(pieces, clock.clone()))
            }
        };
        self.reporter.log(LogLevel::Debug, || {
            format!("{} {}", req.method, redact(url))
        });
        let pending = rb.send();
        self.answer(req, url, &clock, async {
            pending.await.map_err(|e| reqwest_error(url, e))
        })
        .await
    }

    /// Waits for the answer's head of an exchange under way, unless the
    /// connection stalls (no sign of life on `clock`) or the operation is
    /// cancelled first.
    async fn answer(
        &self,
        req: &Req,
        url: &Url,
        clock: &Clock,
        pending: impl std::future::Future<Output = Result<Response>>,
    ) -> Result<Response> {
        let stall = self.stall_timeout();
        let resp = self
            .cancellable(async {
                stall_guard(pending, clock, stall).await.unwrap_or_else(|| {
                    Err(Error::network(
                        &redact(url),
                        format!("no answer for {}s (stalled)", stall.as_secs_f64()),
                    ))
                })
            })
            .await?;
        self.reporter.log(LogLevel::Debug, || {
            format!("{} {} -> {}", req.method, redact(url), resp.status())
        });
        Ok(resp)
    }

    /// [`Session::exchange`] for a file body over plain HTTP: the body goes
    /// with `sendfile(2)` (see [`zero_copy`]).
    #[cfg(target_os = "linux")]
    async fn send_file_zero_copy(
        &self,
        req: &Req,
        url: &Url,
        authorization: Option<&str>,
        clock: &Clock,
    ) -> Result<Response> {
        let Body::File {
            open,
            offset,
            len,
            on_sent,
        } = &req.body
        else {
            return Err(Error::new(ErrorKind::Internal {
                message: "a zero-copy send without a file body".into(),
            }));
        };
        let mut headers = req.headers.clone();
        headers.push((
            reqwest::header::USER_AGENT,
            self.transport.config.user_agent.clone(),
        ));
        if let Some(value) = authorization {
            headers.push((AUTHORIZATION, value.to_owned()));
        }
        self.reporter.log(LogLevel::Debug, || {
            format!("{} {} (sendfile)", req.method, redact(url))
        });
        let touch = || clock.touch();
        let file = zero_copy::FileRequest {
            method: &req.method,
            url,
            headers,
            open,
            offset: *offset,
            len: *len,
            on_sent: on_sent.as_ref(),
            touch: &touch,
            rate: self.transport.rate.as_ref(),
            connect_timeout: self.transport.config.connect_timeout,
        };
        self.answer(req, url, clock, async {
            zero_copy::send(file)
                .await
                .map_err(|e| Error::network(&redact(url), e.to_string()))
        })
        .await
    }

    /// Reads a whole body of at most `cap` bytes.
    pub(crate) async fn read_body(&self, resp: Response, cap: usize, url: &Url) -> Result<Vec<u8>> {
        if let Some(len) = resp.content_length() {
            if len > cap as u64 {
                return Err(Error::protocol(
                    &redact(url),
                    format!("the answer is {len} bytes, over the {cap} byte limit"),
                ));
            }
        }
        let mut body = ResponseBody::new(resp);
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk(&mut body, url).await? {
            if out.len() + chunk.len() > cap {
                return Err(Error::protocol(
                    &redact(url),
                    format!("the answer is over the {cap} byte limit"),
                ));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// The next piece of a body. A broken connection, a body that delivers
    /// nothing for the stall timeout, and one that delivers less than the
    /// minimum speed over a stall timeout's worth of waiting are (retryable)
    /// network errors: a registry can neither stall a transfer nor keep it
    /// alive forever with a trickle.
    pub(crate) async fn next_chunk(
        &self,
        body: &mut ResponseBody,
        url: &Url,
    ) -> Result<Option<Bytes>> {
        let stall = self.stall_timeout();
        let min_bytes = self.least_progress();
        self.cancellable(async {
            loop {
                let budget = stall.saturating_sub(body.window_wait.max(body.idle));
                let started = Instant::now();
                let next = tokio::time::timeout(budget, body.resp.chunk()).await;
                let waited = started.elapsed();
                body.window_wait += waited;
                let chunk = match next {
                    Ok(Ok(None)) => return Ok(None),
                    Ok(Ok(Some(chunk))) => {
                        body.idle = Duration::ZERO;
                        body.window_bytes += chunk.len() as u64;
                        Some(chunk)
                    }
                    Ok(Err(e)) => return Err(reqwest_error(url, e)),
                    Err(_) => {
                        body.idle += waited;
                        if body.idle >= stall {
                            return Err(Error::network(
                                &redact(url),
                                format!("no data for {}s (stalled)", stall.as_secs_f64()),
                            ));
                        }
                        None
                    }
                };
                if body.window_wait >= stall {
                    if body.window_bytes < min_bytes {
                        return Err(Error::network(
                            &redact(url),
                            format!(
                                "{} bytes in {}s, under the minimum speed of {} bytes/s (trickling)",
                                body.window_bytes,
                                stall.as_secs_f64(),
                                self.transport.config.min_speed
                            ),
                        ));
                    }
                    body.window_wait = Duration::ZERO;
                    body.window_bytes = 0;
                }
                if chunk.is_some() {
                    return Ok(chunk);
                }
            }
        })
        .await
    }

    /// The error a non-success answer stands for, with the registry's code
    /// and message from its body.
    pub(crate) async fn error_from(&self, resp: Response, url: &Url) -> Error {
        let status = resp.status().as_u16();
        let retry_after = header_str(resp.headers(), &RETRY_AFTER).and_then(parse_retry_after);
        // A body that cannot be read whole is quoted as far as it could be.
        let mut body = Vec::new();
        let mut resp = ResponseBody::new(resp);
        while body.len() < MAX_ERROR_BODY {
            match self.next_chunk(&mut resp, url).await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(MAX_ERROR_BODY);
        let parsed = error_body::parse(&body);
        Error::new(ErrorKind::Registry {
            status,
            code: parsed.code,
            message: parsed.message,
            url: redact(url),
            retry_after,
        })
    }
}

/// The first value of a header, if it is text.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
}

/// Runs `fut` until it completes or `clock` shows no sign of life for
/// `stall`; `None` means it stalled.
async fn stall_guard<F: std::future::Future>(
    fut: F,
    clock: &Clock,
    stall: Duration,
) -> Option<F::Output> {
    clock.touch();
    tokio::pin!(fut);
    loop {
        let deadline = clock.last() + stall;
        tokio::select! {
            r = &mut fut => return Some(r),
            _ = tokio::time::sleep_until(deadline) => {
                if clock.last() + stall <= Instant::now() {
                    return None;
                }
            }
        }
    }
}

/// Bytes of a file body read per piece. Each connection holds a piece or
/// two while it sends (hyper queues them, or copies them into its write
/// buffer on TLS), so this bounds a push's memory per stream; 256 KiB keeps
/// the blocking reads few (8 per MiB).
const FILE_PIECE: u64 = 256 << 10;

/// A streaming body over part of a file, touching `clock` as it goes and
/// keeping to the transport's bandwidth cap. Each piece is allocated here,
/// on the runtime's thread that will also free it once sent, and filled by
/// a positioned read on a blocking thread: no second buffer (as
/// `tokio::fs::File` keeps) and nothing left behind in the blocking
/// threads' own allocator arenas.
fn file_body(
    open: FileOpener,
    offset: u64,
    len: u64,
    clock: Arc<Clock>,
    on_sent: Option<Arc<dyn Fn(u64) + Send + Sync>>,
    transport: Arc<Transport>,
) -> reqwest::Body {
    struct State {
        file: Option<Arc<std::fs::File>>,
        open: FileOpener,
        offset: u64,
        left: u64,
    }
    let state = State {
        file: None,
        open,
        offset,
        left: len,
    };
    let stream = futures_util::stream::unfold(state, move |mut st| {
        let clock = clock.clone();
        let on_sent = on_sent.clone();
        let transport = transport.clone();
        async move {
            if st.left == 0 {
                return None;
            }
            let result: std::io::Result<Bytes> = async {
                let mut piece = st.left.min(FILE_PIECE);
                if let Some(rate) = &transport.rate {
                    piece = rate.piece(piece);
                    rate.take(piece).await;
                }
                let file = st.file.clone();
                let open = st.open.clone();
                let at = st.offset;
                let mut buf = vec![0u8; piece as usize];
                let (file, buf) = tokio::task::spawn_blocking(move || {
                    let file = match file {
                        Some(file) => file,
                        None => Arc::new(open()?),
                    };
                    fsutil::read_exact_at(&file, &mut buf, at)?;
                    Ok::<_, std::io::Error>((file, buf))
                })
                .await
                .map_err(std::io::Error::other)??;
                st.file = Some(file);
                Ok(Bytes::from(buf))
            }
            .await;
            match result {
                Ok(bytes) => {
                    st.offset += bytes.len() as u64;
                    st.left -= bytes.len() as u64;
                    clock.touch();
                    if let Some(f) = &on_sent {
                        f(bytes.len() as u64);
                    }
                    Some((Ok(bytes), st))
                }
                Err(e) => {
                    st.left = 0;
                    Some((Err(e), st))
                }
            }
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// A streaming body over pieces from a channel, touching `clock` as they pass.
fn stream_body(pieces: PieceReceiver, clock: Arc<Clock>) -> reqwest::Body {
    let stream = futures_util::stream::unfold(pieces, move |mut rx| {
        let clock = clock.clone();
        async move {
            let piece = rx.recv().await?;
            clock.touch();
            Some((piece, rx))
        }
    });
    reqwest::Body::wrap_stream(stream)
}

/// Describes a transport failure with its whole cause chain; certificate
/// failures are final, anything else may pass on a retry. The HTTP stack's
/// text quotes the URL it failed on, secrets and all: it is dropped, and
/// any URL left in the chain redacted.
pub(crate) fn reqwest_error(url: &Url, err: reqwest::Error) -> Error {
    let err = err.without_url();
    let mut message = err.to_string();
    let mut tls = false;
    let mut seen = HashSet::new();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        let text = s.to_string();
        if s.downcast_ref::<rustls::Error>().is_some() || text.contains("certificate") {
            tls = true;
        }
        if seen.insert(text.clone()) && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    let message = redact_text(&message);
    if tls {
        return Error::new(ErrorKind::Tls {
            url: redact(url),
            message,
        });
    }
    Error::network(&redact(url), message)
}
