//! Where credentials come from: docker's `config.json` (`auths`, `credsStore`, `credHelpers`),
//! containers' `auth.json` (`REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`), and
//! `docker-credential-*` helpers; and writing a login back.
//!
//! Lookups are lazy and per registry: only the entry and the helper for the registry being pushed
//! to are read or run, so a broken entry or helper for another registry cannot break a push. A
//! failing helper for the registry itself becomes a warning and the push goes on anonymously (a
//! later 401 then names the failure).

use super::reference::{DOCKER_HUB, DOCKER_HUB_CONFIG_KEY};
use super::secret::{Secret, scrub};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What to authenticate with. `Debug` redacts every secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (docker's `identitytoken`, or a helper answering `<token>`),
    /// exchanged at the registry's token endpoint.
    IdentityToken {
        username: Option<String>,
        token: Secret,
    },
    /// A bearer token sent to the registry as is (docker's `registrytoken`).
    RegistryToken(Secret),
}

impl Credential {
    pub fn basic(username: impl Into<String>, password: impl Into<Secret>) -> Self {
        Credential::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub fn username(&self) -> Option<&str> {
        match self {
            Credential::Basic { username, .. } => Some(username),
            Credential::IdentityToken { username, .. } => username.as_deref(),
            Credential::RegistryToken(_) => None,
        }
    }

    pub(crate) fn secret(&self) -> &str {
        match self {
            Credential::Basic { password, .. } => password.expose(),
            Credential::IdentityToken { token, .. } => token.expose(),
            Credential::RegistryToken(token) => token.expose(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON ({message}); not overwriting it")]
    Parse { path: PathBuf, message: String },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credential helper docker-credential-{helper}: {message}")]
    Helper { helper: String, message: String },
    #[error("invalid login: {0}")]
    Invalid(String),
}

/// The result of a lookup: the credential (or none: anonymous), where it came from (a file or a
/// helper, for messages) and warnings about entries or helpers that were skipped.
#[derive(Clone, Debug, Default)]
pub struct Resolved {
    pub credential: Option<Credential>,
    pub source: Option<String>,
    pub warnings: Vec<String>,
}

/// An ordered list of auth files plus explicit per-registry credentials.
#[derive(Clone, Debug)]
pub struct Keychain {
    files: Vec<PathBuf>,
    explicit: Vec<(String, Credential)>,
    helper_path: Option<OsString>,
    helper_timeout: Duration,
}

impl Default for Keychain {
    fn default() -> Self {
        Keychain::from_env()
    }
}

impl Keychain {
    /// The files named by the environment, in the order they are searched:
    /// `REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, `$XDG_RUNTIME_DIR/containers/auth.json`,
    /// `$XDG_CONFIG_HOME/containers/auth.json` (or `~/.config/…`), `~/.docker/config.json`.
    pub fn from_env() -> Self {
        Keychain::with_files(auth_files_from(|k| std::env::var_os(k)))
    }

    /// No files at all: anonymous unless credentials are added with [`Keychain::with_credential`].
    pub fn anonymous() -> Self {
        Keychain::with_files(Vec::new())
    }

    /// Exactly these files (docker `config.json` or containers `auth.json` format), in order.
    pub fn with_files(files: Vec<PathBuf>) -> Self {
        Keychain {
            files,
            explicit: Vec::new(),
            helper_path: None,
            helper_timeout: Duration::from_secs(30),
        }
    }

    /// Credentials for one registry that win over every file (e.g. from command-line flags).
    pub fn with_credential(mut self, registry: &str, credential: Credential) -> Self {
        self.explicit.push((registry.to_owned(), credential));
        self
    }

    /// The search path for `docker-credential-*` helpers instead of `$PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> Self {
        self.helper_path = Some(path.into());
        self
    }

    pub fn with_helper_timeout(mut self, timeout: Duration) -> Self {
        self.helper_timeout = timeout;
        self
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Finds the credential for `registry` (as in a [`super::Reference`], e.g. `docker.io`,
    /// `localhost:5000`); `repository` selects namespaced `auth.json` entries (`quay.io/org`).
    pub fn resolve(&self, registry: &str, repository: &str) -> Resolved {
        let mut resolved = Resolved::default();
        if let Some((_, credential)) = self.explicit.iter().find(|(r, _)| r == registry) {
            resolved.credential = Some(credential.clone());
            resolved.source = Some("explicit credentials".into());
            return resolved;
        }
        for file in &self.files {
            if let Some((credential, source)) =
                self.lookup_file(file, registry, repository, &mut resolved.warnings)
            {
                resolved.credential = Some(credential);
                resolved.source = Some(source);
                break;
            }
        }
        resolved
    }

    fn lookup_file(
        &self,
        path: &Path,
        registry: &str,
        repository: &str,
        warnings: &mut Vec<String>,
    ) -> Option<(Credential, String)> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                warnings.push(format!("{}: {e}; skipped", path.display()));
                return None;
            }
        };
        let file: AuthFile = match serde_json::from_str(&text) {
            Ok(file) => file,
            Err(e) => {
                // Only the position: serde's messages can quote values, and values are secrets.
                warnings.push(format!(
                    "{}: not valid JSON (line {}, column {}); skipped",
                    path.display(),
                    e.line(),
                    e.column()
                ));
                return None;
            }
        };
        let hosts = host_aliases(registry);
        let helper_server = if registry == DOCKER_HUB {
            DOCKER_HUB_CONFIG_KEY
        } else {
            registry
        };

        let specific = file
            .cred_helpers
            .iter()
            .find(|(key, _)| hosts.contains(&normalize_key(key).as_str()));
        if let Some((_, helper)) = specific {
            return match self.helper_get(helper, helper_server) {
                Ok(Some(credential)) => Some((
                    credential,
                    format!(
                        "credential helper docker-credential-{helper} (credHelpers in {})",
                        path.display()
                    ),
                )),
                Ok(None) => None,
                Err(e) => {
                    warnings.push(format!("{e} (credHelpers in {})", path.display()));
                    None
                }
            };
        }

        if let Some(store) = file.creds_store.as_deref().filter(|s| !s.is_empty()) {
            match self.helper_get(store, helper_server) {
                Ok(Some(credential)) => {
                    return Some((
                        credential,
                        format!(
                            "credential helper docker-credential-{store} (credsStore in {})",
                            path.display()
                        ),
                    ));
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!(
                    "{e} (credsStore in {}); trying its auths entries",
                    path.display()
                )),
            }
        }

        for candidate in namespace_candidates(&hosts, repository) {
            let Some((key, value)) = file
                .auths
                .iter()
                .find(|(key, _)| normalize_key(key) == candidate)
            else {
                continue;
            };
            match decode_entry(value) {
                Ok(Some(credential)) => {
                    return Some((credential, format!("auths[{key:?}] in {}", path.display())));
                }
                Ok(None) => {}
                Err(why) => warnings.push(format!(
                    "auths[{key:?}] in {}: {why}; skipped",
                    path.display()
                )),
            }
        }
        None
    }

    fn helper_get(
        &self,
        helper: &str,
        server: &str,
    ) -> Result<Option<Credential>, CredentialError> {
        let out = run_helper(
            helper,
            "get",
            server.as_bytes(),
            self.helper_path.as_deref(),
            self.helper_timeout,
        )?;
        if !out.success {
            let text = format!("{} {}", out.stdout, out.stderr);
            if text.to_ascii_lowercase().contains("credentials not found") {
                return Ok(None);
            }
            return Err(CredentialError::Helper {
                helper: helper.to_owned(),
                message: format!("`get` failed: {}", first_line(&text)),
            });
        }
        #[derive(Deserialize)]
        struct HelperAnswer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: HelperAnswer =
            serde_json::from_str(&out.stdout).map_err(|e| CredentialError::Helper {
                helper: helper.to_owned(),
                message: format!(
                    "`get` printed something that is not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            })?;
        if answer.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if answer.username == "<token>" {
            Credential::IdentityToken {
                username: None,
                token: Secret::new(answer.secret),
            }
        } else {
            Credential::basic(answer.username, answer.secret)
        }))
    }
}

/// The auth files the environment names, in search order (see [`Keychain::from_env`]).
/// `var` reads one environment variable; tests pass a map instead of touching the process.
pub(super) fn auth_files_from(var: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    let non_empty = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = non_empty("HOME");
    let mut files = Vec::new();
    if let Some(file) = non_empty("REGISTRY_AUTH_FILE") {
        files.push(file);
    }
    let docker_config = non_empty("DOCKER_CONFIG");
    if let Some(dir) = &docker_config {
        files.push(dir.join("config.json"));
    }
    if let Some(dir) = non_empty("XDG_RUNTIME_DIR") {
        files.push(dir.join("containers/auth.json"));
    }
    match (non_empty("XDG_CONFIG_HOME"), &home) {
        (Some(dir), _) => files.push(dir.join("containers/auth.json")),
        (None, Some(home)) => files.push(home.join(".config/containers/auth.json")),
        (None, None) => {}
    }
    if docker_config.is_none() {
        if let Some(home) = &home {
            files.push(home.join(".docker/config.json"));
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.clone()));
    files
}

/// Where `login` writes: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config_file_from(var: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let non_empty = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("DOCKER_CONFIG")
        .map(|dir| dir.join("config.json"))
        .or_else(|| non_empty("HOME").map(|home| home.join(".docker/config.json")))
}

/// Where a login was stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredIn {
    File(PathBuf),
    /// The helper's name (`docker-credential-<name>`); the file only gets an empty entry.
    Helper(String),
}

/// Writes `username`/`password` for `registry` into a docker `config.json`, the way
/// `docker login` does: through the registry's credential helper or `credsStore` when the file
/// configures one, else as a base64 `auth` entry. The file is replaced atomically with mode 0600;
/// every other field in it is kept.
pub(super) fn store_credentials(
    config_file: &Path,
    registry: &str,
    username: &str,
    password: &Secret,
    helper_path: Option<&OsStr>,
) -> Result<StoredIn, CredentialError> {
    if username.is_empty() || username.contains(':') {
        return Err(CredentialError::Invalid(
            "the username must be non-empty and must not contain ':'".into(),
        ));
    }
    if password.is_empty() {
        return Err(CredentialError::Invalid("the password is empty".into()));
    }
    // Follow a symlinked config (dotfile managers) instead of replacing the link.
    let target = std::fs::canonicalize(config_file).unwrap_or_else(|_| config_file.to_owned());
    let mut root: serde_json::Value = match std::fs::read_to_string(&target) {
        Ok(text) if text.trim().is_empty() => serde_json::json!({}),
        Ok(text) => serde_json::from_str(&text).map_err(|e| CredentialError::Parse {
            path: target.clone(),
            message: format!("line {}, column {}", e.line(), e.column()),
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(source) => {
            return Err(CredentialError::Read {
                path: target.clone(),
                source,
            });
        }
    };
    let Some(object) = root.as_object_mut() else {
        return Err(CredentialError::Parse {
            path: target,
            message: "the top level is not an object".into(),
        });
    };
    let key = if registry == DOCKER_HUB {
        DOCKER_HUB_CONFIG_KEY
    } else {
        registry
    };
    let hosts = host_aliases(registry);
    let helper = object
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| {
            h.iter()
                .find(|(k, _)| hosts.contains(&normalize_key(k).as_str()))
                .and_then(|(_, v)| v.as_str().map(str::to_owned))
        })
        .or_else(|| {
            object
                .get("credsStore")
                .and_then(|s| s.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        });

    let entry = if let Some(helper) = &helper {
        let payload = serde_json::json!({
            "ServerURL": key,
            "Username": username,
            "Secret": password.expose(),
        })
        .to_string();
        let out = run_helper(
            helper,
            "store",
            payload.as_bytes(),
            helper_path,
            Duration::from_secs(30),
        )?;
        if !out.success {
            let text = scrub(
                &format!("{} {}", out.stdout, out.stderr),
                &[password.expose()],
            );
            return Err(CredentialError::Helper {
                helper: helper.clone(),
                message: format!("`store` failed: {}", first_line(&text)),
            });
        }
        serde_json::json!({})
    } else {
        serde_json::json!({ "auth": BASE64.encode(format!("{username}:{}", password.expose())) })
    };
    let auths = object
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    if let Some(auths) = auths.as_object_mut() {
        auths.insert(key.to_owned(), entry);
    }
    let text = serde_json::to_string_pretty(&root).map_err(|e| CredentialError::Write {
        path: target.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    write_private_atomically(&target, text.as_bytes())?;
    Ok(match helper {
        Some(helper) => StoredIn::Helper(helper),
        None => StoredIn::File(target),
    })
}

fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<(), CredentialError> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let werr = |source| CredentialError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(werr)?;
    // A sibling temp file (0600 from the start), then rename: readers see the old or the new file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(dir)
        .map_err(werr)?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(werr)?;
    tmp.write_all(bytes).map_err(werr)?;
    tmp.write_all(b"\n").map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    tmp.persist(path).map_err(|e| werr(e.error))?;
    Ok(())
}

#[derive(Deserialize, Default)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, serde_json::Value>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// One `auths` entry; `Ok(None)` for an empty entry (docker writes `{}` when a helper holds
/// the secret).
fn decode_entry(value: &serde_json::Value) -> Result<Option<Credential>, String> {
    let entry: AuthEntry = serde_json::from_value(value.clone())
        .map_err(|_| "the entry is not an object of strings".to_owned())?;
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let from_auth = match non_empty(entry.auth) {
        Some(auth) => {
            let raw = BASE64
                .decode(auth.trim())
                .map_err(|_| "`auth` is not valid base64".to_owned())?;
            let text = String::from_utf8(raw).map_err(|_| "`auth` is not UTF-8".to_owned())?;
            let (user, pass) = text
                .split_once(':')
                .ok_or_else(|| "`auth` is not base64 of user:password".to_owned())?;
            Some((user.to_owned(), pass.to_owned()))
        }
        None => None,
    };
    let username = non_empty(entry.username).or_else(|| from_auth.as_ref().map(|(u, _)| u.clone()));
    if let Some(token) = non_empty(entry.identitytoken) {
        return Ok(Some(Credential::IdentityToken {
            username,
            token: Secret::new(token),
        }));
    }
    if let Some(token) = non_empty(entry.registrytoken) {
        return Ok(Some(Credential::RegistryToken(Secret::new(token))));
    }
    if let Some((user, pass)) = from_auth {
        return Ok(Some(Credential::basic(user, pass)));
    }
    match (username, non_empty(entry.password)) {
        (Some(user), Some(pass)) => Ok(Some(Credential::basic(user, pass))),
        _ => Ok(None),
    }
}

fn host_aliases(registry: &str) -> Vec<&str> {
    if registry == DOCKER_HUB {
        vec![
            DOCKER_HUB,
            "index.docker.io",
            "registry-1.docker.io",
            "registry.hub.docker.com",
        ]
    } else {
        vec![registry]
    }
}

/// `https://index.docker.io/v1/` → `index.docker.io`; `quay.io/org/` → `quay.io/org`.
fn normalize_key(key: &str) -> String {
    match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => rest.split('/').next().unwrap_or_default().to_owned(),
        None => key.trim_end_matches('/').to_owned(),
    }
}

/// `host/a/b/c`, `host/a/b`, `host/a`, `host` for every alias: most specific first, as
/// containers-auth.json(5) prescribes.
fn namespace_candidates(hosts: &[&str], repository: &str) -> Vec<String> {
    let mut out = Vec::new();
    for host in hosts {
        let mut path = repository;
        loop {
            if path.is_empty() {
                break;
            }
            out.push(format!("{host}/{path}"));
            match path.rfind('/') {
                Some(i) => path = &path[..i],
                None => break,
            }
        }
    }
    out.extend(hosts.iter().map(|h| h.to_string()));
    out
}

fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("(no output)");
    let mut line: String = line.chars().take(200).collect();
    if line.is_empty() {
        line = "(no output)".into();
    }
    line
}

struct HelperOutput {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin, bounded by `timeout`
/// (helpers can hang waiting for a keyring unlock prompt).
fn run_helper(
    helper: &str,
    action: &str,
    input: &[u8],
    search_path: Option<&OsStr>,
    timeout: Duration,
) -> Result<HelperOutput, CredentialError> {
    let herr = |message: String| CredentialError::Helper {
        helper: helper.to_owned(),
        message,
    };
    // The name comes from a config file: keep it a plain file name, never a path.
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || helper.starts_with('.')
    {
        return Err(herr("invalid helper name".into()));
    }
    let program = format!("docker-credential-{helper}");
    let path = search_path
        .map(OsString::from)
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let exe = std::env::split_paths(&path)
        .map(|dir| dir.join(&program))
        .find(|p| p.is_file())
        .ok_or_else(|| herr(format!("{program} is not on PATH")))?;
    let mut child = Command::new(&exe)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| herr(format!("cannot start {}: {e}", exe.display())))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE here; its exit status tells the story.
        let _ = stdin.write_all(input);
    }
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(pipe) = pipe {
                let _ = pipe.take(1 << 20).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_thread = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err_thread = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(herr(format!(
                    "`{action}` did not finish within {}s",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(herr(format!("waiting for it: {e}"))),
        }
    };
    let stdout = out_thread.join().unwrap_or_default();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(HelperOutput {
        success: status.success(),
        stdout,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `text` written to `dir/name`; its path.
    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        write(&path, text);
        path
    }

    /// A temporary folder holding the config file `name` with `contents`; the file's path.
    fn config(name: &str, contents: impl std::fmt::Display) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), name, &contents.to_string());
        (dir, path)
    }

    /// `config("config.json", contents)` beside the fake helpers of [`fake_helpers`]: the
    /// folder, the helpers' folder and the config file.
    fn config_with_helpers(
        contents: impl std::fmt::Display,
    ) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let (dir, cfg) = config("config.json", contents);
        let bin = fake_helpers(dir.path());
        (dir, bin, cfg)
    }

    fn read_json(path: &Path) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(format!("docker-credential-{name}"));
        write(&path, &format!("#!/bin/sh\n{body}\n"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn b64(s: &str) -> String {
        BASE64.encode(s)
    }

    /// A fake `docker-credential-test`: answers for reg.example and 127.0.0.1:5000, "not found"
    /// otherwise, and records every call; `store` saves its stdin.
    fn fake_helpers(dir: &Path) -> PathBuf {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        script(
            &bin,
            "test",
            r#"read server
echo "$1 $server" >> "$(dirname "$0")/calls"
case "$1" in
  store) echo "$server" > "$(dirname "$0")/stored"; exit 0 ;;
esac
case "$server" in
  reg.example) echo '{"ServerURL":"reg.example","Username":"helper-user","Secret":"helper-pass"}' ;;
  127.0.0.1:5000) echo '{"ServerURL":"127.0.0.1:5000","Username":"<token>","Secret":"refresh-tok"}' ;;
  https://index.docker.io/v1/) echo '{"ServerURL":"x","Username":"hubuser","Secret":"hubpass"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac"#,
        );
        script(
            &bin,
            "broken",
            "echo 'keyring locked: cannot unlock' >&2; exit 3",
        );
        bin
    }

    fn calls(bin: &Path) -> String {
        std::fs::read_to_string(bin.join("calls")).unwrap_or_default()
    }

    #[test]
    fn auths_entries_decode_in_every_form() {
        let (_dir, cfg) = config(
            "config.json",
            serde_json::json!({
                "auths": {
                    "https://index.docker.io/v1/": {"auth": b64("hub:hubpw")},
                    "ghcr.io": {"auth": b64("gh:ghpw"), "identitytoken": "idtok"},
                    "http://plain.example/v2/": {"username": "u", "password": "p"},
                    "tok.example": {"registrytoken": "rtok"},
                    "broken.example": {"auth": "%%%not-base64"},
                    "weird.example": 42,
                    "empty.example": {}
                }
            }),
        );
        let kc = Keychain::with_files(vec![cfg.clone()]);
        let cred = |r: &str| kc.resolve(r, "x/y").credential;
        assert_eq!(cred("docker.io"), Some(Credential::basic("hub", "hubpw")));
        assert_eq!(
            cred("ghcr.io"),
            Some(Credential::IdentityToken {
                username: Some("gh".into()),
                token: Secret::new("idtok")
            })
        );
        assert_eq!(cred("plain.example"), Some(Credential::basic("u", "p")));
        assert_eq!(
            cred("tok.example"),
            Some(Credential::RegistryToken(Secret::new("rtok")))
        );
        assert_eq!(cred("empty.example"), None);
        assert_eq!(cred("unknown.example"), None);
        // A broken entry for the registry itself: skipped with a warning, never the value.
        let r = kc.resolve("broken.example", "x");
        assert_eq!(r.credential, None);
        assert!(r.warnings[0].contains("base64"), "{:?}", r.warnings);
        assert!(!r.warnings[0].contains("%%%"));
        // Unrelated broken entries do not disturb other registries.
        assert!(kc.resolve("docker.io", "library/x").warnings.is_empty());
        assert!(kc.resolve("weird.example", "x").warnings[0].contains("not an object"));
        let source = kc.resolve("docker.io", "x").source.unwrap();
        assert!(
            source.contains("index.docker.io") && source.contains("config.json"),
            "{source}"
        );
    }

    #[test]
    fn namespaced_entries_win_over_the_host_entry() {
        let (_dir, cfg) = config(
            "auth.json",
            serde_json::json!({"auths": {
                "quay.io": {"auth": b64("host:1")},
                "quay.io/org": {"auth": b64("org:2")},
                "quay.io/org/app": {"auth": b64("app:3")},
            }}),
        );
        let kc = Keychain::with_files(vec![cfg]);
        let user = |repo: &str| kc.resolve("quay.io", repo).credential.unwrap();
        assert_eq!(user("org/app").username(), Some("app"));
        assert_eq!(user("org/other").username(), Some("org"));
        assert_eq!(user("else/x").username(), Some("host"));
    }

    #[test]
    fn files_are_searched_in_order_and_bad_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let first = dir.path().join("first.json");
        let second = dir.path().join("second.json");
        write(&first, "{ this is not json, hunter2 }");
        write(
            &second,
            &serde_json::json!({"auths": {"r.example": {"auth": b64("second:pw")}}}).to_string(),
        );
        let kc = Keychain::with_files(vec![dir.path().join("missing.json"), first, second]);
        let r = kc.resolve("r.example", "x");
        assert_eq!(r.credential.unwrap().username(), Some("second"));
        assert_eq!(r.warnings.len(), 1);
        assert!(r.warnings[0].contains("not valid JSON"));
        assert!(!r.warnings[0].contains("hunter2"));
    }

    #[test]
    fn cred_helpers_and_creds_store_run_only_for_the_registry_asked_for() {
        let (_dir, bin, cfg) = config_with_helpers(serde_json::json!({
            "credHelpers": {
                "reg.example": "test",
                "127.0.0.1:5000": "test",
                "other.example": "broken",
                "missing.example": "does-not-exist"
            },
            "auths": {"fallback.example": {"auth": b64("file:pw")}}
        }));
        let kc = Keychain::with_files(vec![cfg.clone()]).with_helper_path(&bin);

        let r = kc.resolve("reg.example", "app");
        assert_eq!(
            r.credential,
            Some(Credential::basic("helper-user", "helper-pass"))
        );
        assert!(r.source.unwrap().contains("docker-credential-test"));
        assert!(r.warnings.is_empty());
        assert_eq!(
            kc.resolve("127.0.0.1:5000", "app").credential,
            Some(Credential::IdentityToken {
                username: None,
                token: Secret::new("refresh-tok")
            })
        );
        // The broken helper of other.example never runs for the registries above.
        assert_eq!(calls(&bin), "get reg.example\nget 127.0.0.1:5000\n");
        assert_eq!(
            kc.resolve("fallback.example", "x")
                .credential
                .unwrap()
                .username(),
            Some("file")
        );

        // Its own registry gets a warning naming the helper and its message, and no credential.
        let r = kc.resolve("other.example", "x");
        assert_eq!(r.credential, None);
        assert!(
            r.warnings[0].contains("docker-credential-broken"),
            "{:?}",
            r.warnings
        );
        assert!(r.warnings[0].contains("keyring locked"));
        let r = kc.resolve("missing.example", "x");
        assert!(r.warnings[0].contains("not on PATH"), "{:?}", r.warnings);
    }

    #[test]
    fn creds_store_not_found_and_broken_fall_back_to_auths() {
        let (dir, bin, cfg) = config_with_helpers(serde_json::json!({
            "credsStore": "test",
            "auths": {"https://index.docker.io/v1/": {}, "nf.example": {"auth": b64("nf:pw")}}
        }));
        let kc = Keychain::with_files(vec![cfg]).with_helper_path(&bin);
        assert_eq!(
            kc.resolve("docker.io", "library/x").credential,
            Some(Credential::basic("hubuser", "hubpass"))
        );
        let r = kc.resolve("nf.example", "x");
        assert_eq!(r.credential.unwrap().username(), Some("nf"));
        assert!(r.warnings.is_empty());

        let cfg2 = file(dir.path(), "config2.json", &serde_json::json!({"credsStore": "broken", "auths": {"a.example": {"auth": b64("a:pw")}}})
                .to_string());
        let kc = Keychain::with_files(vec![cfg2]).with_helper_path(&bin);
        let r = kc.resolve("a.example", "x");
        assert_eq!(r.credential.unwrap().username(), Some("a"));
        assert!(r.warnings[0].contains("broken"));
    }

    #[test]
    fn hanging_helpers_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        script(&bin, "slow", "exec sleep 10");
        let cfg = file(
            dir.path(),
            "config.json",
            r#"{"credHelpers": {"s.example": "slow"}}"#,
        );
        let kc = Keychain::with_files(vec![cfg])
            .with_helper_path(&bin)
            .with_helper_timeout(Duration::from_millis(200));
        let started = Instant::now();
        let r = kc.resolve("s.example", "x");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(r.warnings[0].contains("did not finish"), "{:?}", r.warnings);
    }

    #[test]
    fn helper_names_cannot_be_paths() {
        let err = run_helper(
            "../../bin/sh",
            "get",
            b"",
            Some(OsStr::new("/bin")),
            Duration::from_secs(1),
        );
        assert!(matches!(err, Err(CredentialError::Helper { .. })));
    }

    #[test]
    fn explicit_credentials_win() {
        let kc = Keychain::anonymous().with_credential("r.example", Credential::basic("cli", "pw"));
        assert_eq!(
            kc.resolve("r.example", "x").credential.unwrap().username(),
            Some("cli")
        );
        assert_eq!(kc.resolve("other.example", "x").credential, None);
    }

    /// An environment of exactly `pairs`, as `auth_files_from` and friends read one.
    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).map(OsString::from)
    }

    #[test]
    fn environment_decides_the_file_order() {
        let get = vars(&[
            ("HOME", "/home/u"),
            ("REGISTRY_AUTH_FILE", "/etc/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
        ]);
        assert_eq!(
            auth_files_from(&get),
            [
                "/etc/auth.json",
                "/run/user/1/containers/auth.json",
                "/home/u/.config/containers/auth.json",
                "/home/u/.docker/config.json"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(
            docker_config_file_from(&get),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );

        let get = vars(&[
            ("HOME", "/home/u"),
            ("DOCKER_CONFIG", "/cfg/docker"),
            ("XDG_CONFIG_HOME", "/cfg"),
        ]);
        assert_eq!(
            auth_files_from(&get),
            ["/cfg/docker/config.json", "/cfg/containers/auth.json"].map(PathBuf::from)
        );
        assert_eq!(
            docker_config_file_from(&get),
            Some(PathBuf::from("/cfg/docker/config.json"))
        );
    }

    #[test]
    fn store_writes_an_auth_entry_atomically_with_mode_0600_and_keeps_other_fields() {
        let (_dir, cfg) = config(
            "docker/config.json",
            r#"{"auths": {"keep.example": {"auth": "a2VlcDpwdw=="}}, "psFormat": "table"}"#,
        );
        let stored =
            store_credentials(&cfg, "127.0.0.1:5000", "user", &Secret::new("pa:ss"), None).unwrap();
        assert_eq!(stored, StoredIn::File(cfg.canonicalize().unwrap()));
        let mode = std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v = read_json(&cfg);
        assert_eq!(v["psFormat"], "table");
        assert_eq!(v["auths"]["keep.example"]["auth"], "a2VlcDpwdw==");
        let kc = Keychain::with_files(vec![cfg.clone()]);
        assert_eq!(
            kc.resolve("127.0.0.1:5000", "x").credential,
            Some(Credential::basic("user", "pa:ss"))
        );
        // Docker Hub goes under docker's historical key; no temp files are left behind.
        store_credentials(&cfg, "docker.io", "hub", &Secret::new("pw"), None).unwrap();
        let v = read_json(&cfg);
        assert!(v["auths"]["https://index.docker.io/v1/"]["auth"].is_string());
        let names: Vec<_> = std::fs::read_dir(cfg.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn store_goes_through_the_configured_helper() {
        let (_dir, bin, cfg) = config_with_helpers(r#"{"credHelpers": {"reg.example": "test"}}"#);
        let stored = store_credentials(
            &cfg,
            "reg.example",
            "u",
            &Secret::new("topsecret"),
            Some(bin.as_os_str()),
        )
        .unwrap();
        assert_eq!(stored, StoredIn::Helper("test".into()));
        // The helper got the JSON on stdin; the file got no secret.
        assert!(
            std::fs::read_to_string(bin.join("stored"))
                .unwrap()
                .contains("topsecret")
        );
        assert!(!std::fs::read_to_string(&cfg).unwrap().contains("topsecret"));
    }

    #[test]
    fn store_refuses_bad_input_and_unparsable_files() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config.json");
        assert!(store_credentials(&cfg, "r", "", &Secret::new("p"), None).is_err());
        assert!(store_credentials(&cfg, "r", "a:b", &Secret::new("p"), None).is_err());
        assert!(store_credentials(&cfg, "r", "a", &Secret::new(""), None).is_err());
        write(&cfg, "{ not json");
        let err = store_credentials(&cfg, "r", "a", &Secret::new("p"), None).unwrap_err();
        assert!(err.to_string().contains("not overwriting"));
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "{ not json");
    }

    #[test]
    fn debug_of_keychains_and_credentials_hides_secrets() {
        let kc = Keychain::anonymous()
            .with_credential("r", Credential::basic("bob", "pw-hunter2"))
            .with_credential("s", Credential::RegistryToken(Secret::new("tok-hunter3")));
        let shown = format!("{kc:?}");
        assert!(shown.contains("bob"));
        assert!(
            !shown.contains("hunter2") && !shown.contains("hunter3"),
            "{shown}"
        );
    }
}
