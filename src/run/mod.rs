//! The run proof: unpack an image into an empty root and run its entrypoint there, in a
//! namespace sandbox of our own or under runc. Processes and namespaces live here.

use crate::image::LoadedImage;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod runc;
mod sandbox;
mod unpack;

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

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The process an image runs, docker's way: Entrypoint + (args if given, else Cmd); the image's
/// Env with a default PATH; WorkingDir or "/"; User resolved against the root's /etc/passwd and
/// /etc/group when it is a name.
pub fn process_from_config(
    config: &oci_spec::image::ImageConfiguration,
    args: Option<&[String]>,
    rootfs: Option<&Path>,
) -> Result<ProcessSpec, RunError> {
    let cfg = config.config().clone().unwrap_or_default();
    let mut argv: Vec<String> = cfg.entrypoint().clone().unwrap_or_default();
    match args {
        Some(a) => argv.extend(a.iter().cloned()),
        None => argv.extend(cfg.cmd().clone().unwrap_or_default()),
    }
    if argv.is_empty() {
        return Err(RunError::Config(
            "the image has neither Entrypoint nor Cmd: nothing to run".into(),
        ));
    }
    let mut env = cfg.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(DEFAULT_PATH.to_owned());
    }
    let cwd = cfg
        .working_dir()
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".to_owned());
    let (uid, gid) = match cfg.user().as_deref() {
        None | Some("") => (0, 0),
        Some(user) => resolve_user(user, rootfs)?,
    };
    Ok(ProcessSpec {
        argv,
        env,
        cwd,
        uid,
        gid,
    })
}

/// "uid[:gid]" or "name[:group]", names looked up in the root's passwd and group files.
fn resolve_user(user: &str, rootfs: Option<&Path>) -> Result<(u32, u32), RunError> {
    let read = |f: &str| {
        rootfs
            .and_then(|r| std::fs::read_to_string(r.join(f)).ok())
            .unwrap_or_default()
    };
    let (name, group) = user
        .split_once(':')
        .map(|(u, g)| (u, Some(g)))
        .unwrap_or((user, None));
    let passwd = read("etc/passwd");
    let (uid, primary_gid) = match name.parse::<u32>() {
        Ok(uid) => (
            uid,
            crate::image::base::lookup_user(&passwd, name)
                .map(|(_, g)| g)
                .unwrap_or(uid),
        ),
        Err(_) => crate::image::base::lookup_user(&passwd, name).ok_or_else(|| {
            RunError::Config(format!("user {name:?} is not in the image's /etc/passwd"))
        })?,
    };
    let gid = match group {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read("etc/group")
                .lines()
                .find_map(|l| {
                    let f: Vec<&str> = l.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse().ok())
                        .flatten()
                })
                .ok_or_else(|| {
                    RunError::Config(format!("group {g:?} is not in the image's /etc/group"))
                })?,
        },
    };
    Ok((uid, gid))
}

/// Applies the image's layers into the empty folder `dest`; returns the number of regular files.
pub fn unpack(image: &LoadedImage, dest: &Path) -> Result<usize, RunError> {
    unpack::unpack_layers(&image.layer_blobs, dest)
}

/// Unpacks the image into a fresh empty root and runs its entrypoint there.
pub fn run_image(
    image: &LoadedImage,
    args: Option<&[String]>,
    runtime: Runtime,
    timeout: Duration,
) -> Result<Outcome, RunError> {
    let temp = tempfile::Builder::new()
        .prefix("staticpack-run-")
        .tempdir()
        .map_err(|source| RunError::Io {
            action: "creating a root in",
            path: std::env::temp_dir(),
            source,
        })?;
    // The bundle layout serves both runtimes: rootfs/ beside runc's config.json.
    let rootfs = temp.path().join("rootfs");
    std::fs::create_dir(&rootfs).map_err(|source| RunError::Io {
        action: "creating",
        path: rootfs.clone(),
        source,
    })?;
    let files = unpack(image, &rootfs)?;
    let spec = process_from_config(&image.config, args, Some(&rootfs))?;
    let mut outcome = match runtime {
        Runtime::Builtin => sandbox::run(&rootfs, &spec, timeout)?,
        Runtime::Runc => runc::run(temp.path(), &spec, timeout)?,
    };
    outcome.rootfs_files = files;
    Ok(outcome)
}
