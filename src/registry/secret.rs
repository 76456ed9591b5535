//! Secrets (passwords, tokens) that must never reach output, errors, logs or panics.

use std::fmt;

/// A password or token. `Debug` prints `Secret(<redacted>)` and there is deliberately no
/// `Display`: the only way to the value is [`Secret::expose`], used where a header is built.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

/// Replaces every occurrence of the given secrets in `text` (for messages that quote a server or a
/// helper, which could echo what they were sent). Very short values are left alone: replacing
/// every "a" in a message would only garble it.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(secret, "<redacted>");
    }
    out
}

/// A URL fit for messages: no user info, no query (upload locations and redirects can carry
/// signed tokens there).
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let (path, had_query) = match path.split_once('?') {
        Some((path, _)) => (path, true),
        None => (path, false),
    };
    let mut out = String::new();
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    out.push_str(authority);
    out.push_str(path);
    if had_query {
        out.push_str("?…");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2-very-secret");
        let shown = format!("{s:?} {:?} {:#?}", Some(&s), vec![s.clone()]);
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }

    #[test]
    fn scrub_replaces_secrets_in_messages() {
        let msg = "server said: bad password hunter2x for user bob";
        assert_eq!(
            scrub(msg, &["hunter2x", "ab"]),
            "server said: bad password <redacted> for user bob"
        );
    }

    #[test]
    fn urls_lose_userinfo_and_query() {
        assert_eq!(
            redact_url("https://user:pw@s3.example/bucket/x?X-Amz-Signature=abc"),
            "https://s3.example/bucket/x?…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:5000/v2/"),
            "http://127.0.0.1:5000/v2/"
        );
        assert_eq!(
            redact_url("/v2/x/blobs/uploads/u?_state=s"),
            "/v2/x/blobs/uploads/u?…"
        );
    }
}
