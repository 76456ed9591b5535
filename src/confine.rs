//! Paths that must stay in a folder: a recipe's inputs in the recipe's folder, a base's files in
//! the base's folder. Checked after every symlink, so `src -> /etc` or `../../etc/shadow` cannot
//! pull a host file into an image (and into a registry) without the recipe saying so.

use std::path::{Path, PathBuf};

/// A folder, and the paths outside it that were explicitly allowed (all canonical).
#[derive(Clone, Debug)]
pub(crate) struct Confinement {
    root: PathBuf,
    allowed: Vec<PathBuf>,
}

/// Why a path was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Escape {
    #[error("{path} cannot be resolved: {source}")]
    Unresolvable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} resolves to {real}, outside {root}")]
    Outside {
        path: PathBuf,
        real: PathBuf,
        root: PathBuf,
    },
}

impl Confinement {
    /// `root` and every allowed path must exist: they are resolved here, once.
    pub(crate) fn new(root: &Path, allowed: &[PathBuf]) -> Result<Self, Escape> {
        let real = |p: &Path| {
            p.canonicalize().map_err(|source| Escape::Unresolvable {
                path: p.to_path_buf(),
                source,
            })
        };
        Ok(Confinement {
            root: real(root)?,
            allowed: allowed.iter().map(|p| real(p)).collect::<Result<_, _>>()?,
        })
    }

    /// The real path of `path` (which must exist) if it is inside the root or inside an allowed
    /// path.
    pub(crate) fn check(&self, path: &Path) -> Result<PathBuf, Escape> {
        let real = path.canonicalize().map_err(|source| Escape::Unresolvable {
            path: path.to_path_buf(),
            source,
        })?;
        let inside = |root: &PathBuf| real.starts_with(root);
        if inside(&self.root) || self.allowed.iter().any(inside) {
            return Ok(real);
        }
        Err(Escape::Outside {
            path: path.to_path_buf(),
            real,
            root: self.root.clone(),
        })
    }

    /// The first symlink below `dir` (not following symlinked folders) whose target is outside,
    /// with its escape. A dangling link reads nothing and is let be.
    pub(crate) fn first_escaping_link(&self, dir: &Path) -> Option<Escape> {
        let entries = std::fs::read_dir(dir).ok()?;
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_symlink() {
                match self.check(&path) {
                    Err(Escape::Unresolvable { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound => {}
                    Err(escape) => return Some(escape),
                    Ok(_) => {}
                }
            } else if kind.is_dir() {
                if let Some(escape) = self.first_escaping_link(&path) {
                    return Some(escape);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_and_dotdot_are_resolved_before_the_check() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("recipe");
        std::fs::create_dir_all(root.join("src/sub")).unwrap();
        std::fs::write(outer.path().join("secret"), "x").unwrap();
        std::fs::write(root.join("src/a.c"), "").unwrap();
        let c = Confinement::new(&root, &[]).unwrap();
        assert!(c.check(&root.join("src/a.c")).is_ok());
        assert!(c.check(&root.join("src/sub/../a.c")).is_ok());
        let e = c.check(&root.join("../secret")).unwrap_err();
        assert!(matches!(e, Escape::Outside { .. }), "{e}");
        symlink(outer.path().join("secret"), root.join("src/sub/link")).unwrap();
        let e = c.check(&root.join("src/sub/link")).unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
        let found = c.first_escaping_link(&root.join("src")).unwrap();
        assert!(found.to_string().contains("src/sub/link"), "{found}");
        symlink("a.c", root.join("src/inside")).unwrap();
        std::fs::remove_file(root.join("src/sub/link")).unwrap();
        assert!(c.first_escaping_link(&root).is_none());
        symlink("/nonexistent/x", root.join("src/dangling")).unwrap();
        assert!(c.first_escaping_link(&root).is_none());

        let allowed = Confinement::new(&root, &[outer.path().join("secret")]).unwrap();
        assert!(allowed.check(&root.join("../secret")).is_ok());
    }
}
