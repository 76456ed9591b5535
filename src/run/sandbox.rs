//! The builtin sandbox: the entrypoint runs in new user, mount, pid, net, uts and ipc
//! namespaces with the unpacked root as `/` and nothing from the host in it.
//!
//! How:
//! 1. Everything the child needs (C strings, argv/envp pointer arrays, candidate exec paths,
//!    the mount plan) is built here, *before* `clone`: the caller may be multithreaded (cargo
//!    test is), and a child of a multithreaded process may only make async-signal-safe calls —
//!    no allocation, no glibc lock. So the child makes raw syscalls only (fork, setres[ug]id and
//!    setgroups go through `syscall(2)`: glibc's wrappers would take locks or signal threads
//!    that exist only in the parent).
//! 2. `clone(CLONE_NEWUSER|NEWNS|NEWPID|NEWNET|NEWUTS|NEWIPC)` without `CLONE_VM`. The child
//!    closes every inherited descriptor but its own six, then blocks on a pipe while the parent
//!    writes its `uid_map`/`gid_map` (see [`id_maps`]) and releases it.
//! 3. The child — pid 1 of the new pid namespaces — makes all mounts private, bind-mounts the
//!    root onto itself and remounts it read-only, `nosuid` and `nodev` (as runc's
//!    `root.readonly`), mounts a fresh proc on `/proc` with runc's default masked paths (a
//!    bound /dev/null or an empty read-only tmpfs over them) and read-only paths (`/proc/sys`,
//!    …, see `hardening.rs`), and a tmpfs `/dev` (null, zero, full, random, urandom bind-mounted
//!    from the host, fd/std* symlinks) *only if the image has those directories* — nothing is
//!    created in the image's root — then `pivot_root(".", ".")` and a lazy unmount of the old
//!    root: no host path is reachable afterwards. If `pivot_root` is refused (EINVAL: the host
//!    root is an initramfs), it falls back to moving the root onto `/` and `chroot`, as runc's
//!    `--no-pivot` does. Then it sets the hostname.
//! 4. It forks once more: the entrypoint runs as pid 2 with default signal dispositions (pid 1
//!    would ignore every signal it has no handler for), while pid 1 stays a minimal init that
//!    reaps orphans and, when the entrypoint ends, sends its raw wait status to the parent
//!    through a pipe and exits — the kernel then kills whatever is left in the namespace
//!    (docker's semantics: the container lives as long as its main process). pid 1 is not
//!    dumpable, so nothing in the sandbox can ptrace it or open its /proc files.
//! 5. The entrypoint process sets stdio (stdin /dev/null, stdout/stderr our pipes), resets
//!    signals, clears the capability bounding set, drops supplementary groups, sets gid/uid,
//!    chdirs to the working directory, empties its capability sets (ambient, inheritable,
//!    permitted, effective — container root included, as runc with an empty capability list),
//!    sets `no_new_privs`, installs the seccomp programs (compiled before the clone, see
//!    `hardening.rs`) and tries `execve` on each candidate path (`execvp` semantics with the
//!    image's PATH, resolved inside the new root). A setuid binary gains nothing: the root is
//!    `nosuid`, `no_new_privs` is set and the bounding set is empty. A failure goes back as
//!    (step, errno) through a close-on-exec pipe; the parent words it like the kernel and
//!    explains ENOENT (missing file, or missing ELF interpreter).
//! 6. The parent drains stdout/stderr on threads and waits for the status with the timeout;
//!    on timeout it SIGKILLs the namespace's init, which kills everything in the namespace.
//!
//! As root, the container's ids map to an unprivileged host range, never to host 0, and the
//! unpacked root was chowned into it (`hardening.rs`, called by `run_image`): container root
//! is an unprivileged host user even where a kernel check looks at host ids.

// The one module allowed unsafe code: clone, raw setxid syscalls and pointer arrays built
// before the fork (see above); the rest of the crate denies it.
#![allow(unsafe_code)]

pub(crate) mod jail;

use super::diagnose::{enoent_hint, exec_candidates, first_present};
use super::hardening;
use super::output::{self, Captured};
use super::{ProcessSpec, RawOutcome, RunError, SANDBOX_HOSTNAME};
use nix::errno::Errno;
use nix::libc::{self, c_char, c_int, c_long};
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;
use std::sync::mpsc;
use std::time::Duration;

/// The clone child's stack; it only makes syscalls, so this is generous. Pages never touched
/// are never committed.
const STACK_SIZE: usize = 1 << 20;

/// The device nodes a `/dev` gets (bind-mounted from the host, which is what rootless runc
/// does: a user namespace cannot mknod).
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];
const DEV_LINKS: &[(&str, &str)] = &[
    ("/proc/self/fd", "fd"),
    ("/proc/self/fd/0", "stdin"),
    ("/proc/self/fd/1", "stdout"),
    ("/proc/self/fd/2", "stderr"),
];

/// The step a child failure happened at, sent through the error pipe with the errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Step {
    MountPrivate = 1,
    BindRoot,
    RemountReadOnly,
    MountProc,
    MaskProc,
    ReadOnlyProc,
    MountDev,
    DevNode,
    DevLink,
    PivotRoot,
    Hostname,
    Fork,
    NotDumpable,
    Stdio,
    Bounding,
    Setgroups,
    Setgid,
    Setuid,
    Chdir,
    Caps,
    NoNewPrivs,
    Seccomp,
    Exec,
    Limits,
    JailMount,
    JailIdmap,
}

impl Step {
    const ALL: [Step; 26] = [
        Step::MountPrivate,
        Step::BindRoot,
        Step::RemountReadOnly,
        Step::MountProc,
        Step::MaskProc,
        Step::ReadOnlyProc,
        Step::MountDev,
        Step::DevNode,
        Step::DevLink,
        Step::PivotRoot,
        Step::Hostname,
        Step::Fork,
        Step::NotDumpable,
        Step::Stdio,
        Step::Bounding,
        Step::Setgroups,
        Step::Setgid,
        Step::Setuid,
        Step::Chdir,
        Step::Caps,
        Step::NoNewPrivs,
        Step::Seccomp,
        Step::Exec,
        Step::Limits,
        Step::JailMount,
        Step::JailIdmap,
    ];

    fn from_u32(n: u32) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u32 == n)
    }

    fn describe(self) -> &'static str {
        match self {
            Step::MountPrivate => "making the mounts private",
            Step::BindRoot => "bind-mounting the root",
            Step::RemountReadOnly => "remounting the root read-only",
            Step::MountProc => "mounting /proc",
            Step::MaskProc => "masking a path in /proc",
            Step::ReadOnlyProc => "making a path in /proc read-only",
            Step::MountDev => "mounting a tmpfs on /dev",
            Step::DevNode => "bind-mounting a device node into /dev",
            Step::DevLink => "creating a /dev symlink",
            Step::PivotRoot => "pivot_root into the image root",
            Step::Hostname => "setting the hostname",
            Step::Fork => "forking the entrypoint process",
            Step::NotDumpable => "making the sandbox's init non-dumpable",
            Step::Stdio => "setting up stdin/stdout/stderr",
            Step::Bounding => "clearing the capability bounding set",
            Step::Setgroups => "dropping supplementary groups",
            Step::Setgid => "setting the gid",
            Step::Setuid => "setting the uid",
            Step::Chdir => "changing to the working directory",
            Step::Caps => "dropping every capability",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Seccomp => "installing the seccomp filter",
            Step::Exec => "exec",
            Step::Limits => "setting the resource limits",
            Step::JailMount => "building the build jail's root",
            Step::JailIdmap => "receiving the build jail's id-mapped mounts",
        }
    }
}

/// Everything the child touches, built before `clone`.
struct Plan {
    rootfs: CString,
    /// MS_REMOUNT|MS_BIND|MS_RDONLY|MS_NOSUID|MS_NODEV plus the flags the root's mount
    /// already has: a user namespace may not clear those (they are locked), so the remount
    /// repeats them.
    remount_flags: libc::c_ulong,
    proc_dir: Option<CString>,
    /// Paths under the new /proc to mask, and to make read-only (empty without /proc).
    proc_masked: Vec<CString>,
    proc_readonly: Vec<CString>,
    /// The host's /dev/null, bound over masked files.
    host_null: CString,
    dev: Option<DevPlan>,
    hostname: CString,
    exec: ExecPlan,
}

/// What the process that execs the entrypoint (or a build step) does, built before the clone:
/// ids, working folder, limits, no capabilities, `no_new_privs`, seccomp, execve.
pub(super) struct ExecPlan {
    /// The highest capability number the kernel knows (the bounding set is cleared up to it).
    cap_last: c_int,
    /// `sock_fprog`s pointing into `_seccomp`, installed in order before execve.
    fprogs: Vec<libc::sock_fprog>,
    cwd: CString,
    exec_paths: Vec<CString>,
    argv_ptrs: Vec<*const c_char>,
    envp_ptrs: Vec<*const c_char>,
    uid: libc::uid_t,
    gid: libc::gid_t,
    /// Privileged mapping (setgroups allowed): drop the inherited supplementary groups.
    drop_groups: bool,
    /// (resource, limit) set with setrlimit before execve.
    rlimits: Vec<(c_int, libc::rlim_t)>,
    // Owners of the strings and programs the pointers point into.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    _seccomp: Vec<seccompiler::BpfProgram>,
}

impl ExecPlan {
    pub(super) fn new(
        argv: &[String],
        env: &[String],
        exec_paths: &[String],
        cwd: &str,
        (uid, gid): (u32, u32),
        drop_groups: bool,
        rlimits: Vec<(c_int, libc::rlim_t)>,
    ) -> Result<ExecPlan, RunError> {
        let argv: Vec<CString> = argv
            .iter()
            .map(|a| cstring(a.as_bytes(), "an argument"))
            .collect::<Result<_, _>>()?;
        let envp: Vec<CString> = env
            .iter()
            .map(|e| cstring(e.as_bytes(), "an environment entry"))
            .collect::<Result<_, _>>()?;
        let exec_paths = exec_paths
            .iter()
            .map(|p| cstring(p.as_bytes(), "the program path"))
            .collect::<Result<_, _>>()?;
        let seccomp = hardening::seccomp_programs()?;
        let fprogs = seccomp
            .iter()
            .map(|p| {
                Ok(libc::sock_fprog {
                    len: u16::try_from(p.len())
                        .map_err(|_| RunError::Sandbox("seccomp program too long".into()))?,
                    // seccompiler's sock_filter is #[repr(C)] with the kernel's layout.
                    filter: p.as_ptr() as *mut libc::sock_filter,
                })
            })
            .collect::<Result<_, RunError>>()?;
        let null_terminated = |v: &[CString]| {
            v.iter()
                .map(|s| s.as_ptr())
                .chain(std::iter::once(ptr::null()))
                .collect::<Vec<_>>()
        };
        Ok(ExecPlan {
            cap_last: cap_last(),
            fprogs,
            cwd: cstring(cwd.as_bytes(), "the working directory")?,
            exec_paths,
            argv_ptrs: null_terminated(&argv),
            envp_ptrs: null_terminated(&envp),
            uid,
            gid,
            drop_groups,
            rlimits,
            _argv: argv,
            _envp: envp,
            _seccomp: seccomp,
        })
    }
}

struct DevPlan {
    dir: CString,
    /// (host device, file in the new /dev to bind it onto)
    nodes: Vec<(CString, CString)>,
    /// (link target, link path)
    links: Vec<(CString, CString)>,
    /// `/dev/shm`, a small tmpfs of its own (POSIX shared memory, semaphores).
    shm: CString,
}

fn cstring(bytes: &[u8], what: &str) -> Result<CString, RunError> {
    CString::new(bytes).map_err(|_| RunError::Config(format!("{what} contains a NUL byte")))
}

fn cpath(path: &Path) -> Result<CString, RunError> {
    cstring(path.as_os_str().as_bytes(), &path.display().to_string())
}

fn remount_flags(rootfs: &Path, read_only: bool) -> Result<libc::c_ulong, RunError> {
    let st = nix::sys::statvfs::statvfs(rootfs)
        .map_err(|e| RunError::Sandbox(format!("statvfs {}: {e}", rootfs.display())))?;
    let have = st.flags().bits();
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND | libc::MS_NOSUID | libc::MS_NODEV;
    if read_only {
        flags |= libc::MS_RDONLY;
    }
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if have & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    Ok(flags)
}

/// The kernel's highest capability number (63 when it cannot be read: dropping unknown
/// numbers then fails with EINVAL, which the child ignores).
fn cap_last() -> c_int {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}

/// A directory the image has itself (not a symlink to one).
fn real_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

impl Plan {
    fn new(
        rootfs: &Path,
        spec: &ProcessSpec,
        drop_groups: bool,
        read_only: bool,
    ) -> Result<Plan, RunError> {
        let argv0 = spec
            .argv
            .first()
            .ok_or_else(|| RunError::Config("empty argv".into()))?;
        let exec = ExecPlan::new(
            &spec.argv,
            &spec.env,
            &exec_candidates(argv0, &spec.env),
            &spec.cwd,
            (spec.uid, spec.gid),
            drop_groups,
            Vec::new(),
        )?;

        let dev_dir = rootfs.join("dev");
        let dev = if real_dir(&dev_dir) {
            let mut nodes = Vec::new();
            for name in DEV_NODES {
                let host = Path::new("/dev").join(name);
                if host.exists() {
                    nodes.push((cpath(&host)?, cpath(&dev_dir.join(name))?));
                }
            }
            let links = DEV_LINKS
                .iter()
                .map(|(target, name)| {
                    Ok((
                        cstring(target.as_bytes(), target)?,
                        cpath(&dev_dir.join(name))?,
                    ))
                })
                .collect::<Result<_, RunError>>()?;
            Some(DevPlan {
                dir: cpath(&dev_dir)?,
                nodes,
                links,
                shm: cpath(&dev_dir.join("shm"))?,
            })
        } else {
            None
        };
        let proc_dir = rootfs.join("proc");
        let proc_paths = |names: &[&str]| -> Result<Vec<CString>, RunError> {
            if !real_dir(&proc_dir) {
                return Ok(Vec::new());
            }
            names.iter().map(|n| cpath(&proc_dir.join(n))).collect()
        };
        Ok(Plan {
            rootfs: cpath(rootfs)?,
            remount_flags: remount_flags(rootfs, read_only)?,
            proc_dir: if real_dir(&proc_dir) {
                Some(cpath(&proc_dir)?)
            } else {
                None
            },
            proc_masked: proc_paths(hardening::PROC_MASKED)?,
            proc_readonly: proc_paths(hardening::PROC_READONLY)?,
            host_null: cstring(b"/dev/null", "/dev/null")?,
            dev,
            hostname: cstring(SANDBOX_HOSTNAME.as_bytes(), "hostname")?,
            exec,
        })
    }
}

/// The child's descriptors (raw: the child must not run destructors).
#[derive(Clone, Copy)]
struct Fds {
    release_r: RawFd,
    error_w: RawFd,
    status_w: RawFd,
    stdout_w: RawFd,
    stderr_w: RawFd,
    devnull: RawFd,
}

impl Fds {
    fn sorted(&self) -> [RawFd; 6] {
        let mut all = [
            self.release_r,
            self.error_w,
            self.status_w,
            self.stdout_w,
            self.stderr_w,
            self.devnull,
        ];
        all.sort_unstable();
        all
    }
}

/// The uid_map and gid_map lines, and whether `setgroups` stays allowed.
///
/// - As root on the host (CAP_SETUID/CAP_SETGID there): container ids 0..65536 map to the
///   unprivileged host range of [`hardening::root_map`], never to host 0 (`run_image` shifted
///   the unpacked files into it); setgroups stays allowed so the child can drop our groups.
/// - Unprivileged: only our own ids can be mapped, so they become the image's uid/gid
///   directly (the image's files then appear owned by that user); setgroups must be denied.
fn id_maps(euid: u32, egid: u32, uid: u32, gid: u32) -> (String, String, bool) {
    if euid == 0 {
        (hardening::root_map(uid), hardening::root_map(gid), true)
    } else {
        (
            format!("{uid} {euid} 1\n"),
            format!("{gid} {egid} 1\n"),
            false,
        )
    }
}

/// Kills and reaps the sandbox's init unless it was reaped already (any early return).
struct Reaper {
    pid: Pid,
    reaped: bool,
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RunError::Sandbox(format!("creating a pipe: {e}")))?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Moves a descriptor above 0..=2, so the child's dup2 onto stdio cannot clobber it (only
/// happens when our own stdio is closed).
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, RunError> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // std's try_clone is fcntl(F_DUPFD_CLOEXEC, 3).
    fd.try_clone()
        .map_err(|e| RunError::Sandbox(format!("duplicating a descriptor: {e}")))
}

fn clone_error(e: Errno) -> RunError {
    let hint = match e {
        Errno::EPERM | Errno::ENOSPC | Errno::EUSERS | Errno::EINVAL => {
            "; are user namespaces enabled? (sysctl user.max_user_namespaces > 0, \
             kernel.unprivileged_userns_clone=1 on Debian kernels, \
             kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu)"
        }
        _ => "",
    };
    RunError::Sandbox(format!(
        "creating the user/mount/pid/net/uts/ipc namespaces: {} ({e:?}){hint}",
        e.desc()
    ))
}

/// Runs `spec` in the builtin sandbox with `rootfs` as its root.
pub(crate) fn run(
    rootfs: &Path,
    spec: &ProcessSpec,
    timeout: Duration,
    read_only: bool,
) -> Result<RawOutcome, RunError> {
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let (uid_map, gid_map, setgroups_allowed) = id_maps(euid, egid, spec.uid, spec.gid);
    let plan = Plan::new(rootfs, spec, setgroups_allowed, read_only)?;

    let (release_r, release_w) = pipe()?;
    let (error_r, error_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let (stdout_r, stdout_w) = pipe()?;
    let (stderr_r, stderr_w) = pipe()?;
    let devnull = above_stdio(OwnedFd::from(
        File::open("/dev/null").map_err(|e| RunError::io("opening", "/dev/null", e))?,
    ))?;
    let fds = Fds {
        release_r: release_r.as_raw_fd(),
        error_w: error_w.as_raw_fd(),
        status_w: status_w.as_raw_fd(),
        stdout_w: stdout_w.as_raw_fd(),
        stderr_w: stderr_w.as_raw_fd(),
        devnull: devnull.as_raw_fd(),
    };

    let mut stack = vec![0u8; STACK_SIZE];
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    let plan_ref = &plan;
    // SAFETY: without CLONE_VM the child gets a copy of our memory, so `plan`, `fds` and the
    // stack stay valid for it whatever we do next. The child runs only `child`, which makes
    // async-signal-safe syscalls, never allocates nor returns (it always ends in execve or
    // _exit), so the locks other threads of ours may hold do not matter to it.
    let pid = unsafe {
        nix::sched::clone(
            Box::new(move || child(plan_ref, fds)),
            &mut stack,
            flags,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(clone_error)?;
    let mut reaper = Reaper { pid, reaped: false };
    // The child has its copies; ours would keep the pipes open.
    drop((release_r, error_w, status_w, stdout_w, stderr_w, devnull));

    let write_proc = |file: &str, content: &str| {
        let path = format!("/proc/{pid}/{file}");
        std::fs::write(&path, content)
            .map_err(|e| RunError::Sandbox(format!("writing {content:?} to {path}: {e}")))
    };
    if !setgroups_allowed {
        write_proc("setgroups", "deny")?;
    }
    write_proc("uid_map", &uid_map)?;
    write_proc("gid_map", &gid_map)?;
    std::io::Write::write_all(&mut File::from(release_w), b"1")
        .map_err(|e| RunError::Sandbox(format!("releasing the sandbox: {e}")))?;

    let stdout = output::capture(File::from(stdout_r));
    let stderr = output::capture(File::from(stderr_r));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut raw = [0u8; 8];
        let mut status = File::from(status_r);
        let got = status
            .read_exact(&mut raw)
            .ok()
            .map(|()| i32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]));
        let _ = tx.send(got);
    });

    let (status, timed_out) = match rx.recv_timeout(timeout) {
        Ok(status) => (status, false),
        Err(_) => {
            // init is not reaped yet, so the pid is still ours to kill.
            let _ = kill(pid, Signal::SIGKILL);
            (rx.recv().ok().flatten(), true)
        }
    };
    let init_status = waitpid(pid, None);
    reaper.reaped = true;
    let stdout = output::join(stdout);
    let stderr = output::join(stderr);

    let mut reports = Vec::new();
    // Every writer is gone: init is reaped, and the kernel killed the rest of its namespace.
    File::from(error_r)
        .read_to_end(&mut reports)
        .map_err(|e| RunError::Sandbox(format!("reading the sandbox's error pipe: {e}")))?;
    let report = decode_report(&reports);

    finish(
        rootfs,
        spec,
        &plan,
        status,
        timed_out,
        report,
        stdout,
        stderr,
        init_status,
    )
}

/// The child's (step, errno, index) report, if it sent one.
fn decode_report(reports: &[u8]) -> Option<(Step, Errno, usize)> {
    let r = reports.get(..12)?;
    let word = |i: usize| {
        r.get(i * 4..i * 4 + 4)?
            .try_into()
            .ok()
            .map(u32::from_ne_bytes)
    };
    Some((
        Step::from_u32(word(0)?)?,
        Errno::from_raw(word(1)? as i32),
        word(2)? as usize,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finish(
    rootfs: &Path,
    spec: &ProcessSpec,
    plan: &Plan,
    status: Option<i32>,
    timed_out: bool,
    report: Option<(Step, Errno, usize)>,
    stdout: Captured,
    stderr: Captured,
    init_status: nix::Result<nix::sys::wait::WaitStatus>,
) -> Result<RawOutcome, RunError> {
    let mut outcome = RawOutcome {
        exit_code: None,
        signal: None,
        stdout,
        stderr,
        exec_error: None,
        timed_out,
    };
    if timed_out {
        outcome.signal = Some(libc::SIGKILL);
        return Ok(outcome);
    }
    match report {
        Some((step @ (Step::Exec | Step::Chdir), errno, index)) => {
            outcome.exec_error = Some(start_error(rootfs, spec, plan, step, errno, index));
        }
        Some((step, errno, _)) => {
            return Err(RunError::Sandbox(format!(
                "{}: {} ({errno:?})",
                step.describe(),
                errno.desc()
            )));
        }
        None => {}
    }
    let Some(status) = status else {
        return Err(RunError::Sandbox(format!(
            "the sandbox's init ended ({init_status:?}) before the entrypoint did"
        )));
    };
    if libc::WIFEXITED(status) {
        outcome.exit_code = Some(libc::WEXITSTATUS(status));
    } else if libc::WIFSIGNALED(status) {
        outcome.signal = Some(libc::WTERMSIG(status));
    }
    Ok(outcome)
}

/// The start failure in the kernel's words, plus what the image lacks when that is the cause.
fn start_error(
    rootfs: &Path,
    spec: &ProcessSpec,
    plan: &Plan,
    step: Step,
    errno: Errno,
    index: usize,
) -> String {
    let words = format!("{} ({errno:?})", errno.desc());
    if step == Step::Chdir {
        return format!("chdir {}: {words}", spec.cwd);
    }
    let argv0 = spec.argv.first().map_or("", String::as_str);
    let candidates = exec_candidates(argv0, &spec.env);
    let mut path = plan
        .exec
        .exec_paths
        .get(index)
        .map_or_else(|| argv0.to_owned(), |p| p.to_string_lossy().into_owned());
    if errno == Errno::ENOENT {
        if candidates.len() > 1 {
            path = first_present(rootfs, &spec.cwd, &candidates)
                .map_or_else(|| argv0.to_owned(), |(p, _)| p);
        }
        format!(
            "exec {path}: {words}{}",
            enoent_hint(rootfs, &spec.cwd, argv0, &candidates)
        )
    } else {
        format!("exec {path}: {words}")
    }
}

// ---------------------------------------------------------------------------------------------
// The child. Everything below runs after clone: raw syscalls on prepared data, no allocation.
// ---------------------------------------------------------------------------------------------

/// Sends (step, errno, index) to the parent; a failed write leaves only the exit status.
fn report(fd: RawFd, step: Step, errno: c_int, index: usize) {
    let mut msg = [0u8; 12];
    msg[..4].copy_from_slice(&(step as u32).to_ne_bytes());
    msg[4..8].copy_from_slice(&errno.to_ne_bytes());
    msg[8..].copy_from_slice(&(index as u32).to_ne_bytes());
    // SAFETY: writes 12 bytes from a live stack buffer; one write below PIPE_BUF is atomic.
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
}

fn errno() -> c_int {
    Errno::last_raw()
}

/// `Err((step, errno))` when a syscall returned -1.
fn check(step: Step, ret: c_long) -> Result<(), (Step, c_int)> {
    if ret == -1 {
        Err((step, errno()))
    } else {
        Ok(())
    }
}

fn child(plan: &Plan, fds: Fds) -> ! {
    // SAFETY (whole function): raw syscalls on descriptors we own and on pointers into `plan`,
    // which stays valid (our copy of the parent's memory) until execve or _exit.
    unsafe {
        close_all_but(&fds.sorted());
        // init holds none of the caller's stdio.
        for fd in 0..3 {
            libc::dup2(fds.devnull, fd);
        }
        // init must be able to wait for its children, whatever the caller did with SIGCHLD.
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        // If the caller dies, so does the sandbox (and with pid 1, everything in it).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);

        // Wait until the parent has written our id maps.
        let mut byte = 0u8;
        loop {
            let n = libc::read(fds.release_r, (&raw mut byte).cast(), 1);
            if n == 1 {
                break;
            }
            if n == -1 && errno() == libc::EINTR {
                continue;
            }
            libc::_exit(1); // the parent gave up; it reports why
        }
        libc::close(fds.release_r);

        // As root our host ids are unmapped inside (container root is a host id of the
        // range): become container root, or files created in /dev would have no owner
        // (EOVERFLOW). Host groups are unmapped as well: drop them.
        if plan.exec.drop_groups {
            become_root(fds.error_w, fds.stdout_w);
        }

        if let Err((step, err)) = setup_root(plan) {
            report(fds.error_w, step, err, 0);
            libc::_exit(1);
        }

        start_and_wait(
            &plan.exec,
            [fds.devnull, fds.stdout_w, fds.stderr_w],
            fds.error_w,
            fds.status_w,
        )
    }
}

/// The rest of a sandbox's pid 1 once its root is ready: forks the process that execs the
/// program (see [`start`]) with `stdio`, then stays its init (see [`init`]).
///
/// # Safety
/// Only in a clone child, pid 1 of its namespaces.
unsafe fn start_and_wait(exec: &ExecPlan, stdio: [RawFd; 3], error_w: RawFd, status_w: RawFd) -> ! {
    // SAFETY: raw syscalls on our descriptors; `start` and `init` never return.
    unsafe {
        // Not dumpable (before the fork, so there is no window): the program can neither
        // ptrace init nor open its /proc files (root, fd, mem). The forked child inherits
        // the flag until its execve resets it.
        if libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong) == -1 {
            report(error_w, Step::NotDumpable, errno(), 0);
            libc::_exit(1);
        }
        // A raw fork: glibc's fork() would take malloc locks a parent thread may hold.
        let pid = libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
        );
        if pid == -1 {
            report(error_w, Step::Fork, errno(), 0);
            libc::_exit(1);
        }
        if pid == 0 {
            start(exec, stdio, error_w);
        }
        // init holds no end of the program's output: the parent sees EOF when it is gone.
        libc::close(stdio[1]);
        libc::close(stdio[2]);
        init(pid as libc::pid_t, status_w)
    }
}

/// Becomes root of the new user namespace (setgroups, setres[ug]id 0) when our host ids are
/// unmapped there (we are host root), then sets the parent-death signal again (changing ids
/// cleared it) and makes sure the parent did not die meanwhile: `parent_pipe`, a pipe we write
/// and the parent reads, has no reader then. A failure is reported and ends the process.
///
/// # Safety
/// Only in a clone child, before anything else runs in it.
unsafe fn become_root(error_w: RawFd, parent_pipe: RawFd) {
    // SAFETY: raw syscalls without pointers into memory we do not own.
    unsafe {
        let zero = 0 as c_long;
        if libc::syscall(libc::SYS_setgroups, zero, ptr::null::<libc::gid_t>()) == -1 {
            report(error_w, Step::Setgroups, errno(), 0);
            libc::_exit(1);
        }
        if libc::syscall(libc::SYS_setresgid, zero, zero, zero) == -1 {
            report(error_w, Step::Setgid, errno(), 0);
            libc::_exit(1);
        }
        if libc::syscall(libc::SYS_setresuid, zero, zero, zero) == -1 {
            report(error_w, Step::Setuid, errno(), 0);
            libc::_exit(1);
        }
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
        let mut pfd = libc::pollfd {
            fd: parent_pipe,
            events: libc::POLLOUT,
            revents: 0,
        };
        if libc::poll(&mut pfd, 1, 0) == 1 && pfd.revents & libc::POLLERR != 0 {
            libc::_exit(1);
        }
    }
}

/// Closes every descriptor but 0..=2 and `keep` (sorted).
fn close_all_but(keep: &[RawFd]) {
    let mut from: libc::c_uint = 3;
    for &fd in keep {
        let fd = fd as libc::c_uint;
        if fd > from {
            close_range(from, fd - 1);
        }
        from = from.max(fd + 1);
    }
    close_range(from, libc::c_uint::MAX);
}

fn close_range(first: libc::c_uint, last: libc::c_uint) {
    // SAFETY: closes descriptors no Rust object of the child owns (the child has none).
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0 as libc::c_uint) };
    if ret == -1 {
        // Kernels before 5.9: close one by one, up to a bound that covers any sane caller.
        for fd in first..=last.min(4095) {
            // SAFETY: as above.
            unsafe { libc::close(fd as c_int) };
        }
    }
}

/// Mounts and pivot_root (see the module docs). Runs as pid 1 of the new namespaces.
///
/// # Safety
/// Only in the clone child: it remounts and pivots the calling process's root.
unsafe fn setup_root(plan: &Plan) -> Result<(), (Step, c_int)> {
    let none: *const c_char = ptr::null();
    let root = plan.rootfs.as_ptr();
    // SAFETY: every pointer is a NUL-terminated string from `plan`, or null where allowed.
    unsafe {
        check(
            Step::MountPrivate,
            libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                ptr::null(),
            )
            .into(),
        )?;
        check(
            Step::BindRoot,
            libc::mount(root, root, none, libc::MS_BIND | libc::MS_REC, ptr::null()).into(),
        )?;
        check(
            Step::RemountReadOnly,
            libc::mount(none, root, none, plan.remount_flags, ptr::null()).into(),
        )?;

        if let Some(proc_dir) = &plan.proc_dir {
            let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            check(
                Step::MountProc,
                libc::mount(
                    c"proc".as_ptr(),
                    proc_dir.as_ptr(),
                    c"proc".as_ptr(),
                    flags,
                    ptr::null(),
                )
                .into(),
            )?;
            mask_proc(&plan.proc_masked, &plan.proc_readonly, &plan.host_null)?;
        }
        if let Some(dev) = &plan.dev {
            check(
                Step::MountDev,
                libc::mount(
                    c"tmpfs".as_ptr(),
                    dev.dir.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NOEXEC,
                    c"mode=755,size=64k".as_ptr().cast(),
                )
                .into(),
            )?;
            for (host, node) in &dev.nodes {
                let fd = libc::open(
                    node.as_ptr(),
                    libc::O_WRONLY
                        | libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o666 as libc::c_uint,
                );
                check(Step::DevNode, fd.into())?;
                libc::close(fd);
                check(
                    Step::DevNode,
                    libc::mount(
                        host.as_ptr(),
                        node.as_ptr(),
                        none,
                        libc::MS_BIND,
                        ptr::null(),
                    )
                    .into(),
                )?;
            }
            for (target, link) in &dev.links {
                check(
                    Step::DevLink,
                    libc::symlink(target.as_ptr(), link.as_ptr()).into(),
                )?;
            }
            check(Step::MountDev, libc::mkdir(dev.shm.as_ptr(), 0o1777).into())?;
            check(
                Step::MountDev,
                libc::mount(
                    c"tmpfs".as_ptr(),
                    dev.shm.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    c"mode=1777,size=64m".as_ptr().cast(),
                )
                .into(),
            )?;
        }

        // pivot_root(".", ".") stacks the old root on the new one; the lazy unmount drops it,
        // and no directory for it is needed in the image.
        check(Step::PivotRoot, libc::chdir(root).into())?;
        let dot = c".".as_ptr();
        if libc::syscall(libc::SYS_pivot_root, dot, dot) == 0 {
            check(Step::PivotRoot, libc::umount2(dot, libc::MNT_DETACH).into())?;
        } else if errno() == libc::EINVAL {
            // The host root cannot be pivoted away from (initramfs): move ours over it.
            check(
                Step::PivotRoot,
                libc::mount(dot, c"/".as_ptr(), none, libc::MS_MOVE, ptr::null()).into(),
            )?;
            check(Step::PivotRoot, libc::chroot(dot).into())?;
        } else {
            return Err((Step::PivotRoot, errno()));
        }
        check(Step::PivotRoot, libc::chdir(c"/".as_ptr()).into())?;
        let name = plan.hostname.as_bytes();
        check(
            Step::Hostname,
            libc::sethostname(name.as_ptr().cast(), name.len()).into(),
        )?;
    }
    Ok(())
}

/// runc's masked and read-only paths over the fresh /proc (those this kernel has).
///
/// # Safety
/// Only in the clone child, after /proc is mounted.
unsafe fn mask_proc(
    masked: &[CString],
    readonly: &[CString],
    host_null: &CString,
) -> Result<(), (Step, c_int)> {
    let none: *const c_char = ptr::null();
    // Bind mounts of proc keep its locked flags; a remount must repeat them.
    let locked = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // SAFETY: NUL-terminated strings from `plan`, a stack stat buffer.
    unsafe {
        for path in masked {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::lstat(path.as_ptr(), &mut st) == -1 {
                match errno() {
                    libc::ENOENT => continue,
                    e => return Err((Step::MaskProc, e)),
                }
            }
            let ret = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    path.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY | locked,
                    ptr::null(),
                )
            } else {
                libc::mount(
                    host_null.as_ptr(),
                    path.as_ptr(),
                    none,
                    libc::MS_BIND,
                    ptr::null(),
                )
            };
            check(Step::MaskProc, ret.into())?;
        }
        for path in readonly {
            let p = path.as_ptr();
            if libc::mount(p, p, none, libc::MS_BIND | libc::MS_REC, ptr::null()) == -1 {
                match errno() {
                    libc::ENOENT => continue,
                    e => return Err((Step::ReadOnlyProc, e)),
                }
            }
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked;
            check(
                Step::ReadOnlyProc,
                libc::mount(none, p, none, flags, ptr::null()).into(),
            )?;
        }
    }
    Ok(())
}

/// The header and data of capset(2), version 3 (two data words: caps 0..31 and 32..63).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// The entrypoint's (or build step's) process (pid 2): stdio, signals, limits, ids, cwd, no
/// capabilities, `no_new_privs`, seccomp, execve. Never returns.
///
/// # Safety
/// Only in the forked child of a sandbox's init; it replaces the process.
unsafe fn start(plan: &ExecPlan, stdio: [RawFd; 3], error_w: RawFd) -> ! {
    // SAFETY: raw syscalls on our descriptors and on strings/arrays from `plan`; argv and envp
    // are NULL-terminated arrays of pointers into CStrings `plan` owns.
    unsafe {
        let fail = |step: Step, err: c_int, index: usize| -> ! {
            report(error_w, step, err, index);
            libc::_exit(if step == Step::Exec && err == libc::ENOENT {
                127
            } else {
                126
            });
        };
        for (to, from) in stdio.into_iter().enumerate() {
            if from != to as RawFd && libc::dup2(from, to as c_int) == -1 {
                fail(Step::Stdio, errno(), 0);
            }
        }
        for &(resource, limit) in &plan.rlimits {
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(resource as _, &rl) == -1 {
                fail(Step::Limits, errno(), 0);
            }
        }
        // Inherited "ignore" dispositions (Rust ignores SIGPIPE) and masks survive execve.
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut());

        // The bounding set first: dropping needs CAP_SETPCAP, which setresuid takes away from
        // a non-root user. Numbers this kernel does not know answer EINVAL.
        for cap in 0..=plan.cap_last {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong) == -1
                && errno() != libc::EINVAL
            {
                fail(Step::Bounding, errno(), 0);
            }
        }

        // Raw syscalls: glibc's set*id wrappers would try to sync threads we do not have.
        if plan.drop_groups
            && libc::syscall(
                libc::SYS_setgroups,
                0 as libc::size_t,
                ptr::null::<libc::gid_t>(),
            ) == -1
        {
            fail(Step::Setgroups, errno(), 0);
        }
        let (g, u) = (plan.gid as c_long, plan.uid as c_long);
        if libc::syscall(libc::SYS_setresgid, g, g, g) == -1 {
            fail(Step::Setgid, errno(), 0);
        }
        if libc::syscall(libc::SYS_setresuid, u, u, u) == -1 {
            fail(Step::Setuid, errno(), 0);
        }
        if libc::chdir(plan.cwd.as_ptr()) == -1 {
            fail(Step::Chdir, errno(), 0);
        }

        // No capability left, container root included (runc with an empty list): with an
        // empty bounding and inheritable set, execve gives none back either.
        let no_ambient = libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        );
        if no_ambient == -1 {
            fail(Step::Caps, errno(), 0);
        }
        let header = CapHeader {
            version: CAP_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) == -1 {
            fail(Step::Caps, errno(), 0);
        }
        let one = 1 as libc::c_ulong;
        let zero = 0 as libc::c_ulong;
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, one, zero, zero, zero) == -1 {
            fail(Step::NoNewPrivs, errno(), 0);
        }
        // Last: the filters deny nothing the steps above need, and execve stays allowed.
        for fprog in &plan.fprogs {
            let ret = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER as c_long,
                0 as c_long,
                fprog as *const libc::sock_fprog,
            );
            if ret == -1 {
                fail(Step::Seccomp, errno(), 0);
            }
        }

        // execvp's rules over the prepared candidates: go on past "not there", remember EACCES.
        let mut last = (libc::ENOENT, 0);
        let mut eacces = None;
        for (i, path) in plan.exec_paths.iter().enumerate() {
            libc::execve(
                path.as_ptr(),
                plan.argv_ptrs.as_ptr(),
                plan.envp_ptrs.as_ptr(),
            );
            let err = errno();
            last = (err, i);
            match err {
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
                libc::EACCES => eacces = eacces.or(Some(i)),
                _ => break,
            }
        }
        match (eacces, last.0) {
            (
                Some(i),
                libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT,
            ) => fail(Step::Exec, libc::EACCES, i),
            (_, err) => fail(Step::Exec, err, last.1),
        }
    }
}

/// pid 1: reap everything; when the entrypoint (or build step) ends, kill what is left in the
/// namespace, reap and count it, pass (wait status, processes killed) on and exit.
///
/// # Safety
/// Only in a sandbox's init; it ends the process.
unsafe fn init(main: libc::pid_t, status_w: RawFd) -> ! {
    // SAFETY: waitpid/kill/write/_exit on our own descriptor and stack buffers.
    unsafe {
        loop {
            let mut status: c_int = 0;
            let pid = libc::waitpid(-1, &mut status, 0);
            if pid == main {
                // kill(-1) from a pid namespace's init reaches every other process in it.
                libc::kill(-1, libc::SIGKILL);
                let mut killed: u32 = 0;
                loop {
                    let mut st: c_int = 0;
                    let pid = libc::waitpid(-1, &mut st, 0);
                    if pid == -1 {
                        if errno() == libc::EINTR {
                            continue;
                        }
                        break;
                    }
                    if libc::WIFSIGNALED(st) && libc::WTERMSIG(st) == libc::SIGKILL {
                        killed += 1;
                    }
                }
                let mut raw = [0u8; 8];
                raw[..4].copy_from_slice(&status.to_ne_bytes());
                raw[4..].copy_from_slice(&killed.to_ne_bytes());
                libc::write(status_w, raw.as_ptr().cast(), raw.len());
                libc::_exit(0);
            }
            if pid == -1 && errno() != libc::EINTR {
                libc::_exit(1);
            }
        }
    }
}
