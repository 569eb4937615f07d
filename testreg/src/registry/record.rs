//! The request log: what clients actually sent, so tests can assert on
//! behaviour that leaves no other trace (which credentials went to which
//! host, which ranges were asked for, how many retries happened).

use serde::{Deserialize, Serialize};

/// Which of the two servers saw a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Server {
    /// The registry host (`/v2/…`, `/token`).
    Registry,
    /// The blob store host (redirect targets, presigned uploads).
    BlobStore,
}

/// One request as received, with the status it was answered with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The server that received it.
    pub server: Server,
    /// `GET`, `PUT`, …
    pub method: String,
    /// The request target exactly as sent.
    pub path_and_query: String,
    /// Headers in arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The response status (0 while the response is still being made, and
    /// for a request hung up on).
    pub status: u16,
}

impl RequestRecord {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(path, _)| path)
    }
}

/// Records in arrival order; the status is filled in when the response is
/// ready, which may be after later requests arrived.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    next_id: u64,
    entries: Vec<(u64, RequestRecord)>,
}

impl RequestLog {
    /// Appends a record and returns the id to finish it with.
    pub fn begin(&mut self, record: RequestRecord) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.push((id, record));
        id
    }

    /// Fills in the status of record `id` (a no-op if the log was cleared).
    pub fn finish(&mut self, id: u64, status: u16) {
        if let Some((_, record)) = self.entries.iter_mut().rev().find(|(i, _)| *i == id) {
            record.status = status;
        }
    }

    /// A copy of every record.
    pub fn snapshot(&self) -> Vec<RequestRecord> {
        self.entries.iter().map(|(_, r)| r.clone()).collect()
    }

    /// Forgets every record.
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}
