//! The transport layer: one HTTP request out, one answer (status, headers, body) back, behind
//! the [`Transport`] trait. [`UreqTransport`] sends over ureq + rustls; tests script a fake.
//! Also the retry policy (bounded attempts, exponential backoff with jitter, `Retry-After`) and
//! the URL helpers. Nothing here knows about auth, repositories or errors of the registry API.

use super::secret::Secret;
use crate::digest::{Digest, VerifyingReader};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use ureq::http;

/// How hard to try again after 429, 5xx and dropped connections.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// No new attempt starts after this much time since the first.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(90),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before attempt `failures + 1`, or `None` when the budget is spent.
    pub(crate) fn next_delay(
        &self,
        failures: u32,
        started: Instant,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if failures >= self.max_attempts {
            return None;
        }
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << failures.saturating_sub(1).min(16));
        let mut delay = exp.min(self.max_backoff);
        // Up to 25% jitter so parallel uploads do not retry in lockstep.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        delay += delay.mul_f64(f64::from(nanos % 1000) / 4000.0);
        if let Some(after) = retry_after {
            delay = delay.max(after.min(self.max_backoff.max(Duration::from_secs(30))));
        }
        (started.elapsed() + delay <= self.max_elapsed).then_some(delay)
    }
}

/// A request body that can be sent again: retries and re-authentication reopen the file.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(FileSection<'a>),
}

/// `len` bytes of a file from `offset`, read while the request is sent.
pub(crate) struct FileSection<'a> {
    pub path: &'a Path,
    pub offset: u64,
    pub len: u64,
    /// For a whole blob (offset 0, len its size): the digest its bytes must have. The body
    /// then fails before its last byte unless they do, so a registry is never handed a
    /// complete wrong blob.
    pub verify: Option<&'a Digest>,
    /// Called with the bytes of this request read so far.
    pub on_read: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl<'a> FileSection<'a> {
    /// The section as a reader that reports its progress; each call opens the file again,
    /// the way the layout reader does (no symlink followed, regular files only: the layout
    /// was checked when selected, but a blob swapped for a link since must not send the host
    /// file it points to). `Err` is what is wrong with the local file.
    pub(crate) fn open(&self) -> Result<SectionReader<'a>, String> {
        let mut file = crate::image::layout::open_regular(self.path).map_err(|e| e.to_string())?;
        let inner = match self.verify {
            Some(digest) if self.offset == 0 => {
                Source::Whole(VerifyingReader::new(file, digest.clone(), self.len))
            }
            _ => {
                file.seek(SeekFrom::Start(self.offset))
                    .map_err(|e| format!("reading {}: {e}", self.path.display()))?;
                Source::Part(file.take(self.len))
            }
        };
        Ok(SectionReader {
            inner,
            read: 0,
            len: self.len,
            on_read: self.on_read,
            failed: None,
        })
    }
}

enum Source {
    Whole(VerifyingReader<std::fs::File>),
    Part(std::io::Take<std::fs::File>),
}

/// Reads a [`FileSection`], counting for progress and keeping what went wrong with the local
/// file: the HTTP client reports a failing body only as an I/O error of its own.
pub(crate) struct SectionReader<'a> {
    inner: Source,
    read: u64,
    len: u64,
    on_read: Option<&'a (dyn Fn(u64) + Sync)>,
    /// What was wrong with the local file, when a read of it failed.
    pub failed: Option<String>,
}

impl SectionReader<'_> {
    fn read_inner(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            Source::Part(r) => r.read(buf),
            Source::Whole(r) => {
                let n = r.read(buf)?;
                if n > 0 && self.read + n as u64 == self.len {
                    // The verifier judges at end of file; ask now, so that a mismatch fails
                    // this read and the last bytes are never sent (the client may stop reading
                    // at the content length and never see the end itself).
                    let mut probe = [0u8; 1];
                    if r.read(&mut probe)? != 0 {
                        // The verifier fails a byte past the size itself; never send it anyway.
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the file is longer than its descriptor gives",
                        ));
                    }
                }
                Ok(n)
            }
        }
    }
}

impl Read for SectionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match self.read_inner(buf) {
            Ok(n) => n,
            Err(e) => {
                self.failed = Some(e.to_string());
                return Err(e);
            }
        };
        self.read += n as u64;
        if let Some(f) = self.on_read {
            f(self.read);
        }
        Ok(n)
    }
}

/// How a request reaches its host: which TLS verification, and whether through a proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// Verified TLS (platform roots), proxy from the environment.
    Verified,
    /// An insecure registry: unverified TLS, proxy from the environment.
    Unverified,
    /// Loopback: unverified TLS and never a proxy (the proxy's localhost is not ours).
    Direct,
}

/// One HTTP request, fully formed (credentials already chosen by the session).
pub(crate) struct Request<'a> {
    pub method: http::Method,
    pub url: &'a str,
    pub headers: &'a [(&'static str, String)],
    pub authorization: Option<&'a Secret>,
    pub body: &'a Body<'a>,
    pub route: Route,
    /// The most body bytes to read; `None` is [`JSON_MAX`].
    pub max_body: Option<u64>,
    /// A 2xx answer's body is streamed into this file (created or truncated: a retry starts
    /// it over) while it is hashed, never held in memory; at most `max_body` bytes.
    pub save_to: Option<&'a Path>,
}

/// Registry answers are small JSON unless a caller asks for more (a pulled blob, bounded by
/// its descriptor's size); a cap keeps a hostile server from filling memory.
pub(crate) const JSON_MAX: u64 = 4 << 20;

/// A registry's answer: any status, its headers, and the body (capped; empty for `HEAD`, and
/// when it was saved to a file instead).
#[derive(Debug)]
pub(crate) struct Resp {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
    /// What was streamed into [`Request::save_to`], when it was.
    pub saved: Option<Saved>,
}

/// A body saved to a file: how long it was and its digest, computed as it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Saved {
    pub len: u64,
    pub digest: Digest,
}

/// Streams `body` into `path` (created or truncated), hashing it, refusing more than `max`
/// bytes. A failed read is the network's (`read_failure` says how); a failed write is the
/// local file's.
fn save_body(
    body: &mut dyn Read,
    path: &Path,
    max: u64,
    read_failure: &dyn Fn(std::io::Error) -> SendFailure,
) -> Result<Saved, SendFailure> {
    use std::io::Write;
    let local = |e: std::io::Error| SendFailure::local_file(format!("{}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(local)?;
    let mut out = crate::digest::HashingWriter::new(std::io::BufWriter::new(file));
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_failure(e)),
        };
        out.write_all(&buf[..n]).map_err(local)?;
        if out.written() > max {
            return Err(SendFailure {
                message: format!("the body is longer than the {max} bytes expected"),
                retryable: false,
                cause: Cause::Network,
            });
        }
    }
    let (writer, digest, len) = out.finish();
    let file = writer.into_inner().map_err(|e| local(e.into_error()))?;
    file.sync_all().map_err(local)?;
    Ok(Saved { len, digest })
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends requests. Any status is an answer (`Ok`); `Err` is only for no answer at all.
pub(crate) trait Transport: Send + Sync {
    fn send(&self, request: &Request<'_>) -> Result<Resp, SendFailure>;
}

/// Timeouts and identity of the ureq agents.
pub(crate) struct TransportConfig<'a> {
    pub user_agent: &'a str,
    pub connect_timeout: Duration,
    pub stall_timeout: Duration,
    /// The whole of one request, answer included: past it the request is given up.
    pub request_timeout: Duration,
}

/// The real transport: ureq with rustls, one agent per [`Route`].
pub(crate) struct UreqTransport {
    verified: ureq::Agent,
    unverified: ureq::Agent,
    direct: ureq::Agent,
    request_timeout: Duration,
}

impl UreqTransport {
    pub(super) fn new(config: &TransportConfig<'_>) -> Self {
        // One deadline for the answer, the request's: no separate, retried timeout for the
        // response or its body (a silent registry was waited on for that one instead, and a
        // trickling body reset it with every byte). A connection or a stalled write may fail
        // sooner, and is retried.
        let within = |t: Duration| Some(t.min(config.request_timeout));
        let agent = |verify: bool, proxy: bool| {
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(if verify {
                    ureq::tls::RootCerts::PlatformVerifier
                } else {
                    ureq::tls::RootCerts::WebPki
                })
                .disable_verification(!verify)
                .build();
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .user_agent(config.user_agent)
                .timeout_connect(within(config.connect_timeout))
                .timeout_per_write(within(config.stall_timeout))
                .timeout_global(Some(config.request_timeout))
                .max_redirects(5)
                .tls_config(tls)
                .proxy(if proxy {
                    ureq::Proxy::try_from_env()
                } else {
                    None
                })
                .build()
                .new_agent()
        };
        UreqTransport {
            verified: agent(true, true),
            unverified: agent(false, true),
            direct: agent(false, false),
            request_timeout: config.request_timeout,
        }
    }
}

impl Transport for UreqTransport {
    fn send(&self, request: &Request<'_>) -> Result<Resp, SendFailure> {
        let agent = match request.route {
            Route::Verified => &self.verified,
            Route::Unverified => &self.unverified,
            Route::Direct => &self.direct,
        };
        send_with(agent, request, self.request_timeout)
    }
}

pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
pub(crate) fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Resolves a `Location` header against the registry base (`/v2/…` → `http://host/v2/…`).
pub(crate) fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

/// Appends query parameters to a URL that may already have some (`?_state=…`).
pub(crate) fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut out = url.to_owned();
    for (k, v) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode_query(v));
    }
    out
}

/// A request that got no HTTP answer: the message (no URLs, which can carry signed queries),
/// whether trying again can help, and whose fault it was.
#[derive(Debug)]
pub(crate) struct SendFailure {
    pub message: String,
    pub retryable: bool,
    pub cause: Cause,
}

/// Why a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The network or the server.
    Network,
    /// Nothing came back within the request deadline.
    Timeout(Duration),
    /// The body could not be read: the local file is not what it should be.
    LocalFile,
}

impl SendFailure {
    pub(crate) fn local_file(message: String) -> Self {
        SendFailure {
            message,
            retryable: false,
            cause: Cause::LocalFile,
        }
    }
}

fn send_with(
    agent: &ureq::Agent,
    call: &Request<'_>,
    timeout: Duration,
) -> Result<Resp, SendFailure> {
    let mut builder = http::Request::builder()
        .method(call.method.clone())
        .uri(call.url);
    for (name, value) in call.headers {
        builder = builder.header(*name, value.as_str());
    }
    if let Some(value) = call.authorization {
        builder = builder.header("authorization", value.expose());
    }
    let bad_request = |e: http::Error| SendFailure {
        message: format!("cannot build the request: {e}"),
        retryable: false,
        cause: Cause::Network,
    };
    let result = match call.body {
        Body::Empty if call.method == http::Method::GET || call.method == http::Method::HEAD => {
            agent.run(builder.body(()).map_err(bad_request)?)
        }
        // An explicit zero length: some proxies refuse a POST or PUT without one.
        Body::Empty => agent.run(builder.body(&[][..]).map_err(bad_request)?),
        Body::Bytes(bytes) => agent.run(builder.body(*bytes).map_err(bad_request)?),
        Body::File(section) => {
            let mut reader = section.open().map_err(SendFailure::local_file)?;
            let request = builder
                .header("content-length", section.len.to_string())
                .body(ureq::SendBody::from_reader(&mut reader))
                .map_err(bad_request)?;
            let result = agent.run(request);
            // A body that failed to read is the local file's fault, whatever ureq made of it.
            if let Some(reason) = reader.failed.take() {
                return Err(SendFailure::local_file(reason));
            }
            result
        }
    };
    let failure = |e| transport_failure(e, timeout);
    let response = result.map_err(failure)?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let limit = call.max_body.unwrap_or(JSON_MAX);
    let mut saved = None;
    let body = match call.save_to {
        _ if call.method == http::Method::HEAD => Vec::new(),
        Some(path) if (200..300).contains(&status) => {
            let mut reader = body.into_with_config().reader();
            let read_failure = |e: std::io::Error| failure(ureq::Error::from(e));
            saved = Some(save_body(&mut reader, path, limit, &read_failure)?);
            Vec::new()
        }
        // Error answers stay small JSON, read for their message.
        _ => body
            .into_with_config()
            .limit(if call.save_to.is_some() {
                JSON_MAX
            } else {
                limit
            })
            .read_to_vec()
            .map_err(failure)?,
    };
    Ok(Resp {
        status,
        headers: parts.headers,
        body,
        saved,
    })
}

/// A ureq error as a message without URLs (they can carry signed queries) and whether trying
/// again can help.
fn transport_failure(error: ureq::Error, timeout: Duration) -> SendFailure {
    use std::io::ErrorKind::*;
    // The request's own deadline: given up on, not retried (that would multiply the wait).
    if let ureq::Error::Timeout(ureq::Timeout::Global) = error {
        return SendFailure {
            message: format!("no answer within {} s", timeout.as_secs()),
            retryable: false,
            cause: Cause::Timeout(timeout),
        };
    }
    let (message, retryable) = match &error {
        ureq::Error::Io(e) => (
            format!("{e}"),
            matches!(
                e.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | BrokenPipe
                    | UnexpectedEof
                    | TimedOut
                    | NotConnected
                    | Interrupted
                    | WouldBlock
            ),
        ),
        ureq::Error::ConnectionFailed => ("connection failed".into(), true),
        ureq::Error::Timeout(t) => (format!("timed out ({t})"), true),
        ureq::Error::HostNotFound => (
            "host not found (DNS): check the registry name".into(),
            false,
        ),
        ureq::Error::BadUri(_) => ("invalid URL".into(), false),
        ureq::Error::Tls(e) => (format!("TLS: {e}"), false),
        ureq::Error::Rustls(e) => (format!("TLS: {e}"), false),
        ureq::Error::Protocol(e) => (format!("HTTP protocol: {e}"), true),
        ureq::Error::ConnectProxyFailed(_) => ("the proxy refused the connection".into(), true),
        ureq::Error::TooManyRedirects | ureq::Error::RedirectFailed => {
            ("too many or unfollowable redirects".into(), false)
        }
        ureq::Error::BodyExceedsLimit(n) => (format!("response larger than {n} bytes"), false),
        other => (format!("{other}"), false),
    };
    SendFailure {
        message,
        retryable,
        cause: Cause::Network,
    }
}

/// A scripted transport for unit tests: a queue of expected requests (method and a part of the
/// URL), each with a canned answer or a dropped connection. Records what was sent.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    pub(crate) enum Reply {
        Answer {
            status: u16,
            headers: Vec<(&'static str, String)>,
            body: Vec<u8>,
        },
        /// The connection dropped (reset) before an answer.
        Reset,
    }

    /// Expect `method` on a URL containing `url_part`, then answer.
    pub(crate) struct Step {
        pub method: &'static str,
        pub url_part: String,
        pub reply: Reply,
    }

    pub(crate) fn expect(method: &'static str, url_part: &str, reply: Reply) -> Step {
        Step {
            method,
            url_part: url_part.to_owned(),
            reply,
        }
    }

    pub(crate) fn answer(status: u16, headers: &[(&'static str, &str)], body: &str) -> Reply {
        Reply::Answer {
            status,
            headers: headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    /// One request as the transport saw it.
    #[derive(Clone, Debug)]
    pub(crate) struct Seen {
        pub method: String,
        pub url: String,
        pub authorization: Option<String>,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    #[derive(Default)]
    pub(crate) struct Scripted {
        script: Mutex<VecDeque<Step>>,
        seen: Mutex<Vec<Seen>>,
    }

    impl Scripted {
        pub(crate) fn new(steps: Vec<Step>) -> Self {
            Scripted {
                script: Mutex::new(steps.into()),
                seen: Mutex::new(Vec::new()),
            }
        }

        pub(crate) fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }

        /// Panics unless every expected request came.
        pub(crate) fn assert_done(&self) {
            let left: Vec<String> = self
                .script
                .lock()
                .unwrap()
                .iter()
                .map(|s| format!("{} {}", s.method, s.url_part))
                .collect();
            assert!(left.is_empty(), "expected requests never sent: {left:?}");
        }
    }

    /// The body as the registry would get it, and what went wrong reading the local file.
    fn read_body(body: &Body<'_>) -> (Vec<u8>, Option<String>) {
        match body {
            Body::Empty => (Vec::new(), None),
            Body::Bytes(b) => (b.to_vec(), None),
            // Read as the real transport reads it, progress calls and checks included.
            Body::File(section) => {
                let mut out = Vec::new();
                let mut reader = match section.open() {
                    Ok(r) => r,
                    Err(e) => return (out, Some(e)),
                };
                let mut buf = [0u8; 8192];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => return (out, None),
                        Ok(n) => out.extend_from_slice(&buf[..n]),
                        Err(e) => {
                            return (out, Some(reader.failed.take().unwrap_or(e.to_string())));
                        }
                    }
                }
            }
        }
    }

    impl Transport for Scripted {
        fn send(&self, request: &Request<'_>) -> Result<Resp, SendFailure> {
            let step =
                self.script.lock().unwrap().pop_front().unwrap_or_else(|| {
                    panic!("unexpected request {} {}", request.method, request.url)
                });
            assert!(
                request.method.as_str() == step.method && request.url.contains(&step.url_part),
                "expected {} …{}…, got {} {}",
                step.method,
                step.url_part,
                request.method,
                request.url
            );
            let header_auth = request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone());
            let (body, failed) = read_body(request.body);
            self.seen.lock().unwrap().push(Seen {
                method: request.method.to_string(),
                url: request.url.to_owned(),
                authorization: request
                    .authorization
                    .map(|s| s.expose().to_owned())
                    .or(header_auth),
                headers: request
                    .headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
                body,
            });
            // A body that failed to read never reached the server: its answer is moot.
            if let Some(reason) = failed {
                return Err(SendFailure::local_file(reason));
            }
            match step.reply {
                Reply::Reset => Err(SendFailure {
                    message: "connection reset by peer".into(),
                    retryable: true,
                    cause: Cause::Network,
                }),
                Reply::Answer {
                    status,
                    headers,
                    body,
                } => {
                    let mut map = http::HeaderMap::new();
                    for (k, v) in headers {
                        map.append(
                            http::HeaderName::from_static(k),
                            http::HeaderValue::from_str(&v).unwrap(),
                        );
                    }
                    // Saved as the real transport saves it: streamed, hashed, bounded.
                    let saved = match request.save_to {
                        Some(path) if (200..300).contains(&status) => {
                            let limit = request.max_body.unwrap_or(JSON_MAX);
                            let read_failure = |e: std::io::Error| SendFailure {
                                message: e.to_string(),
                                retryable: true,
                                cause: Cause::Network,
                            };
                            Some(save_body(&mut &body[..], path, limit, &read_failure)?)
                        }
                        _ => None,
                    };
                    Ok(Resp {
                        status,
                        headers: map,
                        body: if saved.is_some() { Vec::new() } else { body },
                        saved,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_budget_is_bounded_in_count_and_time() {
        let policy = RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            max_elapsed: Duration::from_secs(10),
        };
        let now = Instant::now();
        let d1 = policy.next_delay(1, now, None).unwrap();
        let d2 = policy.next_delay(2, now, None).unwrap();
        assert!(d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(125));
        assert!(d2 >= Duration::from_millis(200) && d2 <= Duration::from_millis(250));
        assert!(policy.next_delay(3, now, None).is_none());
        // Retry-After is honoured, within reason.
        let d = policy
            .next_delay(1, now, Some(Duration::from_secs(2)))
            .unwrap();
        assert!(d >= Duration::from_secs(2));
        let tight = RetryPolicy {
            max_elapsed: Duration::from_millis(50),
            ..policy
        };
        assert!(tight.next_delay(1, now, None).is_none());
    }

    #[test]
    fn urls_and_queries() {
        assert_eq!(encode_query("sha256:ab/c d"), "sha256%3Aab%2Fc%20d");
        assert_eq!(
            with_query(
                "http://h/v2/x/blobs/uploads/u?_state=s",
                &[("digest", "sha256:a")]
            ),
            "http://h/v2/x/blobs/uploads/u?_state=s&digest=sha256%3Aa"
        );
        assert_eq!(with_query("http://h/p", &[("a", "b")]), "http://h/p?a=b");
        assert_eq!(resolve_location("http://h:5", "/v2/x"), "http://h:5/v2/x");
        assert_eq!(
            resolve_location("http://h:5", "https://s3/x?sig"),
            "https://s3/x?sig"
        );
    }
}
