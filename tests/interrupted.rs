//! A build killed with SIGKILL cannot clean up after itself: the next build does, at once: the
//! killed one's folders are provably orphaned (their lock died with their owner).

mod common;

use common::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn leftovers(tmp: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("staticpack-"))
        .collect();
    names.sort();
    names
}

/// Command lines of the processes whose arguments or working folder lie below `dir`.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = e.path();
        let cmdline = std::fs::read(p.join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let cwd = std::fs::read_link(p.join("cwd")).unwrap_or_default();
        if cmdline.contains(&needle) || cwd.starts_with(dir) {
            found.push(cmdline);
        }
    }
    found
}

#[test]
fn the_next_build_removes_what_a_killed_build_left() {
    need("go", "golang-go");
    let work = tempfile::tempdir().unwrap();
    let tmp = work.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = work.path().join("out");

    // A Go build compiles the standard library first: long enough to be killed in the middle.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_staticpack"))
        .args([
            "build",
            recipe("go-6-nocgo-purego").to_str().unwrap(),
            "--no-cache",
            "--out",
        ])
        .arg(&out)
        .env("TMPDIR", &tmp)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while leftovers(&tmp).is_empty() {
        assert!(Instant::now() < deadline, "no build folder appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Its toolchain dies with it: no `go build` writing into the folder runs on.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let orphans = processes_mentioning(&tmp);
        if orphans.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "orphaned toolchain processes: {orphans:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let left = leftovers(&tmp);
    assert!(
        left.iter().any(|n| n.starts_with("staticpack-build-")),
        "{left:?}"
    );

    // At once, however young they are: every folder under the prefix is locked from its
    // birth, so one that can be locked is a dead build's.
    let run = staticpack_with(
        work.path(),
        &[
            "build",
            recipe("hello-c").to_str().unwrap(),
            "--out",
            work.path().join("hello").to_str().unwrap(),
        ],
        &[("TMPDIR", tmp.to_str().unwrap())],
    );
    run.ok();
    for name in &left {
        assert!(
            run.stderr
                .contains(&format!("cleanup removed {}", tmp.join(name).display())),
            "{}",
            run.stderr
        );
    }
    assert_eq!(leftovers(&tmp), Vec::<String>::new(), "{}", run.stderr);
}
