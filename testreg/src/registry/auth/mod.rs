//! Authentication of `/v2/` requests on the registry host, in the mode the
//! test chose, and the `401` answers that tell a client what to do next.

mod signature;
mod token;

use std::time::Instant;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use hyper::http::request::Parts;

use super::options::Auth;
use super::respond::{self, set_header, Resp};
use super::state::{lock, State};

pub(crate) use token::issue_token;

/// What a request needs: access to a repository (or just the API root) for
/// pulling or pushing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Need<'a> {
    pub repo: Option<&'a str>,
    pub push: bool,
}

impl<'a> Need<'a> {
    /// The need of a request with this method on this repository: reads
    /// need `pull`, everything else `push`.
    pub fn of(method: &hyper::Method, repo: Option<&'a str>) -> Need<'a> {
        let read = method == hyper::Method::GET || method == hyper::Method::HEAD;
        Need { repo, push: !read }
    }
}

/// `Ok` if the request may proceed, else the `401` to answer with.
pub(crate) fn check(state: &State, parts: &Parts, need: Need<'_>) -> Result<(), Resp> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match &state.opts.auth {
        Auth::None => Ok(()),
        Auth::Ed25519Legacy { public_keys } => {
            let verdict = header
                .ok_or_else(|| "authorization required".to_string())
                .and_then(signature::verify_legacy)
                .and_then(|key| {
                    if signature::key_allowed(public_keys, &key) {
                        Ok(())
                    } else {
                        Err("key not allowed".into())
                    }
                });
            // No WWW-Authenticate: this mode has no challenge to answer, and a
            // Bearer challenge would send clients looking for a token service.
            verdict.map_err(|why| unauthorized(&why))
        }
        Auth::Basic { user, password } => {
            let expected = STANDARD.encode(format!("{user}:{password}"));
            match header.and_then(|h| h.strip_prefix("Basic ")) {
                Some(given) if given.trim() == expected => Ok(()),
                _ => {
                    let mut resp = unauthorized("authentication required");
                    set_header(&mut resp, WWW_AUTHENTICATE, "Basic realm=\"testreg\"");
                    Err(resp)
                }
            }
        }
        Auth::OllamaChallenge { .. } => {
            let token = header
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim);
            match token.map(|t| token_verdict(state, t, need)) {
                None => Err(challenge(state, need, None)),
                Some(Ok(())) => Ok(()),
                Some(Err(error)) => Err(challenge(state, need, Some(error))),
            }
        }
    }
}

/// Whether token `token` grants `need`; else the RFC 6750 `error` value.
fn token_verdict(state: &State, token: &str, need: Need<'_>) -> Result<(), &'static str> {
    let mut tokens = lock(&state.tokens);
    let Some(grant) = tokens.get(token) else {
        return Err("invalid_token");
    };
    if grant.expires <= Instant::now() {
        tokens.remove(token);
        return Err("invalid_token");
    }
    let Some(repo) = need.repo else {
        return Ok(());
    };
    let repo = repo.to_ascii_lowercase();
    let action = if need.push { "push" } else { "pull" };
    if grant
        .access
        .iter()
        .any(|(r, a)| *r == repo && a.as_str() == action)
    {
        Ok(())
    } else {
        Err("insufficient_scope")
    }
}

/// The `401` with a `Bearer realm,service,scope` challenge pointing at this
/// registry's `/token` (or the realm its options name).
fn challenge(state: &State, need: Need<'_>, error: Option<&str>) -> Resp {
    let (realm, service) = match &state.opts.realm {
        Some(other) => (other.url.clone(), other.service.clone()),
        None => (
            format!("{}/token", state.endpoints.registry_url()),
            state.endpoints.registry_host.clone(),
        ),
    };
    let mut value = format!("Bearer realm=\"{realm}\",service=\"{service}\"");
    if let Some(repo) = need.repo {
        let actions = if need.push { "pull,push" } else { "pull" };
        value.push_str(&format!(",scope=\"repository:{repo}:{actions}\""));
    }
    if let Some(error) = error {
        value.push_str(&format!(",error=\"{error}\""));
    }
    let mut resp = unauthorized("authentication required");
    set_header(&mut resp, WWW_AUTHENTICATE, &value);
    resp
}

fn unauthorized(message: &str) -> Resp {
    respond::oci_error(401, "UNAUTHORIZED", message, serde_json::Value::Null)
}
