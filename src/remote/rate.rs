//! The bandwidth cap: one budget of bytes per second for a whole client,
//! shared by every stream of every operation, pulls and pushes alike.
//!
//! A token bucket that may run into debt: a stream takes the bytes it has
//! just received (or is about to send) and then waits until the debt is
//! paid. Debt rather than refusal keeps the long-run average exact whatever
//! the piece sizes, and the bucket holds at most [`BURST`] of savings, so
//! no one-second window carries much more than the cap.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// The environment variable that sets the cap when the options do not.
pub const RATE_LIMIT_ENV: &str = "OLREG_LIMIT_RATE";

/// The most a quiet client may save up: this share of a second at the cap.
const BURST: f64 = 0.125;

/// A shared bytes-per-second budget.
#[derive(Debug)]
pub(crate) struct RateLimit {
    bytes_per_sec: f64,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes that may pass now; negative while in debt.
    balance: f64,
    at: Instant,
}

impl RateLimit {
    /// A cap of `bytes_per_sec` (at least 1).
    pub(crate) fn new(bytes_per_sec: u64) -> RateLimit {
        let rate = bytes_per_sec.max(1) as f64;
        RateLimit {
            bytes_per_sec: rate,
            bucket: Mutex::new(Bucket {
                balance: rate * BURST,
                at: Instant::now(),
            }),
        }
    }

    /// The largest piece worth handing out at once: a sender asks for no
    /// more than this, so one piece does not make a burst of its own.
    pub(crate) fn piece(&self, wanted: u64) -> u64 {
        wanted.min((self.bytes_per_sec * BURST) as u64).max(1)
    }

    /// Counts `n` bytes against the budget and waits until they fit in it.
    pub(crate) async fn take(&self, n: u64) {
        let wait = {
            let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let earned = now.duration_since(b.at).as_secs_f64() * self.bytes_per_sec;
            b.balance = (b.balance + earned).min(self.bytes_per_sec * BURST) - n as f64;
            b.at = now;
            if b.balance >= 0.0 {
                return;
            }
            Duration::from_secs_f64(-b.balance / self.bytes_per_sec)
        };
        tokio::time::sleep(wait).await;
    }
}

/// Parses a rate such as `500000`, `800K`, `50M` or `1.5G`: bytes per
/// second, with binary multiples (K = 1024, as curl's `--limit-rate`
/// counts). `0` means no cap.
pub fn parse_rate(text: &str) -> Result<u64> {
    let bad = || {
        Error::invalid_argument(format!(
            "{text:?} is not a rate: give bytes per second, optionally with K, M or G (e.g. 50M)"
        ))
    };
    let t = text.trim();
    let (number, scale) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let scale: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(bad()),
            };
            (&t[..i], scale)
        }
        _ => (t, 1),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * scale as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_binary_suffixes() {
        assert_eq!(parse_rate("0").unwrap(), 0);
        assert_eq!(parse_rate("1000").unwrap(), 1000);
        assert_eq!(parse_rate("800K").unwrap(), 800 << 10);
        assert_eq!(parse_rate("50M").unwrap(), 50 << 20);
        assert_eq!(parse_rate("50m").unwrap(), 50 << 20);
        assert_eq!(parse_rate(" 2G ").unwrap(), 2 << 30);
        assert_eq!(parse_rate("1.5M").unwrap(), 3 << 19);
        for bad in [
            "",
            "M",
            "-1",
            "10X",
            "1e9",
            "10 M",
            "1..2K",
            "99999999999999999999G",
        ] {
            assert!(parse_rate(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[tokio::test]
    async fn the_average_holds_whatever_the_piece_sizes() {
        let limit = RateLimit::new(10_000_000);
        let started = Instant::now();
        // 3 MB in uneven pieces, less the 1.25 MB saved up: 0.175 s at least.
        let pieces = (0..300u64).map(|i| 5_000 + (i % 7) * 2_000);
        let total: u64 = pieces.clone().sum();
        for n in pieces {
            limit.take(n).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let least = (total as f64 - 1_250_000.0) / 10_000_000.0;
        assert!(secs >= least - 0.002, "{secs} s for {total} bytes");
        // Generous: a loaded machine oversleeps, it never undersleeps.
        assert!(secs < least + 1.0, "{secs} s for {total} bytes");
        assert_eq!(limit.piece(4 << 20), 1_250_000);
        assert_eq!(limit.piece(10), 10);
    }
}
