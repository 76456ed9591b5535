//! A fake HTTP/1.1 server on 127.0.0.1 for tests, serving one connection at a time: each
//! request is read whole (request line, headers, body) and handed to a function that answers
//! it. TLS client hellos (a client trying https first on loopback) are hung up on without
//! reaching the function. The library's unit tests and the integration tests share this one
//! file (`tests/common` includes it by path).

// Each of the two users reads only some of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server read it.
pub(crate) struct Request {
    /// The request line, e.g. `GET /v2/ HTTP/1.1`.
    pub line: String,
    pub method: String,
    /// The path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first value of the header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the server does with one request.
pub(crate) enum Reply {
    /// Sends these bytes, then closes the connection.
    Raw(String),
    /// The same, for a response that is not text (an archive).
    Bytes(Vec<u8>),
    /// Closes the connection unanswered.
    HangUp,
    /// Closes it unanswered and serves no more: later connections are refused.
    Stop,
}

/// A running server; it stops when dropped.
pub(crate) struct FakeServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeServer {
    pub(crate) fn start(mut answer: impl FnMut(&Request) -> Reply + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopped) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = stream.set_nonblocking(false);
                let Some(request) = read_request(&stream) else {
                    continue;
                };
                log.lock().unwrap().push(request.line.clone());
                match answer(&request) {
                    Reply::Raw(bytes) => {
                        let _ = stream.write_all(bytes.as_bytes());
                    }
                    Reply::Bytes(bytes) => {
                        let _ = stream.write_all(&bytes);
                    }
                    Reply::HangUp => {}
                    Reply::Stop => return,
                }
            }
        });
        FakeServer { port, seen, stop }
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The request lines received so far, in order.
    pub(crate) fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A whole response: `status` ("200 OK"), `extra_headers` (lines each ending in `\r\n`), then
/// the length, `Connection: close` and `body`.
pub(crate) fn response(status: &str, extra_headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A whole `200 OK` response carrying `body` as bytes.
pub(crate) fn binary_response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The request on `stream`, or None for a TLS hello or a connection closed early.
fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut first = [0u8; 1];
    if stream.peek(&mut first).is_err() || first[0] == 0x16 {
        return None;
    }
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let line = line.trim().to_owned();
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = Request {
        line,
        method,
        target,
        headers,
        body: Vec::new(),
    };
    let length = request
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    request.body = vec![0; length];
    reader.read_exact(&mut request.body).ok()?;
    Some(request)
}
