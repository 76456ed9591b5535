//! hello-rust: a tiny program whose self-test proves it runs where no libc exists.
use std::path::Path;

const LOADERS_AND_LIBCS: &[&str] = &[
    "/lib/ld-musl-x86_64.so.1",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/usr/lib/libc.so",
];

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--selftest") {
        if let Some(found) = LOADERS_AND_LIBCS.iter().find(|p| Path::new(p).exists()) {
            println!("found {found}: this root is not empty");
            std::process::exit(1);
        }
        println!("ok: no libc in this root");
        return;
    }
    println!("hello from a static Rust binary");
}
