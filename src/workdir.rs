//! Scratch folders that do not outlive a killed staticpack. Each is flock-ed (the folder itself,
//! so nothing is added to its content) for as long as its owner lives; the kernel drops the lock
//! when the owner dies, however it dies. The next staticpack that makes scratch folders in the
//! same place removes those whose lock it can take: their owner is gone.

use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// How often [`WorkDir::new_in`] starts again when a sweeper took its fresh folder away.
const ATTEMPTS: usize = 16;

/// A temporary folder (mode 0700), removed on drop, locked while this value lives.
///
/// Locked from birth: the folder is made under a name [`sweep`] of its prefix does not match
/// (`.<prefix>XXXXXX`), locked, and only then renamed to `<prefix>XXXXXX` (the lock is on the
/// inode and moves with it). So a folder a sweeper sees under the prefix that it can lock is
/// one whose owner is gone — no grace period for the owner to lock it, and a build started a
/// second after a killed one removes what that one left. The hidden names are swept too: a
/// sweeper that takes one before its creator locked it removes an empty folder, and the
/// creator, finding it gone or locked, starts again under another name.
#[derive(Debug)]
pub struct WorkDir {
    path: PathBuf,
    _lock: Flock<File>,
    removed: bool,
}

impl WorkDir {
    /// Creates `<parent>/<prefix>XXXXXX` (mode 0700), locked from birth.
    pub(crate) fn new_in(parent: &Path, prefix: &str) -> io::Result<Self> {
        let mut last = None;
        for _ in 0..ATTEMPTS {
            match Self::attempt(parent, prefix) {
                Ok(dir) => return Ok(dir),
                // Swept or locked by a sweeper between our mkdir and our lock, or the final
                // name taken: another name.
                Err(e) if retryable(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no name left for a work folder")))
    }

    fn attempt(parent: &Path, prefix: &str) -> io::Result<Self> {
        let hidden = tempfile::Builder::new()
            .prefix(&format!(".{prefix}"))
            .tempdir_in(parent)?
            .keep();
        let result = (|| {
            let lock = lock(File::open(&hidden)?).map_err(io::Error::from)?;
            let name = hidden
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix('.'))
                .ok_or_else(|| io::Error::other("unexpected temporary name"))?;
            let path = parent.join(name);
            rename_noreplace(&hidden, &path)?;
            Ok(WorkDir {
                path,
                _lock: lock,
                removed: false,
            })
        })();
        if result.is_err() {
            let _ = std::fs::remove_dir(&hidden);
        }
        result
    }

    /// [`WorkDir::new_in`] the system's temporary folder.
    pub fn new(prefix: &str) -> io::Result<Self> {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the folder now, reporting a failure.
    pub fn close(mut self) -> io::Result<()> {
        self.removed = true;
        std::fs::remove_dir_all(&self.path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.removed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Renames `from` to `to` unless something is there already (`AlreadyExists`).
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        // A file system without the flag (NFS, some FUSE): check, then rename. A folder made
        // at `to` in between would be replaced only if empty, and names are random.
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            match std::fs::symlink_metadata(to) {
                Ok(_) => Err(io::ErrorKind::AlreadyExists.into()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::rename(from, to),
                Err(e) => Err(e),
            }
        }
        Err(errno) => Err(errno.into()),
    }
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::AlreadyExists | io::ErrorKind::WouldBlock
    )
}

/// Removes the folders `<parent>/<prefix>*` (and the `.<prefix>*` of creations cut short) that
/// no living process holds, after `before` has had its say about each (e.g. killing a runc
/// container whose state is in it). Returns what was removed. Best effort: a folder that
/// cannot be removed is left for the next time.
pub(crate) fn sweep(parent: &Path, prefix: &str, before: &dyn Fn(&Path)) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let hidden = format!(".{prefix}");
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with(prefix) && !name.starts_with(&hidden) {
            continue;
        }
        let path = entry.path();
        // Never followed: a link under our prefix is not ours to judge.
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let Ok(handle) = File::open(&path) else {
            continue;
        };
        let Ok(_held) = lock(handle) else {
            continue; // its owner is alive
        };
        before(&path);
        make_writable(&path);
        if std::fs::remove_dir_all(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

fn lock(file: File) -> Result<Flock<File>, nix::errno::Errno> {
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| errno)
}

/// Folders an image or a build made read-only would stop the removal when we are not root.
fn make_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            let path = entry.path();
            if let Ok(meta) = std::fs::symlink_metadata(&path) {
                let mode = meta.permissions().mode() | 0o700;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode));
            }
            make_writable(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_of_dead_owners_are_swept_however_young() {
        let parent = tempfile::tempdir().unwrap();
        let alive = WorkDir::new_in(parent.path(), "staticpack-build-").unwrap();
        std::fs::write(alive.path().join("f"), "x").unwrap();
        let name = alive
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("staticpack-build-"), "{name}");
        // A folder left by a killed process a moment ago: no lock on it, and no grace.
        let dead = parent.path().join("staticpack-build-dead");
        std::fs::create_dir_all(dead.join("ro/sub")).unwrap();
        std::fs::write(dead.join("ro/sub/f"), "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dead.join("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
        // One killed between its mkdir and its rename.
        let cut_short = parent.path().join(".staticpack-build-abc123");
        std::fs::create_dir(&cut_short).unwrap();
        // Another prefix, and a link under ours (never followed).
        let other = parent.path().join("other-dead");
        std::fs::create_dir(&other).unwrap();
        let link = parent.path().join("staticpack-build-link");
        std::os::unix::fs::symlink(&other, &link).unwrap();

        let seen = std::cell::RefCell::new(Vec::new());
        let mut removed = sweep(parent.path(), "staticpack-build-", &|p| {
            seen.borrow_mut().push(p.to_path_buf())
        });
        removed.sort();
        let mut seen = seen.into_inner();
        seen.sort();
        assert_eq!(removed, vec![cut_short.clone(), dead.clone()]);
        assert_eq!(seen, removed);
        assert!(!dead.exists() && !cut_short.exists());
        assert!(alive.path().join("f").exists() && other.exists() && link.exists());
        let kept = alive.path().to_path_buf();
        drop(alive);
        assert!(!kept.exists(), "a WorkDir is removed on drop");
    }

    #[test]
    fn a_folder_is_locked_under_its_swept_name_from_its_birth() {
        // Sweepers racing creators: no creator ever loses a folder it was given.
        let parent = tempfile::tempdir().unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let sweeper = s.spawn(|| {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    n += sweep(parent.path(), "p-", &|_| {}).len();
                }
                n
            });
            for _ in 0..300 {
                let dir = WorkDir::new_in(parent.path(), "p-").unwrap();
                std::fs::write(dir.path().join("f"), "x").unwrap();
                assert!(dir.path().join("f").exists());
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            sweeper.join().unwrap();
        });
        assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    }
}
