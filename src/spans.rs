//! The ranges a chunked download is fetching, shared between each chunk's
//! connection and the scheduler, so that a connection that slows to a crawl
//! can have the rest of its range taken away and given to an idle one: the
//! slow-tail rescue. Without it one sick connection (a congested path, a
//! bad CDN node) holds the whole pull, and the in-order hash behind it.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Result;

/// How long a span must have run before its rate is trusted.
const OBSERVE: Duration = Duration::from_millis(300);
/// A span this many times slower than the typical one is crawling.
const SLOW: f64 = 4.0;
/// A split must promise to finish at least this much sooner.
const MIN_GAIN: Duration = Duration::from_millis(250);
/// Tails smaller than this are not worth another request.
const MIN_TAKE: u64 = 256 << 10;

/// One range `[at, end)` being fetched over one connection.
#[derive(Debug)]
pub(crate) struct Span {
    /// Where the span began, for its rate.
    origin: u64,
    started: Instant,
    state: Mutex<SpanState>,
}

#[derive(Debug)]
struct SpanState {
    at: u64,
    end: u64,
    finished: Option<Instant>,
}

/// A range taken from a crawling span, and why.
#[derive(Debug, PartialEq)]
pub(crate) struct Split {
    pub start: u64,
    pub end: u64,
    /// Bytes per second of the crawling span and of a typical one.
    pub slow_rate: f64,
    pub typical_rate: f64,
}

impl Span {
    pub(crate) fn new(start: u64, end: u64) -> Arc<Span> {
        Span::started_at(start, end, Instant::now())
    }

    fn started_at(start: u64, end: u64, started: Instant) -> Arc<Span> {
        Arc::new(Span {
            origin: start,
            started,
            state: Mutex::new(SpanState {
                at: start,
                end,
                finished: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, SpanState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `(at, end)`: the next byte to fetch and where the span now ends.
    pub(crate) fn bounds(&self) -> (u64, u64) {
        let s = self.lock();
        (s.at, s.end)
    }

    /// Where the span began.
    pub(crate) fn origin(&self) -> u64 {
        self.origin
    }

    /// Takes up to `n` bytes arriving at the span's current position:
    /// `write` receives how many still belong to the span (0 once a split
    /// has ended it) and stores them, then the span moves past them. Under
    /// the span's lock, so a split never falls inside a write.
    pub(crate) fn advance(
        &self,
        n: u64,
        write: impl FnOnce(u64, u64) -> Result<()>,
    ) -> Result<u64> {
        let mut s = self.lock();
        let take = n.min(s.end.saturating_sub(s.at));
        if take > 0 {
            write(s.at, take)?;
            s.at += take;
        }
        Ok(take)
    }

    /// Marks the span done (its rate stops changing).
    pub(crate) fn finish(&self) {
        self.lock().finished.get_or_insert_with(Instant::now);
    }

    /// Bytes per second so far, once the span has run long enough to say.
    fn rate(&self, now: Instant) -> Option<f64> {
        let s = self.lock();
        let elapsed = s.finished.unwrap_or(now).duration_since(self.started);
        let moved = s.at - self.origin;
        if elapsed < OBSERVE && s.finished.is_none() {
            return None;
        }
        Some(moved as f64 / elapsed.as_secs_f64().max(1e-3))
    }

    fn is_running(&self) -> bool {
        let s = self.lock();
        s.finished.is_none() && s.at < s.end
    }
}

/// Finds the running span that is crawling furthest behind the typical
/// rate of `spans`, and takes the part of its remaining range that a fresh
/// connection at the typical rate would finish first — so both end about
/// together. `None` when no span is worth it.
pub(crate) fn rescue(spans: &[Arc<Span>], now: Instant) -> Option<Split> {
    let rates: Vec<Option<f64>> = spans.iter().map(|s| s.rate(now)).collect();
    let mut known: Vec<f64> = rates.iter().flatten().copied().collect();
    if known.len() < 2 {
        return None;
    }
    known.sort_by(f64::total_cmp);
    // The upper median: with two spans, the faster one.
    let typical = known[known.len() / 2];
    let mut worst: Option<(usize, f64, f64)> = None;
    for (i, span) in spans.iter().enumerate() {
        let Some(rate) = rates[i] else { continue };
        if !span.is_running() || rate * SLOW > typical {
            continue;
        }
        let (at, end) = span.bounds();
        let left = (end - at) as f64;
        let eta = left / rate.max(1.0);
        let shared = left / (rate + typical);
        if eta - shared < MIN_GAIN.as_secs_f64() {
            continue;
        }
        if worst.is_none_or(|(_, w, _)| eta > w) {
            worst = Some((i, eta, rate));
        }
    }
    let (i, _, rate) = worst?;
    let mut s = spans[i].lock();
    let left = s.end - s.at;
    let keep = (left as f64 * rate / (rate + typical)) as u64;
    let start = s.at + keep;
    if s.end - start < MIN_TAKE {
        return None;
    }
    let split = Split {
        start,
        end: s.end,
        slow_rate: rate,
        typical_rate: typical,
    };
    s.end = start;
    Some(split)
}

/// The most spans kept for judging what a typical rate is.
const REMEMBERED: usize = 64;

/// Adds `span` to `spans`, forgetting the oldest finished ones beyond
/// [`REMEMBERED`] (running ones are always kept).
pub(crate) fn remember(spans: &mut Vec<Arc<Span>>, span: Arc<Span>) {
    spans.push(span);
    let mut excess = spans.len().saturating_sub(REMEMBERED);
    spans.retain(|s| {
        let forget = excess > 0 && !s.is_running();
        if forget {
            excess -= 1;
        }
        !forget
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// A span that began `secs` ago and has moved `moved` bytes of `len`.
    fn span(start: u64, len: u64, moved: u64, secs: f64) -> Arc<Span> {
        let now = Instant::now();
        let span = Span::started_at(start, start + len, now - Duration::from_secs_f64(secs));
        span.advance(moved, |_, _| Ok(())).unwrap();
        span
    }

    #[test]
    fn a_crawling_span_gives_up_most_of_its_tail() {
        // Three spans at 100 MiB/s, one at 5 MiB/s with 6 MiB to go.
        let spans = vec![
            span(0, 8 * MIB, 2 * MIB, 0.4),
            span(8 * MIB, 64 * MIB, 50 * MIB, 0.5),
            span(72 * MIB, 64 * MIB, 40 * MIB, 0.4),
            span(136 * MIB, 64 * MIB, 60 * MIB, 0.6),
        ];
        let now = Instant::now();
        let split = rescue(&spans, now).expect("the slow span is split");
        // It keeps 5/105 of its 6 MiB; the rest goes elsewhere.
        let kept = split.start - 2 * MIB;
        assert!(kept > 250_000 && kept < 350_000, "kept {kept}");
        assert_eq!(split.end, 8 * MIB);
        assert_eq!(spans[0].bounds(), (2 * MIB, split.start));
        // Once split, what is left is not worth another split.
        assert_eq!(rescue(&spans, now), None);
    }

    #[test]
    fn even_spans_and_young_spans_are_left_alone() {
        let now = Instant::now();
        let even = vec![
            span(0, 8 * MIB, 3 * MIB, 0.5),
            span(8 * MIB, 8 * MIB, 4 * MIB, 0.5),
        ];
        assert_eq!(rescue(&even, now), None);
        // Slow, but only just started: its rate is not known yet.
        let young = vec![
            span(0, 8 * MIB, 1000, 0.1),
            span(8 * MIB, 8 * MIB, 4 * MIB, 0.5),
        ];
        assert_eq!(rescue(&young, now), None);
        // Slow, but nearly done: a new request would not finish sooner.
        let nearly = vec![
            span(0, MIB, MIB - 100_000, 1.0),
            span(8 * MIB, 8 * MIB, 8 * MIB, 0.05),
        ];
        assert_eq!(rescue(&nearly, now), None);
    }

    #[test]
    fn writes_stop_at_a_split() {
        let s = Span::new(0, 100);
        let mut seen = Vec::new();
        let mut write = |at, n| {
            seen.push((at, n));
            Ok(())
        };
        assert_eq!(s.advance(30, &mut write).unwrap(), 30);
        s.lock().end = 50;
        assert_eq!(s.advance(30, &mut write).unwrap(), 20);
        assert_eq!(s.advance(30, &mut write).unwrap(), 0);
        assert_eq!(seen, vec![(0, 30), (30, 20)]);
    }
}
