//! Shared plumbing for the integration tests: the real staticpack binary, real tools.
#![allow(dead_code)]

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

/// Runs the staticpack binary with `args` in `cwd`.
pub fn staticpack(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_staticpack"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("starting staticpack");
    finish(out)
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
