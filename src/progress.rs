//! Progress events and log lines, and the reporter that tallies them for one
//! operation.
//!
//! Workers report into a [`Reporter`]; it sends state changes at once and
//! byte counts at most ten times a second, over a channel that the calling
//! thread drains, so callers' callbacks always run on the thread that called.

use std::sync::mpsc::Sender;
use std::sync::Mutex;

use crate::digest::Digest;
use crate::manifest::Layer;

/// What happened. Numbers are part of the C ABI.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProgressEvent {
    /// The manifest is known: totals and layer count are set. Sent once,
    /// before any transfer.
    Resolved = 1,
    /// A blob will be transferred.
    Queued = 2,
    /// A blob's transfer began (`layer_completed` counts bytes resumed).
    Started = 3,
    /// More bytes moved.
    Bytes = 4,
    /// A blob needed no transfer: present locally (pull) or remotely (push).
    Cached = 5,
    /// Every byte of a blob arrived; the last of its hashing is running.
    Verifying = 6,
    /// A blob is complete.
    Done = 7,
    /// A blob failed; `message` says why.
    Failed = 8,
    /// A request failed and is tried again; `message` says why.
    Retrying = 9,
    /// Another process or thread is fetching this blob; waiting for it.
    Waiting = 10,
    /// The operation finished (the manifest is linked or pushed).
    Finished = 11,
}

/// A snapshot sent with every event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub event: ProgressEvent,
    /// The blob concerned; `None` for whole-operation events.
    pub digest: Option<Digest>,
    /// The blob's media type (empty when unknown or not about a blob).
    pub media_type: String,
    /// The blob's position among the operation's blobs.
    pub index: usize,
    /// Bytes of this blob done so far, and its size.
    pub layer_completed: u64,
    pub layer_total: u64,
    /// Bytes of the whole operation done so far (cached blobs included), and
    /// its total.
    pub completed: u64,
    pub total: u64,
    /// Blobs finished (done or cached), and how many there are.
    pub layers_done: usize,
    pub layers_total: usize,
    /// Why, for `Failed` and `Retrying`.
    pub message: Option<String>,
}

/// Severity of a log line. Numbers are part of the C ABI.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

/// What the calling thread receives.
pub(crate) enum Event {
    Progress(Progress),
    Log(LogLevel, String),
    /// The operation's result is ready.
    Finished,
}

#[derive(Default)]
struct LayerTally {
    digest: Option<Digest>,
    media_type: String,
    size: u64,
    completed: u64,
    finished: bool,
    dirty: bool,
}

#[derive(Default)]
struct Tally {
    layers: Vec<LayerTally>,
}

impl Tally {
    fn snapshot(
        &self,
        event: ProgressEvent,
        index: Option<usize>,
        message: Option<String>,
    ) -> Progress {
        let layer = index.and_then(|i| self.layers.get(i));
        Progress {
            event,
            digest: layer.and_then(|l| l.digest),
            media_type: layer.map(|l| l.media_type.clone()).unwrap_or_default(),
            index: index.unwrap_or(0),
            layer_completed: layer.map_or(0, |l| l.completed),
            layer_total: layer.map_or(0, |l| l.size),
            completed: self.layers.iter().map(|l| l.completed).sum(),
            total: self.layers.iter().map(|l| l.size).sum(),
            layers_done: self.layers.iter().filter(|l| l.finished).count(),
            layers_total: self.layers.len(),
            message,
        }
    }
}

/// Tallies one operation's progress and forwards events and logs.
pub(crate) struct Reporter {
    tx: Sender<Event>,
    tally: Mutex<Tally>,
    log_level: LogLevel,
}

impl Reporter {
    pub(crate) fn new(tx: Sender<Event>, log_level: LogLevel) -> Reporter {
        Reporter {
            tx,
            tally: Mutex::new(Tally::default()),
            log_level,
        }
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn send(&self, p: Progress) {
        // The receiver is gone only when the caller stopped listening.
        let _ = self.tx.send(Event::Progress(p));
    }

    /// Sets the operation's blobs and sends `Resolved`.
    pub(crate) fn resolved(&self, blobs: &[Layer]) {
        let p = {
            let mut t = self.tally();
            t.layers = blobs
                .iter()
                .map(|l| LayerTally {
                    digest: Some(l.digest),
                    media_type: l.media_type.clone(),
                    size: l.size,
                    ..LayerTally::default()
                })
                .collect();
            t.snapshot(ProgressEvent::Resolved, None, None)
        };
        self.send(p);
    }

    /// Sends `Resolved`, then `Cached` for each blob already in place
    /// (`present[i]`; blobs past its end are not) and `Queued` for the others.
    pub(crate) fn resolved_with(&self, blobs: &[Layer], present: &[bool]) {
        self.resolved(blobs);
        for i in 0..blobs.len() {
            let event = if present.get(i).copied().unwrap_or(false) {
                ProgressEvent::Cached
            } else {
                ProgressEvent::Queued
            };
            self.blob(i, event, None);
        }
    }

    /// Sends a state change of blob `index`.
    pub(crate) fn blob(&self, index: usize, event: ProgressEvent, message: Option<String>) {
        let p = {
            let mut t = self.tally();
            if let Some(l) = t.layers.get_mut(index) {
                match event {
                    ProgressEvent::Cached | ProgressEvent::Done => {
                        l.completed = l.size;
                        l.finished = true;
                    }
                    ProgressEvent::Failed => l.finished = false,
                    // Queued again: a blob that vanished is fetched anew.
                    ProgressEvent::Queued => {
                        l.completed = 0;
                        l.finished = false;
                    }
                    _ => {}
                }
                l.dirty = false;
            }
            t.snapshot(event, Some(index), message)
        };
        self.send(p);
    }

    /// Sets how many bytes of blob `index` are done (on start or resume).
    pub(crate) fn set_bytes(&self, index: usize, completed: u64) {
        if let Some(l) = self.tally().layers.get_mut(index) {
            l.completed = completed.min(l.size);
            l.dirty = true;
        }
    }

    /// Counts `n` more bytes of blob `index`.
    pub(crate) fn add_bytes(&self, index: usize, n: u64) {
        if let Some(l) = self.tally().layers.get_mut(index) {
            l.completed = (l.completed + n).min(l.size);
            l.dirty = true;
        }
    }

    /// Sends a `Bytes` event for each blob that moved since the last flush.
    pub(crate) fn flush(&self) {
        let events: Vec<Progress> = {
            let mut t = self.tally();
            let dirty: Vec<usize> = (0..t.layers.len()).filter(|&i| t.layers[i].dirty).collect();
            dirty
                .into_iter()
                .map(|i| {
                    t.layers[i].dirty = false;
                    t.snapshot(ProgressEvent::Bytes, Some(i), None)
                })
                .collect()
        };
        for p in events {
            self.send(p);
        }
    }

    /// Sends a whole-operation event.
    pub(crate) fn operation(&self, event: ProgressEvent) {
        let p = self.tally().snapshot(event, None, None);
        self.send(p);
    }

    /// Sends a log line if its level is wanted.
    pub(crate) fn log(&self, level: LogLevel, message: impl FnOnce() -> String) {
        if level <= self.log_level {
            let _ = self.tx.send(Event::Log(level, message()));
        }
    }

    /// Tells the calling thread that the result is ready.
    pub(crate) fn finished(&self) {
        let _ = self.tx.send(Event::Finished);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    fn layers() -> Vec<Layer> {
        (0..2u8)
            .map(|i| Layer {
                digest: Digest::of(&[i]),
                size: 100,
                media_type: "m".into(),
            })
            .collect()
    }

    fn progress(rx: &std::sync::mpsc::Receiver<Event>) -> Vec<Progress> {
        rx.try_iter()
            .filter_map(|e| match e {
                Event::Progress(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn totals_are_known_first_and_bytes_are_coalesced() {
        let (tx, rx) = channel();
        let r = Reporter::new(tx, LogLevel::Warn);
        r.resolved(&layers());
        r.blob(0, ProgressEvent::Cached, None);
        r.blob(1, ProgressEvent::Started, None);
        for _ in 0..10 {
            r.add_bytes(1, 5);
        }
        r.flush();
        r.flush();
        r.blob(1, ProgressEvent::Done, None);
        let got = progress(&rx);
        let kinds: Vec<ProgressEvent> = got.iter().map(|p| p.event).collect();
        use ProgressEvent::*;
        assert_eq!(kinds, vec![Resolved, Cached, Started, Bytes, Done]);
        assert_eq!(
            (got[0].total, got[0].layers_total, got[0].completed),
            (200, 2, 0)
        );
        assert_eq!((got[3].layer_completed, got[3].completed), (50, 150));
        assert_eq!((got[4].completed, got[4].layers_done), (200, 2));
    }

    #[test]
    fn logs_below_the_level_are_dropped() {
        let (tx, rx) = channel();
        let r = Reporter::new(tx, LogLevel::Warn);
        r.log(LogLevel::Debug, || {
            unreachable!("not formatted when not wanted")
        });
        r.log(LogLevel::Error, || "bad".into());
        assert!(matches!(rx.try_recv(), Ok(Event::Log(LogLevel::Error, m)) if m == "bad"));
    }
}
