//! The run proof: unpack an image into an empty root and run its entrypoint there, in a
//! namespace sandbox of our own or under runc. Processes and namespaces live here.

use crate::image::LoadedImage;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unsafe path in layer {layer}: {entry:?} ({reason})")]
    UnsafeEntry {
        layer: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("image config: {0}")]
    Config(String),
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("runc: {0}")]
    Runc(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Builtin,
    Runc,
}

#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub runtime: Runtime,
    /// Exit status when the process exited normally.
    pub exit_code: Option<i32>,
    /// Signal number when it was killed.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The start failure as the kernel said it (e.g. execve: ENOENT), when the entrypoint never ran.
    pub exec_error: Option<String>,
    /// What the root held: a count of regular files, and whether any libc/loader was present.
    pub rootfs_files: usize,
}

pub fn process_from_config(
    _config: &oci_spec::image::ImageConfiguration,
    _args: Option<&[String]>,
) -> Result<ProcessSpec, RunError> {
    unimplemented!("run helper")
}

pub fn unpack(_image: &LoadedImage, _dest: &Path) -> Result<usize, RunError> {
    unimplemented!("run helper")
}

pub fn run_image(
    _image: &LoadedImage,
    _args: Option<&[String]>,
    _runtime: Runtime,
    _timeout: Duration,
) -> Result<Outcome, RunError> {
    unimplemented!("run helper")
}
