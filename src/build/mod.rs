//! Toolchains: recipe build spec → a binary in the build folder. One toolchain per file; the
//! hermetic process plumbing is shared in `process`.

mod c;
mod go;
pub mod musl;
pub mod process;

use crate::recipe::{BuildSpec, Lang};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{tool} is not installed ({why}); install it with: {install}")]
    ToolMissing {
        tool: String,
        why: String,
        install: String,
    },
    #[error("musl was not found: {0}; install it with: apt-get install musl-tools")]
    MuslMissing(String),
    #[error("{program} failed ({status}):\n  command: {command}\n{output}")]
    Failed {
        program: String,
        command: String,
        status: String,
        output: String,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

/// Where a build happens and what it may depend on.
#[derive(Clone, Debug)]
pub struct BuildContext {
    /// An empty folder outside the source tree; the toolchain's scratch space.
    pub build_dir: PathBuf,
    /// SOURCE_DATE_EPOCH handed to the toolchain.
    pub epoch: u64,
}

/// What a toolchain produced.
#[derive(Clone, Debug)]
pub struct Artifact {
    /// The binary, inside the build folder.
    pub binary: PathBuf,
    /// One line naming the toolchain and its version, e.g. "gcc 12.2.0 + musl (/usr/lib/x86_64-linux-musl)".
    pub toolchain: String,
    /// The commands run, as shell-quoted lines, for the report.
    pub commands: Vec<String>,
}

/// One language's way from a build spec to a binary.
pub trait Toolchain {
    fn build(&self, spec: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError>;
}

/// Builds with the toolchain the spec's language calls for.
pub fn build(spec: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError> {
    match spec.lang {
        Lang::C => c::CToolchain.build(spec, ctx),
        Lang::Prebuilt => Prebuilt.build(spec, ctx),
        Lang::Go => go::GoToolchain.build(spec, ctx),
    }
}

/// The commit time of the last commit touching `dir` (for `epoch = "git"`).
pub fn git_epoch(dir: &Path) -> Result<u64, BuildError> {
    let git = process::find_program("git").ok_or_else(|| BuildError::ToolMissing {
        tool: "git".into(),
        why: "epoch = \"git\" reads the last commit time".into(),
        install: "apt-get install git".into(),
    })?;
    let mut cmd = std::process::Command::new(git);
    cmd.args(["log", "-1", "--format=%ct", "--", "."])
        .current_dir(dir);
    let out = process::run(cmd)?;
    out.trim().parse().map_err(|_| {
        BuildError::Unsupported(format!(
            "epoch = \"git\": {} has no commit (git log printed {:?}); commit it or set epoch = <seconds>",
            dir.display(),
            out.trim()
        ))
    })
}

/// A binary built elsewhere: copied in, so that later stages see one kind of artifact.
struct Prebuilt;

impl Toolchain for Prebuilt {
    fn build(&self, spec: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError> {
        let binary = ctx.build_dir.join("prebuilt");
        copy(&spec.source, &binary)?;
        Ok(Artifact {
            binary,
            toolchain: "prebuilt".into(),
            commands: vec![format!("cp {} <build>/prebuilt", spec.source.display())],
        })
    }
}

fn copy(from: &Path, to: &Path) -> Result<(), BuildError> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|source| BuildError::Io {
            action: "copying",
            path: from.to_path_buf(),
            source,
        })
}
