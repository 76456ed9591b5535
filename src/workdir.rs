//! Scratch folders that do not outlive a killed staticpack. Each is flock-ed (the folder itself,
//! so nothing is added to its content) for as long as its owner lives; the kernel drops the lock
//! when the owner dies, however it dies. The next staticpack that makes scratch folders in the
//! same place removes those whose lock it can take: their owner is gone.

use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A folder younger than this is left alone by [`sweep`]: its owner may not have locked it yet.
const GRACE: Duration = Duration::from_secs(60);

/// A temporary folder, removed on drop, locked while this value lives.
#[derive(Debug)]
pub(crate) struct WorkDir {
    dir: tempfile::TempDir,
    _lock: Flock<File>,
}

impl WorkDir {
    /// Creates `<parent>/<prefix>XXXXXX` (mode 0700) and locks it.
    pub(crate) fn new_in(parent: &Path, prefix: &str) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix(prefix).tempdir_in(parent)?;
        let lock = lock(File::open(dir.path())?).map_err(io::Error::from)?;
        Ok(WorkDir { dir, _lock: lock })
    }

    /// [`WorkDir::new_in`] the system's temporary folder.
    pub(crate) fn new(prefix: &str) -> io::Result<Self> {
        Self::new_in(&std::env::temp_dir(), prefix)
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Removes the folder now, reporting a failure.
    pub(crate) fn close(self) -> io::Result<()> {
        self.dir.close()
    }
}

/// Removes the folders `<parent>/<prefix>*` that no living process holds, after `before` has
/// had its say about each (e.g. killing a runc container whose state is in it). Returns what
/// was removed. Best effort: a folder that cannot be removed is left for the next time.
pub(crate) fn sweep(parent: &Path, prefix: &str, before: &dyn Fn(&Path)) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let young = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_none_or(|age| age < GRACE);
        if !meta.is_dir() || young {
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

    fn age(path: &Path, seconds: u64) {
        let old = std::time::SystemTime::now() - Duration::from_secs(seconds);
        File::open(path).unwrap().set_modified(old).unwrap();
    }

    #[test]
    fn only_folders_of_dead_owners_are_swept() {
        let parent = tempfile::tempdir().unwrap();
        let alive = WorkDir::new_in(parent.path(), "staticpack-build-").unwrap();
        std::fs::write(alive.path().join("f"), "x").unwrap();
        age(alive.path(), 3600);
        // A folder left by a killed process: no lock on it.
        let dead = parent.path().join("staticpack-build-dead");
        std::fs::create_dir_all(dead.join("ro/sub")).unwrap();
        std::fs::write(dead.join("ro/sub/f"), "x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dead.join("ro"), std::fs::Permissions::from_mode(0o500)).unwrap();
        age(&dead, 3600);
        // Too young to judge, and another prefix.
        let young = parent.path().join("staticpack-build-young");
        std::fs::create_dir(&young).unwrap();
        let other = parent.path().join("other-dead");
        std::fs::create_dir(&other).unwrap();
        age(&other, 3600);

        let seen = std::cell::RefCell::new(Vec::new());
        let removed = sweep(parent.path(), "staticpack-build-", &|p| {
            seen.borrow_mut().push(p.to_path_buf())
        });
        assert_eq!(removed, vec![dead.clone()]);
        assert_eq!(seen.into_inner(), vec![dead.clone()]);
        assert!(!dead.exists());
        assert!(alive.path().join("f").exists() && young.exists() && other.exists());
        let kept = alive.path().to_path_buf();
        drop(alive);
        assert!(!kept.exists(), "a WorkDir is removed on drop");
    }
}
