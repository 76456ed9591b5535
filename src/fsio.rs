//! One I/O error for the whole library: what was being done, to which path, and the cause.
//!
//! The stages' error enums hold it as `Io(#[from] IoError)` with `#[error(transparent)]`, so the
//! message ("creating /etc/passwd") and the cause each print once.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("{action} {path}")]
pub struct IoError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub(crate) fn new(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        IoError {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `.at(action, path)` on an I/O result: the error becomes an [`IoError`] naming both.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(action, path, source))
    }
}

/// One entry below a folder, as [`tree`] finds it.
pub(crate) struct TreeEntry {
    /// The path relative to the root.
    pub rel: String,
    pub path: PathBuf,
    pub kind: std::fs::FileType,
}

/// Every entry below `root` but the folders themselves (files, symlinks, others), folders
/// descended into and symlinks not followed; in no particular order.
pub(crate) fn tree(root: &Path) -> Result<Vec<TreeEntry>, IoError> {
    let mut entries = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).at("reading", &dir)?.flatten() {
            let path = e.path();
            let kind = e.file_type().at("reading", &path)?;
            if kind.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            entries.push(TreeEntry { rel, path, kind });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_action_and_path_and_the_cause_comes_once() {
        let e = std::fs::read("/nonexistent/staticpack")
            .at("reading", "/nonexistent/staticpack")
            .unwrap_err();
        assert_eq!(e.to_string(), "reading /nonexistent/staticpack");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.contains("No such file"), "{cause}");
        assert!(!e.to_string().contains(&cause));
    }

    #[test]
    fn tree_lists_files_and_symlinks_below_the_root_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/f"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc", d.path().join("a/l")).unwrap();
        let mut found: Vec<(String, bool)> = tree(d.path())
            .unwrap()
            .into_iter()
            .map(|e| (e.rel, e.kind.is_symlink()))
            .collect();
        found.sort();
        assert_eq!(found, [("a/b/f".into(), false), ("a/l".into(), true)]);
    }
}
