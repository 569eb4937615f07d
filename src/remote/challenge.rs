//! `WWW-Authenticate` challenges (RFC 7235): `Basic realm="…"` and
//! `Bearer realm="…",service="…",scope="…"[,error="insufficient_scope"]`.

/// One challenge a registry offered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    /// Send `Authorization: Basic` with credentials.
    Basic,
    /// Get a token from `realm`.
    Bearer {
        realm: String,
        service: Option<String>,
        /// Space-separated scopes, as the registry gave them.
        scope: Option<String>,
        /// `insufficient_scope` when a token lacked an action.
        error: Option<String>,
    },
}

/// Parses every challenge in one header value. Unknown schemes and
/// malformed parts are skipped rather than failing the request.
pub fn parse(header: &str) -> Vec<Challenge> {
    let mut out = Vec::new();
    let mut p = Parser {
        s: header.as_bytes(),
        i: 0,
    };
    loop {
        p.skip_separators();
        let Some(scheme) = p.token() else { break };
        let mut params: Vec<(String, String)> = Vec::new();
        loop {
            p.skip_spaces();
            let save = p.i;
            let Some(key) = p.token() else { break };
            p.skip_spaces();
            if !p.eat(b'=') {
                // The token was the next challenge's scheme.
                p.i = save;
                break;
            }
            p.skip_spaces();
            let value = if p.peek() == Some(b'"') {
                p.quoted()
            } else {
                p.token().unwrap_or_default()
            };
            params.push((key.to_ascii_lowercase(), value));
            p.skip_spaces();
            if !p.eat(b',') {
                break;
            }
        }
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => out.push(Challenge::Basic),
            "bearer" => {
                if let Some(realm) = get("realm") {
                    out.push(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                        error: get("error"),
                    });
                }
            }
            _ => {}
        }
        if p.i >= p.s.len() {
            break;
        }
    }
    out
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn skip_spaces(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }
    fn skip_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.i += 1;
        }
    }
    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c) {
                self.i += 1;
            } else {
                break;
            }
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn quoted(&mut self) -> String {
        self.i += 1;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(c),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_all_parameters() {
        let c = parse(
            r#"Bearer realm="https://ollama.com/token",service="ollama.com",scope="repository:library/llama3.2:pull""#,
        );
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://ollama.com/token".into(),
                service: Some("ollama.com".into()),
                scope: Some("repository:library/llama3.2:pull".into()),
                error: None,
            }]
        );
    }

    #[test]
    fn insufficient_scope_and_multiple_scopes() {
        let c = parse(
            r#"Bearer realm="http://127.0.0.1:1/token", service="reg", scope="repository:a/b:pull,push repository:c/d:pull", error="insufficient_scope""#,
        );
        let Challenge::Bearer { scope, error, .. } = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!(
            scope.as_deref(),
            Some("repository:a/b:pull,push repository:c/d:pull")
        );
        assert_eq!(error.as_deref(), Some("insufficient_scope"));
    }

    #[test]
    fn basic_and_several_challenges() {
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            vec![Challenge::Basic]
        );
        let c = parse(r#"Basic realm="x", Bearer realm="https://a/t",service=s"#);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0], Challenge::Basic);
        assert!(matches!(&c[1], Challenge::Bearer { service: Some(s), .. } if s == "s"));
    }

    #[test]
    fn junk_is_skipped() {
        assert!(parse("").is_empty());
        assert!(parse("Negotiate").is_empty());
        assert!(parse("Bearer service=\"x\"").is_empty());
        assert!(parse("Bearer realm=\"unterminated").len() == 1);
        assert!(parse("\u{1}\u{2},,,==").is_empty());
    }
}
