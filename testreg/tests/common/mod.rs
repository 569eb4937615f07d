//! A deliberately dumb HTTP/1.1 client for the test registry's tests: one
//! request per connection, the raw bytes read until the server closes, no
//! redirects followed and nothing hidden. That makes truncated bodies,
//! wrong Content-Length and aborted connections directly observable, which
//! a real client would turn into opaque errors.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A response as read off the wire.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body had at least Content-Length bytes.
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn content_length(&self) -> Option<usize> {
        self.header("content-length")?.parse().ok()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `code` of an OCI or Ollama error body.
    pub fn error_code(&self) -> String {
        let v = self.json();
        v["errors"][0]["code"]
            .as_str()
            .or_else(|| v["code"].as_str())
            .unwrap_or_default()
            .to_string()
    }
}

/// A request to send.
pub struct Req<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Vec<u8>,
    /// Trusted CA for https URLs.
    pub ca_pem: Option<String>,
}

impl<'a> Req<'a> {
    pub fn new(method: &'a str, url: &'a str) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            ca_pem: None,
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Req<'a> {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Req<'a> {
        self.body = body.into();
        self
    }

    pub fn ca(mut self, pem: Option<String>) -> Req<'a> {
        self.ca_pem = pem;
        self
    }

    pub fn send(self) -> Resp {
        let url = url::Url::parse(self.url).expect("valid URL");
        let host = url.host_str().expect("host").to_string();
        let port = url.port_or_known_default().expect("port");
        let tcp = TcpStream::connect((host.as_str(), port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut target = url.path().to_string();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.method,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut wire = head.into_bytes();
        wire.extend_from_slice(&self.body);
        let raw = if url.scheme() == "https" {
            let pem = self.ca_pem.expect("https needs a CA");
            let mut stream = StreamOwned::new(tls_client(&pem, &host), tcp);
            exchange(&mut stream, &wire)
        } else {
            let mut tcp = tcp;
            exchange(&mut tcp, &wire)
        };
        parse(&raw, self.method == "HEAD")
    }
}

fn tls_client(ca_pem: &str, host: &str) -> ClientConnection {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("PEM")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).expect("server name");
    ClientConnection::new(Arc::new(config), name).expect("TLS client")
}

/// Writes the request and reads until EOF or error (an aborted connection
/// simply ends the data).
fn exchange<S: Read + Write>(stream: &mut S, wire: &[u8]) -> Vec<u8> {
    stream.write_all(wire).expect("write request");
    stream.flush().expect("flush");
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    raw
}

fn parse(raw: &[u8], head_only: bool) -> Resp {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if head_only {
        Vec::new()
    } else {
        raw[end + 4..].to_vec()
    };
    let mut resp = Resp {
        status,
        headers,
        body,
        complete: true,
    };
    if let (Some(len), false) = (resp.content_length(), head_only) {
        resp.complete = resp.body.len() >= len;
    }
    resp
}

pub fn get(url: &str) -> Resp {
    Req::new("GET", url).send()
}

pub fn get_range(url: &str, range: &str) -> Resp {
    Req::new("GET", url).header("Range", range).send()
}

pub fn head(url: &str) -> Resp {
    Req::new("HEAD", url).send()
}

/// The URL `location` names, relative to `base`.
pub fn resolve(base: &str, location: &str) -> String {
    url::Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("resolvable location")
        .to_string()
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let sum = Sha256::digest(data);
    let hex: String = sum.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
