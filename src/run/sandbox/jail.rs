//! The build jail: a toolchain step (gcc, go build, go list) runs in new mount and network
//! namespaces (and a user namespace when we are not root) whose root is a fresh tmpfs holding
//! only the system's toolchain folders (`/usr`, `/etc`, the `/bin` and `/lib` links), `/dev` and
//! `/proc`, all read-only, the recipe's declared inputs read-only, and the build folder, the
//! only writable place. There is no network: the new namespace has a loopback device, down.
//! So a flag such as `-Wl,-Map=/home/me/x.map` cannot write outside the build folder, and an
//! `#include "/home/me/secret.h"` fails the build instead of silently becoming an input.
//!
//! Like the run sandbox, everything the child does is planned here, before the fork: the child
//! (between fork and exec, in a possibly multithreaded parent) makes raw syscalls only.

use nix::libc::{self, c_char, c_int};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a toolchain step may see and change.
#[derive(Clone, Debug)]
pub struct JailSpec {
    /// Writable; holds the jail's own (empty) root folder too.
    pub build_dir: PathBuf,
    /// Readable: the recipe's folder, its source, `allow_outside` paths.
    pub inputs: Vec<PathBuf>,
    /// Writable as well: shared cache folders (Go's build cache), which must exist.
    pub writable: Vec<PathBuf>,
    /// Keep the host's network: only for a download step whose results are checked by digest
    /// (`cargo fetch --locked`); every other step runs with none.
    pub network: bool,
}

/// The system folders a toolchain needs, read-only; the ones that are symlinks (merged /usr)
/// are recreated as the same symlinks.
const SYSTEM: &[&str] = &[
    "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/dev", "/proc",
];

/// One thing the child does to build the new root, in order.
enum Step {
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
    },
}

/// The whole plan, made in the parent.
struct Plan {
    new_root: CString,
    steps: Vec<Step>,
    cwd: Option<CString>,
    network: bool,
    /// For a user namespace when not root: "deny", "uid uid 1", "gid gid 1".
    id_maps: Option<[CString; 3]>,
}

fn cstring(p: &Path) -> CString {
    // Paths with NUL bytes cannot come from the filesystem.
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn inside(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

/// Every folder from the first below `/` down to `p`, each inside `root`.
fn mkdirs(root: &Path, p: &Path, steps: &mut Vec<Step>) {
    let mut at = PathBuf::from("/");
    for c in p.strip_prefix("/").unwrap_or(p).components() {
        at.push(c);
        steps.push(Step::Mkdir(cstring(&inside(root, &at))));
    }
}

fn plan(spec: &JailSpec, cwd: Option<&Path>) -> std::io::Result<Plan> {
    let new_root = spec.build_dir.join(".jail-root");
    std::fs::create_dir_all(&new_root)?;
    let mut steps = Vec::new();
    for dir in SYSTEM {
        let path = Path::new(dir);
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(path)?;
            steps.push(Step::Symlink {
                target: cstring(&target),
                link: cstring(&inside(&new_root, path)),
            });
        } else if meta.is_dir() {
            steps.push(Step::Mkdir(cstring(&inside(&new_root, path))));
            steps.push(Step::Bind {
                src: cstring(path),
                dst: cstring(&inside(&new_root, path)),
                readonly: true,
                recursive: true,
            });
        }
    }
    // Inputs, outermost first; one inside another (or inside a system folder) needs no mount.
    let mut inputs: Vec<PathBuf> = spec
        .inputs
        .iter()
        .filter_map(|p| p.canonicalize().ok())
        .collect();
    inputs.sort_by_key(|p| p.components().count());
    let mut mounted: Vec<PathBuf> = SYSTEM.iter().map(PathBuf::from).collect();
    for input in inputs {
        if mounted.iter().any(|m| input.starts_with(m)) {
            continue;
        }
        let dst = inside(&new_root, &input);
        if input.is_dir() {
            mkdirs(&new_root, &input, &mut steps);
        } else {
            if let Some(parent) = input.parent() {
                mkdirs(&new_root, parent, &mut steps);
            }
            steps.push(Step::Touch(cstring(&dst)));
        }
        steps.push(Step::Bind {
            src: cstring(&input),
            dst: cstring(&dst),
            readonly: true,
            recursive: true,
        });
        mounted.push(input);
    }
    // Writable caches after the inputs, so that one inside a read-only input is still writable.
    for dir in &spec.writable {
        let dir = dir.canonicalize()?;
        mkdirs(&new_root, &dir, &mut steps);
        steps.push(Step::Bind {
            src: cstring(&dir),
            dst: cstring(&inside(&new_root, &dir)),
            readonly: false,
            recursive: false,
        });
    }
    // The build folder last and alone (not recursive: the jail's root is mounted inside it).
    let build_dir = spec.build_dir.canonicalize()?;
    mkdirs(&new_root, &build_dir, &mut steps);
    steps.push(Step::Bind {
        src: cstring(&build_dir),
        dst: cstring(&inside(&new_root, &build_dir)),
        readonly: false,
        recursive: false,
    });
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let id_maps = (uid != 0).then(|| {
        [
            CString::new("deny").unwrap_or_default(),
            CString::new(format!("{uid} {uid} 1")).unwrap_or_default(),
            CString::new(format!("{gid} {gid} 1")).unwrap_or_default(),
        ]
    });
    Ok(Plan {
        new_root: cstring(&new_root),
        steps,
        cwd: cwd.map(cstring),
        network: spec.network,
        id_maps,
    })
}

/// Whether a jail can be made here, tried once per process: a step is run in one (`true`),
/// and the reason when it cannot (a container without the privilege, user namespaces off).
pub fn available() -> Result<(), String> {
    static PROBE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    PROBE
        .get_or_init(|| {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            let spec = JailSpec {
                build_dir: dir.path().to_path_buf(),
                inputs: Vec::new(),
                writable: Vec::new(),
                network: false,
            };
            let mut cmd = Command::new("/bin/true");
            jail(&mut cmd, &spec).map_err(|e| e.to_string())?;
            match cmd.status() {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("a test step in it ended with {s}")),
                Err(e) => Err(format!("namespaces are not available here: {e}")),
            }
        })
        .clone()
}

/// Makes `cmd` run in a jail per `spec` (see the module docs). Call [`available`] first:
/// where namespaces are refused, the spawn fails.
pub fn jail(cmd: &mut Command, spec: &JailSpec) -> std::io::Result<()> {
    let plan = plan(spec, cmd.get_current_dir())?;
    // SAFETY: the closure runs between fork and exec and makes raw syscalls only, on strings
    // and vectors allocated before the fork (see `enter`).
    unsafe {
        cmd.pre_exec(move || enter(&plan));
    }
    Ok(())
}

fn check(ret: c_int) -> std::io::Result<()> {
    if ret == -1 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes a whole string to a /proc file (the id maps), with raw syscalls.
fn write_proc(path: &[u8], value: &CString) -> std::io::Result<()> {
    // SAFETY: NUL-terminated literal path, a buffer we own.
    unsafe {
        let fd = libc::open(
            path.as_ptr().cast::<c_char>(),
            libc::O_WRONLY | libc::O_CLOEXEC,
        );
        check(fd)?;
        let bytes = value.as_bytes();
        let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
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
const AT_RECURSIVE: libc::c_uint = 0x8000;

/// In the child: new namespaces, the new root, pivot into it.
fn enter(plan: &Plan) -> std::io::Result<()> {
    let null = std::ptr::null::<c_char>();
    // SAFETY: raw syscalls on NUL-terminated strings made before the fork.
    unsafe {
        let mut flags = libc::CLONE_NEWNS;
        if !plan.network {
            flags |= libc::CLONE_NEWNET;
        }
        if plan.id_maps.is_some() {
            flags |= libc::CLONE_NEWUSER;
        }
        check(libc::unshare(flags))?;
        if let Some([setgroups, uid_map, gid_map]) = &plan.id_maps {
            write_proc(b"/proc/self/setgroups\0", setgroups)?;
            write_proc(b"/proc/self/uid_map\0", uid_map)?;
            write_proc(b"/proc/self/gid_map\0", gid_map)?;
        }
        // Nothing mounted from here on may reach the host's mount table.
        check(libc::mount(
            null,
            c"/".as_ptr(),
            null,
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        check(libc::mount(
            c"tmpfs".as_ptr(),
            plan.new_root.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0755".as_ptr().cast(),
        ))?;
        for step in &plan.steps {
            match step {
                Step::Mkdir(dir) => {
                    if libc::mkdir(dir.as_ptr(), 0o755) == -1
                        && *libc::__errno_location() != libc::EEXIST
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Step::Touch(file) => {
                    let fd = libc::open(
                        file.as_ptr(),
                        libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                        0o644,
                    );
                    check(fd)?;
                    libc::close(fd);
                }
                Step::Symlink { target, link } => {
                    check(libc::symlink(target.as_ptr(), link.as_ptr()))?;
                }
                Step::Bind {
                    src,
                    dst,
                    readonly,
                    recursive,
                } => {
                    let rec = if *recursive { libc::MS_REC } else { 0 };
                    check(libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        null,
                        libc::MS_BIND | rec,
                        std::ptr::null(),
                    ))?;
                    let mut attr = MountAttr {
                        attr_set: MOUNT_ATTR_NOSUID,
                        attr_clr: 0,
                        propagation: 0,
                        userns_fd: 0,
                    };
                    if *readonly {
                        attr.attr_set |= MOUNT_ATTR_RDONLY;
                    } else {
                        attr.attr_set |= MOUNT_ATTR_NODEV;
                    }
                    let at_flags = if *recursive { AT_RECURSIVE } else { 0 };
                    check(libc::syscall(
                        libc::SYS_mount_setattr,
                        libc::AT_FDCWD,
                        dst.as_ptr(),
                        at_flags,
                        &attr as *const MountAttr,
                        std::mem::size_of::<MountAttr>(),
                    ) as c_int)?;
                }
            }
        }
        check(libc::chdir(plan.new_root.as_ptr()))?;
        check(libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as c_int)?;
        check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
        // The tmpfs root itself is made read-only last: only the build folder stays writable.
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_RDONLY,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        check(libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            c"/".as_ptr(),
            0,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ) as c_int)?;
        match &plan.cwd {
            Some(cwd) => check(libc::chdir(cwd.as_ptr()))?,
            None => check(libc::chdir(c"/".as_ptr()))?,
        }
    }
    Ok(())
}

/// Makes `cmd`'s process receive SIGKILL when the thread that starts it dies (staticpack killed
/// with -9 included), so that no toolchain runs on as an orphan. Also gives it a process group
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
mod tests {
    use super::*;

    fn sh(spec: &JailSpec, script: &str) -> (bool, String) {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", script]).current_dir(&spec.build_dir);
        jail(&mut cmd, spec).unwrap();
        let out = cmd.output().unwrap();
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    #[test]
    fn a_step_writes_only_the_build_folder_and_reads_only_what_was_declared() {
        available().expect("the build jail must be available on the CI machine");
        let outer = tempfile::tempdir().unwrap();
        let build = outer.path().join("build");
        let input = outer.path().join("recipe");
        std::fs::create_dir_all(&build).unwrap();
        std::fs::create_dir_all(&input).unwrap();
        std::fs::write(input.join("a.c"), "int x;\n").unwrap();
        std::fs::write(outer.path().join("secret.h"), "#define KEY 1\n").unwrap();
        let spec = JailSpec {
            build_dir: build.clone(),
            inputs: vec![input.clone()],
            writable: Vec::new(),
            network: false,
        };
        let b = build.display();
        let i = input.display();
        let o = outer.path().display();
        let (ok, out) = sh(
            &spec,
            &format!(
                "echo built > {b}/out && cat {i}/a.c && /usr/bin/gcc --version >/dev/null && echo fine"
            ),
        );
        assert!(ok, "{out}");
        assert!(out.contains("int x;") && out.contains("fine"), "{out}");
        assert_eq!(
            std::fs::read_to_string(build.join("out")).unwrap(),
            "built\n"
        );
        for (what, script) in [
            ("an undeclared file", format!("cat {o}/secret.h")),
            ("a write to an input", format!("echo x > {i}/a.c")),
            ("a write outside", format!("echo x > {o}/leak")),
            (
                "a write to /etc",
                "echo x > /etc/staticpack-leak".to_owned(),
            ),
            (
                "a write to /proc/sys",
                "echo 1 > /proc/sys/kernel/core_uses_pid".to_owned(),
            ),
            (
                "the network",
                "grep -v -e lo: -e Inter -e face /proc/net/dev | grep .".to_owned(),
            ),
        ] {
            let (ok, out) = sh(&spec, &script);
            assert!(!ok, "{what} must fail in the jail:\n{out}");
        }
        assert!(!outer.path().join("leak").exists());
        assert_eq!(
            std::fs::read_to_string(input.join("a.c")).unwrap(),
            "int x;\n"
        );
        let (ok, out) = sh(&spec, "echo x > /dev/null && ls /tmp /home 2>&1; true");
        assert!(ok, "{out}");
        assert!(
            out.contains("No such file"),
            "the host's /tmp and /home are not there: {out}"
        );
    }
}
