//! The registry auth protocol: `WWW-Authenticate` challenges, token scopes, token responses.

use super::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// One challenge from a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Challenge {
    /// Lowercased: `bearer`, `basic`, ...
    pub scheme: String,
    /// Parameter names lowercased, values unquoted.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// How a registry wants to be talked to, learned from `GET /v2/` and later 401s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuthScheme {
    Anonymous,
    Basic,
    Bearer { realm: String, service: String },
}

/// Parses a `WWW-Authenticate` value (RFC 7235), which may hold several challenges:
/// `Basic realm="x", Bearer realm="https://a/token",service="reg"`.
pub(super) fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut lexer = Lexer {
        s: header.as_bytes(),
        i: 0,
    };
    let mut out: Vec<Challenge> = Vec::new();
    loop {
        lexer.skip(|b| b == b' ' || b == b'\t' || b == b',');
        let Some(word) = lexer.token() else { break };
        let save = lexer.i;
        lexer.skip_ws();
        if lexer.peek() == Some(b'=') && !out.is_empty() {
            // `name=value` continues the current challenge.
            lexer.i += 1;
            lexer.skip_ws();
            let value = lexer.value();
            if let Some(current) = out.last_mut() {
                current.params.insert(word.to_ascii_lowercase(), value);
            }
            continue;
        }
        lexer.i = save;
        out.push(Challenge {
            scheme: word.to_ascii_lowercase(),
            params: BTreeMap::new(),
        });
        // A token68 credential blob after the scheme (`Negotiate abc==`) is skipped.
        lexer.skip_ws();
        let before = lexer.i;
        if lexer.token().is_some() {
            let after_token = lexer.i;
            lexer.skip_ws();
            if lexer.peek() == Some(b'=') {
                let mut j = lexer.i;
                while lexer.s.get(j) == Some(&b'=') {
                    j += 1;
                }
                let rest_is_param = lexer.s.get(j).is_some_and(|b| *b != b',' && *b != b' ');
                if rest_is_param {
                    lexer.i = before;
                } else {
                    lexer.i = j;
                }
            } else if lexer.peek().is_none() || lexer.peek() == Some(b',') {
                lexer.i = after_token;
            } else {
                lexer.i = before;
            }
        }
    }
    out
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip(&mut self, f: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&f) {
            self.i += 1;
        }
    }

    fn skip_ws(&mut self) {
        self.skip(|b| b == b' ' || b == b'\t');
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        self.skip(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&b));
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn value(&mut self) -> String {
        if self.peek() != Some(b'"') {
            return self.token().unwrap_or_default();
        }
        self.i += 1;
        let mut out = Vec::new();
        while let Some(b) = self.peek() {
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    if let Some(next) = self.peek() {
                        out.push(next);
                        self.i += 1;
                    }
                }
                _ => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// `repository:org/app:pull,push`
pub(crate) fn repository_scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

/// Merges scopes by resource: `repository:a:pull` + `repository:a:push` → `repository:a:pull,push`.
pub(crate) fn merge_scopes(scopes: &[String]) -> Vec<String> {
    let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for scope in scopes
        .iter()
        .flat_map(|s| s.split(' '))
        .filter(|s| !s.is_empty())
    {
        // The resource name can itself contain ':' (a registry port in some token servers),
        // so the actions are what follows the last ':'.
        let (resource, actions) = scope.rsplit_once(':').unwrap_or((scope, ""));
        let entry = merged.entry(resource.to_owned()).or_default();
        for action in actions.split(',').filter(|a| !a.is_empty()) {
            if !entry.iter().any(|a| a == action) {
                entry.push(action.to_owned());
            }
        }
    }
    merged
        .into_iter()
        .map(|(resource, mut actions)| {
            actions.sort();
            format!("{resource}:{}", actions.join(","))
        })
        .collect()
}

/// A token endpoint's answer (docker's `token`, OAuth2's `access_token`).
#[derive(Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl TokenResponse {
    /// The token and how long to keep it; the spec says 60 s when the server does not say.
    pub(crate) fn into_token(self) -> Option<CachedToken> {
        let token = self.token.or(self.access_token).filter(|t| !t.is_empty())?;
        let lifetime = Duration::from_secs(self.expires_in.unwrap_or(60).max(60));
        // Renew a little early so a token does not expire between check and use.
        let margin = Duration::from_secs(10);
        Some(CachedToken {
            token: Secret::new(token),
            expires: Instant::now() + lifetime.saturating_sub(margin),
        })
    }
}

#[derive(Clone)]
pub(crate) struct CachedToken {
    pub token: Secret,
    pub expires: Instant,
}

/// True for `localhost`, 127.0.0.0/8 and ::1, with or without a port.
pub(crate) fn is_loopback(host_port: &str) -> bool {
    let host = strip_port(host_port);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// `host:port` → `host`, `[::1]:5000` → `::1`.
pub(crate) fn strip_port(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => host_port,
    }
}

/// The `host[:port]` of an absolute URL.
pub(crate) fn url_authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(authority.rsplit('@').next().unwrap_or(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(h: &str) -> Challenge {
        let mut all = parse_www_authenticate(h);
        assert_eq!(all.len(), 1, "{h}: {all:?}");
        all.remove(0)
    }

    #[test]
    fn bearer_challenges_from_real_registries() {
        let c = one(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#,
        );
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(
            c.param("scope"),
            Some("repository:library/ubuntu:pull,push")
        );

        // GHCR, with spaces and an error parameter.
        let c = one(
            r#"Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:o/a:pull", error="insufficient_scope""#,
        );
        assert_eq!(c.param("error"), Some("insufficient_scope"));
        assert_eq!(c.param("scope"), Some("repository:o/a:pull"));

        // Unquoted values, odd case, no scope.
        let c = one("BEARER Realm=http://127.0.0.1:1234/token, Service=test");
        assert_eq!(c.param("realm"), Some("http://127.0.0.1:1234/token"));
        assert_eq!(c.param("service"), Some("test"));
        assert_eq!(c.param("scope"), None);
    }

    #[test]
    fn basic_and_multiple_challenges() {
        let c = one(r#"Basic realm="basic-realm""#);
        assert_eq!(
            (c.scheme.as_str(), c.param("realm")),
            ("basic", Some("basic-realm"))
        );
        let all = parse_www_authenticate(
            r#"Basic realm="Registry", Bearer realm="https://r/t",service="s",scope="a:b:c d:e:f""#,
        );
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[1].scheme, "bearer");
        assert_eq!(all[1].param("scope"), Some("a:b:c d:e:f"));
        // A token68 challenge followed by another scheme.
        let all = parse_www_authenticate("Negotiate abc==, Basic realm=x");
        assert_eq!(
            all.iter().map(|c| c.scheme.as_str()).collect::<Vec<_>>(),
            ["negotiate", "basic"]
        );
        assert_eq!(all[1].param("realm"), Some("x"));
    }

    #[test]
    fn quoted_strings_unescape() {
        let c = one(r#"Bearer realm="https://a/t?x=\"y\"",service="s\\v""#);
        assert_eq!(c.param("realm"), Some(r#"https://a/t?x="y""#));
        assert_eq!(c.param("service"), Some(r"s\v"));
    }

    #[test]
    fn garbage_never_panics() {
        for h in [
            "",
            ",,,",
            "=",
            "Bearer =",
            "Bearer realm=\"unterminated",
            "\u{e9}\u{e9}=\"",
            "a b c = d",
        ] {
            let _ = parse_www_authenticate(h);
        }
    }

    #[test]
    fn scopes_merge_by_resource() {
        let merged = merge_scopes(&[
            repository_scope("a/b", "push"),
            repository_scope("a/b", "pull"),
            "repository:c:pull repository:a/b:pull".into(),
        ]);
        assert_eq!(merged, ["repository:a/b:pull,push", "repository:c:pull"]);
    }

    #[test]
    fn token_responses_in_both_spellings() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"abc","expires_in":300}"#).unwrap();
        let t = t.into_token().unwrap();
        assert_eq!(t.token.expose(), "abc");
        assert!(t.expires > Instant::now() + Duration::from_secs(280));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"xyz"}"#).unwrap();
        assert_eq!(t.into_token().unwrap().token.expose(), "xyz");
        let t: TokenResponse = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(t.into_token().is_none());
    }

    #[test]
    fn loopback_hosts() {
        for yes in [
            "localhost",
            "localhost:5000",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "example.com",
            "10.0.0.1:5000",
            "localhost.example.com",
            "128.0.0.1",
            "[fe80::1]",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
        assert_eq!(url_authority("https://u:p@h.io:443/x?y"), Some("h.io:443"));
        assert_eq!(url_authority("/relative"), None);
    }
}
