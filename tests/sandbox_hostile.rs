//! The builtin sandbox holds as root (issue 11): a hostile static program
//! (`tests/fixtures/hostile-c`) tries to change host kernel settings, remount or mount,
//! ptrace the sandbox's init, read kernel memory, open raw sockets, make user namespaces and
//! gain privileges through a setuid-root binary, through the real `staticpack run` and
//! `staticpack build` CLI; every attempt must fail and its harmless work must still run.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// Every attempt the program must report as BLOCKED (it reports each on its own line).
const ATTEMPTS: &[&str] = &[
    "write-core_uses_pid",
    "open-core_pattern-for-writing",
    "open-sysrq-trigger-for-writing",
    "writable-/proc/sys",
    "writable-/proc/sysrq-trigger",
    "writable-/proc/irq",
    "writable-/proc/bus",
    "writable-/proc/fs",
    "unmasked-/proc/kcore",
    "unmasked-/proc/keys",
    "unmasked-/proc/timer_list",
    "unmasked-/proc/sched_debug",
    "unmasked-/proc/latency_stats",
    "unmasked-/proc/timer_stats",
    "unmasked-/proc/acpi",
    "unmasked-/proc/scsi",
    "remount-root-rw",
    "remount-root-rw-plain",
    "create-file-in-root",
    "mount-tmpfs",
    "umount-proc",
    "ptrace-attach-pid-1",
    "open-proc-1-root",
    "read-proc-kcore",
    "raw-socket-af-packet",
    "raw-socket-inet",
    "unshare-newuser",
    "clone-newuser",
    "kernel-keyring",
    "bpf",
    "capget-empty",
    "status-CapEff-zero",
    "status-CapPrm-zero",
    "status-CapInh-zero",
    "status-CapBnd-zero",
    "status-CapAmb-zero",
    "status-NoNewPrivs-1",
    "status-Seccomp-filter",
    "suid-probe-present-setuid-root",
    "setuid-root-binary",
];

const CORE_USES_PID: &str = "/proc/sys/kernel/core_uses_pid";

/// Held around each hostile run: the host-side check of [`CORE_USES_PID`] must not see (or
/// miss, by two flips) another test's run.
static HOST_CHECK: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the hostile-image tests prove the sandbox holds *as root*: run them as root (CI does)"
    );
}

/// The fixture copied into `work`, with `suid-probe` (the same program) compiled next to it
/// and, when given, `user` set on the image.
fn hostile_recipe(work: &Path, user: Option<&str>) -> PathBuf {
    let dir = work.join("hostile-c");
    copy_tree(&repo_root().join("tests/fixtures/hostile-c"), &dir);
    let cc = need("musl-gcc", "musl-tools");
    let probe = dir.join("suid-probe");
    tool(
        &cc,
        &[
            "-static",
            "-O1",
            "-o",
            probe.to_str().unwrap(),
            dir.join("src/hostile.c").to_str().unwrap(),
        ],
        work,
    )
    .ok();
    // Started outside a sandbox, the program refuses to do anything.
    let outside = tool(&probe, &[], work);
    assert_eq!(outside.code, 3, "{}{}", outside.stdout, outside.stderr);
    assert!(
        outside.stderr.contains("refusing to run"),
        "{}",
        outside.stderr
    );
    if let Some(user) = user {
        let path = dir.join("recipe.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replacen("[image]\n", &format!("[image]\nuser = \"{user}\"\n"), 1);
        std::fs::write(&path, text).unwrap();
    }
    dir
}

fn core_uses_pid() -> String {
    std::fs::read_to_string(CORE_USES_PID).unwrap()
}

/// Fails the test if the host setting changed (and puts it back first).
fn assert_host_unchanged(before: &str) {
    let after = core_uses_pid();
    if after != before {
        let _ = std::fs::write(CORE_USES_PID, before);
        panic!("the image changed the host's {CORE_USES_PID}: {before:?} → {after:?} (restored)");
    }
}

/// Every attempt reported BLOCKED, none ESCAPED, and the harmless work ran.
fn assert_contained(stdout: &str, read_line: &str) {
    let escaped: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ESCAPED"))
        .collect();
    assert!(
        escaped.is_empty(),
        "escaped:\n{}\n\nfull output:\n{stdout}",
        escaped.join("\n")
    );
    for name in ATTEMPTS {
        let prefix = format!("BLOCKED {name}: ");
        assert!(
            stdout.lines().any(|l| l.starts_with(&prefix)),
            "no line {prefix:?}:\n{stdout}"
        );
    }
    assert!(stdout.lines().any(|l| l == "ok"), "{stdout}");
    assert!(stdout.lines().any(|l| l == read_line), "{stdout}");
}

fn build_no_run(work: &Path, recipe: &Path) -> PathBuf {
    let out = work.join("out");
    staticpack(
        work,
        &[
            "build",
            recipe.to_str().unwrap(),
            "--no-run",
            "--out",
            out.to_str().unwrap(),
        ],
    )
    .ok();
    out
}

#[test]
fn hostile_image_run_as_root_is_contained_and_its_harmless_work_runs() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let recipe = hostile_recipe(work.path(), None);
    let out = build_no_run(work.path(), &recipe);
    let _serial = HOST_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let before = core_uses_pid();
    let run = staticpack(work.path(), &["run", out.to_str().unwrap(), "--read-only"]);
    assert_host_unchanged(&before);
    // Container root reads its 0600 file: the image's owners survive the id shift.
    assert_contained(
        &run.stdout,
        "read /etc/hostile.txt: hostile-c harmless read as root",
    );
    assert!(
        run.stdout
            .contains("BLOCKED setuid-root-binary: uid 0 euid 0 CapEff 0000000000000000"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}

#[test]
fn hostile_image_passes_the_build_run_proof_with_nothing_escaped() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let recipe = hostile_recipe(work.path(), None);
    let _serial = HOST_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let before = core_uses_pid();
    // The default run proof of `build`: expect_exit = 0, which the program gives only when
    // every attempt failed and its harmless work ran.
    let run = staticpack(
        work.path(),
        &["build", recipe.to_str().unwrap(), "--out", "out/hostile"],
    );
    assert_host_unchanged(&before);
    run.ok();
    assert!(run.stderr.contains("run     ok (builtin"), "{}", run.stderr);
}

#[test]
fn setuid_root_binary_gains_nothing_for_a_non_root_image_user() {
    require_root();
    let work = tempfile::tempdir().unwrap();
    let recipe = hostile_recipe(work.path(), Some("1000:1000"));
    let out = build_no_run(work.path(), &recipe);
    let _serial = HOST_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let before = core_uses_pid();
    let run = staticpack(
        work.path(),
        &[
            "run",
            out.to_str().unwrap(),
            "--read-only",
            "--",
            "/etc/hostile-1000.txt",
        ],
    );
    assert_host_unchanged(&before);
    // User 1000 reads its own 0600 file (owners shifted with the ids), and exec of the
    // setuid-root /suid-probe leaves it uid 1000 with no capabilities.
    assert_contained(
        &run.stdout,
        "read /etc/hostile-1000.txt: hostile-c harmless read as 1000",
    );
    assert!(
        run.stdout
            .contains("BLOCKED setuid-root-binary: uid 1000 euid 1000 CapEff 0000000000000000"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
}
