//! Applying image layers into an empty directory, safely.
//!
//! Rules (the layers are input; nothing they say may reach outside `dest`):
//! - entry paths must be relative and free of `..` (a leading `./` is fine): else refused;
//! - symlinks met in an entry's *parent* path are followed the way the sandboxed process will
//!   see them: inside the root (an absolute target starts at the root, `..` stops at the root).
//!   So `a -> /` then `a/etc/x` writes `<root>/etc/x`, and no symlink is ever followed on the
//!   host. The entry's own name is never followed: whatever is there is replaced;
//! - existing files are replaced (unlinked, then created with `O_EXCL|O_NOFOLLOW`), never
//!   written through, so a hard link cannot carry a write into another path;
//! - hard links must name an existing non-directory inside the root (same path rules);
//! - OCI whiteouts: `.wh.NAME` removes NAME, `.wh..wh..opq` empties its directory; both apply
//!   only to what lower layers left (entries of the same layer stay), and are not created;
//! - device nodes are skipped (an unprivileged sandbox cannot create them and the builtin
//!   sandbox provides `/dev` itself); FIFOs are created;
//! - permission bits are applied as given (`& 0o7777`, setuid/setgid/sticky included): the
//!   root lives in a 0700 temporary directory no other host user can enter, and ownership is
//!   ignored (every file belongs to the invoking user, whom the sandbox maps to root).
//!   Directory modes are applied after all layers, deepest first, so a read-only directory
//!   does not stop later entries.

use super::RunError;
use crate::image::LoadedImage;
use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// What [`resolve_in_root`] does about missing components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Follow every symlink (the last one too); a missing component gives `Ok(None)`.
    Lookup,
    /// Every component is (or becomes, with mode 0755) a directory.
    MakeDirs,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ResolveError {
    #[error("{0} is not a directory")]
    NotDir(PathBuf),
    #[error("too many levels of symbolic links")]
    Loop,
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

enum Part {
    Root,
    Parent,
    Name(OsString),
}

fn push_parts(stack: &mut Vec<Part>, path: &Path) {
    let start = stack.len();
    for c in path.components() {
        match c {
            Component::RootDir => stack.push(Part::Root),
            Component::ParentDir => stack.push(Part::Parent),
            Component::Normal(n) => stack.push(Part::Name(n.to_owned())),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    stack[start..].reverse();
}

/// The host path of `path` as a process chrooted at `root` would resolve it: symlinks are
/// followed within `root` (absolute targets start at `root`, `..` stops there). Every component
/// of the result except possibly the last is a real directory under `root`.
pub(crate) fn resolve_in_root(
    root: &Path,
    path: &Path,
    walk: Walk,
) -> Result<Option<PathBuf>, ResolveError> {
    const MAX_LINKS: usize = 40; // the kernel's limit
    let mut stack = Vec::new();
    push_parts(&mut stack, path);
    let mut resolved = root.to_path_buf();
    let mut depth = 0usize;
    let mut links = 0usize;
    while let Some(part) = stack.pop() {
        match part {
            Part::Root => {
                resolved = root.to_path_buf();
                depth = 0;
            }
            Part::Parent => {
                if depth > 0 {
                    resolved.pop();
                    depth -= 1;
                }
            }
            Part::Name(name) => {
                let candidate = resolved.join(&name);
                let last = stack.is_empty();
                match fs::symlink_metadata(&candidate) {
                    Ok(md) if md.file_type().is_symlink() => {
                        links += 1;
                        if links > MAX_LINKS {
                            return Err(ResolveError::Loop);
                        }
                        let target =
                            fs::read_link(&candidate).map_err(|source| ResolveError::Io {
                                action: "reading link",
                                path: candidate,
                                source,
                            })?;
                        push_parts(&mut stack, &target);
                    }
                    Ok(md) => {
                        if !md.is_dir() && (!last || walk == Walk::MakeDirs) {
                            return Err(ResolveError::NotDir(candidate));
                        }
                        resolved = candidate;
                        depth += 1;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => match walk {
                        Walk::Lookup => return Ok(None),
                        Walk::MakeDirs => {
                            fs::DirBuilder::new()
                                .mode(0o755)
                                .create(&candidate)
                                .map_err(|source| ResolveError::Io {
                                    action: "creating directory",
                                    path: candidate.clone(),
                                    source,
                                })?;
                            resolved = candidate;
                            depth += 1;
                        }
                    },
                    Err(source) => {
                        return Err(ResolveError::Io {
                            action: "inspecting",
                            path: candidate,
                            source,
                        });
                    }
                }
            }
        }
    }
    Ok(Some(resolved))
}

/// The normal components of an archive path; absolute paths and `..` are refused.
fn safe_components(path: &Path) -> Result<Vec<&OsStr>, &'static str> {
    let mut names = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => names.push(n),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
            Component::ParentDir => return Err("'..' component"),
        }
    }
    Ok(names)
}

/// Removes whatever is at `path` (a directory with its contents), never following a symlink.
fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Empties `dir` of everything not written by the current layer (an opaque whiteout).
fn clear_opaque(dir: &Path, written: &HashSet<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if !written.contains(&path) {
            remove_any(&path)?;
        } else if entry.file_type()?.is_dir() {
            clear_opaque(&path, written)?;
        }
    }
    Ok(())
}

/// Applies the layers of `image` (bottom first) into the empty directory `dest`; returns the
/// number of regular files the resulting tree holds. See the module docs for the rules.
pub fn unpack(image: &LoadedImage, dest: &Path) -> Result<usize, RunError> {
    // Work on the canonical path: the final chmod pass compares against it.
    let root = fs::canonicalize(dest).map_err(|e| RunError::io("opening", dest, e))?;
    let mut non_empty = fs::read_dir(&root).map_err(|e| RunError::io("reading", &root, e))?;
    if non_empty.next().is_some() {
        return Err(RunError::io(
            "unpacking into",
            &root,
            io::Error::new(io::ErrorKind::AlreadyExists, "the directory is not empty"),
        ));
    }
    let mut dir_modes = BTreeMap::new();
    for layer in &image.layer_blobs {
        apply_layer(layer, &root, &mut dir_modes)?;
    }
    // Children sort after their parent: reverse order sets the deepest modes first.
    for (dir, mode) in dir_modes.iter().rev() {
        // Only a directory still reachable at that exact path (no symlink on the way, since a
        // later entry may have replaced a parent with one) gets its mode.
        match fs::canonicalize(dir) {
            Ok(real) if &real == dir && real.is_dir() => {
                fs::set_permissions(dir, fs::Permissions::from_mode(*mode))
                    .map_err(|e| RunError::io("setting the mode of", dir, e))?;
            }
            _ => {}
        }
    }
    count_files(&root)
}

fn apply_layer(
    layer: &Path,
    root: &Path,
    dir_modes: &mut BTreeMap<PathBuf, u32>,
) -> Result<(), RunError> {
    let file = fs::File::open(layer).map_err(|e| RunError::io("opening layer", layer, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let read_err = |e| RunError::io("reading layer", layer, e);
    // Paths this layer wrote: its own whiteouts must not remove them.
    let mut written: HashSet<PathBuf> = HashSet::new();

    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw_path = entry.path().map_err(read_err)?.into_owned();
        let shown = raw_path.to_string_lossy().into_owned();
        let unsafe_entry = |reason: &str| RunError::UnsafeEntry {
            layer: layer.to_path_buf(),
            entry: shown.clone(),
            reason: reason.to_owned(),
        };
        let names = safe_components(&raw_path).map_err(unsafe_entry)?;
        let Some((name, parents)) = names.split_last() else {
            continue; // the root itself ("./")
        };
        let parent_rel: PathBuf = parents.iter().collect();
        // The reason is a message of its own: it carries the cause (ResolveError keeps it apart).
        let resolve_err = |e: ResolveError| match std::error::Error::source(&e) {
            Some(cause) => unsafe_entry(&format!("{e}: {cause}")),
            None => unsafe_entry(&e.to_string()),
        };

        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(unsafe_entry("whiteout of an invalid name"));
            }
            let dir = match resolve_in_root(root, &parent_rel, Walk::Lookup).map_err(resolve_err)? {
                Some(dir) if dir.is_dir() => dir,
                _ => continue, // nothing below to hide
            };
            if hidden == b".wh..opq" {
                clear_opaque(&dir, &written).map_err(|e| RunError::io("clearing", &dir, e))?;
            } else if hidden.starts_with(b".wh.") {
                // Other AUFS metadata (.wh..wh.plnk, …): not part of the tree.
            } else {
                let target = dir.join(OsStr::from_bytes(hidden));
                if !written.contains(&target) {
                    remove_any(&target).map_err(|e| RunError::io("removing", &target, e))?;
                }
            }
            continue;
        }

        let parent = resolve_in_root(root, &parent_rel, Walk::MakeDirs)
            .map_err(resolve_err)?
            .unwrap_or_else(|| root.to_path_buf());
        let target = parent.join(name);
        let header = entry.header();
        let mode = header.mode().map_err(read_err)? & 0o7777;
        let kind = header.entry_type();
        // As root, the image's owners are applied (a nonroot user must own its home, as under
        // docker); otherwise everything belongs to us, which the sandbox maps to the image's user.
        let owner = match (nix::unistd::geteuid().is_root(), header.uid(), header.gid()) {
            (true, Ok(u), Ok(g)) => u32::try_from(u).ok().zip(u32::try_from(g).ok()),
            _ => None,
        };
        let chown = |path: &Path| -> Result<(), RunError> {
            match owner {
                Some((u, g)) => std::os::unix::fs::lchown(path, Some(u), Some(g))
                    .map_err(|e| RunError::io("setting the owner of", path, e)),
                None => Ok(()),
            }
        };

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match fs::symlink_metadata(&target) {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        remove_any(&target).map_err(|e| RunError::io("replacing", &target, e))?;
                        make_dir(&target)?;
                    }
                    Err(_) => make_dir(&target)?,
                }
                chown(&target)?;
                dir_modes.insert(target.clone(), mode);
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                remove_any(&target).map_err(|e| RunError::io("replacing", &target, e))?;
                let mut out = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&target)
                    .map_err(|e| RunError::io("creating", &target, e))?;
                io::copy(&mut entry, &mut out).map_err(|e| RunError::io("writing", &target, e))?;
                // Owner first: chown clears setuid bits, the mode below sets them back.
                chown(&target)?;
                // Exactly the archive's bits, whatever the umask.
                out.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| RunError::io("setting the mode of", &target, e))?;
            }
            T::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(read_err)?
                    .filter(|l| !l.as_os_str().is_empty())
                    .ok_or_else(|| unsafe_entry("symlink without a target"))?;
                remove_any(&target).map_err(|e| RunError::io("replacing", &target, e))?;
                // Stored verbatim: its meaning is decided inside the root when it is used.
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| RunError::io("creating symlink", &target, e))?;
                chown(&target)?;
            }
            T::Link => {
                let link = entry
                    .link_name()
                    .map_err(read_err)?
                    .ok_or_else(|| unsafe_entry("hard link without a target"))?
                    .into_owned();
                let link_names = safe_components(&link)
                    .map_err(|r| unsafe_entry(&format!("hard link target {link:?}: {r}")))?;
                let Some((link_name, link_parents)) = link_names.split_last() else {
                    return Err(unsafe_entry("hard link to the root"));
                };
                let link_parent_rel: PathBuf = link_parents.iter().collect();
                let missing =
                    || unsafe_entry(&format!("hard link target {link:?} is not in the image"));
                let source = resolve_in_root(root, &link_parent_rel, Walk::Lookup)
                    .map_err(resolve_err)?
                    .filter(|p| p.is_dir())
                    .ok_or_else(missing)?
                    .join(link_name);
                match fs::symlink_metadata(&source) {
                    Ok(md) if md.is_dir() => {
                        return Err(unsafe_entry("hard link to a directory"));
                    }
                    Ok(_) => {}
                    Err(_) => return Err(missing()),
                }
                if source != target {
                    remove_any(&target).map_err(|e| RunError::io("replacing", &target, e))?;
                    // linkat without AT_SYMLINK_FOLLOW: links the entry itself, even a symlink.
                    fs::hard_link(&source, &target)
                        .map_err(|e| RunError::io("creating hard link", &target, e))?;
                }
            }
            T::Fifo => {
                remove_any(&target).map_err(|e| RunError::io("replacing", &target, e))?;
                nix::unistd::mkfifo(&target, nix::sys::stat::Mode::from_bits_truncate(mode))
                    .map_err(|e| RunError::io("creating fifo", &target, io::Error::from(e)))?;
            }
            // Device nodes: skipped (see the module docs). Anything else is metadata the tar
            // reader has already consumed or that has no place in a tree.
            _ => continue,
        }
        written.insert(target);
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<(), RunError> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(path)
        .map_err(|e| RunError::io("creating", path, e))
}

/// Regular files in the tree under `root` (symlinks not followed).
fn count_files(root: &Path) -> Result<usize, RunError> {
    let mut count = 0;
    walk(root, &mut |_, ft| count += usize::from(ft.is_file()))?;
    Ok(count)
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path, fs::FileType)) -> Result<(), RunError> {
    let entries = fs::read_dir(dir).map_err(|e| RunError::io("reading", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| RunError::io("reading", dir, e))?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| RunError::io("inspecting", &path, e))?;
        f(&path, ft);
        if ft.is_dir() {
            walk(&path, f)?;
        }
    }
    Ok(())
}

/// Whether a file name looks like a libc or a dynamic loader.
fn is_libc_name(name: &str) -> bool {
    name.starts_with("ld-linux") && name.contains(".so")
        || name.starts_with("ld-musl-") && name.contains(".so")
        || name.starts_with("libc.so")
        || name.starts_with("libc.musl-")
        || name.starts_with("libc-") && name.ends_with(".so")
}

/// Paths (as seen inside the root) of the regular files named like a libc or a loader.
pub(crate) fn find_libc_files(root: &Path) -> Result<Vec<String>, RunError> {
    let mut found = Vec::new();
    walk(root, &mut |path, ft| {
        let libc_like = path
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(is_libc_name);
        if ft.is_file() && libc_like {
            if let Ok(rel) = path.strip_prefix(root) {
                found.push(format!("/{}", rel.display()));
            }
        }
    })?;
    found.sort();
    Ok(found)
}

/// Creates the absolute in-root directory `path` when missing (following symlinks within the
/// root only).
pub(crate) fn ensure_dir_in_root(root: &Path, path: &str) -> Result<(), RunError> {
    resolve_in_root(root, Path::new(path), Walk::MakeDirs)
        .map(|_| ())
        .map_err(|e| RunError::Config(format!("WorkingDir {path}: {e}")))
}

/// Best effort before removal: gives the owner rwx on every directory, so directories the
/// image made read-only do not stop an unprivileged cleanup.
pub(crate) fn make_removable(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|ft| ft.is_dir()) {
            let path = entry.path();
            if let Ok(md) = fs::symlink_metadata(&path) {
                let mode = md.permissions().mode() | 0o700;
                let _ = fs::set_permissions(&path, fs::Permissions::from_mode(mode));
            }
            make_removable(&path);
        }
    }
}
