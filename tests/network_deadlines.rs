//! One deadline rule for every command that talks to a registry: `--timeout SECONDS` bounds
//! each request as a whole, its answer included. Against a listener on 127.0.0.1 that accepts
//! and never answers, and one that answers with a body trickled one byte a second, every
//! network command (push, build --push, login, verify docker://, run docker://) with
//! `--timeout 2` fails within seconds, naming the deadline and the flag.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
enum Behaviour {
    /// Accepts, reads, never answers.
    Silent,
    /// Answers every request with a 200 whose JSON body comes one byte a second.
    Trickle,
}

/// A listener on a free 127.0.0.1 port behaving as `behaviour` on every connection, for as
/// long as the test process lives; returns `host:port`.
fn listener(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream, behaviour));
        }
    });
    host
}

fn serve(mut stream: TcpStream, behaviour: Behaviour) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    // Whatever the client sends first (a TLS hello or an HTTP request).
    let mut first = [0u8; 4096];
    let n = stream.read(&mut first).unwrap_or(0);
    let started = Instant::now();
    match behaviour {
        Behaviour::Silent => {
            // Held open, unanswered, until the client gives up (or a minute passes).
            let mut sink = [0u8; 4096];
            while started.elapsed() < Duration::from_secs(60) {
                match stream.read(&mut sink) {
                    Ok(0) => return,
                    _ => continue,
                }
            }
        }
        Behaviour::Trickle => {
            // A TLS hello gets plain HTTP back, which the client's TLS refuses at once; a
            // plain request gets the answer that never ends.
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                        Docker-Distribution-API-Version: registry/2.0\r\n\
                        Content-Length: 100000\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() || n == 0 {
                return;
            }
            while started.elapsed() < Duration::from_secs(60) {
                if stream.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// Runs staticpack with `args` (and `input` on stdin), expecting a failure within a few
/// seconds whose words name the 2 s deadline and the flag.
fn fails_by_the_deadline(work: &Path, args: &[&str], input: Option<&[u8]>, what: &str) {
    let mut cmd = staticpack_command(work, args);
    cmd.env("DOCKER_CONFIG", work.join("docker"))
        .env("XDG_CACHE_HOME", work.join("cache"))
        .env_remove("REGISTRY_AUTH_FILE");
    let started = Instant::now();
    let run = run_with_input(cmd, input, Duration::from_secs(120));
    let took = started.elapsed();
    assert_eq!(
        run.code, 1,
        "{what}: {args:?}\n{}\n{}",
        run.stdout, run.stderr
    );
    // TLS first, then plain HTTP, on loopback: at most two deadlines, and some start-up.
    assert!(
        took < Duration::from_secs(12),
        "{what}: {args:?} took {took:?}\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("within 2 s"),
        "{what}: {args:?} does not name the deadline:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("--timeout SECONDS"),
        "{what}: {args:?} does not name the flag:\n{}",
        run.stderr
    );
}

#[test]
fn every_network_command_gives_up_at_its_timeout() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let hello = recipe("hello-c");
    let layout = work.join("out/hello-c");
    staticpack(
        work,
        &[
            "build",
            hello.to_str().unwrap(),
            "--out",
            layout.to_str().unwrap(),
        ],
    )
    .ok();
    let layout_ref = format!("{}:latest", layout.display());

    for behaviour in [Behaviour::Silent, Behaviour::Trickle] {
        let host = listener(behaviour);
        let image = format!("{host}/hello:1.0");
        let docker = format!("docker://{image}");
        let what = format!("{behaviour:?}");
        fails_by_the_deadline(
            work,
            &["push", &layout_ref, &image, "--timeout", "2"],
            None,
            &what,
        );
        fails_by_the_deadline(
            work,
            &[
                "build",
                hello.to_str().unwrap(),
                "--out",
                layout.to_str().unwrap(),
                "--push",
                &image,
                "--timeout",
                "2",
            ],
            None,
            &what,
        );
        fails_by_the_deadline(
            work,
            &[
                "login",
                &host,
                "-u",
                "me",
                "--password-stdin",
                "--timeout",
                "2",
            ],
            Some(b"secret\n"),
            &what,
        );
        fails_by_the_deadline(work, &["verify", &docker, "--timeout", "2"], None, &what);
        fails_by_the_deadline(work, &["run", &docker, "--timeout", "2"], None, &what);
    }
}
