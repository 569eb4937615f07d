//! Zero-copy uploads over plain HTTP: a blob's bytes go from the page cache
//! to the socket with `sendfile(2)`, never through user space — as Go's
//! `net/http` sends an `*os.File`. A 2 GiB push then costs the client a few
//! hundredths of a second of CPU instead of a second and a half of copying.
//!
//! Only what must be is written by hand here: the request head, the
//! `sendfile` loop, and reading a small answer (parsed by `httparse`, the
//! parser hyper uses). HTTPS, whose bytes must be encrypted in user space,
//! and requests through a proxy take the ordinary path. `sendfile` has no
//! `MSG_NOSIGNAL`: the runtime's threads block `SIGPIPE`
//! ([`super::block_sigpipe`]), so a server hanging up fails the request
//! instead of killing the program.

use std::io;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response, ResponseBuilderExt, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::rate::RateLimit;
use super::session::FileOpener;

/// The most bytes one `sendfile` call is asked for.
const PIECE: u64 = 4 << 20;
/// The largest answer head and body read back (upload answers are small).
const MAX_HEAD: usize = 64 << 10;
const MAX_BODY: usize = 1 << 20;

/// A request whose body is `len` bytes of the file `open` opens, from `offset`.
pub(crate) struct FileRequest<'a> {
    pub method: &'a Method,
    pub url: &'a Url,
    /// Every header but `Host`, `Content-Length` and `Connection`.
    pub headers: Vec<(HeaderName, String)>,
    pub open: &'a FileOpener,
    pub offset: u64,
    pub len: u64,
    /// Hears each piece handed to the socket.
    pub on_sent: Option<&'a Arc<dyn Fn(u64) + Send + Sync>>,
    /// Called at every sign of life, for stall detection.
    pub touch: &'a (dyn Fn() + Sync),
    pub rate: Option<&'a RateLimit>,
    pub connect_timeout: Duration,
}

/// Sends `req` on a connection of its own and returns the answer (its body
/// read, at most 1 MiB). An answer the server gives before taking the whole
/// body (an early 4xx) is returned like any other.
pub(crate) async fn send(req: FileRequest<'_>) -> io::Result<Response> {
    let head = request_head(&req)?;
    let open = req.open.clone();
    let mut file = tokio::task::spawn_blocking(move || open())
        .await
        .map_err(io::Error::other)??;
    let mut stream = connect(req.url, req.connect_timeout).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&head).await?;
    (req.touch)();
    let sent = send_file(&stream, &mut file, &req).await;
    match read_answer(&mut stream, req.url, req.method, req.touch).await {
        Ok(resp) => Ok(resp),
        // No answer: the send's own failure says more.
        Err(e) => Err(sent.err().unwrap_or(e)),
    }
}

/// The request line and headers, refusing values that would split them.
fn request_head(req: &FileRequest<'_>) -> io::Result<Vec<u8>> {
    let host = req
        .url
        .host_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the URL has no host"))?;
    let host = match req.url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let target = match req.url.query() {
        Some(q) => format!("{}?{q}", req.url.path()),
        None => req.url.path().to_owned(),
    };
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n",
        req.method, req.len
    );
    for (name, value) in &req.headers {
        if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("header {name} holds a line break"),
            ));
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    Ok(head.into_bytes())
}

async fn connect(url: &Url, timeout: Duration) -> io::Result<TcpStream> {
    let host = url.host_str().unwrap_or_default();
    let port = url.port_or_known_default().unwrap_or(80);
    let connecting = async {
        let mut last = None;
        for addr in tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address")))
    };
    tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting timed out"))?
}

/// Hands the file's range to the socket, piece by piece, as the socket
/// takes it and the bandwidth cap allows.
async fn send_file(
    stream: &TcpStream,
    file: &mut std::fs::File,
    req: &FileRequest<'_>,
) -> io::Result<()> {
    let mut offset = req.offset as libc::off_t;
    let mut left = req.len;
    while left > 0 {
        let piece = match req.rate {
            Some(rate) => rate.piece(left.min(PIECE)),
            None => left.min(PIECE),
        };
        stream.writable().await?;
        let sent = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the whole call; the
            // kernel advances `offset` by what it sent.
            let n = unsafe {
                libc::sendfile(
                    stream.as_raw_fd(),
                    file.as_raw_fd(),
                    &mut offset,
                    piece as usize,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        let n = match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the file ended {left} bytes early"),
                ))
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        left -= n;
        (req.touch)();
        if let Some(f) = req.on_sent {
            f(n);
        }
        if let Some(rate) = req.rate {
            rate.take(n).await;
        }
    }
    Ok(())
}

/// Reads the answer: its head (skipping `1xx` interim answers), then a body
/// by `Content-Length`, chunked, or up to the close.
async fn read_answer(
    stream: &mut TcpStream,
    url: &Url,
    method: &Method,
    touch: &(dyn Fn() + Sync),
) -> io::Result<Response> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (status, headers, used) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut slots);
            match parsed.parse(&buf).map_err(invalid)? {
                httparse::Status::Complete(used) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut headers = HeaderMap::new();
                    for h in parsed.headers.iter() {
                        headers.append(
                            HeaderName::from_bytes(h.name.as_bytes()).map_err(invalid)?,
                            HeaderValue::from_bytes(h.value).map_err(invalid)?,
                        );
                    }
                    break (status, headers, used);
                }
                httparse::Status::Partial if buf.len() >= MAX_HEAD => {
                    return Err(invalid("the answer's head is over 64 KiB"));
                }
                httparse::Status::Partial => {
                    if read_more(stream, &mut buf, touch).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the connection closed before an answer",
                        ));
                    }
                }
            }
        };
        buf.drain(..used);
        if (100..200).contains(&status) {
            continue;
        }
        let body = if *method == Method::HEAD || status == 204 || status == 304 {
            Vec::new()
        } else {
            read_body(stream, &mut buf, &headers, touch).await?
        };
        let mut builder = http::Response::builder().status(status).url(url.clone());
        if let Some(h) = builder.headers_mut() {
            *h = headers;
        }
        return builder.body(body).map(Response::from).map_err(invalid);
    }
}

async fn read_body(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    headers: &HeaderMap,
    touch: &(dyn Fn() + Sync),
) -> io::Result<Vec<u8>> {
    let chunked = headers
        .get(reqwest::header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = headers
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if chunked {
        let mut body = Vec::new();
        loop {
            match httparse::parse_chunk_size(buf).map_err(|_| invalid("bad chunk size"))? {
                httparse::Status::Complete((used, size)) => {
                    let size = usize::try_from(size).unwrap_or(usize::MAX);
                    if body.len().saturating_add(size) > MAX_BODY {
                        return Err(invalid("the answer's body is over 1 MiB"));
                    }
                    // The chunk and its CRLF.
                    while buf.len() < used + size + 2 {
                        if read_more(stream, buf, touch).await? == 0 {
                            return Err(early());
                        }
                    }
                    body.extend_from_slice(&buf[used..used + size]);
                    buf.drain(..used + size + 2);
                    if size == 0 {
                        return Ok(body);
                    }
                }
                httparse::Status::Partial => {
                    if buf.len() > MAX_HEAD {
                        return Err(invalid("bad chunk size"));
                    }
                    if read_more(stream, buf, touch).await? == 0 {
                        return Err(early());
                    }
                }
            }
        }
    }
    match length {
        Some(n) if n > MAX_BODY => Err(invalid("the answer's body is over 1 MiB")),
        Some(n) => {
            while buf.len() < n {
                if read_more(stream, buf, touch).await? == 0 {
                    return Err(early());
                }
            }
            buf.truncate(n);
            Ok(std::mem::take(buf))
        }
        None => {
            while read_more(stream, buf, touch).await? > 0 {
                if buf.len() > MAX_BODY {
                    return Err(invalid("the answer's body is over 1 MiB"));
                }
            }
            Ok(std::mem::take(buf))
        }
    }
}

async fn read_more(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    touch: &(dyn Fn() + Sync),
) -> io::Result<usize> {
    let mut piece = [0u8; 8192];
    let n = stream.read(&mut piece).await?;
    buf.extend_from_slice(&piece[..n]);
    touch();
    Ok(n)
}

fn invalid(e: impl ToString) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection closed inside the answer",
    )
}
