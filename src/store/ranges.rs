//! A set of byte ranges known to be written: what a partial download has,
//! independent of the order the bytes arrived in.

use serde::{Deserialize, Serialize};

/// Disjoint, sorted, merged half-open ranges `[start, end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// The empty set.
    pub fn new() -> RangeSet {
        RangeSet(Vec::new())
    }

    /// Adds `[start, end)`, merging with neighbours it touches.
    pub fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut start, mut end) = (start, end);
        // Ranges that overlap or touch [start, end) are replaced by their union.
        let first = self.0.partition_point(|&(_, e)| e < start);
        let mut last = first;
        while last < self.0.len() && self.0[last].0 <= end {
            start = start.min(self.0[last].0);
            end = end.max(self.0[last].1);
            last += 1;
        }
        self.0.splice(first..last, [(start, end)]);
    }

    /// How many bytes from offset 0 are covered without a gap.
    pub fn prefix(&self) -> u64 {
        match self.0.first() {
            Some(&(0, end)) => end,
            _ => 0,
        }
    }

    /// Total bytes covered.
    pub fn covered(&self) -> u64 {
        self.0.iter().map(|(s, e)| e - s).sum()
    }

    /// The gaps in `[0, size)`.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = 0;
        for &(s, e) in &self.0 {
            if s >= size {
                break;
            }
            if s > at {
                out.push((at, s));
            }
            at = at.max(e);
        }
        if at < size {
            out.push((at, size));
        }
        out
    }

    /// Whether every range lies inside `[0, size)` — a state file that says
    /// otherwise belongs to something else and is discarded.
    pub fn fits(&self, size: u64) -> bool {
        let sorted = self.0.windows(2).all(|w| w[0].1 < w[1].0);
        sorted && self.0.iter().all(|&(s, e)| s < e && e <= size)
    }

    /// The ranges, sorted.
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_inserts_merge() {
        let mut r = RangeSet::new();
        r.insert(20, 30);
        r.insert(0, 10);
        assert_eq!(r.prefix(), 10);
        assert_eq!(r.missing(40), vec![(10, 20), (30, 40)]);
        r.insert(10, 20);
        assert_eq!(r.ranges(), &[(0, 30)]);
        assert_eq!(r.prefix(), 30);
        r.insert(35, 36);
        r.insert(25, 40);
        assert_eq!(r.ranges(), &[(0, 40)]);
        assert_eq!(r.covered(), 40);
        assert!(r.missing(40).is_empty());
    }

    #[test]
    fn overlapping_and_empty_inserts() {
        let mut r = RangeSet::new();
        r.insert(5, 5);
        assert_eq!(r.covered(), 0);
        r.insert(5, 15);
        r.insert(0, 7);
        r.insert(100, 200);
        r.insert(50, 60);
        assert_eq!(r.ranges(), &[(0, 15), (50, 60), (100, 200)]);
        assert!(r.fits(200));
        assert!(!r.fits(199));
    }

    #[test]
    fn hostile_state_does_not_fit() {
        let r = RangeSet(vec![(10, 5)]);
        assert!(!r.fits(100));
        let r = RangeSet(vec![(0, 10), (5, 20)]);
        assert!(!r.fits(100));
    }
}
