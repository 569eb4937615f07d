//! Sockets to responses: the accept loops, TLS, HTTP/1.1 connections, and
//! the per-request pipeline (record, control API, auth, faults, handler).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::RETRY_AFTER;
use hyper::http::request::Parts;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::auth::{self, Need};
use super::control;
use super::faults::FaultKind;
use super::handlers::{self, drain};
use super::record::{RequestRecord, Server};
use super::respond::{self, set_header, Resp};
use super::routes::Route;
use super::state::{lock, State};

/// Accepts connections on `listener` forever, serving each on its own task.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    server: Server,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("olreg-testreg: cannot listen: {e}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                // Small responses (errors, redirects) should not wait for Nagle.
                let _ = stream.set_nodelay(true);
                let (state, tls) = (state.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => connection(stream, server, state).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                connection(stream, server, state).await;
                            }
                        }
                    }
                });
            }
            // Out of file descriptors and the like: back off, keep serving.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Serves one HTTP/1.1 connection with keep-alive.
async fn connection<S>(stream: S, server: Server, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Bytes per second this connection's bodies are held to; 0: unthrottled.
    let pace = Arc::new(AtomicU64::new(0));
    let service = service_fn(move |req| {
        let (state, pace) = (state.clone(), pace.clone());
        async move {
            let resp = handle(state, server, &pace, req).await;
            resp.map(|resp| match pace.load(Ordering::Relaxed) {
                0 => resp,
                rate => resp.map(|body| body.paced(rate)),
            })
        }
    });
    // Errors here are clients going away or injected aborts: nothing to do.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// The connection was closed without an answer (an injected hang-up).
#[derive(Debug)]
pub(crate) struct HungUp;

impl std::fmt::Display for HungUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("testreg: injected hang-up")
    }
}

impl std::error::Error for HungUp {}

/// One request: the control API bypasses everything; other requests are
/// logged, then answered (or hung up on: hyper then closes the connection).
async fn handle(
    state: Arc<State>,
    server: Server,
    pace: &AtomicU64,
    req: Request<Incoming>,
) -> Result<Resp, HungUp> {
    let (parts, body) = req.into_parts();
    if server == Server::Registry && parts.uri.path().starts_with(control::PREFIX) {
        return Ok(control::handle(&state, parts, body).await);
    }
    let id = lock(&state.log).begin(record(server, &parts));
    let answered = answer(&state, server, pace, parts, body).await;
    lock(&state.log).finish(id, answered.as_ref().map_or(0, |r| r.status().as_u16()));
    answered
}

/// Auth, then faults, then the endpoint.
async fn answer(
    state: &Arc<State>,
    server: Server,
    pace: &AtomicU64,
    parts: Parts,
    body: Incoming,
) -> Result<Resp, HungUp> {
    let route = Route::parse(server, parts.uri.path());
    if server == Server::Registry && route.is_api() {
        if let Err(resp) = auth::check(state, &parts, Need::of(&parts.method, route.repo())) {
            drain(body).await;
            return Ok(resp);
        }
    }
    let fault = state.take_fault(&handlers::facts(state, &route, &parts));
    match &fault {
        Some(FaultKind::StallHeaders { millis }) => {
            tokio::time::sleep(Duration::from_millis(*millis)).await;
        }
        Some(FaultKind::Status {
            code,
            body: error,
            retry_after,
        }) => {
            drain(body).await;
            let mut resp = respond::error_body(*code, error);
            if let Some(retry_after) = retry_after {
                set_header(&mut resp, RETRY_AFTER, retry_after);
            }
            return Ok(resp);
        }
        Some(FaultKind::Redirect { location, code }) => {
            drain(body).await;
            return Ok(respond::redirect(*code, location));
        }
        // The body stays unread: a client still sending it writes into a
        // closed connection.
        Some(FaultKind::HangUp) => return Err(HungUp),
        Some(FaultKind::Throttle { bytes_per_sec }) => {
            pace.store(*bytes_per_sec, Ordering::Relaxed);
        }
        _ => {}
    }
    let cut = fault == Some(FaultKind::CutBody);
    let mut resp = handlers::dispatch(state, route, parts, body, fault).await;
    if cut {
        respond::cut_short(&mut resp);
    }
    Ok(resp)
}

fn record(server: Server, parts: &Parts) -> RequestRecord {
    RequestRecord {
        server,
        method: parts.method.as_str().to_string(),
        path_and_query: parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        ),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        status: 0,
    }
}
