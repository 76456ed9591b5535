//! Shared plumbing for the integration tests: the real staticpack binary, real tools.
#![allow(dead_code)]

#[path = "../../src/test_support/cc.rs"]
mod cc;
#[path = "../../src/test_support/http.rs"]
pub mod fake_http;
pub mod layout;
pub mod registry;
#[path = "../../src/test_support/sparse.rs"]
pub mod sparse;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn recipe(name: &str) -> PathBuf {
    repo_root().join("recipes").join(name)
}

/// The tool on PATH, or a failing test that says how to install it (never a silent skip).
pub fn need(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{tool} is required by this test: apt-get install {package} (or bash .ci/setup)")
        })
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How long one staticpack run may take in a test before it is killed and the test fails
/// (the slowest, a cold cgo Go build with --check-repro, takes about a minute here).
pub const RUN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs the staticpack binary with `args` in `cwd`, stdin closed; killed after `RUN_TIMEOUT`.
pub fn staticpack(cwd: &Path, args: &[&str]) -> Run {
    staticpack_with(cwd, args, &[])
}

/// `staticpack` with extra environment variables.
pub fn staticpack_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = staticpack_command(cwd, args);
    cmd.envs(env.iter().copied());
    run_with_timeout(cmd, RUN_TIMEOUT)
}

/// The staticpack command with `args` in `cwd`, for a test that sets more (environment
/// removals, stdin) before running it with [`run_with_timeout`] or [`run_with_input`].
pub fn staticpack_command(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_staticpack"));
    cmd.args(args).current_dir(cwd);
    cmd
}

/// Runs a command with stdin closed and a deadline; a hung process fails the test by name.
pub fn run_with_timeout(cmd: Command, timeout: std::time::Duration) -> Run {
    run_with_input(cmd, None, timeout)
}

/// [`run_with_timeout`] with `input` written to stdin (then closed); `None` is stdin closed
/// from the start. Output is read while the process runs, so no pipe ever fills up.
pub fn run_with_input(mut cmd: Command, input: Option<&[u8]>, timeout: std::time::Duration) -> Run {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {timeout:?}: killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    finish(Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}

/// Compiles the C program `source` with `compiler args…` into `dir/name`; returns its path.
pub fn compile_c(compiler: &str, args: &[&str], source: &str, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    cc::compile_c(compiler, args, source, &out);
    out
}

pub fn tool(program: &Path, args: &[&str], cwd: &Path) -> Run {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("starting a tool");
    finish(out)
}

/// The manifest digest a successful build printed on its last line.
pub fn printed_digest(run: &Run) -> String {
    let last = run.stdout.lines().last().unwrap_or_default();
    let digest = last.split_whitespace().next().unwrap_or_default();
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "no digest in the last line: {last:?}"
    );
    digest.to_owned()
}

/// Copies a folder tree (recipes are small).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// True when nothing but `allowed` names exist in `dir` (no half-written output, no staging).
pub fn only_entries(dir: &Path, allowed: &[&str]) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !allowed.contains(&n.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// The document of the referrer with this `artifactType` that a build attached in `layout`
/// (listed in staticpack-referrers.json, its one layer the document).
#[allow(dead_code)]
pub fn attached_document(layout: &Path, artifact_type: &str) -> serde_json::Value {
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(
            &std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    };
    let blob = |d: &serde_json::Value| {
        layout
            .join("blobs/sha256")
            .join(d["digest"].as_str().unwrap().trim_start_matches("sha256:"))
    };
    let list = read(layout.join("staticpack-referrers.json"));
    let found = list["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["artifactType"] == artifact_type)
        .unwrap_or_else(|| panic!("no {artifact_type} attached: {list}"));
    let manifest = read(blob(found));
    read(blob(&manifest["layers"][0]))
}
