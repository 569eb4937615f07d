//! Registry error bodies: Ollama's `{"code","error"}`, OCI's
//! `{"errors":[{"code","message","detail"}]}` (first entry; `detail` of any
//! type), or anything else kept as trimmed text.
//!
//! Whatever the form, every string taken from a body is [`quoted`]: control
//! characters (escape sequences, newlines that would forge a line of
//! output) and bidirectional overrides become spaces, and long text is cut,
//! before it can reach a message, a log line or a terminal.

use serde_json::Value;

/// The most of an error body that is read and kept.
pub const MAX_ERROR_BODY: usize = 64 << 10;
/// The most of a text body quoted in a message.
const MAX_QUOTED: usize = 512;

/// The registry's code and message from an error body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    pub code: Option<String>,
    pub message: String,
}

/// Interprets an error body.
pub fn parse(body: &[u8]) -> ErrorBody {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(parsed) = from_json(&value) {
            return ErrorBody {
                code: parsed.code.map(|c| quoted(&c)),
                message: quoted(&parsed.message),
            };
        }
    }
    ErrorBody {
        code: None,
        message: quoted(String::from_utf8_lossy(body).trim()),
    }
}

/// Registry text safe to show: control characters and bidirectional
/// overrides become spaces; at most [`MAX_QUOTED`] characters are kept
/// (`…` marks a cut).
pub fn quoted(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if is_unsafe(c) { ' ' } else { c })
        .take(MAX_QUOTED)
        .collect();
    if text.chars().nth(MAX_QUOTED).is_some() {
        out.push('…');
    }
    out
}

/// Characters that move the cursor, ring, recolour, start a new line or
/// reorder text on a terminal.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn from_json(value: &Value) -> Option<ErrorBody> {
    let obj = value.as_object()?;
    if let Some(first) = obj
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        let code = first.get("code").and_then(Value::as_str).map(str::to_owned);
        let mut message = first
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        match first.get("detail") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(detail) => {
                let detail = match detail {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if message.is_empty() {
                    message = detail;
                } else {
                    message = format!("{message} ({detail})");
                }
            }
        }
        return Some(ErrorBody { code, message });
    }
    let code = obj.get("code").and_then(Value::as_str).map(str::to_owned);
    let message = obj
        .get("error")
        .or_else(|| obj.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if code.is_none() && message.is_none() {
        return None;
    }
    Some(ErrorBody {
        code,
        message: message.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_form() {
        let b = parse(
            br#"{"code":"MANIFEST_UNKNOWN","error":"pull model manifest: file does not exist"}"#,
        );
        assert_eq!(b.code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(b.message, "pull model manifest: file does not exist");
        assert_eq!(parse(br#"{"error":"oops"}"#).message, "oops");
    }

    #[test]
    fn oci_form_with_any_detail() {
        let b = parse(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}},{"code":"OTHER"}]}"#);
        assert_eq!(b.code.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(b.message, r#"manifest unknown ({"Tag":"x"})"#);
        let b = parse(br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied","detail":null}]}"#);
        assert_eq!(b.message, "requested access to the resource is denied");
        let b = parse(br#"{"errors":[{"code":"UNSUPPORTED","message":"","detail":"d"}]}"#);
        assert_eq!(b.message, "d");
        let b = parse(br#"{"errors":[{"code":"X","message":"m","detail":[1,2]}]}"#);
        assert_eq!(b.message, "m ([1,2])");
    }

    #[test]
    fn anything_else_is_text() {
        assert_eq!(parse(b"404 page not found\n").message, "404 page not found");
        assert_eq!(parse(b"").message, "");
        assert_eq!(parse(b"null").message, "null");
        assert_eq!(parse(br#"{"errors":[]}"#).message, r#"{"errors":[]}"#);
        let long = "x".repeat(10_000);
        assert!(parse(long.as_bytes()).message.chars().count() <= MAX_QUOTED + 1);
        assert_eq!(parse(b"a\x00b\nc").message, "a b c");
    }

    #[test]
    fn every_field_of_every_form_is_neutralised() {
        let evil = "\u{1b}]0;t\u{7}\u{1b}[2J\u{9b}1m\nolreg: forged\r\u{202e}x";
        let shown = " ]0;t  [2J 1m olreg: forged  x";
        let ollama = serde_json::json!({"code": evil, "error": evil}).to_string();
        let b = parse(ollama.as_bytes());
        assert_eq!(
            (b.code.as_deref(), b.message.as_str()),
            (Some(shown), shown)
        );
        let oci =
            serde_json::json!({"errors": [{"code": evil, "message": evil, "detail": {"d": evil}}]});
        let b = parse(oci.to_string().as_bytes());
        assert_eq!(b.code.as_deref(), Some(shown));
        assert!(b.message.chars().all(|c| !is_unsafe(c)), "{:?}", b.message);
        assert!(b.message.starts_with(shown), "{:?}", b.message);
        let long = serde_json::json!({"error": "y".repeat(10_000)}).to_string();
        assert_eq!(
            parse(long.as_bytes()).message.chars().count(),
            MAX_QUOTED + 1
        );
    }
}
