//! Which redirects to follow. olreg follows redirects itself, so that it
//! decides where credentials go and refuses what a hostile registry could
//! use: loops, other schemes, and a downgrade from TLS to plain HTTP.

use reqwest::Url;

use super::redact::{redact, redact_text};

/// The most redirects one request follows.
pub const MAX_REDIRECTS: usize = 10;

/// Resolves `location` against `from` and checks the hop. `allow_plain_http`
/// is the caller's explicit choice of insecure mode (or a plain-HTTP
/// registry): only then may an `https` URL redirect to `http`.
pub fn next_hop(
    from: &Url,
    location: &str,
    visited: &[Url],
    allow_plain_http: bool,
) -> Result<Url, String> {
    let to = from.join(location).map_err(|e| {
        let shown = redact_text(location);
        format!("the redirect to {shown:?} is not a valid URL: {e}")
    })?;
    match to.scheme() {
        "https" => {}
        "http" if from.scheme() == "http" || allow_plain_http => {}
        "http" => {
            return Err(format!(
                "refused a redirect from https to plain http ({}); use insecure mode to allow it",
                redact(&to)
            ))
        }
        other => {
            return Err(format!(
                "refused a redirect to the {other:?} scheme ({})",
                redact(&to)
            ))
        }
    }
    if to.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "the redirect to {:?} has no host",
            redact_text(location)
        ));
    }
    if visited.contains(&to) {
        return Err(format!("redirect loop at {}", redact(&to)));
    }
    if visited.len() > MAX_REDIRECTS {
        return Err(format!("more than {MAX_REDIRECTS} redirects"));
    }
    Ok(to)
}

/// Whether two URLs share scheme, host and port: credentials for one are
/// never sent to another.
pub fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn relative_and_absolute_locations() {
        let from = u("https://r.example/v2/ns/m/blobs/sha256:x");
        assert_eq!(
            next_hop(&from, "/cdn/x", std::slice::from_ref(&from), false)
                .unwrap()
                .as_str(),
            "https://r.example/cdn/x"
        );
        assert_eq!(
            next_hop(&from, "https://cdn.example/x?sig=1", &[], false)
                .unwrap()
                .as_str(),
            "https://cdn.example/x?sig=1"
        );
    }

    #[test]
    fn refusals() {
        let from = u("https://r.example/a");
        assert!(next_hop(&from, "http://cdn.example/x", &[], false)
            .unwrap_err()
            .contains("plain http"));
        assert!(next_hop(&from, "http://cdn.example/x", &[], true).is_ok());
        assert!(next_hop(&from, "ftp://cdn.example/x", &[], true)
            .unwrap_err()
            .contains("\"ftp\""));
        assert!(next_hop(&from, "file:///etc/passwd", &[], true).is_err());
        assert!(next_hop(
            &from,
            "https://r.example/a",
            std::slice::from_ref(&from),
            false
        )
        .unwrap_err()
        .contains("loop"));
        assert!(next_hop(&from, "http://[::1", &[], false).is_err());
        let many: Vec<Url> = (0..11)
            .map(|i| u(&format!("https://r.example/{i}")))
            .collect();
        assert!(next_hop(&from, "/next", &many, false)
            .unwrap_err()
            .contains("more than"));
        let plain = u("http://r.example/a");
        assert!(next_hop(&plain, "http://cdn.example/x", &[], false).is_ok());
    }

    #[test]
    fn origins() {
        assert!(same_origin(
            &u("https://R.example/a"),
            &u("https://r.example:443/b")
        ));
        assert!(!same_origin(
            &u("https://r.example/a"),
            &u("http://r.example/a")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:1/a"),
            &u("http://127.0.0.1:2/a")
        ));
        assert!(!same_origin(
            &u("http://127.0.0.1:1/a"),
            &u("http://127.0.0.2:1/a")
        ));
    }
}
