//! The run proof: unpack an image into an empty root and run its entrypoint there, in a
//! namespace sandbox of our own or under runc. Processes and namespaces live here.
//!
//! - [`unpack`] applies the layers into an empty directory; nothing ever lands outside it
//!   (see `unpack.rs` for the path rules).
//! - [`process_from_config`] / [`process_spec`] turn the image config into argv/env/cwd/user
//!   with docker's semantics.
//! - [`run_image`] puts both together: a fresh temporary root holding only the image's files,
//!   the entrypoint run in it by the builtin sandbox (`sandbox.rs`) or by runc (`runc.rs`),
//!   its output captured (bounded) and the temporary root removed again.

pub(crate) mod diagnose;
mod hardening;
mod output;
mod qemu;
mod runc;
mod sandbox;
pub(crate) mod unpack;
mod user;

#[cfg(test)]
mod tests;

use crate::fsio::IoError;
use crate::image::LoadedImage;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use qemu::Emulation;
pub(crate) use sandbox::jail::die_with_parent;
pub use sandbox::jail::{
    DEFAULT_MAX_BYTES, DEFAULT_MAX_PROCESSES, DEFAULT_TIMEOUT_SECONDS, JailLimits, JailSpec,
    StepEnd, Stopped, available as jail_available, limits_mechanism, run as run_jailed,
};
pub use unpack::{UnpackLimits, unpack, unpack_layer};
pub use user::resolve_user;

/// What a signal that killed a program usually means, in a few words for the person reading
/// the failed proof.
pub fn signal_meaning(signal: i32) -> &'static str {
    match signal {
        nix::libc::SIGSEGV => {
            "SIGSEGV, a bad memory access; a musl static-pie that crashes at start often carries initial-exec TLS relocations musl's static-pie start-up does not apply: try link = \"static\""
        }
        nix::libc::SIGABRT => {
            "SIGABRT: the program aborted (a failed assertion, or the C library gave up)"
        }
        nix::libc::SIGILL => {
            "SIGILL, an illegal instruction: built for a newer CPU (-march) than this one, or a deliberate trap"
        }
        nix::libc::SIGBUS => "SIGBUS: a bad memory access (a truncated mapped file, misalignment)",
        nix::libc::SIGFPE => "SIGFPE: an arithmetic fault such as a division by zero",
        nix::libc::SIGSYS => "SIGSYS: a system call the sandbox or the kernel refused",
        nix::libc::SIGKILL => "SIGKILL: a timeout, or the kernel ran out of memory",
        nix::libc::SIGPIPE => "SIGPIPE: it wrote to a closed pipe",
        _ => "see `man 7 signal`",
    }
}

/// The PATH a process gets when the image config sets none (docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Each of stdout and stderr is kept up to this many bytes; the rest is read and dropped so
/// the process never blocks on a full pipe.
pub const OUTPUT_CAP: usize = 1 << 20;

/// The hostname the entrypoint sees in both runtimes.
pub const SANDBOX_HOSTNAME: &str = "staticpack";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("unsafe path in layer {layer}: {entry:?} ({reason})")]
    UnsafeEntry {
        layer: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("image config: {0}")]
    Config(String),
    #[error(transparent)]
    Layer(#[from] crate::image::ImageError),
    #[error(
        "the image's layers unpack to more than {limit} {what} (the limit; raise it with {flag} if the image is trusted)"
    )]
    TooLarge {
        what: &'static str,
        limit: u64,
        flag: &'static str,
    },
    /// Judged by the header, before a byte of the entry is written.
    #[error(
        "entry {entry:?} of layer {layer} declares {size} bytes (a sparse file counts at its full size): the image's layers would unpack to more than {limit} bytes (the limit; raise it with --max-unpack-bytes if the image is trusted)"
    )]
    DeclaredTooLarge {
        layer: PathBuf,
        entry: String,
        size: u64,
        limit: u64,
    },
    #[error("sandbox: {0}")]
    Sandbox(String),
    #[error("runc: {0}")]
    Runc(String),
    #[error("{0}")]
    Emulator(String),
}

impl RunError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        IoError::new(action, path, source).into()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Builtin,
    Runc,
}

impl Runtime {
    /// The name `--runtime` takes, also how a layout's record names the proof it passed.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Builtin => "builtin",
            Runtime::Runc => "runc",
        }
    }
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
    /// Paths (inside the root) of regular files named like a libc or a dynamic loader
    /// (`ld-linux*.so*`, `ld-musl-*.so*`, `libc.so*`, `libc-*.so`, `libc.musl-*`). Empty is the
    /// claim "no libc present".
    pub libc_files: Vec<String>,
    /// The run hit the timeout and the whole sandbox was killed (`signal` is then SIGKILL).
    pub timed_out: bool,
    /// stdout or stderr went past [`OUTPUT_CAP`] and was cut there.
    pub output_truncated: bool,
    /// The image is for another CPU: the entrypoint ran under this emulator.
    pub emulation: Option<Emulation>,
}

/// The process of an image config, with docker's semantics; a user *name* is an error here
/// because resolving it needs the image's `/etc/passwd` (use [`process_spec`] with the root).
pub fn process_from_config(
    config: &oci_spec::image::ImageConfiguration,
    args: Option<&[String]>,
) -> Result<ProcessSpec, RunError> {
    process_spec(config, args, None)
}

/// The process of an image config:
/// - argv = Entrypoint + (`args` when given — even empty — else Cmd); empty argv is an error;
/// - env = the config's, plus [`DEFAULT_PATH`] when it sets no `PATH`;
/// - cwd = WorkingDir (must be absolute) or `/`;
/// - user = `uid[:gid]` numbers, or names resolved in `rootfs`'s `/etc/passwd` and
///   `/etc/group` (see [`resolve_user`]).
pub fn process_spec(
    config: &oci_spec::image::ImageConfiguration,
    args: Option<&[String]>,
    rootfs: Option<&Path>,
) -> Result<ProcessSpec, RunError> {
    let cfg = config.config().as_ref();
    let mut argv: Vec<String> = cfg.and_then(|c| c.entrypoint().clone()).unwrap_or_default();
    match args {
        Some(args) => argv.extend_from_slice(args),
        None => argv.extend(cfg.and_then(|c| c.cmd().clone()).unwrap_or_default()),
    }
    if argv.is_empty() {
        return Err(RunError::Config(
            "nothing to run: the image has neither Entrypoint nor Cmd and no arguments were given"
                .into(),
        ));
    }
    if argv[0].is_empty() {
        return Err(RunError::Config(
            "the program to run (argv[0]) is an empty string".into(),
        ));
    }

    let mut env: Vec<String> = cfg.and_then(|c| c.env().clone()).unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }

    let cwd = match cfg.and_then(|c| c.working_dir().as_deref()) {
        None | Some("") => "/".to_owned(),
        Some(dir) if dir.starts_with('/') => dir.to_owned(),
        Some(dir) => {
            return Err(RunError::Config(format!(
                "WorkingDir {dir:?} is not an absolute path"
            )));
        }
    };

    let user = cfg.and_then(|c| c.user().as_deref()).unwrap_or("");
    let (uid, gid) = resolve_user(user, rootfs)?;

    for s in argv.iter().chain(&env).chain(std::iter::once(&cwd)) {
        if s.contains('\0') {
            return Err(RunError::Config(format!("{s:?} contains a NUL byte")));
        }
    }
    Ok(ProcessSpec {
        argv,
        env,
        cwd,
        uid,
        gid,
    })
}

/// What a runtime reports back; `run_image` adds what it knows about the root.
pub(crate) struct RawOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: output::Captured,
    pub stderr: output::Captured,
    pub exec_error: Option<String>,
    pub timed_out: bool,
}

const RUN_DIR_PREFIX: &str = "staticpack-run-";

/// Removes the run folders of killed staticpack processes from TMPDIR, and deletes the runc
/// containers whose state they hold (they would run on otherwise).
pub fn sweep_leftovers() -> Vec<PathBuf> {
    let tmp = std::env::temp_dir();
    let mut removed =
        crate::workdir::sweep(&tmp, RUN_DIR_PREFIX, &|dir| runc::delete_leftovers(dir));
    // What `run` and `verify IMAGE` unpacked, pulled or extracted before they were killed.
    for prefix in [
        VERIFY_DIR_PREFIX,
        crate::image::source::PULL_DIR_PREFIX,
        crate::image::source::ARCHIVE_DIR_PREFIX,
    ] {
        removed.extend(crate::workdir::sweep(&tmp, prefix, &|_| {}));
    }
    removed
}

/// The folder in TMPDIR that `verify IMAGE` unpacks an image into.
pub const VERIFY_DIR_PREFIX: &str = "staticpack-verify-";

/// How to run an image: where, how long, and how much of it to unpack.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    pub runtime: Runtime,
    /// Everything in the sandbox is killed when it passes.
    pub timeout: Duration,
    pub limits: UnpackLimits,
    /// The root read-only, as for Kubernetes' `readOnlyRootFilesystem`; by default it is
    /// writable and thrown away with the run, as docker, podman and Kubernetes give it.
    pub read_only: bool,
}

impl RunOptions {
    pub fn new(runtime: Runtime, timeout: Duration) -> Self {
        RunOptions {
            runtime,
            timeout,
            limits: UnpackLimits::default(),
            read_only: false,
        }
    }
}

/// Unpacks `image` into a fresh temporary root (holding nothing but the image's files), runs
/// its entrypoint (with `args` replacing Cmd when given) as `opts` says, and removes the root
/// again.
pub fn run_image(
    image: &LoadedImage,
    args: Option<&[String]>,
    opts: &RunOptions,
) -> Result<Outcome, RunError> {
    let (runtime, timeout) = (opts.runtime, opts.timeout);
    // Check for runc before the unpack, so a missing tool fails fast.
    let runc_bin = match runtime {
        Runtime::Runc => Some(runc::find_runc()?),
        Runtime::Builtin => None,
    };

    // 0700 (tempfile's default): no other host user can reach the unpacked files, whatever
    // modes (setuid included) the layers give them.
    let work = crate::workdir::WorkDir::new(RUN_DIR_PREFIX)
        .map_err(|e| RunError::io("creating a temporary directory in", std::env::temp_dir(), e))?;
    let rootfs = work.path().join("rootfs");
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(&rootfs)
            .map_err(|e| RunError::io("creating", &rootfs, e))?;
    }

    sweep_leftovers();
    let result = (|| -> Result<Outcome, RunError> {
        let rootfs_files = unpack(image, &rootfs, &opts.limits)?;
        let libc_files = unpack::find_libc_files(&rootfs)?;
        let mut spec = process_spec(&image.config, args, Some(&rootfs))?;
        // Docker semantics: a WorkingDir the image lacks is created (inside the root).
        unpack::ensure_dir_in_root(&rootfs, &spec.cwd)?;
        // Every container runtime gives a /dev and a /proc, whether or not the image has
        // the folders: their mount points are made in this run's copy of the root. An image
        // whose /dev or /proc is something else (a file, a link) keeps it, unmounted.
        for dir in ["/dev", "/proc"] {
            if std::fs::symlink_metadata(rootfs.join(&dir[1..])).is_err() {
                unpack::ensure_dir_in_root(&rootfs, dir)?;
            }
        }
        // Counted above: the emulator is ours, not the image's.
        let emulation = match qemu::foreign_platform(&image.config) {
            Some(platform) => Some(qemu::inject(&platform, &rootfs, &mut spec)?),
            None => None,
        };
        if runtime == Runtime::Builtin && nix::unistd::geteuid().is_root() {
            // The sandbox maps container ids to an unprivileged host range: the files move
            // there with them, and so does the 0700 work directory (container root must
            // reach the root through it; other host users still cannot).
            hardening::shift_tree(work.path(), spec.uid, spec.gid)?;
        }
        let raw = match runc_bin {
            Some(bin) => runc::run(&bin, work.path(), &spec, timeout, opts.read_only)?,
            None => sandbox::run(&rootfs, &spec, timeout, opts.read_only)?,
        };
        let output_truncated = raw.stdout.truncated || raw.stderr.truncated;
        Ok(Outcome {
            runtime,
            exit_code: raw.exit_code,
            signal: raw.signal,
            stdout: raw.stdout.bytes,
            stderr: raw.stderr.bytes,
            exec_error: raw.exec_error,
            rootfs_files,
            libc_files,
            timed_out: raw.timed_out,
            output_truncated,
            emulation,
        })
    })();

    // Directories the image made read-only would stop the removal when we are not root.
    unpack::make_removable(work.path());
    let path = work.path().to_path_buf();
    let cleanup = work.close().map_err(|e| RunError::io("removing", path, e));
    let outcome = result?;
    cleanup?;
    Ok(outcome)
}

/// "4096", "512K", "16G", "1TiB": bytes, with powers of 1024 for the suffixes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => {
            return Err(format!(
                "{text:?}: use a number of bytes, or one with K, M, G or T"
            ));
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| format!("{text:?} is not a size in bytes (e.g. 16G, 512M, 4096)"))
}

#[cfg(test)]
mod size_tests {
    #[test]
    fn sizes() {
        use super::parse_size;
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("16G"), Ok(16 << 30));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
        assert_eq!(parse_size("3 MB"), Ok(3 << 20));
        for bad in ["", "G", "1.5G", "12X", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
