//! The session layer, over a [`Transport`]: the `/v2/` ping that picks the scheme and learns
//! the auth method (WWW-Authenticate), Basic credentials and Bearer tokens cached per scope,
//! a fresh token after a 401, retries per the [`RetryPolicy`], and turning registry answers into
//! errors that say what failed and what to do.

use super::auth::{
    AuthScheme, CachedToken, Challenge, TokenResponse, is_loopback, merge_scopes,
    parse_www_authenticate, strip_port, url_authority,
};
use super::credentials::{Credential, Keychain, Resolved, StoredIn, store_credentials};
use super::errors::{RegistryError, registry_detail};
use super::mounts::BlobLocations;
use super::progress::{NoProgress, Progress};
use super::reference::{api_host, normalize_registry};
use super::secret::{Secret, redact_url, scrub};
use super::transport::{
    Body, Cause, Request, Resp, RetryPolicy, Route, SendFailure, Transport, TransportConfig,
    UreqTransport, encode_query, is_retryable_status,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use ureq::http;

/// Everything a [`Client`] needs to know up front.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub keychain: Keychain,
    /// Registries (`host` or `host:port`) allowed over plain HTTP or with unverified TLS, like
    /// docker's `insecure-registries`. Loopback registries (127.0.0.0/8, ::1, localhost) always are.
    pub insecure_registries: Vec<String>,
    pub retry: RetryPolicy,
    pub user_agent: String,
    /// How long a connection may take to open (at most `request_timeout`).
    pub connect_timeout: Duration,
    /// A write that makes no progress for this long counts as a dropped connection (when
    /// shorter than `request_timeout`).
    pub stall_timeout: Duration,
    /// The most one request may take in all, answer included (`--timeout`); then it is given
    /// up on, not retried. The one deadline for an answer: a silent registry and one that
    /// trickles its body are both given up on here.
    pub request_timeout: Duration,
    /// How often to report a request still waiting for its answer ([`Progress::waiting`]).
    pub waiting_interval: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            keychain: Keychain::from_env(),
            insecure_registries: Vec::new(),
            retry: RetryPolicy::default(),
            user_agent: format!("staticpack/{}", env!("CARGO_PKG_VERSION")),
            connect_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(120),
            waiting_interval: Duration::from_secs(10),
        }
    }
}

/// A registry as this client knows it after the ping.
pub(crate) struct Registry {
    /// As written in references: `docker.io`, `127.0.0.1:5000`.
    pub name: String,
    /// Where the API answers: `registry-1.docker.io`, `127.0.0.1:5000`.
    pub host: String,
    /// `https://host` or `http://host`.
    pub base: String,
    route: Route,
    auth: Mutex<AuthScheme>,
    credentials: Mutex<HashMap<String, Resolved>>,
}

pub(crate) struct Call<'a> {
    pub method: http::Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    /// Send credentials (for scopes, when the registry uses tokens). Off for the ping and for
    /// token requests, which carry their own.
    pub authenticate: bool,
    pub scopes: Vec<String>,
    pub repository: &'a str,
    /// Said in errors: "push blob sha256:… to", "push manifest v1 to".
    pub action: &'a str,
    /// Retry transport errors, 429 and 5xx here. Off for PATCH, whose retries must resume.
    pub retry: bool,
    /// The most body bytes to read from the answer; `None` is the cap for registry JSON.
    pub max_body: Option<u64>,
    /// Stream a 2xx answer's body into this file instead of memory (a pulled blob).
    pub save_to: Option<&'a Path>,
}

impl<'a> Call<'a> {
    /// `GET /v2/`, the API root: the ping, and the check of Basic credentials.
    fn api_root(reg: &Registry, authenticate: bool, action: &'a str, retry: bool) -> Self {
        Call {
            method: http::Method::GET,
            url: format!("{}/v2/", reg.base),
            headers: Vec::new(),
            body: Body::Empty,
            authenticate,
            scopes: Vec::new(),
            repository: "",
            action,
            retry,
            max_body: None,
            save_to: None,
        }
    }
}

/// A synchronous registry client. Cheap to share across threads: uploads run in parallel.
pub struct Client {
    options: ClientOptions,
    transport: Arc<dyn Transport>,
    registries: Mutex<HashMap<String, Arc<Registry>>>,
    tokens: Mutex<HashMap<String, CachedToken>>,
    /// Which repositories hold which blobs, learned by this client's pushes (for mounts).
    pub(crate) known_blobs: Mutex<BlobLocations>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated in a way that matters.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Client {
    pub fn new(options: ClientOptions) -> Self {
        let transport = UreqTransport::new(&TransportConfig {
            user_agent: &options.user_agent,
            connect_timeout: options.connect_timeout,
            stall_timeout: options.stall_timeout,
            request_timeout: options.request_timeout,
        });
        Client::with_transport(options, Arc::new(transport))
    }

    /// A client that sends through `transport` (tests script one).
    pub(crate) fn with_transport(options: ClientOptions, transport: Arc<dyn Transport>) -> Self {
        Client {
            transport,
            options,
            registries: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            known_blobs: Mutex::new(BlobLocations::default()),
        }
    }

    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    fn is_insecure(&self, name: &str) -> bool {
        let host = api_host(name);
        is_loopback(host)
            || self.options.insecure_registries.iter().any(|entry| {
                let entry = entry
                    .trim()
                    .trim_start_matches("https://")
                    .trim_start_matches("http://")
                    .trim_end_matches('/');
                entry == name
                    || entry == host
                    || (!entry.contains(':') && entry == strip_port(host))
            })
    }

    fn route_for(&self, authority: &str) -> Route {
        if is_loopback(authority) {
            Route::Direct
        } else if self.is_insecure(authority) {
            Route::Unverified
        } else {
            Route::Verified
        }
    }

    /// Pings `registry` (once per client): picks https or, for loopback and insecure
    /// registries, http; learns whether it wants Basic or Bearer auth.
    pub(crate) fn registry(
        &self,
        name: &str,
        p: &dyn Progress,
    ) -> Result<Arc<Registry>, RegistryError> {
        if let Some(reg) = lock(&self.registries).get(name) {
            return Ok(reg.clone());
        }
        let host = api_host(name).to_owned();
        let insecure = self.is_insecure(name);
        let make = |scheme: &str, route: Route| Registry {
            name: name.to_owned(),
            host: host.clone(),
            base: format!("{scheme}://{host}"),
            route,
            auth: Mutex::new(AuthScheme::Anonymous),
            credentials: Mutex::new(HashMap::new()),
        };
        let reg = if !insecure {
            let reg = make("https", Route::Verified);
            self.ping(&reg, true, p)?;
            reg
        } else {
            let route = self.route_for(&host);
            let tls = make("https", route);
            // An insecure registry may still speak TLS: try it once, then plain HTTP.
            match self.ping(&tls, false, p) {
                Ok(()) => tls,
                Err(tls_error) => {
                    p.note(&format!("{name}: no TLS ({tls_error}); trying plain HTTP"));
                    let plain = make("http", route);
                    self.ping(&plain, true, p)?;
                    plain
                }
            }
        };
        let reg = Arc::new(reg);
        lock(&self.registries).insert(name.to_owned(), reg.clone());
        Ok(reg)
    }

    fn ping(&self, reg: &Registry, retry: bool, p: &dyn Progress) -> Result<(), RegistryError> {
        let call = Call::api_root(reg, false, "reach the registry API", retry);
        let resp = self.execute(reg, &call, p)?;
        match resp.status {
            200..=299 => Ok(()),
            401 => {
                let challenges = challenges(&resp);
                let scheme = scheme_from(&challenges).ok_or_else(|| RegistryError::Protocol {
                    registry: reg.name.clone(),
                    message: "GET /v2/ answered 401 without a usable WWW-Authenticate challenge"
                        .into(),
                })?;
                p.note(&format!("{}: auth {}", reg.name, scheme_name(&scheme)));
                *lock(&reg.auth) = scheme;
                Ok(())
            }
            404 => Err(RegistryError::Protocol {
                registry: reg.name.clone(),
                message: format!(
                    "{} has no registry API at /v2/ (HTTP 404): is this an OCI registry?",
                    reg.base
                ),
            }),
            _ => Err(self.status_error(reg, "", call.action, &resp)),
        }
    }

    /// The credential for `repository` on `reg`, looked up once; warnings go to `p`.
    pub(crate) fn credential(
        &self,
        reg: &Registry,
        repository: &str,
        p: &dyn Progress,
    ) -> Option<Credential> {
        let mut cache = lock(&reg.credentials);
        if let Some(resolved) = cache.get(repository) {
            return resolved.credential.clone();
        }
        let resolved = self.options.keychain.resolve(&reg.name, repository);
        for warning in &resolved.warnings {
            p.note(&format!("credentials: {warning}"));
        }
        if let Some(source) = &resolved.source {
            p.note(&format!("{}: using credentials from {source}", reg.name));
        }
        let credential = resolved.credential.clone();
        cache.insert(repository.to_owned(), resolved);
        credential
    }

    pub(crate) fn resolved(&self, reg: &Registry, repository: &str) -> Resolved {
        lock(&reg.credentials)
            .get(repository)
            .cloned()
            .unwrap_or_default()
    }

    /// Sends `call`, retrying per the policy when `call.retry`, and answering one 401 with
    /// (new) credentials. Any status comes back as `Ok`; callers decide what is expected.
    pub(crate) fn execute(
        &self,
        reg: &Registry,
        call: &Call<'_>,
        p: &dyn Progress,
    ) -> Result<Resp, RegistryError> {
        let started = Instant::now();
        let mut failures = 0u32;
        let mut reauthenticated = false;
        let mut scopes = call.scopes.clone();
        // Credentials go only to the registry's own host, never to a storage redirect.
        let same_host = url_authority(&call.url).is_none_or(|a| a == reg.host);
        loop {
            let authorization = if same_host && call.authenticate {
                self.authorization(reg, call.repository, &scopes, call.action, p)?
            } else {
                None
            };
            let host = url_authority(&call.url).unwrap_or(&reg.host);
            let result = self.reporting_waits(host, p, || {
                self.transport.send(&Request {
                    method: call.method.clone(),
                    url: &call.url,
                    headers: &call.headers,
                    authorization: authorization.as_ref(),
                    body: &call.body,
                    route: reg.route,
                    max_body: call.max_body,
                    save_to: call.save_to,
                })
            });
            let resp = match result {
                Ok(resp) => resp,
                Err(failure) if failure.cause == Cause::LocalFile => {
                    if let Some(path) = call.save_to {
                        return Err(RegistryError::LocalWrite {
                            path: path.to_path_buf(),
                            reason: failure.message,
                        });
                    }
                    let path = match &call.body {
                        Body::File(section) => section.path.to_path_buf(),
                        _ => Default::default(),
                    };
                    return Err(RegistryError::LocalBlob {
                        path,
                        reason: failure.message,
                    });
                }
                Err(SendFailure {
                    cause: Cause::Timeout(timeout),
                    ..
                }) => {
                    return Err(RegistryError::Timeout {
                        registry: reg.name.clone(),
                        host: host.to_owned(),
                        action: format!(
                            "{} ({} {})",
                            call.action,
                            call.method,
                            redact_url(&call.url)
                        ),
                        seconds: timeout.as_secs(),
                    });
                }
                Err(failure) => {
                    let delay = (call.retry && failure.retryable)
                        .then(|| {
                            failures += 1;
                            self.options.retry.next_delay(failures, started, None)
                        })
                        .flatten();
                    if let Some(delay) = delay {
                        p.note(&format!(
                            "{}: {} {}: {}; retrying in {:.1}s",
                            reg.name,
                            call.method,
                            redact_url(&call.url),
                            failure.message,
                            delay.as_secs_f64()
                        ));
                        std::thread::sleep(delay);
                        continue;
                    }
                    return Err(RegistryError::Transport {
                        registry: reg.name.clone(),
                        action: format!(
                            "{} ({} {})",
                            call.action,
                            call.method,
                            redact_url(&call.url)
                        ),
                        message: failure.message,
                        retryable: failure.retryable,
                    });
                }
            };
            p.note(&format!(
                "{} {} → {}",
                call.method,
                redact_url(&call.url),
                resp.status
            ));
            if resp.status == 401 && same_host && call.authenticate && !reauthenticated {
                reauthenticated = true;
                if self.reauthenticate(reg, call.repository, &mut scopes, &resp, p) {
                    continue;
                }
                return Ok(resp);
            }
            if call.retry && is_retryable_status(resp.status) {
                failures += 1;
                let retry_after = resp
                    .header("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                if let Some(delay) = self
                    .options
                    .retry
                    .next_delay(failures, started, retry_after)
                {
                    p.note(&format!(
                        "{}: HTTP {} for {} {}; retrying in {:.1}s",
                        reg.name,
                        resp.status,
                        call.method,
                        redact_url(&call.url),
                        delay.as_secs_f64()
                    ));
                    std::thread::sleep(delay);
                    continue;
                }
            }
            return Ok(resp);
        }
    }

    /// Runs `send`, telling `p` every `waiting_interval` that `host` has not answered yet (a
    /// silent wait looks like a hang).
    fn reporting_waits<T>(&self, host: &str, p: &dyn Progress, send: impl FnOnce() -> T) -> T {
        let every = self.options.waiting_interval;
        if every.is_zero() {
            return send();
        }
        let (done, answered) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            s.spawn(move || {
                let started = Instant::now();
                // Ends when `done` is dropped, i.e. when the request is over.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    answered.recv_timeout(every)
                {
                    p.waiting(host, started.elapsed());
                }
            });
            let out = send();
            drop(done);
            out
        })
    }

    /// After a 401: learn the challenge, drop the cached token, say whether a retry can help.
    fn reauthenticate(
        &self,
        reg: &Registry,
        repository: &str,
        scopes: &mut Vec<String>,
        resp: &Resp,
        p: &dyn Progress,
    ) -> bool {
        let challenges = challenges(resp);
        let Some(scheme) = scheme_from(&challenges) else {
            return false;
        };
        let credential = self.credential(reg, repository, p);
        let previous = std::mem::replace(&mut *lock(&reg.auth), scheme.clone());
        match &scheme {
            AuthScheme::Bearer { realm, service } => {
                if let Some(scope) = challenges
                    .iter()
                    .find(|c| c.scheme == "bearer")
                    .and_then(|c| c.param("scope"))
                {
                    scopes.push(scope.to_owned());
                    *scopes = merge_scopes(scopes);
                }
                let key = token_key(realm, service, scopes, credential.as_ref());
                lock(&self.tokens).remove(&key);
                p.note(&format!("{}: 401, fetching a new token", reg.name));
                // A registry token from the config cannot be renewed: retrying would repeat it.
                !matches!(credential, Some(Credential::RegistryToken(_))) || previous != scheme
            }
            // Basic credentials were not sent yet (the ping said anonymous): now they will be.
            AuthScheme::Basic => {
                previous != AuthScheme::Basic
                    && matches!(credential, Some(Credential::Basic { .. }))
            }
            AuthScheme::Anonymous => false,
        }
    }

    /// The Authorization header value for a call, fetching a token when needed. Called ahead
    /// of parallel uploads too, so that they find the token cached instead of all asking at once.
    pub(crate) fn authorization(
        &self,
        reg: &Registry,
        repository: &str,
        scopes: &[String],
        action: &str,
        p: &dyn Progress,
    ) -> Result<Option<Secret>, RegistryError> {
        let scheme = lock(&reg.auth).clone();
        let credential = self.credential(reg, repository, p);
        match (scheme, credential) {
            (AuthScheme::Anonymous, _) => Ok(None),
            (AuthScheme::Basic, Some(Credential::Basic { username, password })) => {
                Ok(Some(basic_header(&username, &password)))
            }
            (AuthScheme::Basic, _) => Ok(None),
            (AuthScheme::Bearer { .. }, Some(Credential::RegistryToken(token))) => {
                Ok(Some(Secret::new(format!("Bearer {}", token.expose()))))
            }
            (AuthScheme::Bearer { realm, service }, credential) => {
                let token = self.token(
                    reg,
                    repository,
                    &realm,
                    &service,
                    scopes,
                    credential.as_ref(),
                    action,
                    p,
                )?;
                Ok(Some(Secret::new(format!("Bearer {}", token.expose()))))
            }
        }
    }

    /// A bearer token for `scopes`, from the cache or the realm.
    #[allow(clippy::too_many_arguments)]
    fn token(
        &self,
        reg: &Registry,
        repository: &str,
        realm: &str,
        service: &str,
        scopes: &[String],
        credential: Option<&Credential>,
        action: &str,
        p: &dyn Progress,
    ) -> Result<Secret, RegistryError> {
        let key = token_key(realm, service, scopes, credential);
        if let Some(cached) = lock(&self.tokens).get(&key) {
            if cached.expires > Instant::now() {
                return Ok(cached.token.clone());
            }
        }
        let Some(authority) = url_authority(realm).map(str::to_owned) else {
            return Err(RegistryError::Protocol {
                registry: reg.name.clone(),
                message: format!(
                    "the token realm {:?} is not an absolute URL",
                    redact_url(realm)
                ),
            });
        };
        if realm.starts_with("http://") && !self.is_insecure(&authority) {
            return Err(RegistryError::Protocol {
                registry: reg.name.clone(),
                message: format!(
                    "refusing to send credentials to the plain-HTTP token realm {}; \
                     list {authority} as an insecure registry if that is really intended",
                    redact_url(realm)
                ),
            });
        }
        let mut query: Vec<(&str, &str)> = Vec::new();
        if !service.is_empty() {
            query.push(("service", service));
        }
        let merged = merge_scopes(scopes);
        let (method, body, headers) = match credential {
            Some(Credential::IdentityToken { token, .. }) => {
                // OAuth2 refresh-token grant, as docker does with identity tokens.
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.expose()),
                    ("client_id", "staticpack"),
                ];
                if !service.is_empty() {
                    form.push(("service", service));
                }
                let scope = merged.join(" ");
                if !scope.is_empty() {
                    form.push(("scope", &scope));
                }
                let body = form
                    .iter()
                    .map(|(k, v)| format!("{k}={}", encode_query(v)))
                    .collect::<Vec<_>>()
                    .join("&");
                (
                    http::Method::POST,
                    Some(body),
                    vec![(
                        "content-type",
                        "application/x-www-form-urlencoded".to_owned(),
                    )],
                )
            }
            Some(Credential::Basic { username, .. }) => {
                query.push(("account", username));
                (http::Method::GET, None, Vec::new())
            }
            _ => (http::Method::GET, None, Vec::new()),
        };
        let mut url = realm.to_owned();
        if method == http::Method::GET {
            for scope in &merged {
                query.push(("scope", scope));
            }
        }
        for (i, (k, v)) in query.iter().enumerate() {
            let sep = if i == 0 && !url.contains('?') {
                '?'
            } else {
                '&'
            };
            url.push(sep);
            url.push_str(k);
            url.push('=');
            url.push_str(&encode_query(v));
        }
        let mut call = Call {
            method,
            url,
            headers,
            body: body
                .as_deref()
                .map_or(Body::Empty, |b| Body::Bytes(b.as_bytes())),
            authenticate: false,
            scopes: Vec::new(),
            repository,
            action,
            retry: true,
            max_body: None,
            save_to: None,
        };
        let authorization = match credential {
            Some(Credential::Basic { username, password }) => {
                Some(basic_header(username, password))
            }
            _ => None,
        };
        if let Some(value) = &authorization {
            call.headers
                .push(("authorization", value.expose().to_owned()));
        }
        // The realm is its own host: send through the agent that fits it.
        let realm_reg = Registry {
            name: reg.name.clone(),
            host: authority.clone(),
            base: String::new(),
            route: self.route_for(&authority),
            auth: Mutex::new(AuthScheme::Anonymous),
            credentials: Mutex::new(HashMap::new()),
        };
        let resp = self.execute(&realm_reg, &call, p)?;
        p.note(&format!(
            "{}: token for {} from {} → {}",
            reg.name,
            merged.join(" "),
            redact_url(realm),
            resp.status
        ));
        match resp.status {
            200..=299 => {
                let token = serde_json::from_slice::<TokenResponse>(&resp.body)
                    .ok()
                    .and_then(TokenResponse::into_token)
                    .ok_or_else(|| RegistryError::Protocol {
                        registry: reg.name.clone(),
                        message: format!(
                            "the token server {} answered without a token",
                            redact_url(realm)
                        ),
                    })?;
                let secret = token.token.clone();
                lock(&self.tokens).insert(key, token);
                Ok(secret)
            }
            _ => {
                let mut error = self.status_error(reg, repository, action, &resp);
                // Say that it was the token server that answered, not the registry.
                if let RegistryError::AuthenticationRequired { detail, .. }
                | RegistryError::CredentialsRejected { detail, .. }
                | RegistryError::Denied { detail, .. }
                | RegistryError::NotFound { detail, .. }
                | RegistryError::Status { detail, .. } = &mut error
                {
                    *detail = format!("token server {}: {detail}", redact_url(realm));
                }
                Err(error)
            }
        }
    }

    /// The error for an unexpected status, with the registry, repository and action, and for
    /// 401/403/404 what to do about it.
    pub(crate) fn status_error(
        &self,
        reg: &Registry,
        repository: &str,
        action: &str,
        resp: &Resp,
    ) -> RegistryError {
        match resp.status {
            401 | 403 => self.auth_error(reg, repository, action, resp.status, resp),
            404 => RegistryError::NotFound {
                registry: reg.name.clone(),
                repository: repository.to_owned(),
                action: action.to_owned(),
                detail: self.detail(reg, repository, resp),
                hint: "Check the repository name; some registries (ECR, Harbor, Artifactory) \
                       need the repository or project created before the first push"
                    .into(),
            },
            status => RegistryError::Status {
                registry: reg.name.clone(),
                repository: repository.to_owned(),
                action: action.to_owned(),
                status,
                detail: self.detail(reg, repository, resp),
            },
        }
    }

    fn auth_error(
        &self,
        reg: &Registry,
        repository: &str,
        action: &str,
        status: u16,
        resp: &Resp,
    ) -> RegistryError {
        let resolved = self.resolved(reg, repository);
        let detail = self.detail(reg, repository, resp);
        let warnings = if resolved.warnings.is_empty() {
            String::new()
        } else {
            format!(" ({})", resolved.warnings.join("; "))
        };
        let login = format!(
            "`staticpack login {} --username USER --password-stdin` (docker login and podman \
             login work too)",
            reg.name
        );
        match (&resolved.credential, status) {
            (None, _) => {
                let searched = self
                    .options
                    .keychain
                    .files()
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                RegistryError::AuthenticationRequired {
                    registry: reg.name.clone(),
                    repository: repository.to_owned(),
                    action: action.to_owned(),
                    detail,
                    hint: format!(
                        "No credentials for {} were found{}{warnings}; log in with {login}",
                        reg.name,
                        if searched.is_empty() {
                            String::new()
                        } else {
                            format!(" in {searched}")
                        }
                    ),
                }
            }
            (Some(credential), 401) => RegistryError::CredentialsRejected {
                registry: reg.name.clone(),
                repository: repository.to_owned(),
                action: action.to_owned(),
                detail,
                hint: format!(
                    "The credentials{} from {} were rejected: check the username and the \
                     password or token, then log in again with {login}",
                    credential
                        .username()
                        .map(|u| format!(" of {u:?}"))
                        .unwrap_or_default(),
                    resolved.source.as_deref().unwrap_or("the keychain")
                ),
            },
            (Some(credential), _) => RegistryError::Denied {
                registry: reg.name.clone(),
                repository: repository.to_owned(),
                action: action.to_owned(),
                detail,
                hint: format!(
                    "The account{} (credentials from {}) may not do this on {repository}: \
                     check that the repository exists under a namespace it can write to and \
                     that the token has push (write) scope",
                    credential
                        .username()
                        .map(|u| format!(" {u:?}"))
                        .unwrap_or_default(),
                    resolved.source.as_deref().unwrap_or("the keychain")
                ),
            },
        }
    }

    /// The registry's own words from an error body (`{"errors":[{"code","message"}]}`),
    /// short and with any secret in play scrubbed.
    fn detail(&self, reg: &Registry, repository: &str, resp: &Resp) -> String {
        let text = registry_detail(&resp.body);
        let credential = self.resolved(reg, repository).credential;
        let secrets: Vec<&str> = credential.iter().map(|c| c.secret()).collect();
        let text: String = scrub(&text, &secrets).chars().take(300).collect();
        text
    }

    /// Checks `credential` against `registry` without pushing: Basic on `/v2/`, or a token
    /// request for Bearer registries.
    pub fn check_credentials(&self, registry: &str, p: &dyn Progress) -> Result<(), RegistryError> {
        let reg = self.registry(registry, p)?;
        let action = "log in";
        let scheme = lock(&reg.auth).clone();
        match scheme {
            AuthScheme::Anonymous => {
                p.note(&format!("{registry}: the registry asks for no credentials"));
                Ok(())
            }
            AuthScheme::Basic => {
                let call = Call::api_root(&reg, true, action, true);
                let resp = self.execute(&reg, &call, p)?;
                match resp.status {
                    200..=299 => Ok(()),
                    _ => Err(self.status_error(&reg, "", action, &resp)),
                }
            }
            AuthScheme::Bearer { .. } => self.authorization(&reg, "", &[], action, p).map(drop),
        }
    }
}

/// `login`: checks the username and password against the registry, then stores them in the
/// docker config file (or its credential helper). Returns where they went.
pub fn login(
    registry: &str,
    username: &str,
    password: &Secret,
    options: &ClientOptions,
    config_file: &Path,
) -> Result<StoredIn, RegistryError> {
    let registry = normalize_registry(registry)?;
    let mut options = options.clone();
    options.keychain = Keychain::anonymous()
        .with_credential(&registry, Credential::basic(username, password.clone()));
    Client::new(options).check_credentials(&registry, &NoProgress)?;
    Ok(store_credentials(
        config_file,
        &registry,
        username,
        password,
        None,
    )?)
}

fn basic_header(username: &str, password: &Secret) -> Secret {
    Secret::new(format!(
        "Basic {}",
        BASE64.encode(format!("{username}:{}", password.expose()))
    ))
}

fn token_key(
    realm: &str,
    service: &str,
    scopes: &[String],
    credential: Option<&Credential>,
) -> String {
    let who = match credential {
        Some(c) => c.username().unwrap_or("<token>").to_owned(),
        None => "<anonymous>".into(),
    };
    format!(
        "{realm}\n{service}\n{}\n{who}",
        merge_scopes(scopes).join(" ")
    )
}

fn challenges(resp: &Resp) -> Vec<Challenge> {
    resp.headers
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(parse_www_authenticate)
        .collect()
}

/// Bearer wins over Basic when a registry offers both.
fn scheme_from(challenges: &[Challenge]) -> Option<AuthScheme> {
    if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
        let realm = bearer.param("realm")?.to_owned();
        let service = bearer.param("service").unwrap_or_default().to_owned();
        return Some(AuthScheme::Bearer { realm, service });
    }
    challenges
        .iter()
        .any(|c| c.scheme == "basic")
        .then_some(AuthScheme::Basic)
}

fn scheme_name(scheme: &AuthScheme) -> String {
    match scheme {
        AuthScheme::Anonymous => "none".into(),
        AuthScheme::Basic => "Basic".into(),
        AuthScheme::Bearer { realm, service } => {
            format!("Bearer (realm {}, service {service})", redact_url(realm))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::http::{FakeServer, Reply, response};

    #[test]
    fn insecure_registries_match_by_name_or_host() {
        let client = Client::new(ClientOptions {
            keychain: Keychain::anonymous(),
            insecure_registries: vec!["reg.lan:5000".into(), "other.lan".into()],
            ..ClientOptions::default()
        });
        assert!(client.is_insecure("127.0.0.1:5000"));
        assert!(client.is_insecure("localhost"));
        assert!(client.is_insecure("reg.lan:5000"));
        assert!(!client.is_insecure("reg.lan:6000"));
        assert!(client.is_insecure("other.lan:7000"));
        assert!(!client.is_insecure("ghcr.io"));
        assert!(!client.is_insecure("docker.io"));
    }

    /// A scripted server: each request gets the next canned answer, or is hung up on for
    /// `None`; once the script is over, it stops (later connections are refused).
    fn fake_server(script: Vec<Option<String>>) -> FakeServer {
        let mut script = script.into_iter();
        FakeServer::start(move |_| match script.next() {
            Some(Some(answer)) => Reply::Raw(answer),
            Some(None) => Reply::HangUp,
            None => Reply::Stop,
        })
    }

    fn answer(status: &str, extra_headers: &str, body: &str) -> Option<String> {
        Some(response(status, extra_headers, body))
    }

    fn quick_client(keychain: Keychain, max_attempts: u32) -> Client {
        Client::new(ClientOptions {
            keychain,
            retry: RetryPolicy {
                max_attempts,
                initial_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(50),
                max_elapsed: Duration::from_secs(5),
            },
            ..ClientOptions::default()
        })
    }

    #[test]
    fn dropped_connections_503_and_429_are_retried() {
        let server = fake_server(vec![
            None,
            answer("503 Service Unavailable", "", ""),
            answer("429 Too Many Requests", "Retry-After: 0\r\n", ""),
            answer("200 OK", "", "{}"),
        ]);
        let host = server.host();
        let client = quick_client(Keychain::anonymous(), 6);
        let reg = client.registry(&host, &NoProgress).unwrap();
        assert_eq!(reg.base, format!("http://{host}"));
        assert_eq!(server.seen().len(), 4);
    }

    #[test]
    fn retries_stop_at_the_bound_and_say_so() {
        let server = fake_server((0..10).map(|_| answer("502 Bad Gateway", "", "")).collect());
        let host = server.host();
        let client = quick_client(Keychain::anonymous(), 3);
        let err = client.registry(&host, &NoProgress).err().unwrap();
        assert!(err.is_retryable());
        let text = err.to_string();
        assert!(text.contains(&host) && text.contains("HTTP 502"), "{text}");
        assert_eq!(server.seen().len(), 3);
    }

    #[test]
    fn auth_and_not_found_errors_say_what_to_do() {
        let server = fake_server(vec![answer("200 OK", "", "{}")]);
        let host = server.host();
        let keychain =
            Keychain::anonymous().with_credential(&host, Credential::basic("carol", "pw-9876"));
        let client = quick_client(keychain, 1);
        let reg = client.registry(&host, &NoProgress).unwrap();
        client.credential(&reg, "team/app", &NoProgress);
        let resp = |status: u16, body: &str| Resp {
            status,
            headers: http::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
            saved: None,
        };
        let action = "push manifest sha256:x as v1 to";
        let not_found = client.status_error(&reg, "team/app", action, &resp(404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry"}]}"#));
        let text = not_found.to_string();
        for part in [
            host.as_str(),
            "repository team/app",
            action,
            "NAME_UNKNOWN",
            "created before",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
        // The registry echoing a secret back does not get it printed.
        let denied = client.status_error(
            &reg,
            "team/app",
            action,
            &resp(
                403,
                r#"{"errors":[{"code":"DENIED","message":"carol:pw-9876 may not push"}]}"#,
            ),
        );
        let text = denied.to_string();
        assert!(matches!(denied, RegistryError::Denied { .. }));
        assert!(
            text.contains("\"carol\"") && text.contains("push (write) scope"),
            "{text}"
        );
        assert!(
            !text.contains("pw-9876") && !format!("{denied:?}").contains("pw-9876"),
            "{text}"
        );
        let rejected = client.status_error(&reg, "team/app", action, &resp(401, ""));
        assert!(matches!(
            rejected,
            RegistryError::CredentialsRejected { .. }
        ));
        assert!(
            rejected.to_string().contains("explicit credentials"),
            "{rejected}"
        );
        let other = client.status_error(&reg, "team/app", action, &resp(500, "oops\nmore"));
        assert_eq!(
            other.to_string(),
            format!("{host}: cannot {action} repository team/app: HTTP 500: oops")
        );
    }

    /// A registry that accepts connections and never answers: reported while waited on, then
    /// given up on at the request deadline with the host and the deadline named.
    #[test]
    fn a_silent_registry_is_reported_while_waited_on_and_given_up_on_at_the_deadline() {
        #[derive(Default)]
        struct Waits(Mutex<Vec<(String, Duration)>>);
        impl Progress for Waits {
            fn waiting(&self, host: &str, elapsed: Duration) {
                lock(&self.0).push((host.to_owned(), elapsed));
            }
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            // Held open, never answered.
            let _held: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(Duration::from_secs(30));
        });
        let client = Client::new(ClientOptions {
            keychain: Keychain::anonymous(),
            retry: RetryPolicy::none(),
            request_timeout: Duration::from_secs(1),
            waiting_interval: Duration::from_millis(300),
            ..ClientOptions::default()
        });
        let waits = Waits::default();
        let started = Instant::now();
        let err = client.registry(&host, &waits).err().unwrap();
        // The TLS probe and the plain-HTTP attempt: one deadline each.
        assert!(started.elapsed() < Duration::from_secs(5), "{err}");
        assert!(
            matches!(err, RegistryError::Timeout { seconds: 1, .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&host) && text.contains("within 1 s"),
            "{text}"
        );
        let waits = lock(&waits.0).clone();
        assert!(waits.len() >= 2, "{waits:?}");
        assert!(
            waits
                .iter()
                .all(|(h, e)| *h == host && *e >= Duration::from_millis(300))
        );
    }

    #[test]
    fn plain_http_token_realms_are_refused_off_loopback() {
        let server = fake_server(vec![answer(
            "401 Unauthorized",
            "WWW-Authenticate: Bearer realm=\"http://auth.example/token\",service=\"s\"\r\n",
            "",
        )]);
        let host = server.host();
        let keychain =
            Keychain::anonymous().with_credential(&host, Credential::basic("u", "secret-pw"));
        let client = quick_client(keychain, 1);
        let reg = client.registry(&host, &NoProgress).unwrap();
        let err = client
            .authorization(
                &reg,
                "app",
                &["repository:app:pull,push".into()],
                "push to",
                &NoProgress,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("refusing to send credentials"),
            "{err}"
        );
    }

    #[test]
    fn token_cache_keys_separate_scopes_and_users() {
        let a = token_key(
            "r",
            "s",
            &["repository:a:push".into(), "repository:a:pull".into()],
            None,
        );
        let b = token_key("r", "s", &["repository:a:pull,push".into()], None);
        assert_eq!(a, b);
        let c = token_key("r", "s", &["repository:b:pull,push".into()], None);
        assert_ne!(a, c);
        let user = Credential::basic("u", "pw-secret");
        let d = token_key("r", "s", &["repository:a:pull,push".into()], Some(&user));
        assert_ne!(a, d);
        assert!(!d.contains("pw-secret"));
    }

    // Unit tests over the scripted transport: no network, every request checked in order.
    mod scripted {
        use super::*;
        use crate::registry::transport::fake::{Reply, Scripted, Step, answer, expect};

        /// A 401 answer to `method url_part` carrying the challenge `www_authenticate`.
        fn challenge(method: &'static str, url_part: &str, www_authenticate: &str) -> Step {
            expect(
                method,
                url_part,
                answer(401, &[("www-authenticate", www_authenticate)], ""),
            )
        }

        const REG: &str = "registry.test";

        fn client(
            keychain: Keychain,
            max_attempts: u32,
            script: Vec<Step>,
        ) -> (Client, Arc<Scripted>) {
            let fake = Arc::new(Scripted::new(script));
            let options = ClientOptions {
                keychain,
                retry: RetryPolicy {
                    max_attempts,
                    initial_backoff: Duration::from_millis(1),
                    max_backoff: Duration::from_millis(5),
                    max_elapsed: Duration::from_secs(5),
                },
                ..ClientOptions::default()
            };
            (Client::with_transport(options, fake.clone()), fake)
        }

        fn user() -> Keychain {
            Keychain::anonymous().with_credential(REG, Credential::basic("ci", "s3cret-pw"))
        }

        fn call<'a>(url: String, scopes: Vec<String>) -> Call<'a> {
            Call {
                method: http::Method::HEAD,
                url,
                headers: Vec::new(),
                body: Body::Empty,
                authenticate: true,
                scopes,
                repository: "app",
                action: "check for blob in",
                retry: true,
                max_body: None,
                save_to: None,
            }
        }

        /// `user()` logging in to a Basic registry: the challenge, then `reply` to the credentials.
        fn basic_login(reply: Reply) -> (Client, Arc<Scripted>) {
            let root = format!("https://{REG}/v2/");
            client(
                user(),
                1,
                vec![
                    challenge("GET", &root, "Basic realm=\"r\""),
                    expect("GET", &root, reply),
                ],
            )
        }

        #[test]
        fn basic_challenge_then_basic_credentials() {
            let (client, fake) = basic_login(answer(200, &[], "{}"));
            client.check_credentials(REG, &NoProgress).unwrap();
            fake.assert_done();
            let seen = fake.seen();
            assert_eq!(seen[0].authorization, None);
            assert_eq!(
                seen[1].authorization.as_deref(),
                Some(basic_header("ci", &Secret::new("s3cret-pw")).expose())
            );
        }

        #[test]
        fn bearer_challenge_token_then_a_fresh_token_after_401() {
            let bearer = "Bearer realm=\"https://auth.test/token\",service=\"registry.test\"";
            let scoped = "Bearer realm=\"https://auth.test/token\",service=\"registry.test\",scope=\"repository:app:pull,push\"";
            let blob = format!("https://{REG}/v2/app/blobs/sha256:ab");
            let (client, fake) = client(
                user(),
                1,
                vec![
                    challenge("GET", "/v2/", bearer),
                    expect(
                        "GET",
                        "https://auth.test/token?service=registry.test&account=ci&scope=repository%3Aapp%3Apull%2Cpush",
                        answer(200, &[], r#"{"token":"t-one"}"#),
                    ),
                    challenge("HEAD", "/v2/app/blobs/", scoped),
                    expect(
                        "GET",
                        "https://auth.test/token",
                        answer(200, &[], r#"{"access_token":"t-two"}"#),
                    ),
                    expect("HEAD", "/v2/app/blobs/", answer(200, &[], "")),
                ],
            );
            let reg = client.registry(REG, &NoProgress).unwrap();
            let scopes = vec!["repository:app:pull,push".to_owned()];
            let resp = client
                .execute(&reg, &call(blob.clone(), scopes.clone()), &NoProgress)
                .unwrap();
            assert_eq!(resp.status, 200);
            fake.assert_done();
            let seen = fake.seen();
            let basic = basic_header("ci", &Secret::new("s3cret-pw"));
            assert_eq!(seen[1].authorization.as_deref(), Some(basic.expose()));
            assert_eq!(seen[2].authorization.as_deref(), Some("Bearer t-one"));
            assert_eq!(seen[4].authorization.as_deref(), Some("Bearer t-two"));
        }

        #[test]
        fn resets_503_and_429_are_retried_within_the_bound() {
            let (client, fake) = client(
                Keychain::anonymous(),
                6,
                vec![
                    expect("GET", "/v2/", Reply::Reset),
                    expect("GET", "/v2/", answer(503, &[], "")),
                    expect("GET", "/v2/", answer(429, &[("retry-after", "0")], "")),
                    expect("GET", "/v2/", answer(200, &[], "{}")),
                ],
            );
            let reg = client.registry(REG, &NoProgress).unwrap();
            assert_eq!(reg.base, "https://registry.test");
            fake.assert_done();

            let (client, fake) = client_with_502s();
            let err = client.registry(REG, &NoProgress).err().unwrap();
            assert!(err.is_retryable());
            assert!(err.to_string().contains("HTTP 502"), "{err}");
            fake.assert_done();
        }

        fn client_with_502s() -> (Client, Arc<Scripted>) {
            client(
                Keychain::anonymous(),
                2,
                vec![
                    expect("GET", "/v2/", answer(502, &[], "")),
                    expect(
                        "GET",
                        "/v2/",
                        answer(
                            502,
                            &[],
                            r#"{"errors":[{"code":"UNAVAILABLE","message":"try later"}]}"#,
                        ),
                    ),
                ],
            )
        }

        #[test]
        fn rejected_credentials_never_show_the_secret() {
            let (client, fake) = basic_login(answer(
                401,
                &[("www-authenticate", "Basic realm=\"r\"")],
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad password s3cret-pw"}]}"#,
            ));
            let err = client.check_credentials(REG, &NoProgress).err().unwrap();
            let text = err.to_string();
            assert!(
                text.contains("credentials rejected") && text.contains("UNAUTHORIZED"),
                "{text}"
            );
            assert!(!text.contains("s3cret-pw"), "{text}");
            fake.assert_done();
        }
    }
}
