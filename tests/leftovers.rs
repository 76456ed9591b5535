//! Issue 26 item 5: what a `kill -9` leaves — the build folder in TMPDIR, the staging folder
//! `out/.NAME.unproven-*` with its half-written layer, the run folder with the unpacked root —
//! is removed by the very next build or run, even one started the moment after the kill
//! (folders used to be left alone for their first 60 s). A folder whose owner still lives is
//! never touched: concurrent builds keep working. The real binary, real kills.

mod common;

use common::*;
use nix::fcntl::{Flock, FlockArg};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The entries of `dir`, sorted (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A folder as a live staticpack holds it: created, then flock-ed for as long as the value
/// lives (another build's, running beside the ones under test).
struct Live {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

fn live(path: PathBuf) -> Live {
    std::fs::create_dir_all(&path).unwrap();
    std::fs::write(path.join("in-use"), "a live build's file").unwrap();
    let lock = Flock::lock(
        std::fs::File::open(&path).unwrap(),
        FlockArg::LockExclusiveNonblock,
    )
    .map_err(|(_, e)| e)
    .unwrap();
    Live { path, _lock: lock }
}

impl Live {
    fn name(&self) -> String {
        self.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }

    fn assert_intact(&self) {
        assert_eq!(
            std::fs::read_to_string(self.path.join("in-use"))
                .ok()
                .as_deref(),
            Some("a live build's file"),
            "a live folder was touched: {}",
            self.path.display()
        );
    }
}

/// staticpack with `args` in `cwd`, TMPDIR and the cache folder private to the test.
fn command(work: &Path, args: &[&str]) -> Command {
    let mut cmd = staticpack_command(work, &[&["--cache-dir", "cache"], args].concat());
    cmd.env("TMPDIR", work.join("tmp"));
    cmd
}

fn spawn(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls until `ready` holds (a minute at most).
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Bytes in the files under `dir` (0 when it is gone).
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => total += bytes_under(&e.path()),
            Ok(t) if t.is_file() => total += e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => {}
        }
    }
    total
}

/// A prebuilt recipe `name` in `work/name`: a static musl program (from `source`) with
/// `payload` random bytes appended (past its segments: it still runs).
fn prebuilt(work: &Path, name: &str, source: &str, payload: u64, test: &str) -> PathBuf {
    need("musl-gcc", "musl-tools");
    let dir = work.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let program = compile_c("musl-gcc", &["-static", "-O2"], source, &dir, "program");
    let mut binary = std::fs::read(&program).unwrap();
    if payload > 0 {
        use std::io::Read;
        let mut random = Vec::with_capacity(payload as usize);
        std::fs::File::open("/dev/urandom")
            .unwrap()
            .take(payload)
            .read_to_end(&mut random)
            .unwrap();
        binary.extend(random);
    }
    std::fs::write(dir.join("app"), binary).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"{name}\"\n[build]\nlang = \"prebuilt\"\nlibc = \"musl\"\nlink = \"static\"\n\
             output = \"/app\"\nsource = \"app\"\n[test]\n{test}\n"
        ),
    )
    .unwrap();
    dir
}

#[test]
fn a_build_started_right_after_a_killed_one_removes_what_it_left() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let tmp = work.join("tmp");
    let out = work.join("out");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    // 200 MB of random bytes: a layer that takes seconds to compress and write.
    let recipe = prebuilt(
        work,
        "big",
        "#include <stdio.h>\nint main(void){puts(\"big\");return 0;}\n",
        200 << 20,
        "expect_stdout = \"big\"",
    );
    // Folders of builds running beside these: held, as a live staticpack holds its own.
    let live_build = live(tmp.join("staticpack-build-live"));
    let live_run = live(tmp.join("staticpack-run-live"));
    let live_staging = live(out.join(".big.unproven-live"));
    let live_names = [&live_build, &live_run, &live_staging].map(Live::name);
    let dead = |dir: &Path| -> Vec<String> {
        names(dir)
            .into_iter()
            .filter(|n| !live_names.contains(n))
            .collect()
    };

    let build_args = [
        "build",
        recipe.to_str().unwrap(),
        "--no-cache",
        "--out",
        "out/big",
    ];
    let mut child = spawn(command(work, &build_args));
    // Killed in the middle of writing the layer: its staging folder holds megabytes of it.
    wait_for("a staging folder with part of the layer", || {
        dead(&out)
            .iter()
            .any(|n| n.starts_with(".big.unproven-") && bytes_under(&out.join(n)) > 1 << 20)
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left_in_tmp = dead(&tmp);
    let left_in_out = dead(&out);
    assert!(
        left_in_tmp
            .iter()
            .any(|n| n.starts_with("staticpack-build-")),
        "{left_in_tmp:?}"
    );
    assert!(
        left_in_out.iter().any(|n| n.starts_with(".big.unproven-")),
        "{left_in_out:?}"
    );
    let left_bytes: u64 = left_in_out.iter().map(|n| bytes_under(&out.join(n))).sum();
    eprintln!(
        "left by the killed build: {left_in_tmp:?} in TMPDIR, {left_in_out:?} ({left_bytes} bytes) beside the output"
    );

    // At once: no waiting for the leftovers to age.
    let run = run_with_timeout(command(work, &build_args), RUN_TIMEOUT);
    run.ok();
    for name in &left_in_tmp {
        let path = tmp.join(name);
        assert!(!path.exists(), "{} is still there", path.display());
        assert!(
            run.stderr
                .contains(&format!("cleanup removed {}", path.display())),
            "{}",
            run.stderr
        );
    }
    for name in &left_in_out {
        assert!(!out.join(name).exists(), "{name} is still there");
    }
    // Nothing else either: TMPDIR holds the live folders only, `out` the new layout beside
    // the live staging folder.
    assert_eq!(dead(&tmp), Vec::<String>::new());
    assert_eq!(dead(&out), vec!["big".to_owned()]);
    for l in [&live_build, &live_run, &live_staging] {
        l.assert_intact();
    }
}

#[test]
fn a_run_started_right_after_a_killed_one_removes_what_it_left() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let tmp = work.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // An entrypoint that sleeps as many seconds as it is told; the proof tells it 0.
    let recipe = prebuilt(
        work,
        "sleeper",
        "#include <stdlib.h>\n#include <unistd.h>\n\
         int main(int argc, char **argv){sleep(argc > 1 ? atoi(argv[1]) : 0);return 0;}\n",
        0,
        "args = [\"0\"]",
    );
    run_with_timeout(
        command(
            work,
            &["build", recipe.to_str().unwrap(), "--out", "sleeper-oci"],
        ),
        RUN_TIMEOUT,
    )
    .ok();
    let live_run = live(tmp.join("staticpack-run-live"));
    let dead = || -> Vec<String> {
        names(&tmp)
            .into_iter()
            .filter(|n| *n != live_run.name())
            .collect()
    };
    assert_eq!(dead(), Vec::<String>::new());

    let mut child = spawn(command(work, &["run", "oci:sleeper-oci", "--", "60"]));
    // Killed while its entrypoint runs: the root is unpacked and in use.
    wait_for("a run folder with the unpacked root", || {
        dead()
            .iter()
            .any(|n| n.starts_with("staticpack-run-") && tmp.join(n).join("rootfs/app").exists())
    });
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = dead();
    assert!(
        left.iter().any(|n| n.starts_with("staticpack-run-")),
        "{left:?}"
    );

    let run = run_with_timeout(
        command(work, &["run", "oci:sleeper-oci", "--", "0"]),
        RUN_TIMEOUT,
    );
    run.ok();
    assert_eq!(dead(), Vec::<String>::new(), "{}", run.stderr);
    live_run.assert_intact();
}

#[test]
fn a_killed_archive_build_leaves_nothing_after_the_next() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let tmp = work.join("tmp");
    let out = work.join("out");
    std::fs::create_dir_all(&tmp).unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let recipe = prebuilt(
        work,
        "big",
        "#include <stdio.h>\nint main(void){puts(\"big\");return 0;}\n",
        200 << 20,
        "expect_stdout = \"big\"",
    );
    // Without a layout folder the build stages in TMPDIR, and the archive is written in a
    // folder beside it before it is renamed into place.
    let args = [
        "build",
        recipe.to_str().unwrap(),
        "--no-run",
        "--format",
        "oci-archive",
        "--out",
        "out/big.oci.tar",
    ];
    let mut child = spawn(command(work, &args));
    wait_for("a partial archive", || {
        names(&out)
            .iter()
            .any(|n| n.starts_with(".big.oci.tar.partial-") && bytes_under(&out.join(n)) > 1 << 20)
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left_in_tmp = names(&tmp);
    let left_in_out = names(&out);
    assert!(
        left_in_tmp.iter().any(|n| n.starts_with(".big.unproven-")),
        "{left_in_tmp:?}"
    );
    eprintln!(
        "left by the killed build: {left_in_tmp:?} in TMPDIR, {left_in_out:?} beside the output"
    );

    run_with_timeout(command(work, &args), RUN_TIMEOUT).ok();
    assert_eq!(names(&tmp), Vec::<String>::new());
    assert_eq!(names(&out), vec!["big.oci.tar".to_owned()]);
}
