//! Image references, parsed the way docker/distribution's `ParseNormalizedNamed` does:
//! `ubuntu` is `docker.io/library/ubuntu`, a first component is a registry only when it has a
//! `.` or `:` or is `localhost`, tags follow the last `:` after the registry, digests follow `@`.

use crate::digest::Digest;
use std::fmt;
use std::str::FromStr;

/// The registry Docker Hub references normalize to.
pub(super) const DOCKER_HUB: &str = "docker.io";
/// The host that actually serves Docker Hub's registry API.
pub(super) const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The key Docker Hub credentials are stored under in docker's config.json.
pub(super) const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A parsed, normalized reference: `registry/repository[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `localhost:5000`, `[::1]:5000`, ...
    pub registry: String,
    /// `library/ubuntu`, `org/app`, ...
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image reference {input:?}: {reason}")]
pub struct ReferenceError {
    pub input: String,
    pub reason: String,
}

impl Reference {
    /// Parses and normalizes a reference (`ubuntu`, `ghcr.io/org/app:v1`, `localhost:5000/x@sha256:…`).
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let fail = |reason: String| ReferenceError {
            input: input.to_owned(),
            reason,
        };
        if input.is_empty() {
            return Err(fail("it is empty".into()));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(fail(
                "a 64-character hexadecimal string is an image ID, not a repository name; \
                 write REPOSITORY@sha256:<hex> to push by digest"
                    .into(),
            ));
        }

        let (name_and_tag, digest) = match input.split_once('@') {
            Some((rest, digest)) => (rest, Some(parse_digest(digest).map_err(fail)?)),
            None => (input, None),
        };

        let (registry, remainder) = split_registry(name_and_tag);
        // The registry part took the port, so any ':' left separates the tag.
        let (path, tag) = match remainder.split_once(':') {
            Some((path, tag)) => {
                check_tag(tag).map_err(fail)?;
                (path, Some(tag.to_owned()))
            }
            None => (remainder, None),
        };

        check_registry(registry).map_err(fail)?;
        if path.is_empty() {
            return Err(fail("the repository name is missing".into()));
        }
        if path.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(fail(format!(
                "repository names must be lowercase (did you mean {:?}?)",
                input.to_ascii_lowercase()
            )));
        }
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_owned()
        };
        for component in repository.split('/') {
            check_path_component(component).map_err(fail)?;
        }
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(fail(format!(
                "the name is longer than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository,
            tag,
            digest,
        })
    }

    /// The host (and port) that serves the registry API: Docker Hub's API is not at docker.io.
    pub fn api_host(&self) -> &str {
        api_host(&self.registry)
    }

    /// `registry/repository` without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository at `digest`.
    pub fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(digest.clone()),
        }
    }

    /// The short form people type: `ubuntu:22.04` instead of `docker.io/library/ubuntu:22.04`.
    pub fn familiar(&self) -> String {
        let mut out = if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.repository)
                .to_owned()
        } else {
            self.name()
        };
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(&digest.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// The API host of a registry name (`docker.io` → `registry-1.docker.io`).
pub(super) fn api_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_API_HOST
    } else {
        registry
    }
}

/// Normalizes what people pass to `login`: `docker.io`, `index.docker.io`,
/// `https://index.docker.io/v1/`, `https://ghcr.io`, `localhost:5000`.
pub(super) fn normalize_registry(input: &str) -> Result<String, ReferenceError> {
    let trimmed = input
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = trimmed.split('/').next().unwrap_or_default();
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    };
    check_registry(host).map_err(|reason| ReferenceError {
        input: input.to_owned(),
        reason,
    })?;
    Ok(host.to_owned())
}

/// docker/distribution's splitDockerDomain.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.starts_with('[')
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            let registry = if first == "index.docker.io" {
                DOCKER_HUB
            } else {
                first
            };
            (registry, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn parse_digest(s: &str) -> Result<Digest, String> {
    let Some((algorithm, hex)) = s.split_once(':') else {
        return Err(format!(
            "the digest {s:?} has no algorithm (expected sha256:<64 hex>)"
        ));
    };
    if algorithm != "sha256" {
        return Err(format!(
            "the digest algorithm {algorithm:?} is not supported (only sha256)"
        ));
    }
    Digest::parse(s).ok_or_else(|| {
        format!(
            "the digest must be sha256: followed by 64 lowercase hex characters, got {} characters",
            hex.len()
        )
    })
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok_first = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let ok_rest = tag
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if tag.is_empty() {
        Err("the tag after ':' is empty".into())
    } else if tag.len() > TAG_LENGTH_MAX {
        Err(format!(
            "the tag is longer than {TAG_LENGTH_MAX} characters"
        ))
    } else if !ok_first || !ok_rest {
        Err(format!(
            "the tag {tag:?} is invalid: tags are letters, digits, '_', '.' and '-', \
             and do not start with '.' or '-'"
        ))
    } else {
        Ok(())
    }
}

fn check_registry(registry: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("the registry {registry:?} is invalid: {why}"));
    let (host, port) = if let Some(rest) = registry.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return bad("an IPv6 address needs a closing ']'");
        };
        if addr.is_empty() || !addr.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return bad("not an IPv6 address");
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return bad("unexpected characters after ']'"),
            },
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return bad("the port must be a number");
        }
    }
    if registry.starts_with('[') {
        return Ok(());
    }
    if host.is_empty() {
        return bad("the host name is empty");
    }
    for label in host.split('.') {
        let ok = !label.is_empty()
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return bad(
                "host names are dot-separated labels of letters, digits and inner '-' \
                 (and an optional :port)",
            );
        }
    }
    Ok(())
}

/// One path component: `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn check_path_component(component: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "the repository path component {component:?} is invalid: use lowercase letters and \
             digits, separated by '.', '_', '__' or '-' (not at the start or end)"
        ))
    };
    if component.is_empty() {
        return Err("the repository path has an empty component ('//' or a trailing '/')".into());
    }
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return bad();
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return bad();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        (
            r.registry,
            r.repository,
            r.tag,
            r.digest.map(|d| d.to_string()),
        )
    }

    fn t(
        registry: &str,
        repo: &str,
        tag: Option<&str>,
    ) -> (String, String, Option<String>, Option<String>) {
        (registry.into(), repo.into(), tag.map(Into::into), None)
    }

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(parts("ubuntu"), t("docker.io", "library/ubuntu", None));
        assert_eq!(
            parts("ubuntu:22.04"),
            t("docker.io", "library/ubuntu", Some("22.04"))
        );
        assert_eq!(parts("user/app"), t("docker.io", "user/app", None));
        assert_eq!(
            parts("docker.io/ubuntu"),
            t("docker.io", "library/ubuntu", None)
        );
        assert_eq!(
            parts("index.docker.io/ubuntu"),
            t("docker.io", "library/ubuntu", None)
        );
        assert_eq!(
            parts("docker.io/library/ubuntu:x"),
            t("docker.io", "library/ubuntu", Some("x"))
        );
        assert_eq!(parts("a/b/c"), t("docker.io", "a/b/c", None));
    }

    #[test]
    fn registries_ports_and_localhost() {
        assert_eq!(parts("localhost/x"), t("localhost", "x", None));
        assert_eq!(parts("localhost:5000/x"), t("localhost:5000", "x", None));
        assert_eq!(
            parts("localhost:5000/x:1"),
            t("localhost:5000", "x", Some("1"))
        );
        assert_eq!(
            parts("127.0.0.1:5000/a/b:tag"),
            t("127.0.0.1:5000", "a/b", Some("tag"))
        );
        assert_eq!(
            parts("ghcr.io/org/app:v1.2.3"),
            t("ghcr.io", "org/app", Some("v1.2.3"))
        );
        assert_eq!(parts("registry:5000/app"), t("registry:5000", "app", None));
        assert_eq!(parts("[::1]:5000/app:t"), t("[::1]:5000", "app", Some("t")));
        assert_eq!(parts("[fe80::1]/app"), t("[fe80::1]", "app", None));
        assert_eq!(
            parts("123.dkr.ecr.us-east-1.amazonaws.com/a-b/c_d"),
            t("123.dkr.ecr.us-east-1.amazonaws.com", "a-b/c_d", None)
        );
        // Without '.', ':' or localhost the first component is a path, like docker does.
        assert_eq!(parts("registry/app"), t("docker.io", "registry/app", None));
        // An uppercase first component can only be a host name.
        assert_eq!(parts("Registry/app"), t("Registry", "app", None));
    }

    #[test]
    fn digests_with_and_without_tags() {
        let d = format!("sha256:{HEX}");
        let (reg, repo, tag, digest) = parts(&format!("localhost:5000/x@{d}"));
        assert_eq!(
            (reg.as_str(), repo.as_str(), tag),
            ("localhost:5000", "x", None)
        );
        assert_eq!(digest.as_deref(), Some(d.as_str()));
        let (_, repo, tag, digest) = parts(&format!("ubuntu:22.04@{d}"));
        assert_eq!(
            (repo.as_str(), tag.as_deref()),
            ("library/ubuntu", Some("22.04"))
        );
        assert_eq!(digest.as_deref(), Some(d.as_str()));
    }

    #[test]
    fn separators_inside_components() {
        for ok in [
            "a.b",
            "a_b",
            "a__b",
            "a-b",
            "a---b",
            "a-b.c_d__e",
            "0",
            "a0-9",
        ] {
            assert!(Reference::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["a..b", "a___b", "a._b", "-a", "a-", ".a", "a.", "_a", "a_"] {
            assert!(Reference::parse(&format!("x.io/{bad}")).is_err(), "{bad}");
        }
    }

    #[test]
    fn malformed_references_have_clear_errors() {
        let err = |s: &str| Reference::parse(s).unwrap_err().reason;
        assert!(err("").contains("empty"));
        assert!(err("Ubuntu").contains("lowercase"));
        assert!(err("ghcr.io/Org/App").contains("lowercase"));
        assert!(err("ubuntu:").contains("tag"));
        assert!(err("ubuntu:-x").contains("tag"));
        assert!(err(&format!("ubuntu:{}", "a".repeat(129))).contains("128"));
        assert!(err("ubuntu@sha256:abc").contains("64"));
        assert!(err(&format!("ubuntu@sha512:{HEX}{HEX}")).contains("sha512"));
        assert!(err("ubuntu@abc").contains("algorithm"));
        assert!(err(HEX).contains("image ID"));
        assert!(err("localhost:abc/x").contains("port"));
        assert!(err("localhost:5000/").contains("missing"));
        assert!(err("a//b").contains("empty component"));
        assert!(err("ex_ample.com/x").contains("host"));
        assert!(err("-bad.io/x").contains("host"));
        assert!(err("x.io/a b").contains("invalid"));
        assert!(err("x.io/a:b:c").contains("tag"));
        assert!(err(&format!("x.io/{}", "a".repeat(260))).contains("255"));
        assert!(err("[::1/x").contains("']'"));
    }

    #[test]
    fn display_and_familiar_forms() {
        let r = Reference::parse("ubuntu:22.04").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:22.04");
        assert_eq!(r.familiar(), "ubuntu:22.04");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = Reference::parse("localhost:5000/a/b:t").unwrap();
        assert_eq!(r.to_string(), "localhost:5000/a/b:t");
        assert_eq!(r.familiar(), "localhost:5000/a/b:t");
        assert_eq!(r.api_host(), "localhost:5000");
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(
            r.with_digest(&d).to_string(),
            format!("localhost:5000/a/b@sha256:{HEX}")
        );
        // Round trip.
        let again = Reference::parse(&r.to_string()).unwrap();
        assert_eq!(again, r);
    }

    #[test]
    fn login_registry_names_normalize() {
        for hub in [
            "docker.io",
            "index.docker.io",
            "https://index.docker.io/v1/",
            "registry-1.docker.io",
        ] {
            assert_eq!(normalize_registry(hub).unwrap(), "docker.io", "{hub}");
        }
        assert_eq!(normalize_registry("https://ghcr.io").unwrap(), "ghcr.io");
        assert_eq!(
            normalize_registry("localhost:5000").unwrap(),
            "localhost:5000"
        );
        assert!(normalize_registry("bad host").is_err());
    }
}
