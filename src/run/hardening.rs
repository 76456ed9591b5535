//! What the builtin sandbox takes away from the entrypoint, as plain data built before the
//! clone (the clone child only applies it, see `sandbox.rs`):
//!
//! - **ids**: as root, the container's ids 0..65536 map to the host range [`ID_BASE`].. —
//!   never to host 0 — as rootless runtimes do with subordinate ids. The range 0x70000000..
//!   is one systemd leaves unallocated (above nspawn's 0x00080000..0x6FFFFFFF) and far above
//!   the usual `/etc/subuid` grants (100000 + 65536·n). The unpacked root is private to this
//!   run (a 0700 temporary directory), so [`shift_tree`] simply chowns it into the range:
//!   that works on every filesystem TMPDIR may be on, where an idmapped mount needs kernel
//!   and filesystem support (tmpfs only since 6.3) and the new mount API.
//! - **/proc**: runc's default masked and read-only paths.
//! - **seccomp**: a deny list (EPERM) of what a container never needs and what an escape
//!   would use, compiled by `seccompiler` (pure Rust: staticpack stays static).

use super::RunError;
use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// First host id of the range the container's ids map to when we are root.
pub(crate) const ID_BASE: u32 = 0x7000_0000;
/// Container ids 0..ID_COUNT map to ID_BASE..ID_BASE+ID_COUNT.
pub(crate) const ID_COUNT: u32 = 65536;
/// What an image id outside 0..ID_COUNT (other than the image user's own) is owned by
/// inside: nobody.
const NOBODY: u32 = 65534;

/// The host id a container id maps to as root. An image user above the range gets one more
/// host id of its own (ID_BASE + ID_COUNT), see [`root_map`].
pub(crate) fn host_id(id: u32, user: u32) -> u32 {
    if id < ID_COUNT {
        ID_BASE + id
    } else if id == user {
        ID_BASE + ID_COUNT
    } else {
        ID_BASE + NOBODY
    }
}

/// The `uid_map` (or `gid_map`) when we are root, for the image user's id `user`.
pub(crate) fn root_map(user: u32) -> String {
    let mut map = format!("0 {ID_BASE} {ID_COUNT}\n");
    if user >= ID_COUNT {
        map.push_str(&format!("{user} {} 1\n", ID_BASE + ID_COUNT));
    }
    map
}

/// Chowns `dir` and everything under it (never following symlinks) from image ids to the
/// host ids they map to, keeping setuid/setgid bits (chown clears them, even as root). The
/// image user `uid:gid` decides the mapping of ids above the range. Each inode is shifted
/// once, however many hard links it has.
pub(crate) fn shift_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), RunError> {
    let mut seen = HashSet::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let md =
            std::fs::symlink_metadata(&path).map_err(|e| RunError::io("inspecting", &path, e))?;
        if md.nlink() > 1 && !md.is_dir() && !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        std::os::unix::fs::lchown(
            &path,
            Some(host_id(md.uid(), uid)),
            Some(host_id(md.gid(), gid)),
        )
        .map_err(|e| RunError::io("shifting the owner of", &path, e))?;
        let mode = md.mode() & 0o7777;
        if !md.file_type().is_symlink() && mode & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| RunError::io("restoring the mode of", &path, e))?;
        }
        if md.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| RunError::io("reading", &path, e))? {
                stack.push(entry.map_err(|e| RunError::io("reading", &path, e))?.path());
            }
        }
    }
    Ok(())
}

/// runc's default `maskedPaths` under /proc (files get /dev/null bound over them,
/// directories an empty read-only tmpfs). runc's `/sys/firmware` does not apply: the sandbox
/// mounts no /sys.
pub(crate) const PROC_MASKED: &[&str] = &[
    "acpi",
    "asound",
    "interrupts",
    "kcore",
    "keys",
    "latency_stats",
    "sched_debug",
    "scsi",
    "timer_list",
    "timer_stats",
];

/// runc's default `readonlyPaths` under /proc.
pub(crate) const PROC_READONLY: &[&str] = &["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// Denied with EPERM: mounts (old and new API), namespaces, tracing, kernel modules and
/// kexec, bpf and perf, the kernel keyring, handle-based opens (the shocker escape), swap,
/// reboot, userfaultfd and io_uring (whose operations seccomp cannot see).
const DENIED: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    SYS_KEXEC_FILE_LOAD,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_acct,
    libc::SYS_quotactl,
];

/// libc's musl table for aarch64 lacks it; the number is the kernel's, whatever the libc.
#[cfg(target_arch = "aarch64")]
const SYS_KEXEC_FILE_LOAD: libc::c_long = 294;
#[cfg(not(target_arch = "aarch64"))]
const SYS_KEXEC_FILE_LOAD: libc::c_long = libc::SYS_kexec_file_load;

fn seccomp_err(e: impl std::fmt::Display) -> RunError {
    RunError::Sandbox(format!("building the seccomp filter: {e}"))
}

/// The seccomp programs the entrypoint gets, installed in this order just before execve.
/// The first denies [`DENIED`] and `clone` with `CLONE_NEWUSER`; the second answers `clone3`
/// with ENOSYS (its flags sit in memory seccomp cannot read; ENOSYS makes libcs fall back to
/// `clone`, as docker's profile does). Each kills a process of another architecture.
pub(crate) fn seccomp_programs() -> Result<Vec<BpfProgram>, RunError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(seccomp_err)?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    let newuser = libc::CLONE_NEWUSER as u64;
    rules.insert(
        libc::SYS_clone,
        vec![
            SeccompRule::new(vec![
                SeccompCondition::new(
                    0,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(newuser),
                    newuser,
                )
                .map_err(seccomp_err)?,
            ])
            .map_err(seccomp_err)?,
        ],
    );
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(seccomp_err)?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(seccomp_err)?;
    let mut programs = Vec::new();
    for filter in [deny, clone3] {
        programs.push(BpfProgram::try_from(filter).map_err(seccomp_err)?);
    }
    if arch == TargetArch::x86_64 {
        programs.push(x32_program());
    }
    Ok(programs)
}

/// x86_64 only: the x32 ABI shares x86_64's audit arch with syscall numbers offset by
/// 0x40000000, which the deny list's numbers would not match; answer them all with ENOSYS.
/// seccompiler has no rule on number ranges, so these four instructions are written here.
fn x32_program() -> BpfProgram {
    use seccompiler::sock_filter;
    const X32_BIT: u32 = 0x4000_0000;
    let stmt = |code: u32, k: u32| sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    vec![
        // A = seccomp_data.nr (offset 0)
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        // if A >= X32_BIT: next (ENOSYS) else skip it (ALLOW)
        sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: X32_BIT,
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn ids_map_into_the_range_and_never_to_host_root() {
        assert_eq!(host_id(0, 0), ID_BASE);
        assert_eq!(host_id(1000, 0), ID_BASE + 1000);
        assert_eq!(host_id(70000, 70000), ID_BASE + ID_COUNT);
        assert_eq!(host_id(70000, 0), ID_BASE + NOBODY);
        assert_eq!(root_map(0), format!("0 {ID_BASE} 65536\n"));
        assert_eq!(
            root_map(70000),
            format!("0 {ID_BASE} 65536\n70000 {} 1\n", ID_BASE + ID_COUNT)
        );
    }

    #[test]
    fn the_seccomp_programs_compile() {
        let programs = seccomp_programs().unwrap();
        assert!(programs.len() >= 2);
        assert!(programs.iter().all(|p| !p.is_empty() && p.len() < 4096));
    }
}
