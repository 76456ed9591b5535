//! The run proof's root is a container's (issue 28, item 3): writable and thrown away by
//! default (docker, podman and Kubernetes give that), read-only with `[test] read_only = true`
//! (Kubernetes' readOnlyRootFilesystem), and with a `/dev` (null, zero, full, random, urandom,
//! tty, shm) and a `/proc` whether or not the image has those folders.

mod common;

use common::*;
use std::path::Path;

/// Writes a file in /tmp (made if missing) and in its working folder, reads /dev/null,
/// /dev/urandom and /proc/self/stat, then says "ok".
const PROGRAM: &str = r#"#include <stdio.h>
#include <sys/stat.h>
static int check(const char *what, FILE *f) { if (!f) { perror(what); return 1; } fclose(f); return 0; }
int main(void) {
    int bad = 0;
    mkdir("/tmp", 01777);
    bad |= check("/tmp/x", fopen("/tmp/x", "w"));
    bad |= check("./here", fopen("./here", "w"));
    bad |= check("/dev/null", fopen("/dev/null", "w"));
    bad |= check("/dev/urandom", fopen("/dev/urandom", "r"));
    bad |= check("/proc/self/stat", fopen("/proc/self/stat", "r"));
    if (!bad) puts("ok");
    return bad;
}
"#;

fn recipe(work: &Path, name: &str, base: &str, read_only: bool) -> std::path::PathBuf {
    let dir = work.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.c"), PROGRAM).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"{name}\"\n[build]\nlang = \"c\"\nsource = \"src\"\n[image]\nbase = \"{base}\"\nworkdir = \"/work\"\n[test]\nexpect_stdout = \"ok\\n\"\nread_only = {read_only}\n"
        ),
    )
    .unwrap();
    dir
}

fn build(work: &Path, dir: &Path, extra: &[&str]) -> Run {
    let out = work.join("out").join(dir.file_name().unwrap());
    let mut args = vec![
        "build",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    staticpack(work, &args)
}

#[test]
fn a_program_that_writes_and_opens_dev_null_passes_on_scratch_and_static() {
    let work = tempfile::tempdir().unwrap();
    for base in ["scratch", "static"] {
        let dir = recipe(work.path(), &format!("writes-{base}"), base, false);
        build(work.path(), &dir, &[]).ok();
        build(work.path(), &dir, &["--runtime", "runc", "--no-cache"]).ok();
    }
}

#[test]
fn read_only_proves_with_a_read_only_root() {
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(work.path(), "read-only", "static", true);
    let run = build(work.path(), &dir, &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    // The CLI's run takes the same choice.
    let ok = recipe(work.path(), "writable", "static", false);
    build(work.path(), &ok, &[]).ok();
    let layout = work.path().join("out/writable");
    let run = staticpack(
        work.path(),
        &["run", layout.to_str().unwrap(), "--read-only"],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    let run = staticpack(work.path(), &["run", layout.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}
