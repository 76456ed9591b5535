//! The build jail: every toolchain step (a recipe's commands, make/autotools/cmake/meson, cargo
//! and its build scripts, go and cgo, each compile of a file list, dependency recipes) runs in
//! the same kind of sandbox as the run proof (`sandbox.rs`), with a root built for a build:
//!
//! - **namespaces**: new user, mount, pid, net (unless the step is a checked download), ipc
//!   and uts namespaces. The step is root of its user namespace only: as host root, the jail's
//!   ids 0..65536 map to the unprivileged range of `hardening.rs` (never host 0); as a user,
//!   jail root is that user.
//! - **no privilege**: the step process (pid 2) has no capability in any set, `no_new_privs`,
//!   the run proof's seccomp deny list (mount, the new mount API, unshare/setns, ptrace, bpf,
//!   keyrings, kexec, modules…), rlimits on processes and file size, no core dumps.
//! - **a minimal view of the host**: a fresh tmpfs root, read-only once built, holding the
//!   toolchain folders (`/usr`, `/bin`, `/sbin`, `/lib*`) bound read-only, an `/etc` with only
//!   the files toolchains read ([`ETC_ALLOWED`]: no shadow, no ssh, no docker config), a `/dev`
//!   of its own (null, zero, full, random, urandom, tty, shm), the pid namespace's own
//!   `/proc` with runc's masked and read-only paths, the recipe's declared inputs read-only,
//!   and the build folder, the one writable place besides a private `/tmp` (a tmpfs of at
//!   most 1 GiB; `TMPDIR` points into the build folder). `/root`, `/home`, `/run`,
//!   `/var` and the rest of the host are simply not there.
//! - **ownership**: as host root, the inputs, the build folder and the writable caches are
//!   bound through id-mapped mounts (`MOUNT_ATTR_IDMAP` over the jail's user namespace): the
//!   files staticpack wrote appear owned by jail root, and what jail root writes lands owned
//!   by staticpack's user, so nothing has to be chowned back and forth. The mounts are made by
//!   the parent (it holds the privilege) and passed to the jail over a socket. Where a
//!   filesystem refuses id-mapping, that folder is bound as is.
//! - **lifetime**: pid 1 of the namespace is our minimal init. When the step ends, init kills
//!   everything it left (kill(-1) in the pid namespace), counts it and exits; when staticpack
//!   dies (`kill -9` included) init gets SIGKILL and the kernel ends the namespace with it.
//! - **limits**: a deadline (the recipe's `[build] timeout_seconds`), a process limit and a
//!   bound on what the build folder may hold (`--max-build-processes`, `--max-build-bytes`),
//!   watched by the parent while the step runs; `RLIMIT_NPROC` and `RLIMIT_FSIZE` hold them
//!   in the kernel in between. cgroup v2's pids controller is not used: on hosts with the
//!   hybrid hierarchy (as here) it is not available to us, and rlimits hold everywhere.
//!
//! As in `sandbox.rs`, everything the child does is planned before the clone; the child makes
//! raw syscalls only.

use super::{
    ExecPlan, Step, above_stdio, become_root, close_all_but, errno, mask_proc, report,
    start_and_wait,
};
use crate::run::{RunError, hardening};
use nix::libc::{self, c_char, c_int, c_long};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What a toolchain step may see and change, and how far it may go.
#[derive(Clone, Debug)]
pub struct JailSpec {
    /// Writable; holds the jail's own (empty) root folder too.
    pub build_dir: PathBuf,
    /// Readable: the recipe's folder, its source, `allow_outside` paths, a toolchain.
    pub inputs: Vec<PathBuf>,
    /// Writable as well: cache folders a build may write, which must exist.
    pub writable: Vec<PathBuf>,
    /// Keep the host's network: only for a download step whose results are checked by digest
    /// (`cargo fetch --locked`); every other step runs with none.
    pub network: bool,
    pub limits: JailLimits,
    /// Processes the jail's init killed after steps other than a recipe's commands ended
    /// (those are reported per command), summed over the build.
    pub killed: Arc<AtomicU64>,
}

impl JailSpec {
    pub fn new(build_dir: PathBuf, limits: JailLimits) -> Self {
        JailSpec {
            build_dir,
            inputs: Vec::new(),
            writable: Vec::new(),
            network: false,
            limits,
            killed: Arc::new(AtomicU64::new(0)),
        }
    }
}

/// The bounds of one build, all its steps together.
#[derive(Clone, Copy, Debug)]
pub struct JailLimits {
    /// When the build must be done (`[build] timeout_seconds` from its start).
    pub deadline: Instant,
    pub timeout_seconds: u64,
    /// Processes at once in one step's jail.
    pub max_processes: u64,
    /// Bytes the build folder may hold (disk blocks, every file counted once per link).
    pub max_bytes: u64,
}

/// The build's own wall-clock limit when the recipe sets none: generous for real builds.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 3600;
/// Default `--max-build-processes`: far above what `make -j` on a big machine runs.
pub const DEFAULT_MAX_PROCESSES: u64 = 4096;
/// Default `--max-build-bytes`: 32 GiB, room for the largest real builds' trees.
pub const DEFAULT_MAX_BYTES: u64 = 32 << 30;

impl JailLimits {
    pub fn from_now(timeout_seconds: u64, max_processes: u64, max_bytes: u64) -> Self {
        JailLimits {
            deadline: Instant::now() + Duration::from_secs(timeout_seconds),
            timeout_seconds,
            max_processes,
            max_bytes,
        }
    }
}

impl Default for JailLimits {
    fn default() -> Self {
        Self::from_now(
            DEFAULT_TIMEOUT_SECONDS,
            DEFAULT_MAX_PROCESSES,
            DEFAULT_MAX_BYTES,
        )
    }
}

/// Why the jail stopped a step before it ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The build ran past its deadline.
    Timeout { seconds: u64 },
    /// The build folder grew past the limit (or one file did: RLIMIT_FSIZE).
    Bytes { limit: u64 },
    /// The step kept the process limit full (a fork bomb).
    Processes { limit: u64 },
}

/// How a jailed step ended.
#[derive(Debug)]
pub struct StepEnd {
    pub status: ExitStatus,
    /// Processes the step left running, killed by the jail's init when it ended.
    pub killed: u32,
    pub stopped: Option<Stopped>,
}

/// The system folders a toolchain needs, read-only; the ones that are symlinks (merged /usr)
/// are recreated as the same symlinks.
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// What of the host's `/etc` a toolchain reads: the dynamic loader's cache, Debian's
/// alternatives (`cc`, `c++`, `ld`…), the user and group names (no passwords: those are in
/// shadow), name-service and time-zone basics, CA certificates (for the one networked step,
/// a digest-checked download), and the configuration of the interpreters build systems run
/// (perl for autotools, python for meson).
const ETC_ALLOWED: &[&str] = &[
    "alternatives",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "group",
    "host.conf",
    "hosts",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "passwd",
    "perl",
    "protocols",
    "python3",
    "python3.11",
    "services",
    "ssl",
    "timezone",
];

/// Device nodes the jail's `/dev` gets (bound from the host: a user namespace cannot mknod).
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
const DEV_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// Id-mapped mounts passed to the child at most (inputs, caches, build folder).
const MAX_SLOTS: usize = 64;

/// One thing the child does to build the new root, in order.
enum MountStep {
    /// mkdir, EEXIST ignored.
    Mkdir(CString),
    /// An empty file to bind a file onto.
    Touch(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    Bind {
        src: CString,
        dst: CString,
        readonly: bool,
        recursive: bool,
        /// Which of the id-mapped mounts the parent sends replaces this bind, when it could
        /// make one.
        idmap_slot: Option<usize>,
    },
    Tmpfs {
        dst: CString,
        options: CString,
        flags: libc::c_ulong,
    },
    Proc {
        dst: CString,
    },
    /// A folder made only to hold mounts inside the writable /tmp: bound onto itself
    /// read-only (its mounts stay as they are), so nothing can be written beside them.
    Seal(CString),
}

/// An id-mapped mount the parent makes for a slot.
struct IdmapSource {
    path: PathBuf,
    readonly: bool,
    recursive: bool,
}

/// The whole plan, made in the parent.
struct Plan {
    new_root: CString,
    steps: Vec<MountStep>,
    idmaps: Vec<IdmapSource>,
    proc_masked: Vec<CString>,
    proc_readonly: Vec<CString>,
    host_null: CString,
    hostname: CString,
    exec: ExecPlan,
    /// Host root: become jail root (setres[ug]id 0) and drop the host's groups.
    as_root: bool,
}

fn cstring(p: &Path) -> Result<CString, RunError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| RunError::Sandbox(format!("{} contains a NUL byte", p.display())))
}

fn inside(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Every folder from the first below `/` down to `p`, each inside `root`.
fn mkdirs(root: &Path, p: &Path, steps: &mut Vec<MountStep>) -> Result<(), RunError> {
    let mut at = PathBuf::from("/");
    for c in p.strip_prefix("/").unwrap_or(p).components() {
        at.push(c);
        steps.push(MountStep::Mkdir(cstring(&inside(root, &at))?));
    }
    Ok(())
}

/// The mount steps for the host's `path` (a folder, file or symlink) at the same path inside
/// `root`; a symlink is recreated, never followed.
fn mirror(
    root: &Path,
    path: &Path,
    steps: &mut Vec<MountStep>,
    idmaps: Option<&mut Vec<IdmapSource>>,
    readonly: bool,
    recursive: bool,
) -> Result<(), RunError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    let dst = inside(root, path);
    if let Some(parent) = path.parent() {
        mkdirs(root, parent, steps)?;
    }
    if meta.file_type().is_symlink() {
        let target =
            std::fs::read_link(path).map_err(|e| RunError::io("reading the link", path, e))?;
        steps.push(MountStep::Symlink {
            target: cstring(&target)?,
            link: cstring(&dst)?,
        });
        return Ok(());
    }
    if meta.is_dir() {
        steps.push(MountStep::Mkdir(cstring(&dst)?));
    } else {
        steps.push(MountStep::Touch(cstring(&dst)?));
    }
    let idmap_slot = match idmaps {
        Some(list) if list.len() < MAX_SLOTS => {
            list.push(IdmapSource {
                path: path.to_path_buf(),
                readonly,
                recursive,
            });
            Some(list.len() - 1)
        }
        _ => None,
    };
    steps.push(MountStep::Bind {
        src: cstring(path)?,
        dst: cstring(&dst)?,
        readonly,
        recursive,
        idmap_slot,
    });
    Ok(())
}

/// The environment entries of `cmd` (a hermetic command sets them all explicitly).
fn environment(cmd: &Command) -> Vec<String> {
    cmd.get_envs()
        .filter_map(|(k, v)| Some(format!("{}={}", k.to_string_lossy(), v?.to_string_lossy())))
        .collect()
}

fn plan(cmd: &Command, spec: &JailSpec, as_root: bool) -> Result<Plan, RunError> {
    let build_dir = spec
        .build_dir
        .canonicalize()
        .map_err(|e| RunError::io("opening the build folder", &spec.build_dir, e))?;
    let new_root = build_dir.join(".jail-root");
    std::fs::create_dir_all(&new_root)
        .map_err(|e| RunError::io("creating the jail's root in", &new_root, e))?;
    let mut steps = Vec::new();
    let mut idmaps = Vec::new();
    for dir in SYSTEM {
        mirror(&new_root, Path::new(dir), &mut steps, None, true, true)?;
    }
    steps.push(MountStep::Mkdir(cstring(&new_root.join("etc"))?));
    for name in ETC_ALLOWED {
        mirror(
            &new_root,
            &Path::new("/etc").join(name),
            &mut steps,
            None,
            true,
            true,
        )?;
    }
    if spec.network {
        // A download step resolves names: the host's resolver configuration, nothing else.
        mirror(
            &new_root,
            Path::new("/etc/resolv.conf"),
            &mut steps,
            None,
            true,
            false,
        )?;
    }
    // A private /tmp, mounted before anything that lives under the host's /tmp (the build
    // folder, a recipe in a temporary folder) so that those are mounted on top of it.
    steps.push(MountStep::Mkdir(cstring(&new_root.join("tmp"))?));
    steps.push(MountStep::Tmpfs {
        dst: cstring(&new_root.join("tmp"))?,
        options: CString::new("mode=1777,size=1g").unwrap_or_default(),
        flags: libc::MS_NOSUID | libc::MS_NODEV,
    });
    // Inputs, outermost first; one inside another (or inside a system folder) needs no mount.
    let mut inputs: Vec<PathBuf> = spec
        .inputs
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    inputs.sort_by_key(|p| p.components().count());
    inputs.dedup();
    let mut mounted: Vec<PathBuf> = SYSTEM.iter().map(PathBuf::from).collect();
    for input in inputs {
        if mounted.iter().any(|m| input.starts_with(m)) || input.starts_with(&build_dir) {
            continue;
        }
        let idmaps = as_root.then_some(&mut idmaps);
        mirror(&new_root, &input, &mut steps, idmaps, true, true)?;
        mounted.push(input);
    }
    // Writable caches after the inputs, so that one inside a read-only input is still writable.
    for dir in &spec.writable {
        let dir = dir
            .canonicalize()
            .map_err(|e| RunError::io("opening the cache folder", dir, e))?;
        let idmaps = as_root.then_some(&mut idmaps);
        mirror(&new_root, &dir, &mut steps, idmaps, false, false)?;
    }
    // The build folder last and alone (not recursive: the jail's root is mounted inside it).
    let idmaps_ref = as_root.then_some(&mut idmaps);
    mirror(&new_root, &build_dir, &mut steps, idmaps_ref, false, false)?;
    // Folders under /tmp made to reach a mount: read-only, or a step could write there (into
    // the jail's /tmp, where a test or a person would not look for it).
    let mut seals: Vec<PathBuf> = Vec::new();
    let targets = mounted.iter().skip(SYSTEM.len()).chain(&spec.writable);
    for target in targets.chain([&build_dir]) {
        let Ok(rest) = target.strip_prefix("/tmp") else {
            continue;
        };
        let Some(first) = rest.components().next() else {
            continue;
        };
        let top = Path::new("/tmp").join(first);
        if &top != target && !seals.contains(&top) {
            seals.push(top);
        }
    }
    for top in seals {
        steps.push(MountStep::Seal(cstring(&inside(&new_root, &top))?));
    }

    // /dev and /proc of the jail's own.
    let dev = new_root.join("dev");
    steps.push(MountStep::Mkdir(cstring(&dev)?));
    steps.push(MountStep::Tmpfs {
        dst: cstring(&dev)?,
        options: CString::new("mode=755,size=64k").unwrap_or_default(),
        // Not nodev: the device nodes bound into it must open (as in the run sandbox).
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
    });
    for name in DEV_NODES {
        let host = Path::new("/dev").join(name);
        if host.exists() {
            steps.push(MountStep::Touch(cstring(&dev.join(name))?));
            steps.push(MountStep::Bind {
                src: cstring(&host)?,
                dst: cstring(&dev.join(name))?,
                readonly: false,
                recursive: false,
                idmap_slot: None,
            });
        }
    }
    for (target, name) in DEV_LINKS {
        steps.push(MountStep::Symlink {
            target: cstring(Path::new(target))?,
            link: cstring(&dev.join(name))?,
        });
    }
    steps.push(MountStep::Mkdir(cstring(&dev.join("shm"))?));
    steps.push(MountStep::Tmpfs {
        dst: cstring(&dev.join("shm"))?,
        options: CString::new("mode=1777,size=64m").unwrap_or_default(),
        flags: libc::MS_NOSUID | libc::MS_NODEV,
    });
    let proc_dir = new_root.join("proc");
    steps.push(MountStep::Mkdir(cstring(&proc_dir)?));
    steps.push(MountStep::Proc {
        dst: cstring(&proc_dir)?,
    });
    let proc_paths = |names: &[&str]| -> Result<Vec<CString>, RunError> {
        names.iter().map(|n| cstring(&proc_dir.join(n))).collect()
    };

    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut argv = vec![program.clone()];
    argv.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    let cwd = match cmd.get_current_dir() {
        Some(dir) => std::path::absolute(dir)
            .map_err(|e| RunError::io("resolving", dir, e))?
            .to_string_lossy()
            .into_owned(),
        None => build_dir.to_string_lossy().into_owned(),
    };
    let limits = spec.limits;
    let rlimits = vec![
        (libc::RLIMIT_NPROC as c_int, limits.max_processes),
        (libc::RLIMIT_FSIZE as c_int, limits.max_bytes),
        (libc::RLIMIT_CORE as c_int, 0),
    ];
    let exec = ExecPlan::new(
        &argv,
        &environment(cmd),
        &[program],
        &cwd,
        (0, 0),
        as_root,
        rlimits,
    )?;
    Ok(Plan {
        new_root: cstring(&new_root)?,
        steps,
        idmaps,
        proc_masked: proc_paths(hardening::PROC_MASKED)?,
        proc_readonly: proc_paths(hardening::PROC_READONLY)?,
        host_null: CString::new("/dev/null").unwrap_or_default(),
        hostname: CString::new(crate::run::SANDBOX_HOSTNAME).unwrap_or_default(),
        exec,
        as_root,
    })
}

/// Whether a jail can be made here, tried once per process (a step is run in one), and the
/// reason when it cannot (a container without the privilege, user namespaces off).
pub fn available() -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            // A locked scratch folder: one a kill leaves behind is swept by the next run.
            let dir = crate::workdir::WorkDir::new("staticpack-build-probe-")
                .map_err(|e| e.to_string())?;
            let spec = JailSpec::new(dir.path().to_path_buf(), JailLimits::default());
            let cmd = Command::new("/bin/true");
            let devnull = File::options()
                .write(true)
                .open("/dev/null")
                .map_err(|e| e.to_string())?;
            match run(&cmd, &spec, &devnull, &devnull) {
                Ok(end) if end.status.success() => Ok(()),
                Ok(end) => Err(format!("a test step in it ended with {}", end.status)),
                Err(e) => Err(e.to_string()),
            }
        })
        .clone()
}

/// Whether the id-mapped mounts could be made (as root), for `--verbose`.
pub fn limits_mechanism() -> &'static str {
    "rlimits (RLIMIT_NPROC, RLIMIT_FSIZE) and the jail's watch on time, processes and bytes"
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x1;
const MOUNT_ATTR_NOSUID: u64 = 0x2;
const MOUNT_ATTR_NODEV: u64 = 0x4;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// A detached copy of `src`'s mount, id-mapped through the user namespace `userns` (made in
/// the parent, which has the privilege the jail lacks).
fn idmapped_mount(src: &IdmapSource, userns: &File) -> std::io::Result<OwnedFd> {
    let path = CString::new(src.path.as_os_str().as_bytes())?;
    let recursive = if src.recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: open_tree/mount_setattr on a NUL-terminated path we own and a struct of the
    // kernel's layout; the returned descriptor is owned right away.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE
                | libc::O_CLOEXEC as libc::c_uint
                | libc::AT_SYMLINK_NOFOLLOW as libc::c_uint
                | recursive,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let tree = OwnedFd::from_raw_fd(fd as RawFd);
        let mut set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
        if src.readonly {
            set |= MOUNT_ATTR_RDONLY;
        }
        let attr = MountAttr {
            attr_set: set,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        };
        let ret = libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | recursive,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        );
        if ret < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(tree)
    }
}

/// A connected pair of close-on-exec unix sockets that keep message boundaries.
fn socketpair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut pair = [-1 as c_int; 2];
    // SAFETY: socketpair writes two descriptors into the array, owned right after.
    unsafe {
        if libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        ) == -1
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(pair[0]), OwnedFd::from_raw_fd(pair[1])))
    }
}

/// Sends one flag byte per slot (1: a mount follows) and the mounts, in one message.
fn send_mounts(sock: &OwnedFd, flags: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut data = flags.to_vec();
    if data.is_empty() {
        data.push(0);
    }
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    let payload = std::mem::size_of_val(fds) as libc::c_uint;
    // SAFETY: CMSG_SPACE is arithmetic.
    let space = unsafe { libc::CMSG_SPACE(payload) } as usize;
    let mut control = vec![0u64; space.div_ceil(8).max(1)];
    // SAFETY: a zeroed msghdr is valid; every pointer below points into live buffers of the
    // sizes given.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(payload) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr().cast::<u8>(),
                libc::CMSG_DATA(cmsg),
                payload as usize,
            );
        }
        if libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The child's descriptors (raw: the child must not run destructors).
#[derive(Clone, Copy)]
struct Fds {
    sock: RawFd,
    error_w: RawFd,
    status_w: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    devnull: RawFd,
}

/// Runs `cmd` (program, arguments, environment and working folder; nothing else of it) in
/// a jail per `spec`, its stdout and stderr into the given files, until it ends or a limit
/// stops it. Every process it started is gone when this returns.
pub fn run(
    cmd: &Command,
    spec: &JailSpec,
    stdout: &File,
    stderr: &File,
) -> Result<StepEnd, RunError> {
    let as_root = nix::unistd::geteuid().is_root();
    let plan = plan(cmd, spec, as_root)?;
    let sandbox_err =
        |what: &str, e: &dyn std::fmt::Display| RunError::Sandbox(format!("{what}: {e}"));
    let (error_r, error_w) = super::pipe()?;
    let (status_r, status_w) = super::pipe()?;
    let (parent_sock, child_sock) =
        socketpair().map_err(|e| sandbox_err("creating a socket pair", &e))?;
    let child_sock = above_stdio(child_sock)?;
    let devnull = above_stdio(OwnedFd::from(
        File::open("/dev/null").map_err(|e| RunError::io("opening", "/dev/null", e))?,
    ))?;
    let out = above_stdio(OwnedFd::from(
        stdout
            .try_clone()
            .map_err(|e| sandbox_err("duplicating stdout", &e))?,
    ))?;
    let err = above_stdio(OwnedFd::from(
        stderr
            .try_clone()
            .map_err(|e| sandbox_err("duplicating stderr", &e))?,
    ))?;
    let fds = Fds {
        sock: child_sock.as_raw_fd(),
        error_w: error_w.as_raw_fd(),
        status_w: status_w.as_raw_fd(),
        stdout: out.as_raw_fd(),
        stderr: err.as_raw_fd(),
        devnull: devnull.as_raw_fd(),
    };

    let mut stack = vec![0u8; super::STACK_SIZE];
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    if !spec.network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    let plan_ref = &plan;
    // SAFETY: as in `sandbox::run`: no CLONE_VM, the child only runs `child`, which makes
    // async-signal-safe syscalls on its copy of our memory and ends in execve or _exit.
    let pid = unsafe {
        nix::sched::clone(
            Box::new(move || child(plan_ref, fds)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(super::clone_error)?;
    let mut reaper = super::Reaper { pid, reaped: false };
    drop((child_sock, error_w, status_w, out, err, devnull));

    let write_proc = |file: &str, content: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, content)
            .map_err(|e| RunError::Sandbox(format!("writing {content:?} to {path}: {e}")))
    };
    if as_root {
        let map = hardening::root_map(0);
        write_proc("uid_map", &map)?;
        write_proc("gid_map", &map)?;
    } else {
        write_proc("setgroups", "deny")?;
        write_proc("uid_map", &format!("0 {} 1\n", nix::unistd::geteuid()))?;
        write_proc("gid_map", &format!("0 {} 1\n", nix::unistd::getegid()))?;
    }
    // The id-mapped mounts (as root), then the release: one message.
    let mut slot_flags = vec![0u8; plan.idmaps.len()];
    let mut mounts = Vec::new();
    if as_root && !plan.idmaps.is_empty() {
        let userns = File::open(format!("/proc/{pid}/ns/user"))
            .map_err(|e| sandbox_err("opening the jail's user namespace", &e))?;
        for (slot, source) in plan.idmaps.iter().enumerate() {
            // A filesystem without id-mapping support: that folder is bound as it is.
            if let Ok(fd) = idmapped_mount(source, &userns) {
                slot_flags[slot] = 1;
                mounts.push(fd);
            }
        }
    }
    let raw: Vec<RawFd> = mounts.iter().map(AsRawFd::as_raw_fd).collect();
    send_mounts(&parent_sock, &slot_flags, &raw)
        .map_err(|e| sandbox_err("releasing the build jail", &e))?;
    drop(mounts);
    let ns_link = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok();

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut raw = [0u8; 8];
        let got = File::from(status_r).read_exact(&mut raw).ok().map(|()| {
            (
                i32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]),
                u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]),
            )
        });
        let _ = tx.send(got);
    });

    let limits = spec.limits;
    let mut watch = Watch::new(&spec.build_dir, ns_link, limits);
    let (ended, stopped) = loop {
        let now = Instant::now();
        let Some(left) = limits.deadline.checked_duration_since(now) else {
            break (
                None,
                Some(Stopped::Timeout {
                    seconds: limits.timeout_seconds,
                }),
            );
        };
        match rx.recv_timeout(left.min(watch.interval)) {
            Ok(got) => break (got, None),
            Err(mpsc::RecvTimeoutError::Disconnected) => break (None, None),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(stop) = watch.check() {
                    break (None, Some(stop));
                }
            }
        }
    };
    if stopped.is_some() {
        // init is not reaped yet, so the pid is still ours; the kernel ends its namespace.
        let _ = kill(pid, Signal::SIGKILL);
    }
    let init_status = waitpid(pid, None);
    reaper.reaped = true;

    let mut reports = Vec::new();
    File::from(error_r)
        .read_to_end(&mut reports)
        .map_err(|e| sandbox_err("reading the jail's error pipe", &e))?;
    if let Some(stop) = stopped {
        use std::os::unix::process::ExitStatusExt;
        return Ok(StepEnd {
            status: ExitStatus::from_raw(libc::SIGKILL),
            killed: 0,
            stopped: Some(stop),
        });
    }
    if let Some((step, errno, _)) = super::decode_report(&reports) {
        if step != Step::Exec {
            return Err(RunError::Sandbox(format!(
                "build jail: {}: {} ({errno:?})",
                step.describe(),
                errno.desc()
            )));
        }
    }
    let Some((raw_status, killed)) = ended else {
        return Err(RunError::Sandbox(format!(
            "the build jail's init ended ({init_status:?}) before the step did"
        )));
    };
    use std::os::unix::process::ExitStatusExt;
    let status = ExitStatus::from_raw(raw_status);
    // A file past RLIMIT_FSIZE kills its writer with SIGXFSZ (the step then fails in its own
    // words): a failed step whose folder reached the limit was stopped by it.
    let at_limit = || tree_bytes(&spec.build_dir) >= limits.max_bytes;
    let stopped = (status.signal() == Some(libc::SIGXFSZ) || (!status.success() && at_limit()))
        .then_some(Stopped::Bytes {
            limit: limits.max_bytes,
        });
    Ok(StepEnd {
        status,
        killed,
        stopped,
    })
}

/// How often the watch looks at least: what a disk filler writes past the limit is what it
/// writes in this time.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// The parent's watch over a running step: the build folder's size and the processes in the
/// jail's pid namespace, checked at an interval that grows with what a check costs.
struct Watch {
    build_dir: PathBuf,
    ns_link: Option<PathBuf>,
    limits: JailLimits,
    interval: Duration,
    /// Consecutive checks that found the process limit full.
    full: u32,
}

impl Watch {
    fn new(build_dir: &Path, ns_link: Option<PathBuf>, limits: JailLimits) -> Self {
        Watch {
            build_dir: build_dir.to_path_buf(),
            ns_link,
            limits,
            interval: WATCH_INTERVAL,
            full: 0,
        }
    }

    fn check(&mut self) -> Option<Stopped> {
        let started = Instant::now();
        let used = tree_bytes(&self.build_dir);
        let processes = self.ns_link.as_deref().map_or(0, processes_in);
        // Never more than a tenth of a core on watching.
        self.interval = (started.elapsed() * 10).max(WATCH_INTERVAL);
        if used > self.limits.max_bytes {
            return Some(Stopped::Bytes {
                limit: self.limits.max_bytes,
            });
        }
        if processes >= self.limits.max_processes {
            self.full += 1;
        } else {
            self.full = 0;
        }
        (self.full >= 2).then_some(Stopped::Processes {
            limit: self.limits.max_processes,
        })
    }
}

/// Disk blocks under `dir` (each inode once), never following symlinks.
pub(crate) fn tree_bytes(dir: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.nlink() > 1 && !meta.is_dir() && !seen.insert(meta.ino()) {
                continue;
            }
            total = total.saturating_add(meta.blocks().saturating_mul(512));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// How many processes are in the pid namespace whose `/proc/PID/ns/pid` link is `ns_link`.
fn processes_in(ns_link: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().as_bytes().iter().all(u8::is_ascii_digit))
        .filter(|e| {
            std::fs::read_link(e.path().join("ns/pid")).is_ok_and(|l| l.as_path() == ns_link)
        })
        .count() as u64
}

// ---------------------------------------------------------------------------------------------
// The child: raw syscalls on prepared data, no allocation.
// ---------------------------------------------------------------------------------------------

fn child(plan: &Plan, fds: Fds) -> ! {
    // SAFETY (whole function): raw syscalls on descriptors we own and on pointers into `plan`
    // and stack buffers, valid until execve or _exit.
    unsafe {
        let mut keep = [
            fds.sock,
            fds.error_w,
            fds.status_w,
            fds.stdout,
            fds.stderr,
            fds.devnull,
        ];
        keep.sort_unstable();
        close_all_but(&keep);
        for fd in 0..3 {
            libc::dup2(fds.devnull, fd);
        }
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);

        // Wait for the id maps, receiving the id-mapped mounts with the release.
        let mut slot_flags = [0u8; MAX_SLOTS];
        let mut received = [-1 as RawFd; MAX_SLOTS];
        if let Err(e) = receive_mounts(fds.sock, &mut slot_flags, &mut received) {
            report(fds.error_w, Step::JailIdmap, e, 0);
            libc::_exit(1);
        }
        libc::close(fds.sock);

        if plan.as_root {
            become_root(fds.error_w, fds.status_w);
        }

        let mapped = |slot: usize| -> Option<RawFd> {
            let flag = *slot_flags.get(slot)?;
            if flag != 1 {
                return None;
            }
            let index = slot_flags[..slot].iter().filter(|f| **f == 1).count();
            received.get(index).copied().filter(|fd| *fd >= 0)
        };
        if let Err((step, err, index)) = setup_root(plan, &mapped) {
            report(fds.error_w, step, err, index);
            libc::_exit(1);
        }
        start_and_wait(
            &plan.exec,
            [fds.devnull, fds.stdout, fds.stderr],
            fds.error_w,
            fds.status_w,
        )
    }
}

/// Receives the release message: a flag byte per slot and the id-mapped mounts' descriptors.
///
/// # Safety
/// Only in the clone child.
unsafe fn receive_mounts(
    sock: RawFd,
    flags: &mut [u8; MAX_SLOTS],
    received: &mut [RawFd; MAX_SLOTS],
) -> Result<(), c_int> {
    // SAFETY: recvmsg into stack buffers of the sizes given; CMSG_* are pointer arithmetic
    // within `control`.
    unsafe {
        let mut control = [0u64; (MAX_SLOTS * 4 + 64) / 8];
        let mut iov = libc::iovec {
            iov_base: flags.as_mut_ptr().cast(),
            iov_len: flags.len(),
        };
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        loop {
            let n = libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n > 0 {
                break;
            }
            if n == -1 && errno() == libc::EINTR {
                continue;
            }
            // The parent gave up (it reports why).
            libc::_exit(1);
        }
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Ok(());
        }
        if (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Err(libc::EPROTO);
        }
        let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
        let count = (bytes / 4).min(MAX_SLOTS);
        std::ptr::copy_nonoverlapping(
            libc::CMSG_DATA(cmsg),
            received.as_mut_ptr().cast::<u8>(),
            count * 4,
        );
    }
    Ok(())
}

fn check(step: Step, index: usize, ret: c_long) -> Result<(), (Step, c_int, usize)> {
    if ret == -1 {
        Err((step, errno(), index))
    } else {
        Ok(())
    }
}

/// Builds the new root, mounts /proc and /dev, pivots into it and makes it read-only.
///
/// # Safety
/// Only in the clone child, pid 1 of the new namespaces.
unsafe fn setup_root(
    plan: &Plan,
    mapped: &dyn Fn(usize) -> Option<RawFd>,
) -> Result<(), (Step, c_int, usize)> {
    let null = std::ptr::null::<c_char>();
    // SAFETY: raw syscalls on NUL-terminated strings made before the clone.
    unsafe {
        check(
            Step::MountPrivate,
            0,
            libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )
            .into(),
        )?;
        check(
            Step::JailMount,
            0,
            libc::mount(
                c"tmpfs".as_ptr(),
                plan.new_root.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"mode=0755".as_ptr().cast(),
            )
            .into(),
        )?;
        for (i, step) in plan.steps.iter().enumerate() {
            let index = i + 1;
            match step {
                MountStep::Mkdir(dir) => {
                    if libc::mkdir(dir.as_ptr(), 0o755) == -1 && errno() != libc::EEXIST {
                        return Err((Step::JailMount, errno(), index));
                    }
                }
                MountStep::Touch(file) => {
                    let fd = libc::open(
                        file.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                        0o644,
                    );
                    check(Step::JailMount, index, fd.into())?;
                    libc::close(fd);
                }
                MountStep::Symlink { target, link } => {
                    if libc::symlink(target.as_ptr(), link.as_ptr()) == -1
                        && errno() != libc::EEXIST
                    {
                        return Err((Step::JailMount, errno(), index));
                    }
                }
                MountStep::Tmpfs {
                    dst,
                    options,
                    flags,
                } => {
                    check(
                        Step::JailMount,
                        index,
                        libc::mount(
                            c"tmpfs".as_ptr(),
                            dst.as_ptr(),
                            c"tmpfs".as_ptr(),
                            *flags,
                            options.as_ptr().cast(),
                        )
                        .into(),
                    )?;
                }
                MountStep::Proc { dst } => {
                    check(
                        Step::MountProc,
                        index,
                        libc::mount(
                            c"proc".as_ptr(),
                            dst.as_ptr(),
                            c"proc".as_ptr(),
                            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                            std::ptr::null(),
                        )
                        .into(),
                    )?;
                    mask_proc(&plan.proc_masked, &plan.proc_readonly, &plan.host_null)
                        .map_err(|(step, err)| (step, err, index))?;
                }
                MountStep::Seal(dir) => {
                    check(
                        Step::JailMount,
                        index,
                        libc::mount(
                            dir.as_ptr(),
                            dir.as_ptr(),
                            null,
                            libc::MS_BIND | libc::MS_REC,
                            std::ptr::null(),
                        )
                        .into(),
                    )?;
                    let set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
                    check(Step::JailMount, index, set_mount_attr(dir, set, 0))?;
                }
                MountStep::Bind {
                    src,
                    dst,
                    readonly,
                    recursive,
                    idmap_slot,
                } => {
                    if let Some(fd) = idmap_slot.and_then(mapped) {
                        check(
                            Step::JailIdmap,
                            index,
                            libc::syscall(
                                libc::SYS_move_mount,
                                fd,
                                c"".as_ptr(),
                                libc::AT_FDCWD,
                                dst.as_ptr(),
                                MOVE_MOUNT_F_EMPTY_PATH,
                            ),
                        )?;
                        libc::close(fd);
                        continue;
                    }
                    let rec = if *recursive { libc::MS_REC } else { 0 };
                    check(
                        Step::JailMount,
                        index,
                        libc::mount(
                            src.as_ptr(),
                            dst.as_ptr(),
                            null,
                            libc::MS_BIND | rec,
                            std::ptr::null(),
                        )
                        .into(),
                    )?;
                    let mut set = MOUNT_ATTR_NOSUID;
                    if *readonly {
                        set |= MOUNT_ATTR_RDONLY;
                    } else if !is_dev_node(dst) {
                        set |= MOUNT_ATTR_NODEV;
                    }
                    let at_flags = if *recursive { AT_RECURSIVE } else { 0 };
                    check(Step::JailMount, index, set_mount_attr(dst, set, at_flags))?;
                }
            }
        }
        check(
            Step::PivotRoot,
            0,
            libc::chdir(plan.new_root.as_ptr()).into(),
        )?;
        check(
            Step::PivotRoot,
            0,
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()),
        )?;
        check(
            Step::PivotRoot,
            0,
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH).into(),
        )?;
        // The tmpfs root itself is made read-only last: only the build folder (and /tmp,
        // /dev/shm) stay writable.
        check(
            Step::RemountReadOnly,
            0,
            set_mount_attr(c"/", MOUNT_ATTR_RDONLY, 0),
        )?;
        check(Step::PivotRoot, 0, libc::chdir(c"/".as_ptr()).into())?;
        let name = plan.hostname.as_bytes();
        check(
            Step::Hostname,
            0,
            libc::sethostname(name.as_ptr().cast(), name.len()).into(),
        )?;
    }
    Ok(())
}

/// mount_setattr(2) of the mount at `path`, adding the `set` flags; -1 on failure.
///
/// # Safety
/// Changes the calling process's mounts: only in the jail's child.
unsafe fn set_mount_attr(path: &std::ffi::CStr, set: u64, at_flags: libc::c_uint) -> c_long {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    // SAFETY: a NUL-terminated path and a struct of the kernel's layout, both live.
    unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            at_flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    }
}

/// Device nodes are bound into the jail's /dev: those binds must not get `nodev`.
fn is_dev_node(dst: &CString) -> bool {
    let bytes = dst.as_bytes();
    DEV_NODES.iter().any(|name| {
        bytes.ends_with(name.as_bytes())
            && bytes
                .strip_suffix(name.as_bytes())
                .is_some_and(|rest| rest.ends_with(b"/dev/"))
    })
}

/// Makes `cmd`'s process receive SIGKILL when the thread that starts it dies (staticpack killed
/// with -9 included), so that no helper runs on as an orphan. Also gives it a process group
/// of its own, so that a terminal's Ctrl-C reaches staticpack first.
pub(crate) fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    cmd.process_group(0);
    // SAFETY: runs between fork and exec; prctl, getppid and _exit are async-signal-safe
    // syscalls, and nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the prctl: then nobody is left to signal us.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests;
