//! A build under `umask 077` proves the same image as under 022: the run proof's root carries
//! the layers' modes, not what the umask leaves of them (a non-root entrypoint could not enter
//! a 0700 `/` or `/home`, and failed with `chdir …: Permission denied`).

mod common;

use common::*;

/// Builds `recipe` with `umask 077` set in the shell that execs staticpack.
fn build_under_umask_077(recipe: &std::path::Path, out: &std::path::Path) -> Run {
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(env!("CARGO_BIN_EXE_staticpack"))
        .args(["build", "--no-cache", "--out"])
        .arg(out)
        .arg(recipe)
        .current_dir(out.parent().unwrap());
    run_with_timeout(cmd, RUN_TIMEOUT)
}

#[test]
fn the_run_proof_of_a_nonroot_image_passes_under_umask_077() {
    need("go", "golang-go");
    let work = tempfile::tempdir().unwrap();
    // distroless-like `static` base, user nonroot, WorkingDir /home/nonroot.
    let run = build_under_umask_077(&recipe("go-static-base"), &work.path().join("base"));
    run.ok();
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    // The empty base, user 65532: the root itself must be 0755 for it to chdir to `/`.
    let run = build_under_umask_077(
        &recipe("go-static-base").join("scratch.toml"),
        &work.path().join("scratch"),
    );
    run.ok();
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
}
