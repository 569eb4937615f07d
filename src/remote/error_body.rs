//! Registry error bodies: Ollama's `{"code","error"}`, OCI's
//! `{"errors":[{"code","message","detail"}]}` (first entry; `detail` of any
//! type), or anything else kept as trimmed text.

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
            return parsed;
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut message: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_QUOTED)
        .collect();
    if text.chars().count() > MAX_QUOTED {
        message.push('…');
    }
    ErrorBody {
        code: None,
        message,
    }
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
                let detail: String = detail.chars().take(MAX_QUOTED).collect();
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
}
