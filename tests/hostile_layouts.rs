//! Layouts as an attacker would hand them over: a layer changed after the build, a blob
//! swapped for a symlink to a host file, an image larger than the caller allows. `run` and
//! `inspect` refuse each with a message that says what is wrong, and nothing runs.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// hello-c built into `work/out` (no run proof: these tests are about reading the layout).
fn built(work: &Path) -> PathBuf {
    let out = work.join("out");
    let recipe = recipe("hello-c");
    staticpack(
        work,
        &[
            "build",
            recipe.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-run",
        ],
    )
    .ok();
    out
}

/// The largest blob of the layout: the binary's layer.
fn largest_blob(layout: &Path) -> PathBuf {
    let blobs = layout.join("blobs/sha256");
    std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap()
}

fn run_and_inspect(work: &Path, layout: &Path, run_flags: &[&str]) -> (Run, Run) {
    let l = layout.to_str().unwrap();
    let mut args = vec!["run", l];
    args.extend_from_slice(run_flags);
    args.extend(["--", "--selftest"]);
    (staticpack(work, &args), staticpack(work, &["inspect", l]))
}

#[test]
fn a_layer_changed_after_the_build_neither_runs_nor_inspects() {
    let work = tempfile::tempdir().unwrap();
    let layout = built(work.path());
    let (run, _) = run_and_inspect(work.path(), &layout, &[]);
    run.ok();
    assert!(
        run.stdout.contains("ok: no libc in this root"),
        "{}",
        run.stdout
    );

    // Same size, one byte flipped in the middle of the compressed layer.
    let blob = largest_blob(&layout);
    let mut bytes = std::fs::read(&blob).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x55;
    std::fs::write(&blob, &bytes).unwrap();

    let (run, inspect) = run_and_inspect(work.path(), &layout, &[]);
    for r in [&run, &inspect] {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(
            r.stderr.contains("the content's digest is"),
            "the message must say the content is not what the descriptor says:\n{}",
            r.stderr
        );
    }
    assert!(
        !run.stdout.contains("ok: no libc"),
        "the tampered image ran"
    );
}

#[test]
fn a_blob_swapped_for_a_symlink_to_a_host_file_is_not_followed() {
    let work = tempfile::tempdir().unwrap();
    let layout = built(work.path());
    let blob = largest_blob(&layout);
    std::fs::remove_file(&blob).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &blob).unwrap();
    let (run, inspect) = run_and_inspect(work.path(), &layout, &[]);
    for r in [&run, &inspect] {
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stderr.contains("not a regular file"), "{}", r.stderr);
    }
}

#[test]
fn an_image_bigger_than_the_unpack_limits_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let layout = built(work.path());
    let (run, _) = run_and_inspect(work.path(), &layout, &["--max-unpack-bytes", "4K"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("unpack to more than 4096 bytes")
            && run.stderr.contains("--max-unpack-bytes"),
        "{}",
        run.stderr
    );
    let (run, _) = run_and_inspect(work.path(), &layout, &["--max-unpack-entries", "0"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("--max-unpack-entries"),
        "{}",
        run.stderr
    );
    let (run, _) = run_and_inspect(work.path(), &layout, &["--max-unpack-bytes", "lots"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}
