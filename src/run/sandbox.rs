//! The built-in sandbox: the entrypoint runs as pid 1 of new user, mount, pid, net, uts and ipc
//! namespaces, with the unpacked image as `/` (pivot_root) and nothing else from the host.
//!
//! `clone(2)` without CLONE_VM gives a child with a copy of our memory, like fork: the parent may
//! be multithreaded (cargo test is), so the child only makes raw system calls on data prepared
//! before the clone — no allocation, no locks. The parent writes the child's uid/gid maps and then
//! releases it through a pipe. An exec failure comes back through a close-on-exec pipe as errno.

use super::{Outcome, ProcessSpec, RunError, Runtime};
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use nix::sys::wait::{WaitPidFlag, WaitStatus};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

/// Output kept per stream; more is read and dropped so the child never blocks on a full pipe.
const OUTPUT_LIMIT: usize = 1 << 20;
const CHILD_STACK: usize = 256 * 1024;

/// Which step failed in the child, sent with errno through the error pipe.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Step {
    Wait = 1,
    MountPrivate,
    BindRoot,
    Proc,
    ChdirRoot,
    PivotRoot,
    UnmountOld,
    Chdir,
    Stdio,
    SetGid,
    SetUid,
    Exec,
}

impl Step {
    fn from_u8(b: u8) -> &'static str {
        match b {
            1 => "waiting for the parent",
            2 => "making mounts private",
            3 => "bind-mounting the root",
            4 => "mounting /proc",
            5 => "entering the root",
            6 => "pivot_root",
            7 => "unmounting the host's root",
            8 => "changing to the working directory",
            9 => "setting up stdin/stdout/stderr",
            10 => "setgid",
            11 => "setuid",
            _ => "exec",
        }
    }
}

fn cstring(s: &str, what: &str) -> Result<CString, RunError> {
    CString::new(s).map_err(|_| RunError::Config(format!("{what} contains a NUL byte: {s:?}")))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RunError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RunError::Sandbox(format!("pipe: {e}")))
}

/// Resolves argv[0] the way execvp would, but inside `root`.
fn program_path(root: &Path, spec: &ProcessSpec) -> String {
    let arg0 = spec.argv.first().map(String::as_str).unwrap_or("");
    if arg0.contains('/') {
        return arg0.to_owned();
    }
    let path = spec
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/bin:/usr/bin:/bin");
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| format!("{}/{arg0}", d.trim_end_matches('/')))
        .find(|p| root.join(p.trim_start_matches('/')).is_file())
        .unwrap_or_else(|| format!("/{arg0}"))
}

/// What the kernel said, in words, and for a missing ELF interpreter which one it was.
fn explain_exec_failure(root: &Path, program: &str, errno: i32) -> String {
    let e = nix::errno::Errno::from_raw(errno);
    let mut msg = format!("exec {program}: {} ({e:?})", e.desc());
    if e == nix::errno::Errno::ENOENT {
        let inside = root.join(program.trim_start_matches('/'));
        if let Ok(bytes) = std::fs::read(&inside) {
            if let Ok(facts) = crate::verify::analyze(&bytes) {
                if let Some(interp) = facts.interpreter {
                    msg.push_str(&format!(
                        ": the file is there, but its ELF interpreter {interp} is not in the image"
                    ));
                }
            }
        } else {
            msg.push_str(": the entrypoint is not in the image");
        }
    }
    msg
}

fn reader(fd: OwnedFd) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut file = std::fs::File::from(fd);
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

fn write_file(path: &str, content: &str) -> Result<(), RunError> {
    std::fs::write(path, content).map_err(|e| RunError::Sandbox(format!("writing {path}: {e}")))
}

/// Runs `spec` with `root` as `/` in fresh namespaces; kills it after `timeout`.
pub fn run(root: &Path, spec: &ProcessSpec, timeout: Duration) -> Result<Outcome, RunError> {
    let root_c = cstring(&root.to_string_lossy(), "the root path")?;
    let proc_dir = root.join("proc");
    let proc_c = cstring(&proc_dir.to_string_lossy(), "the root path")?;
    let mount_proc = proc_dir.is_dir();
    let program = program_path(root, spec);
    let program_c = cstring(&program, "the entrypoint")?;
    let argv_c: Vec<CString> = spec
        .argv
        .iter()
        .map(|a| cstring(a, "an argument"))
        .collect::<Result<_, _>>()?;
    let env_c: Vec<CString> = spec
        .env
        .iter()
        .map(|e| cstring(e, "an environment variable"))
        .collect::<Result<_, _>>()?;
    let mut argv_p: Vec<*const libc::c_char> = argv_c.iter().map(|c| c.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut env_p: Vec<*const libc::c_char> = env_c.iter().map(|c| c.as_ptr()).collect();
    env_p.push(std::ptr::null());
    let cwd_c = cstring(&spec.cwd, "the working directory")?;
    let dot = c".";
    let slash = c"/";
    let proc_fs = c"proc";
    let dev_null = c"/dev/null";
    let (uid, gid) = (spec.uid, spec.gid);

    let (go_r, go_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (errout_r, errout_w) = pipe()?;
    let fds = [
        go_r.as_raw_fd(),
        err_w.as_raw_fd(),
        out_w.as_raw_fd(),
        errout_w.as_raw_fd(),
    ];

    let child = Box::new(move || -> isize {
        let [go, err, out, errout] = fds;
        // Reports the failing step and errno to the parent, then exits.
        let fail = |step: Step| -> isize {
            // SAFETY: raw syscalls on fds this process owns; no allocation.
            unsafe {
                let errno = *libc::__errno_location();
                let msg = [
                    step as u8,
                    (errno & 0xff) as u8,
                    ((errno >> 8) & 0xff) as u8,
                ];
                libc::write(err, msg.as_ptr().cast(), msg.len());
                libc::_exit(127)
            }
        };
        // SAFETY: every pointer below was prepared before the clone and outlives this call;
        // the calls are plain system calls, safe after clone in a multithreaded parent.
        unsafe {
            let mut byte = 0u8;
            if libc::read(go, (&mut byte as *mut u8).cast(), 1) != 1 {
                return fail(Step::Wait);
            }
            if libc::mount(
                std::ptr::null(),
                slash.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return fail(Step::MountPrivate);
            }
            if libc::mount(
                root_c.as_ptr(),
                root_c.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) != 0
            {
                return fail(Step::BindRoot);
            }
            if mount_proc
                && libc::mount(
                    proc_fs.as_ptr(),
                    proc_c.as_ptr(),
                    proc_fs.as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ) != 0
            {
                return fail(Step::Proc);
            }
            // stdin from the host's /dev/null, opened before the host's files disappear.
            let null = libc::open(dev_null.as_ptr(), libc::O_RDONLY);
            if null < 0
                || libc::dup2(null, 0) < 0
                || libc::dup2(out, 1) < 0
                || libc::dup2(errout, 2) < 0
            {
                return fail(Step::Stdio);
            }
            if libc::chdir(root_c.as_ptr()) != 0 {
                return fail(Step::ChdirRoot);
            }
            // pivot_root(".", "."): the old root is stacked under the new one, then detached.
            if libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) != 0 {
                return fail(Step::PivotRoot);
            }
            if libc::umount2(dot.as_ptr(), libc::MNT_DETACH) != 0 {
                return fail(Step::UnmountOld);
            }
            if libc::chdir(cwd_c.as_ptr()) != 0 {
                return fail(Step::Chdir);
            }
            let name = b"staticpack";
            libc::sethostname(name.as_ptr().cast(), name.len());
            if libc::setgroups(0, std::ptr::null()) != 0 && gid != 0 {
                return fail(Step::SetGid);
            }
            if libc::setgid(gid) != 0 {
                return fail(Step::SetGid);
            }
            if libc::setuid(uid) != 0 {
                return fail(Step::SetUid);
            }
            libc::execve(program_c.as_ptr(), argv_p.as_ptr(), env_p.as_ptr());
            fail(Step::Exec)
        }
    });

    let mut stack = vec![0u8; CHILD_STACK];
    let flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC;
    // SAFETY: the callback only makes system calls on memory prepared above (see its comment).
    let pid = unsafe { nix::sched::clone(child, &mut stack, flags, Some(libc::SIGCHLD)) }
        .map_err(|e| RunError::Sandbox(format!("clone with new user/mount/pid/net namespaces: {e} (are unprivileged user namespaces enabled? sysctl kernel.unprivileged_userns_clone=1)")))?;
    drop((go_r, err_w, out_w, errout_w));

    // Root maps the whole id range (so the image's users exist); anyone else maps itself to 0.
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let maps = if euid == 0 {
        write_file(&format!("/proc/{pid}/uid_map"), "0 0 4294967295\n")
            .and_then(|_| write_file(&format!("/proc/{pid}/gid_map"), "0 0 4294967295\n"))
    } else {
        write_file(&format!("/proc/{pid}/setgroups"), "deny")
            .and_then(|_| write_file(&format!("/proc/{pid}/uid_map"), &format!("0 {euid} 1\n")))
            .and_then(|_| write_file(&format!("/proc/{pid}/gid_map"), &format!("0 {egid} 1\n")))
    };
    if let Err(e) = maps {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e);
    }
    if euid != 0 && (uid != 0 || gid != 0) {
        let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(RunError::Sandbox(format!(
            "the image runs as {uid}:{gid}, but without root only uid 0 can be mapped in the sandbox; run as root or use --runtime runc"
        )));
    }
    let stdout = reader(out_r);
    let stderr = reader(errout_r);
    nix::unistd::write(&go_w, &[1])
        .map_err(|e| RunError::Sandbox(format!("releasing the sandbox: {e}")))?;
    drop(go_w);

    let deadline = Instant::now() + timeout;
    let status = loop {
        match nix::sys::wait::waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {
                if Instant::now() >= deadline {
                    // Killing the namespace's init kills everything in it.
                    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
                    break nix::sys::wait::waitpid(pid, None);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            other => break other,
        }
    }
    .map_err(|e| RunError::Sandbox(format!("waiting for the entrypoint: {e}")))?;

    let mut report = Vec::new();
    let _ = std::fs::File::from(err_r).read_to_end(&mut report);
    let exec_error = match report.as_slice() {
        [step, lo, hi, ..] => {
            let errno = i32::from(*lo) | (i32::from(*hi) << 8);
            Some(if *step == Step::Exec as u8 {
                explain_exec_failure(root, &program, errno)
            } else {
                format!(
                    "sandbox set-up failed at {}: {}",
                    Step::from_u8(*step),
                    nix::errno::Errno::from_raw(errno).desc()
                )
            })
        }
        _ => None,
    };
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (Some(code), None),
        WaitStatus::Signaled(_, sig, _) => (None, Some(sig as i32)),
        _ => (None, None),
    };
    Ok(Outcome {
        runtime: Runtime::Builtin,
        exit_code: if exec_error.is_some() {
            None
        } else {
            exit_code
        },
        signal,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        exec_error,
        rootfs_files: 0,
    })
}
