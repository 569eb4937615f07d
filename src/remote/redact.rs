//! URLs as olreg shows them in messages and logs: presigned storage URLs
//! carry secrets in their query (`X-Amz-Signature`, `sig`, `token`, …) and
//! any URL may carry a user and password, so every URL loses its userinfo,
//! query and fragment (a query becomes `?…`) before it is shown.

use reqwest::Url;

/// `url` safe to show.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    let hidden = url.query().is_some() || url.fragment().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    if hidden {
        format!("{shown}?…")
    } else {
        shown.to_string()
    }
}

/// `text` with every URL in it (`scheme://…`, up to a space, quote or
/// parenthesis) redacted, whether or not it parses: a `Location` a registry
/// sent, or an error message of the HTTP stack that quotes a URL.
pub(crate) fn redact_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(sep) = rest.find("://") {
        let scheme_start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
            .map_or(0, |i| i + 1);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || "\"'`<>(){}".contains(c))
            .map_or(rest.len(), |i| sep + i);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_one(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn redact_one(candidate: &str) -> String {
    if let Ok(url) = Url::parse(candidate) {
        return redact(&url);
    }
    let Some((scheme, after)) = candidate.split_once("://") else {
        return candidate.to_owned();
    };
    let (visible, hidden) = match after.find(['?', '#']) {
        Some(i) => (&after[..i], true),
        None => (after, false),
    };
    let authority_end = visible.find('/').unwrap_or(visible.len());
    let visible = match visible[..authority_end].rfind('@') {
        Some(at) => &visible[at + 1..],
        None => visible,
    };
    format!("{scheme}://{visible}{}", if hidden { "?…" } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_userinfo_query_and_fragment() {
        let u = |s: &str| redact(&Url::parse(s).unwrap());
        assert_eq!(
            u("https://u:p@cdn.example/b/x?X-Amz-Signature=s#f"),
            "https://cdn.example/b/x?…"
        );
        assert_eq!(u("https://r.example/v2/"), "https://r.example/v2/");
        assert_eq!(u("http://r.example/a#token=t"), "http://r.example/a?…");
    }

    #[test]
    fn urls_inside_text_are_redacted_parsed_or_not() {
        assert_eq!(
            redact_text("error sending request for url (http://u:p@h:1/x?sig=s): refused"),
            "error sending request for url (http://h:1/x?…): refused"
        );
        assert_eq!(
            redact_text("\"http://[::1/x?token=t\" and https://a/b?c=d"),
            "\"http://[::1/x?…\" and https://a/b?…"
        );
        assert_eq!(redact_text("no URL here: a:b ://"), "no URL here: a:b ://");
        assert_eq!(redact_text("ftp://who@h/p"), "ftp://h/p");
    }
}
