//! `GET /token`: the token service of the challenge flow.
//!
//! The client proves key possession by signing the full request URL (as
//! ollama.com's token service checks it) and receives an opaque token valid
//! for the scopes it asked for, for `token_ttl_secs`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::header::{AUTHORIZATION, HOST};
use hyper::http::request::Parts;

use super::signature;
use crate::registry::digest::random_hex;
use crate::registry::options::Auth;
use crate::registry::respond::{self, Resp};
use crate::registry::state::{lock, Grant, State};

/// Answers a token request.
pub(crate) fn issue_token(state: &State, parts: &Parts) -> Resp {
    let Auth::OllamaChallenge {
        public_keys,
        token_ttl_secs,
    } = &state.opts.auth
    else {
        return respond::oci_error(
            404,
            "NOT_FOUND",
            "this registry issues no tokens",
            serde_json::Value::Null,
        );
    };
    let url = signed_url(state, parts);
    let verdict = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| "authorization required".to_string())
        .and_then(|h| {
            h.trim()
                .split_once(':')
                .ok_or_else(|| "authorization is not key:signature".to_string())
        })
        .and_then(|(key, sig)| signature::verify(key, sig, &url).map(|()| key))
        .and_then(|key| {
            if signature::key_allowed(public_keys, key) {
                Ok(())
            } else {
                Err("key not allowed".to_string())
            }
        });
    if let Err(why) = verdict {
        return respond::oci_error(401, "UNAUTHORIZED", &why, serde_json::json!({"url": url}));
    }

    let access = requested_access(parts.uri.query().unwrap_or(""));
    let token = random_hex(24);
    let ttl = Duration::from_secs(*token_ttl_secs);
    lock(&state.tokens).insert(
        token.clone(),
        Grant {
            access,
            expires: Instant::now() + ttl,
        },
    );
    respond::json(
        200,
        &serde_json::json!({
            "token": token,
            "expires_in": token_ttl_secs,
            "issued_at": rfc3339(SystemTime::now()),
        }),
    )
}

/// The URL the client must have signed: scheme, the host it addressed, the
/// path and the raw query exactly as sent.
fn signed_url(state: &State, parts: &Parts) -> String {
    let host = parts
        .headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(&state.endpoints.registry_host);
    let mut url = format!("{}://{host}{}", state.endpoints.scheme, parts.uri.path());
    if let Some(query) = parts.uri.query() {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `(repository, action)` pairs from every `scope` parameter
/// (`repository:<name>:<action>[,<action>]`, several per parameter allowed,
/// space-separated).
fn requested_access(query: &str) -> Vec<(String, String)> {
    let mut access = Vec::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "scope" {
            continue;
        }
        for scope in value.split_whitespace() {
            let Some(rest) = scope.strip_prefix("repository:") else {
                continue;
            };
            let Some((repo, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            for action in actions.split(',').filter(|a| !a.is_empty()) {
                access.push((repo.to_ascii_lowercase(), action.to_string()));
            }
        }
    }
    access
}

/// `YYYY-MM-DDTHH:MM:SSZ` for `time` (UTC), without a date crate.
fn rfc3339(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm for days since 1970-01-01.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format() {
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn scopes_parse() {
        let q = "nonce=x&scope=repository%3Alibrary%2Fllama3.2%3Apull%2Cpush&scope=repository:a/B:pull+registry:catalog:*&service=h";
        assert_eq!(
            requested_access(q),
            vec![
                ("library/llama3.2".to_string(), "pull".to_string()),
                ("library/llama3.2".to_string(), "push".to_string()),
                ("a/b".to_string(), "pull".to_string()),
            ]
        );
    }
}
