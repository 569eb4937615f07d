//! `Content-Range: bytes <first>-<last>/<total>` of 206 answers, checked
//! against the range asked for before a single byte is written.

/// A parsed `Content-Range`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentRange {
    /// First byte, inclusive.
    pub first: u64,
    /// Last byte, inclusive.
    pub last: u64,
    /// The whole resource's length, when the server knows it.
    pub total: Option<u64>,
}

/// Parses `bytes first-last/total` (total may be `*`).
pub fn parse(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?;
    let rest = rest.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (first, last) = range.trim().split_once('-')?;
    let first = parse_u64(first)?;
    let last = parse_u64(last)?;
    let total = match total.trim() {
        "*" => None,
        t => Some(parse_u64(t)?),
    };
    if last < first || total.is_some_and(|t| last >= t) {
        return None;
    }
    Some(ContentRange { first, last, total })
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_forms() {
        assert_eq!(
            parse("bytes 0-0/100"),
            Some(ContentRange {
                first: 0,
                last: 0,
                total: Some(100)
            })
        );
        assert_eq!(
            parse("bytes 8388608-16777215/2147483648"),
            Some(ContentRange {
                first: 8388608,
                last: 16777215,
                total: Some(2147483648)
            })
        );
        assert_eq!(parse("bytes 5-9/*").unwrap().total, None);
    }

    #[test]
    fn invalid_forms() {
        for bad in [
            "",
            "bytes",
            "bytes */100",
            "bytes 5-4/100",
            "bytes 0-100/100",
            "items 0-1/2",
            "bytes -1-5/10",
            "bytes 0-1",
            "bytes a-b/c",
            "bytes 0-99999999999999999999999/1",
            "bytes +1-2/3",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
