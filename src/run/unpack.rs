//! Applying image layers to an empty folder, safely: no entry may land outside the root, whether
//! by an absolute path, `..`, a symlink in a parent, or a hard link; OCI whiteouts are honoured.

use super::RunError;
use flate2::read::GzDecoder;
use std::fs;
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";

fn unsafe_entry(layer: &Path, entry: &str, reason: &str) -> RunError {
    RunError::UnsafeEntry {
        layer: layer.to_path_buf(),
        entry: entry.to_owned(),
        reason: reason.to_owned(),
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RunError + 'a {
    move |source| RunError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// A tar path made relative and checked: no absolute path, no `..`.
fn clean(layer: &Path, raw: &Path) -> Result<PathBuf, RunError> {
    let shown = raw.to_string_lossy();
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(unsafe_entry(layer, &shown, "absolute path"));
            }
            Component::ParentDir => return Err(unsafe_entry(layer, &shown, "'..' in the path")),
        }
    }
    Ok(out)
}

/// Makes sure every parent of `rel` under `root` is a real directory (never a symlink), creating
/// missing ones, so nothing written afterwards can be redirected out of the root.
fn real_parents(root: &Path, rel: &Path, layer: &Path) -> Result<(), RunError> {
    let mut here = root.to_path_buf();
    let parents: Vec<_> = rel
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for c in parents {
        here.push(c);
        match fs::symlink_metadata(&here) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(unsafe_entry(
                    layer,
                    &rel.to_string_lossy(),
                    "a parent folder is a symlink (it could point outside the root)",
                ));
            }
            Ok(_) => {
                return Err(unsafe_entry(
                    layer,
                    &rel.to_string_lossy(),
                    "a parent is not a folder",
                ));
            }
            Err(_) => fs::create_dir(&here).map_err(io_err("creating", &here))?,
        }
    }
    Ok(())
}

/// Removes whatever is at `path` (file, symlink or folder tree), not following symlinks.
fn remove_any(path: &Path) -> Result<(), RunError> {
    match fs::symlink_metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).map_err(io_err("removing", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("removing", path)),
    }
}

/// Applies gzip'd tar layers, bottom first, into `dest`; returns the number of regular files.
pub fn unpack_layers(layers: &[PathBuf], dest: &Path) -> Result<usize, RunError> {
    for layer in layers {
        apply_layer(layer, dest)?;
    }
    Ok(count_files(dest))
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}

fn apply_layer(layer: &Path, root: &Path) -> Result<(), RunError> {
    let file = fs::File::open(layer).map_err(io_err("opening layer", layer))?;
    let mut archive = tar::Archive::new(GzDecoder::new(file));
    let read_err = |e: io::Error| RunError::Io {
        action: "reading layer",
        path: layer.to_path_buf(),
        source: e,
    };
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path().map_err(read_err)?.into_owned();
        let rel = clean(layer, &raw)?;
        if rel.as_os_str().is_empty() {
            continue; // "./" itself
        }
        real_parents(root, &rel, layer)?;
        let target = root.join(&rel);
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == OPAQUE_WHITEOUT {
            let dir = target.parent().unwrap_or(root);
            for child in fs::read_dir(dir).map_err(io_err("reading", dir))?.flatten() {
                remove_any(&child.path())?;
            }
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            remove_any(&target.with_file_name(hidden))?;
            continue;
        }
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                if !fs::symlink_metadata(&target)
                    .map(|m| m.is_dir())
                    .unwrap_or(false)
                {
                    remove_any(&target)?;
                    fs::create_dir(&target).map_err(io_err("creating", &target))?;
                }
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(io_err("setting mode of", &target))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                remove_any(&target)?;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .mode(0o600)
                    .open(&target)
                    .map_err(io_err("creating", &target))?;
                io::copy(&mut entry, &mut out).map_err(io_err("writing", &target))?;
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(io_err("setting mode of", &target))?;
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(read_err)?.ok_or_else(|| {
                    unsafe_entry(layer, &rel.to_string_lossy(), "symlink without a target")
                })?;
                remove_any(&target)?;
                // The target is stored as is: it is resolved inside the sandbox's root, never here.
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(io_err("creating symlink", &target))?;
            }
            tar::EntryType::Link => {
                let link = entry.link_name().map_err(read_err)?.ok_or_else(|| {
                    unsafe_entry(layer, &rel.to_string_lossy(), "hard link without a target")
                })?;
                let link_rel = clean(layer, &link)?;
                real_parents(root, &link_rel, layer)?;
                let source = root.join(&link_rel);
                if !fs::symlink_metadata(&source)
                    .map(|m| m.is_file())
                    .unwrap_or(false)
                {
                    return Err(unsafe_entry(
                        layer,
                        &rel.to_string_lossy(),
                        "hard link to something that is not a regular file in the image",
                    ));
                }
                remove_any(&target)?;
                fs::hard_link(&source, &target).map_err(io_err("creating hard link", &target))?;
            }
            // Device nodes, fifos: an unprivileged sandbox cannot make them and a static binary's
            // proof does not need them.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    /// Writes raw tar headers so that hostile names (absolute, "..") can be tested.
    fn layer(dir: &Path, name: &str, entries: &[E]) -> PathBuf {
        let path = dir.join(name);
        let gz = flate2::write::GzEncoder::new(
            fs::File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        for e in entries {
            let mut h = tar::Header::new_gnu();
            let (p, data): (&str, &[u8]) = match e {
                E::File(p, d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o755);
                    (p, d)
                }
                E::Dir(p) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    (p, b"")
                }
                E::Symlink(p, t) | E::Hard(p, t) => {
                    h.set_entry_type(if matches!(e, E::Symlink(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    });
                    h.set_link_name(t).unwrap();
                    (p, b"")
                }
            };
            h.as_old_mut().name[..p.len()].copy_from_slice(p.as_bytes());
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap().flush().unwrap();
        path
    }

    #[test]
    fn files_dirs_links_and_whiteouts() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        fs::create_dir(&root).unwrap();
        let l1 = layer(
            t.path(),
            "1",
            &[
                E::Dir("etc/"),
                E::File("etc/a", b"a"),
                E::File("etc/b", b"b"),
                E::Dir("d/"),
                E::File("d/x", b"x"),
                E::File("app", b"app"),
            ],
        );
        let l2 = layer(
            t.path(),
            "2",
            &[
                E::File("etc/.wh.a", b""),
                E::File("d/.wh..wh..opq", b""),
                E::File("d/y", b"y"),
                E::Symlink("bin", "/app"),
                E::Hard("app2", "app"),
            ],
        );
        let n = unpack_layers(&[l1, l2], &root).unwrap();
        assert!(!root.join("etc/a").exists());
        assert_eq!(fs::read(root.join("etc/b")).unwrap(), b"b");
        assert!(!root.join("d/x").exists());
        assert_eq!(fs::read(root.join("d/y")).unwrap(), b"y");
        assert_eq!(
            fs::read_link(root.join("bin")).unwrap(),
            PathBuf::from("/app")
        );
        assert_eq!(fs::read(root.join("app2")).unwrap(), b"app");
        assert_eq!(n, 4, "etc/b, d/y, app, app2");
    }

    #[test]
    fn escapes_are_refused() {
        let cases: Vec<(&str, Vec<E>)> = vec![
            ("dotdot", vec![E::File("../evil", b"x")]),
            ("absolute", vec![E::File("/tmp/evil", b"x")]),
            (
                "symlink parent",
                vec![E::Symlink("a", "/"), E::File("a/etc/evil", b"x")],
            ),
            ("hard link out", vec![E::Hard("h", "../../etc/passwd")]),
        ];
        for (what, entries) in cases {
            let t = tempfile::tempdir().unwrap();
            let root = t.path().join("root");
            fs::create_dir(&root).unwrap();
            let l = layer(t.path(), "l", &entries);
            let e = unpack_layers(&[l], &root);
            assert!(
                matches!(e, Err(RunError::UnsafeEntry { .. })),
                "{what}: {e:?}"
            );
            assert!(
                !t.path().join("evil").exists() && !Path::new("/tmp/evil").exists(),
                "{what} escaped"
            );
        }
    }
}
