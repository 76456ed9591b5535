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
use crate::image::layout::LocalBlob;
use crate::image::{LayerFormat, LoadedImage};
use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::io::Read as _;
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
                            make_dir_0755(&candidate).map_err(|source| ResolveError::Io {
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
pub(crate) fn safe_components(path: &Path) -> Result<Vec<&OsStr>, &'static str> {
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
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
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

/// Bounds on what unpacking an image may write: a small gzip layer can expand to terabytes, and
/// a sparse entry of a few bytes can claim any logical size (counted at that size here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Bytes of file content, all layers together.
    pub max_bytes: u64,
    /// Entries (files, folders, links, whiteouts), all layers together.
    pub max_entries: u64,
}

impl Default for UnpackLimits {
    /// Generous for real images (the largest common ones are a few GiB and ~100k files).
    fn default() -> Self {
        UnpackLimits {
            max_bytes: 16 << 30,
            max_entries: 1_000_000,
        }
    }
}

/// What is left of the limits while the layers are applied.
struct Budget {
    limits: UnpackLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    fn exceeded(&self, what: &'static str) -> RunError {
        let (limit, flag) = match what {
            "bytes" => (self.limits.max_bytes, "--max-unpack-bytes"),
            _ => (self.limits.max_entries, "--max-unpack-entries"),
        };
        RunError::TooLarge { what, limit, flag }
    }
}

/// Applies the layers of `image` (bottom first) into the empty directory `dest`; returns the
/// number of regular files the resulting tree holds. Each layer is checked against its
/// descriptor's digest and size as it is read, and the whole is held to `limits`. See the
/// module docs for the path rules.
pub fn unpack(image: &LoadedImage, dest: &Path, limits: &UnpackLimits) -> Result<usize, RunError> {
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
    // The root is a directory of the image too: 0755 (as under docker) unless a layer's `./`
    // entry says otherwise, never what the umask left of the folder our caller made.
    let mut dir_modes = BTreeMap::from([(root.clone(), 0o755)]);
    let mut budget = Budget {
        limits: *limits,
        bytes: limits.max_bytes,
        entries: limits.max_entries,
    };
    for layer in &image.layers {
        if let Err(e) = apply_layer(layer, &root, &mut dir_modes, &mut budget) {
            // A tampered layer usually breaks the tar or gzip format before its end is reached
            // and the digest checked: then the digest is the cause to report.
            let mut reader = layer.open()?;
            return match io::copy(&mut reader, &mut io::sink()) {
                Err(mismatch) if mismatch.kind() == io::ErrorKind::InvalidData => {
                    Err(RunError::io("reading layer", &layer.path, mismatch))
                }
                _ => Err(e),
            };
        }
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

/// Applies one layer into the empty directory `dest` under `limits`, as [`unpack`] applies
/// each of an image's (for a look at one layer, and for the fuzzer).
pub fn unpack_layer(
    layer: &LocalBlob,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<usize, RunError> {
    let root = fs::canonicalize(dest).map_err(|e| RunError::io("opening", dest, e))?;
    let mut budget = Budget {
        limits: *limits,
        bytes: limits.max_bytes,
        entries: limits.max_entries,
    };
    apply_layer(layer, &root, &mut BTreeMap::new(), &mut budget)?;
    count_files(&root)
}

/// How the layer's tar is stored, from its media type.
fn layer_format(media_type: &str) -> Result<LayerFormat, RunError> {
    LayerFormat::of_media_type(media_type).ok_or_else(|| {
        RunError::Config(format!(
            "layer media type {media_type:?} is not supported ({} are)",
            LayerFormat::SUPPORTED
        ))
    })
}

fn apply_layer(
    layer: &LocalBlob,
    root: &Path,
    dir_modes: &mut BTreeMap<PathBuf, u32>,
    budget: &mut Budget,
) -> Result<(), RunError> {
    let path = &layer.path;
    let format = layer_format(&layer.media_type)?;
    let mut verified = layer.open()?;
    let read_err = |e| RunError::io("reading layer", path, e);
    {
        let buffered = io::BufReader::new(&mut verified);
        let decoded = format.decoder(buffered).map_err(read_err)?;
        apply_entries(tar::Archive::new(decoded), layer, root, dir_modes, budget)?;
    }
    // Read what the tar reader left (its end blocks, the compressor's trailer) so the digest is checked
    // over every byte: a layer is applied only if all of it is what its descriptor says.
    io::copy(&mut verified, &mut io::sink()).map_err(read_err)?;
    Ok(())
}

fn apply_entries<R: io::Read>(
    mut archive: tar::Archive<R>,
    layer: &LocalBlob,
    root: &Path,
    dir_modes: &mut BTreeMap<PathBuf, u32>,
    budget: &mut Budget,
) -> Result<(), RunError> {
    let layer = &layer.path;
    let read_err = |e| RunError::io("reading layer", layer, e);
    // Paths this layer wrote: its own whiteouts must not remove them.
    let mut written: HashSet<PathBuf> = HashSet::new();

    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        budget.entries = budget
            .entries
            .checked_sub(1)
            .ok_or_else(|| budget.exceeded("entries"))?;
        let raw_path = entry.path().map_err(read_err)?.into_owned();
        let at = EntryAt {
            layer,
            root,
            shown: raw_path.to_string_lossy().into_owned(),
        };
        let names = safe_components(&raw_path).map_err(|r| at.unsafe_entry(r))?;
        let Some((name, parents)) = names.split_last() else {
            // The root itself ("./"): only its mode applies.
            let header = entry.header();
            if header.entry_type() == tar::EntryType::Directory {
                let mode = header.mode().map_err(|e| at.read_err(e))? & 0o7777;
                dir_modes.insert(root.to_path_buf(), mode);
            }
            continue;
        };
        let parent_rel: PathBuf = parents.iter().collect();
        if let Some(hidden) = name.as_bytes().strip_prefix(b".wh.") {
            at.whiteout(&parent_rel, hidden, &written)?;
            continue;
        }
        let parent = resolve_in_root(root, &parent_rel, Walk::MakeDirs)
            .map_err(|e| at.resolve_err(e))?
            .unwrap_or_else(|| root.to_path_buf());
        let target = parent.join(name);
        if at.apply(&mut entry, &target, dir_modes, budget)? {
            written.insert(target);
        }
    }
    Ok(())
}

/// One entry of a layer, for its error messages.
struct EntryAt<'a> {
    layer: &'a Path,
    root: &'a Path,
    shown: String,
}

impl EntryAt<'_> {
    fn unsafe_entry(&self, reason: &str) -> RunError {
        RunError::UnsafeEntry {
            layer: self.layer.to_path_buf(),
            entry: self.shown.clone(),
            reason: reason.to_owned(),
        }
    }

    /// The reason is a message of its own: it carries the cause (ResolveError keeps it apart).
    fn resolve_err(&self, e: ResolveError) -> RunError {
        match std::error::Error::source(&e) {
            Some(cause) => self.unsafe_entry(&format!("{e}: {cause}")),
            None => self.unsafe_entry(&e.to_string()),
        }
    }

    fn read_err(&self, e: io::Error) -> RunError {
        RunError::io("reading layer", self.layer, e)
    }

    /// `.wh.NAME` removes NAME, `.wh..wh..opq` empties the folder: only what lower layers left.
    fn whiteout(
        &self,
        parent_rel: &Path,
        hidden: &[u8],
        written: &HashSet<PathBuf>,
    ) -> Result<(), RunError> {
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(self.unsafe_entry("whiteout of an invalid name"));
        }
        let dir = match resolve_in_root(self.root, parent_rel, Walk::Lookup)
            .map_err(|e| self.resolve_err(e))?
        {
            Some(dir) if dir.is_dir() => dir,
            _ => return Ok(()), // nothing below to hide
        };
        if hidden == b".wh..opq" {
            clear_opaque(&dir, written).map_err(|e| RunError::io("clearing", &dir, e))?;
        } else if hidden.starts_with(b".wh.") {
            // Other AUFS metadata (.wh..wh.plnk, …): not part of the tree.
        } else {
            let target = dir.join(OsStr::from_bytes(hidden));
            if !written.contains(&target) {
                remove_any(&target).map_err(|e| RunError::io("removing", &target, e))?;
            }
        }
        Ok(())
    }

    /// Writes the entry at `target`; `false` for kinds that are skipped.
    fn apply<R: io::Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        target: &Path,
        dir_modes: &mut BTreeMap<PathBuf, u32>,
        budget: &mut Budget,
    ) -> Result<bool, RunError> {
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.read_err(e))? & 0o7777;
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
        let replace = |t: &Path| remove_any(t).map_err(|e| RunError::io("replacing", t, e));
        use tar::EntryType as T;
        match header.entry_type() {
            T::Directory => {
                match fs::symlink_metadata(target) {
                    Ok(md) if md.is_dir() => {}
                    Ok(_) => {
                        replace(target)?;
                        make_dir(target)?;
                    }
                    Err(_) => make_dir(target)?,
                }
                chown(target)?;
                dir_modes.insert(target.to_path_buf(), mode);
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                // The header's size (a sparse file's logical size) is judged before any byte
                // is written: a 1 KiB layer may declare 20 GiB of holes.
                if entry.size() > budget.bytes {
                    return Err(RunError::DeclaredTooLarge {
                        layer: self.layer.to_path_buf(),
                        entry: self.shown.clone(),
                        size: entry.size(),
                        limit: budget.limits.max_bytes,
                    });
                }
                let out =
                    write_new_file(target, entry, &mut budget.bytes).map_err(|e| match e {
                        WriteFail::OverBudget => budget.exceeded("bytes"),
                        WriteFail::Io(action, e) => RunError::io(action, target, e),
                    })?;
                // Owner first: chown clears setuid bits, the mode below sets them back.
                chown(target)?;
                // Exactly the archive's bits, whatever the umask.
                out.set_permissions(fs::Permissions::from_mode(mode))
                    .map_err(|e| RunError::io("setting the mode of", target, e))?;
            }
            T::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| self.read_err(e))?
                    .filter(|l| !l.as_os_str().is_empty())
                    .ok_or_else(|| self.unsafe_entry("symlink without a target"))?;
                replace(target)?;
                // Stored verbatim: its meaning is decided inside the root when it is used.
                std::os::unix::fs::symlink(&link, target)
                    .map_err(|e| RunError::io("creating symlink", target, e))?;
                chown(target)?;
            }
            T::Link => self.hard_link(entry, target)?,
            T::Fifo => {
                replace(target)?;
                nix::unistd::mkfifo(target, nix::sys::stat::Mode::from_bits_truncate(mode))
                    .map_err(|e| RunError::io("creating fifo", target, io::Error::from(e)))?;
                // mkfifo masks the mode with the umask: the archive's bits, exactly.
                fs::set_permissions(target, fs::Permissions::from_mode(mode))
                    .map_err(|e| RunError::io("setting the mode of", target, e))?;
            }
            // Device nodes: skipped (see the module docs). Anything else is metadata the tar
            // reader has already consumed or that has no place in a tree.
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// A hard link to an existing non-directory of the root, resolved by the same rules.
    fn hard_link<R: io::Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        target: &Path,
    ) -> Result<(), RunError> {
        let link = entry
            .link_name()
            .map_err(|e| self.read_err(e))?
            .ok_or_else(|| self.unsafe_entry("hard link without a target"))?
            .into_owned();
        let link_names = safe_components(&link)
            .map_err(|r| self.unsafe_entry(&format!("hard link target {link:?}: {r}")))?;
        if link_names.is_empty() {
            return Err(self.unsafe_entry("hard link to the root"));
        }
        let missing =
            || self.unsafe_entry(&format!("hard link target {link:?} is not in the image"));
        let source = entry_in_root(self.root, &link_names)
            .map_err(|e| self.resolve_err(e))?
            .ok_or_else(missing)?;
        match fs::symlink_metadata(&source) {
            Ok(md) if md.is_dir() => return Err(self.unsafe_entry("hard link to a directory")),
            Ok(_) => {}
            Err(_) => return Err(missing()),
        }
        if source != target {
            remove_any(target).map_err(|e| RunError::io("replacing", target, e))?;
            // linkat without AT_SYMLINK_FOLLOW: links the entry itself, even a symlink.
            fs::hard_link(&source, target)
                .map_err(|e| RunError::io("creating hard link", target, e))?;
        }
        Ok(())
    }
}

/// Where the entry `names` (its path's components) lives in `root`: its parent resolved by
/// the root's rules, its own name not followed; `None` when the parent is not a folder there.
pub(crate) fn entry_in_root(
    root: &Path,
    names: &[&OsStr],
) -> Result<Option<PathBuf>, ResolveError> {
    let Some((name, parents)) = names.split_last() else {
        return Ok(None);
    };
    let parent_rel: PathBuf = parents.iter().collect();
    Ok(resolve_in_root(root, &parent_rel, Walk::Lookup)?
        .filter(|p| p.is_dir())
        .map(|p| p.join(name)))
}

/// Why [`write_new_file`] stopped.
pub(crate) enum WriteFail {
    Io(&'static str, io::Error),
    /// The data is longer than what was left of the byte budget.
    OverBudget,
}

/// Replaces whatever is at `target` (never followed) by a new regular file holding `data`,
/// created with `O_EXCL|O_NOFOLLOW` and mode 0600 (the caller sets the final mode), so a link
/// left there cannot carry the write elsewhere. At most `*budget` bytes, counted as read (a
/// sparse tar entry at its logical size) and taken off the budget. Written sparse: blocks of
/// zeros (a sparse entry's holes, as the tar reader gives them) are skipped, not written.
pub(crate) fn write_new_file(
    target: &Path,
    data: &mut impl io::Read,
    budget: &mut u64,
) -> Result<fs::File, WriteFail> {
    remove_any(target).map_err(|e| WriteFail::Io("replacing", e))?;
    let mut out = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(target)
        .map_err(|e| WriteFail::Io("creating", e))?;
    let copied = copy_sparse(&mut data.take(*budget + 1), &mut out)?;
    *budget = budget.checked_sub(copied).ok_or(WriteFail::OverBudget)?;
    Ok(out)
}

/// The file system's block: a block of zeros skipped is a block not allocated.
const SPARSE_BLOCK: usize = 4096;
const ZEROS: [u8; SPARSE_BLOCK] = [0; SPARSE_BLOCK];

/// Copies `data` into the new, empty `out`, seeking over blocks of zeros instead of writing
/// them (the length is set at the end, so trailing zeros stay a hole too). Returns the length.
fn copy_sparse(data: &mut impl io::Read, out: &mut fs::File) -> Result<u64, WriteFail> {
    use std::io::{Seek as _, Write as _};
    let write = |e| WriteFail::Io("writing", e);
    let mut buf = vec![0u8; 64 * SPARSE_BLOCK];
    let mut total = 0u64;
    loop {
        // Fill the buffer whole (a short read mid-stream would shift the block boundaries).
        let mut filled = 0;
        while filled < buf.len() {
            match data.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(write(e)),
            }
        }
        if filled == 0 {
            break;
        }
        for block in buf[..filled].chunks(SPARSE_BLOCK) {
            // A slice comparison (memcmp): fast even unoptimised, on every byte of a layer.
            if block == &ZEROS[..block.len()] {
                out.seek(io::SeekFrom::Current(block.len() as i64))
                    .map_err(write)?;
            } else {
                out.write_all(block).map_err(write)?;
            }
            total += block.len() as u64;
        }
        if filled < buf.len() {
            break;
        }
    }
    out.set_len(total).map_err(write)?;
    Ok(total)
}

fn make_dir(path: &Path) -> Result<(), RunError> {
    make_dir_0755(path).map_err(|e| RunError::io("creating", path, e))
}

/// Creates the directory `path` with mode 0755 exactly: `mkdir` masks the mode with the umask,
/// and under `umask 077` a folder the layers only imply (`/home` of `/home/nonroot`) would be
/// 0700 and closed to the image's non-root user. Entries with a mode of their own get it later.
fn make_dir_0755(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(0o755).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
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

#[cfg(test)]
mod bounds_tests {
    //! Hostile layers: bombs, sparse files, tampered or swapped blobs.
    use super::*;
    use crate::digest::Digest;
    use std::io::Write;

    fn gzip(tar: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar).unwrap();
        gz.finish().unwrap()
    }

    /// A one-layer image over `bytes` (as the layout would load it), with the layer's true
    /// digest and size unless `claimed` says otherwise.
    fn image(dir: &Path, bytes: &[u8], claimed: Option<(Digest, u64)>) -> LoadedImage {
        let path = dir.join("layer");
        fs::write(&path, bytes).unwrap();
        let (digest, size) = claimed.unwrap_or((Digest::of_bytes(bytes), bytes.len() as u64));
        let mut loaded = crate::image::layout::tests_support::loaded_image(dir);
        loaded.layers = vec![LocalBlob {
            digest,
            size,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
            path,
        }];
        loaded
    }

    fn unpack_with(img: &LoadedImage, limits: UnpackLimits) -> Result<usize, RunError> {
        let root = img.dir.join("root");
        fs::create_dir(&root).unwrap();
        unpack(img, &root, &limits)
    }

    fn zeros_tar(name: &str, len: u64) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(len);
        h.set_mode(0o644);
        b.append_data(&mut h, name, io::repeat(0).take(len))
            .unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn a_gzip_bomb_is_stopped_at_the_byte_limit() {
        let tmp = tempfile::tempdir().unwrap();
        let bomb = gzip(&zeros_tar("bomb", 64 << 20));
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let img = image(tmp.path(), &bomb, None);
        let limits = UnpackLimits {
            max_bytes: 8 << 20,
            ..UnpackLimits::default()
        };
        match unpack_with(&img, limits) {
            Err(e @ RunError::DeclaredTooLarge { .. }) => {
                assert!(e.to_string().contains("--max-unpack-bytes"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // Its header said 64 MiB: refused before a byte of it was written.
        assert!(!img.dir.join("root/bomb").exists());
    }

    /// A GNU sparse tar of one entry `sparse`: 512 bytes of 7s stored at the end of
    /// `logical` bytes, the rest a hole.
    fn sparse_tar(logical: u64) -> Vec<u8> {
        let mut tar = crate::test_support::sparse::gnu_sparse_entry("sparse", logical);
        tar.extend([0u8; 1024]);
        tar
    }

    #[test]
    fn a_sparse_entry_is_judged_by_its_header_before_a_byte_is_written() {
        // 512 bytes stored, 20 GiB claimed: refused at once (writing the zeros took minutes).
        let layer = gzip(&sparse_tar(20 << 30));
        assert!(layer.len() < 200, "{}", layer.len());
        let tmp = tempfile::tempdir().unwrap();
        let img = image(tmp.path(), &layer, None);
        let started = std::time::Instant::now();
        let e = unpack_with(&img, UnpackLimits::default()).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert!(
            matches!(e, RunError::DeclaredTooLarge { size, limit, .. } if size == 20 << 30 && limit == 16 << 30),
            "{e:?}"
        );
        let shown = e.to_string();
        assert!(
            shown.contains("\"sparse\"") && shown.contains("--max-unpack-bytes"),
            "{shown}"
        );
        assert!(!img.dir.join("root/sparse").exists(), "nothing was written");
    }

    #[test]
    fn a_sparse_entry_within_the_limit_is_written_sparse() {
        let logical: u64 = 1 << 30;
        let tmp = tempfile::tempdir().unwrap();
        let img = image(tmp.path(), &gzip(&sparse_tar(logical)), None);
        unpack_with(&img, UnpackLimits::default()).unwrap();
        let path = img.dir.join("root/sparse");
        let md = fs::metadata(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(md.len(), logical);
        // The 512 bytes of data take a block or a few; the GiB of hole none.
        assert!(md.blocks() * 512 < 1 << 20, "{} blocks", md.blocks());
        let mut f = fs::File::open(&path).unwrap();
        use std::io::{Seek, SeekFrom};
        let mut head = vec![1u8; 4096];
        f.read_exact(&mut head).unwrap();
        assert!(head.iter().all(|&b| b == 0));
        f.seek(SeekFrom::Start(logical - 1024)).unwrap();
        let mut tail = Vec::new();
        f.read_to_end(&mut tail).unwrap();
        assert_eq!(&tail[..512], &[0u8; 512][..]);
        assert_eq!(&tail[512..], &[7u8; 512][..]);
    }

    #[test]
    fn entries_are_limited_across_layers() {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..50 {
            let mut h = tar::Header::new_gnu();
            h.set_size(0);
            h.set_mode(0o644);
            b.append_data(&mut h, format!("f{i}"), io::empty()).unwrap();
        }
        let tmp = tempfile::tempdir().unwrap();
        let img = image(tmp.path(), &gzip(&b.into_inner().unwrap()), None);
        let limits = UnpackLimits {
            max_entries: 20,
            ..UnpackLimits::default()
        };
        assert!(matches!(
            unpack_with(&img, limits),
            Err(RunError::TooLarge {
                what: "entries",
                ..
            })
        ));
    }

    /// Runs this very test again in a child under `umask 077` (the umask is per process and
    /// the other tests run in threads beside this one) and fails with its output.
    fn again_under_umask_077(test: &str) {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new("/bin/sh")
            .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
            .arg(exe)
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env("STATICPACK_TEST_UMASK_CHILD", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran no test: {text}");
    }

    #[test]
    fn modes_are_the_layers_whatever_the_umask() {
        const NAME: &str = "run::unpack::bounds_tests::modes_are_the_layers_whatever_the_umask";
        if std::env::var_os("STATICPACK_TEST_UMASK_CHILD").is_none() {
            return again_under_umask_077(NAME);
        }
        assert_eq!(
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077)).bits(),
            0o077
        );
        // `home/` is only implied by `home/nonroot/`; the root has no `./` entry; a FIFO's mode
        // goes through mkfifo, a file's through open: each is masked by the umask.
        let mut b = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o700);
        dir.set_size(0);
        b.append_data(&mut dir, "home/nonroot/", io::empty())
            .unwrap();
        let mut fifo = tar::Header::new_gnu();
        fifo.set_entry_type(tar::EntryType::Fifo);
        fifo.set_mode(0o644);
        fifo.set_size(0);
        b.append_data(&mut fifo, "run/fifo", io::empty()).unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_mode(0o755);
        file.set_size(2);
        b.append_data(&mut file, "app", &b"hi"[..]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let img = image(tmp.path(), &gzip(&b.into_inner().unwrap()), None);
        unpack_with(&img, UnpackLimits::default()).unwrap();
        let root = img.dir.join("root");
        let mode = |p: &str| {
            fs::symlink_metadata(root.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        };
        assert_eq!(mode(""), 0o755, "the root");
        assert_eq!(mode("home"), 0o755, "an implied directory");
        assert_eq!(mode("home/nonroot"), 0o700);
        assert_eq!(mode("run"), 0o755, "an implied directory");
        assert_eq!(mode("run/fifo"), 0o644);
        assert_eq!(mode("app"), 0o755);

        // A `./` entry gives the root its mode.
        let mut b = tar::Builder::new(Vec::new());
        let mut dot = tar::Header::new_gnu();
        dot.set_entry_type(tar::EntryType::Directory);
        dot.set_mode(0o751);
        dot.set_size(0);
        b.append_data(&mut dot, "./", io::empty()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let img = image(tmp.path(), &gzip(&b.into_inner().unwrap()), None);
        unpack_with(&img, UnpackLimits::default()).unwrap();
        let md = fs::metadata(img.dir.join("root")).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o751);
    }

    #[test]
    fn a_tampered_or_swapped_layer_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let good = gzip(&zeros_tar("app", 1000));
        // Same size, other bytes: the digest catches it.
        let mut evil = gzip(&zeros_tar("ap2", 1000));
        evil.resize(good.len(), 0);
        let img = image(
            tmp.path(),
            &evil,
            Some((Digest::of_bytes(&good), good.len() as u64)),
        );
        let e = unpack_with(&img, UnpackLimits::default()).unwrap_err();
        let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(chain.contains("the content's digest is"), "{chain}");

        // A layer blob that is a symlink to a host file is not followed.
        let tmp = tempfile::tempdir().unwrap();
        let mut img = image(tmp.path(), &good, None);
        fs::remove_file(&img.layers[0].path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &img.layers[0].path).unwrap();
        img.layers[0].size = fs::metadata("/etc/passwd").unwrap().len();
        let e = unpack_with(&img, UnpackLimits::default()).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
