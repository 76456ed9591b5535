use super::*;
use std::time::Duration;

/// Runs `script` with /bin/sh in a jail per `spec`: (exited 0, stdout + stderr, the end).
fn sh(spec: &JailSpec, script: &str) -> (bool, String, StepEnd) {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script])
        .current_dir(&spec.build_dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    let out = tempfile::tempfile().unwrap();
    let end = run(&cmd, spec, &out, &out).unwrap();
    let mut text = String::new();
    let mut out = out;
    use std::io::Seek;
    out.rewind().unwrap();
    out.read_to_string(&mut text).unwrap();
    (end.status.success(), text, end)
}

fn jail_in(outer: &Path) -> JailSpec {
    available().expect("the build jail must be available on the CI machine");
    let build = outer.join("build");
    std::fs::create_dir_all(&build).unwrap();
    JailSpec::new(build, JailLimits::default())
}

#[test]
fn a_step_writes_only_the_build_folder_and_reads_only_what_was_declared() {
    let outer = tempfile::tempdir().unwrap();
    let mut spec = jail_in(outer.path());
    let build = spec.build_dir.clone();
    let input = outer.path().join("recipe");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.c"), "int x;\n").unwrap();
    std::fs::write(outer.path().join("secret.h"), "#define KEY 1\n").unwrap();
    spec.inputs = vec![input.clone()];
    let b = build.display();
    let i = input.display();
    let o = outer.path().display();
    let (ok, out, _) = sh(
        &spec,
        &format!(
            "echo built > {b}/out && cat {i}/a.c && /usr/bin/gcc --version >/dev/null && echo x > /tmp/t && echo fine"
        ),
    );
    assert!(ok, "{out}");
    assert!(out.contains("int x;") && out.contains("fine"), "{out}");
    assert_eq!(
        std::fs::read_to_string(build.join("out")).unwrap(),
        "built\n"
    );
    for (what, script) in [
        ("an undeclared file", format!("cat {o}/secret.h")),
        ("a write to an input", format!("echo x > {i}/a.c")),
        (
            "a write to /etc",
            "echo x > /etc/staticpack-leak".to_owned(),
        ),
        (
            "a write to /proc/sys",
            "echo 1 > /proc/sys/kernel/core_uses_pid".to_owned(),
        ),
        (
            "the network",
            "grep -v -e lo: -e Inter -e face /proc/net/dev | grep .".to_owned(),
        ),
        ("the host's shadow file", "cat /etc/shadow".to_owned()),
        ("root's home", "ls /root".to_owned()),
        ("beside the recipe", format!("echo x > {i}/../leak")),
        ("/home", "ls /home".to_owned()),
        ("/var", "ls /var".to_owned()),
        ("/run", "ls /run".to_owned()),
        ("a mount", "mount -t tmpfs none /tmp".to_owned()),
        ("a new namespace", "unshare -r true".to_owned()),
    ] {
        let (ok, out, _) = sh(&spec, &script);
        assert!(!ok, "{what} must fail in the jail:\n{out}");
    }
    // The host's temporary folder is not the jail's: what lands in the jail's /tmp stays there.
    let (_, out, _) = sh(&spec, &format!("echo x > {o}/leak"));
    assert!(!outer.path().join("leak").exists(), "{out}");
    assert_eq!(
        std::fs::read_to_string(input.join("a.c")).unwrap(),
        "int x;\n"
    );
}

#[test]
fn a_step_has_no_privilege_and_sees_no_host_process() {
    let outer = tempfile::tempdir().unwrap();
    let spec = jail_in(outer.path());
    let (ok, out, _) = sh(
        &spec,
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status; ls /proc | grep -E '^[0-9]+$' | wc -l; echo pid=$$",
    );
    assert!(ok, "{out}");
    for cap in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert!(
            out.contains(&format!("{cap}:\t0000000000000000")),
            "{cap}: {out}"
        );
    }
    assert!(out.contains("NoNewPrivs:\t1"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    // init (1), the shell (2) and its pipeline: nothing of the host.
    assert!(out.contains("pid=2"), "{out}");
    let count: u32 = out
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or(u32::MAX);
    assert!(count <= 6, "host processes visible: {out}");
    // A host process's root is out of reach.
    let host = std::process::id();
    let (ok, out, _) = sh(&spec, &format!("ls /proc/{host}/root/"));
    assert!(!ok, "{out}");
}

#[test]
fn what_a_step_leaves_running_is_killed_and_counted() {
    let outer = tempfile::tempdir().unwrap();
    let spec = jail_in(outer.path());
    let marker = format!("{}", 700_000 + std::process::id() % 1000);
    let (ok, out, end) = sh(
        &spec,
        &format!("sleep {marker} & (sleep {marker} &) ; setsid sleep {marker} & true"),
    );
    assert!(ok, "{out}");
    assert_eq!(end.killed, 3, "{out}");
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        !ps.lines().any(|l| l.contains(&format!("sleep {marker}"))),
        "still running:\n{ps}"
    );
}

#[test]
fn a_step_past_the_deadline_is_stopped() {
    let outer = tempfile::tempdir().unwrap();
    let mut spec = jail_in(outer.path());
    spec.limits = JailLimits::from_now(1, DEFAULT_MAX_PROCESSES, DEFAULT_MAX_BYTES);
    let started = Instant::now();
    let (ok, _, end) = sh(&spec, "sleep 30");
    assert!(!ok);
    assert_eq!(end.stopped, Some(Stopped::Timeout { seconds: 1 }));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_disk_filler_is_stopped_at_the_byte_limit() {
    let outer = tempfile::tempdir().unwrap();
    let mut spec = jail_in(outer.path());
    spec.limits = JailLimits::from_now(60, DEFAULT_MAX_PROCESSES, 8 << 20);
    // One big file: the kernel's RLIMIT_FSIZE stops it at once.
    let (ok, _, end) = sh(&spec, "head -c 100000000 /dev/zero > big");
    assert!(!ok);
    assert_eq!(end.stopped, Some(Stopped::Bytes { limit: 8 << 20 }));
    // Many small files: the watch stops it within a check or two.
    let started = Instant::now();
    let (ok, _, end) = sh(
        &spec,
        "i=0; while true; do head -c 1000000 /dev/zero > f$i; i=$((i+1)); done",
    );
    assert!(!ok);
    assert_eq!(end.stopped, Some(Stopped::Bytes { limit: 8 << 20 }));
    assert!(started.elapsed() < Duration::from_secs(20));
    // It overshoots by what the disk takes in one watch interval, not more.
    assert!(tree_bytes(&spec.build_dir) < 2 << 30);
}

#[test]
fn a_fork_bomb_is_stopped_at_the_process_limit() {
    let outer = tempfile::tempdir().unwrap();
    let mut spec = jail_in(outer.path());
    spec.limits = JailLimits::from_now(60, 64, DEFAULT_MAX_BYTES);
    let started = Instant::now();
    // Every process forks forever and ignores its failures: only the limit holds it.
    let (ok, _, end) = sh(
        &spec,
        "exec python3 -c 'import os\nwhile True:\n  try: os.fork()\n  except OSError: pass'",
    );
    assert!(!ok);
    assert_eq!(end.stopped, Some(Stopped::Processes { limit: 64 }));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn dev_nodes_a_toolchain_opens_are_there() {
    let outer = tempfile::tempdir().unwrap();
    let spec = jail_in(outer.path());
    let (ok, out, _) = sh(
        &spec,
        "echo x > /dev/null && head -c 4 /dev/urandom | wc -c && head -c 4 /dev/zero | wc -c && echo y > /dev/shm/z && ls /dev",
    );
    assert!(ok, "{out}");
    assert!(out.contains("shm") && out.contains("urandom"), "{out}");
}
