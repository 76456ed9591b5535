//! Unpacking a source archive into a new folder, safely. The path rules are the image
//! unpacker's ([`crate::run`]): entry paths relative without `..`, parents resolved inside the
//! root, existing entries replaced and never written through. A source tree is then used on
//! the host, not in a chroot, so links are held tighter: a symlink must be relative and stay
//! inside the root (checked as written and, once all is unpacked, after resolution); a hard
//! link must name a file already unpacked. Device nodes and FIFOs are skipped; owners are
//! ignored and only the permission bits are kept (setuid and setgid dropped).

use super::SourceError;
use crate::confine::Confinement;
use crate::recipe::ArchiveFormat;
use crate::run::unpack::{
    ResolveError, Walk, WriteFail, entry_in_root, resolve_in_root, safe_components, write_new_file,
};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The bounds for a source tree: generous for real projects (the Linux kernel's tarball is
/// ~1.5 GiB in ~90k files, 11 times its size), small against a bomb.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SourceLimits {
    pub max_bytes: u64,
    pub max_entries: u64,
    /// At most this many bytes unpacked per byte of archive (never less than [`RATIO_FLOOR`]
    /// in all): a 14 MB tarball of 3 GiB is a bomb long before the absolute limit. `None` when
    /// the recipe set `max_unpack_bytes`, which then alone bounds the bytes.
    pub max_ratio: Option<u64>,
}

/// What the expansion ratio allows whatever the archive's size: small archives of
/// generated or repetitive sources may expand far more than 100 times.
pub(crate) const RATIO_FLOOR: u64 = 1 << 30;

pub(super) fn default_limits() -> SourceLimits {
    SourceLimits {
        max_bytes: 8 << 30,
        max_entries: 500_000,
        max_ratio: Some(100),
    }
}

/// The limit on bytes that binds for an archive of `size` bytes, and the words for it.
fn bytes_rule(limits: &SourceLimits, size: u64) -> (u64, String) {
    const RAISE: &str = "if the archive is trusted, set a limit of your own with max_unpack_bytes";
    match limits.max_ratio {
        Some(ratio) if size.saturating_mul(ratio).max(RATIO_FLOOR) < limits.max_bytes => (
            size.saturating_mul(ratio).max(RATIO_FLOOR),
            format!(
                "the expansion limit for a source archive ({ratio} times its size of {size} bytes, at least {RATIO_FLOOR}); {RAISE} = \"8G\" (for example) in build.source"
            ),
        ),
        Some(_) => (
            limits.max_bytes,
            format!(
                "the limit for a source archive; {RAISE} = \"{}G\" (for example) in build.source",
                (limits.max_bytes >> 30).max(1) * 2
            ),
        ),
        None => (
            limits.max_bytes,
            "the limit the recipe sets with build.source.max_unpack_bytes; raise it there if the archive is trusted".to_owned(),
        ),
    }
}

/// Unpacks `file` into the new folder `dest`, dropping `strip` leading path components.
pub(super) fn unpack(
    file: &Path,
    format: ArchiveFormat,
    strip: u32,
    dest: &Path,
    limits: &SourceLimits,
) -> Result<(), SourceError> {
    let shown = file.display().to_string();
    fs::create_dir(dest).map_err(|e| SourceError::io("creating", dest, e))?;
    let root = fs::canonicalize(dest).map_err(|e| SourceError::io("opening", dest, e))?;
    let input = fs::File::open(file).map_err(|e| SourceError::io("opening", file, e))?;
    let size = input
        .metadata()
        .map_err(|e| SourceError::io("inspecting", file, e))?
        .len();
    let (max_bytes, bytes_rule) = bytes_rule(limits, size);
    let buffered = io::BufReader::new(input);
    let decoded: Box<dyn Read> = match format {
        ArchiveFormat::Tar => Box::new(buffered),
        ArchiveFormat::TarGz => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        ArchiveFormat::TarXz => Box::new(lzma_rust2::XzReader::new(buffered, true)),
        ArchiveFormat::TarBz2 => Box::new(bzip2::read::MultiBzDecoder::new(buffered)),
    };
    let mut unpacker = Unpacker {
        archive: &shown,
        root: &root,
        strip: strip as usize,
        bytes: max_bytes,
        entries: limits.max_entries,
        max_bytes,
        bytes_rule,
        max_entries: limits.max_entries,
        written: 0,
    };
    unpacker.entries(tar::Archive::new(decoded))?;
    if unpacker.written == 0 {
        return Err(SourceError::Empty {
            archive: shown,
            strip,
        });
    }
    // A chain of links can leave the root although each stays inside as written.
    let confinement =
        Confinement::new(&root, &[]).map_err(|e| SourceError::Layout(e.to_string()))?;
    if let Some(escape) = confinement.first_escaping_link(&root) {
        return Err(SourceError::UnsafeEntry {
            archive: shown,
            entry: match &escape {
                crate::confine::Escape::Outside { path, .. }
                | crate::confine::Escape::Unresolvable { path, .. } => path
                    .strip_prefix(&root)
                    .unwrap_or(path)
                    .display()
                    .to_string(),
            },
            reason: "a symlink that resolves outside the source folder".into(),
        });
    }
    Ok(())
}

struct Unpacker<'a> {
    archive: &'a str,
    root: &'a Path,
    strip: usize,
    /// What is left of the limits.
    bytes: u64,
    entries: u64,
    /// The byte limit that binds, and the words for it.
    max_bytes: u64,
    bytes_rule: String,
    max_entries: u64,
    /// Entries written (after stripping).
    written: u64,
}

impl Unpacker<'_> {
    fn read_err(&self, e: io::Error) -> SourceError {
        SourceError::io("reading the archive", Path::new(self.archive), e)
    }

    fn too_large(&self, what: &'static str, declared: String) -> SourceError {
        let (limit, rule) = match what {
            "bytes" => (self.max_bytes, self.bytes_rule.clone()),
            _ => (
                self.max_entries,
                "the limit for a source archive".to_owned(),
            ),
        };
        SourceError::TooLarge {
            archive: self.archive.to_owned(),
            what,
            limit,
            declared,
            rule,
        }
    }

    fn entries<R: Read>(&mut self, mut archive: tar::Archive<R>) -> Result<(), SourceError> {
        for entry in archive.entries().map_err(|e| self.read_err(e))? {
            let mut entry = entry.map_err(|e| self.read_err(e))?;
            self.entries = self
                .entries
                .checked_sub(1)
                .ok_or_else(|| self.too_large("entries", String::new()))?;
            let raw_path = entry.path().map_err(|e| self.read_err(e))?.into_owned();
            self.entry(&mut entry, &raw_path)?;
        }
        Ok(())
    }

    fn entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        raw_path: &Path,
    ) -> Result<(), SourceError> {
        let unsafe_entry = |reason: &str| SourceError::UnsafeEntry {
            archive: self.archive.to_owned(),
            entry: raw_path.to_string_lossy().into_owned(),
            reason: reason.to_owned(),
        };
        let names = safe_components(raw_path).map_err(unsafe_entry)?;
        // The stripped folders themselves (and files beside them, as GNU tar does).
        let Some(kept) = names.get(self.strip..).filter(|n| !n.is_empty()) else {
            return Ok(());
        };
        let Some((name, parents)) = kept.split_last() else {
            return Ok(());
        };
        let resolve_err = |e: ResolveError| match std::error::Error::source(&e) {
            Some(cause) => unsafe_entry(&format!("{e}: {cause}")),
            None => unsafe_entry(&e.to_string()),
        };
        let parent_rel: PathBuf = parents.iter().collect();
        let parent = resolve_in_root(self.root, &parent_rel, Walk::MakeDirs)
            .map_err(resolve_err)?
            .unwrap_or_else(|| self.root.to_path_buf());
        let target = parent.join(name);
        let header = entry.header();
        let mode = header.mode().map_err(|e| self.read_err(e))? & 0o777;
        use tar::EntryType as T;
        match header.entry_type() {
            T::Directory => match fs::symlink_metadata(&target) {
                Ok(md) if md.is_dir() => {}
                found => {
                    if found.is_ok() {
                        remove_any(&target)?;
                    }
                    fs::create_dir(&target).map_err(|e| SourceError::io("creating", &target, e))?;
                }
            },
            T::Regular | T::Continuous | T::GNUSparse => {
                // Judged by its header before a byte is written (a sparse file at its full
                // size): what it declares is what it would write.
                if entry.size() > self.bytes {
                    return Err(self.too_large(
                        "bytes",
                        format!(
                            " (entry {:?} declares {} bytes where {} are left)",
                            raw_path.to_string_lossy(),
                            entry.size(),
                            self.bytes
                        ),
                    ));
                }
                let out = write_new_file(&target, entry, &mut self.bytes).map_err(|e| match e {
                    WriteFail::OverBudget => self.too_large("bytes", String::new()),
                    WriteFail::Io(action, e) => SourceError::io(action, &target, e),
                })?;
                // The owner may always read and write what it unpacked (to clean it up).
                out.set_permissions(fs::Permissions::from_mode(mode | 0o600))
                    .map_err(|e| SourceError::io("setting the mode of", &target, e))?;
            }
            T::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| self.read_err(e))?
                    .filter(|l| !l.as_os_str().is_empty())
                    .ok_or_else(|| unsafe_entry("symlink without a target"))?
                    .into_owned();
                if !stays_inside(parents.len(), &link) {
                    return Err(unsafe_entry(&format!(
                        "symlink to {} leaves the source folder",
                        link.display()
                    )));
                }
                remove_any(&target)?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| SourceError::io("creating symlink", &target, e))?;
            }
            T::Link => {
                let link = entry
                    .link_name()
                    .map_err(|e| self.read_err(e))?
                    .ok_or_else(|| unsafe_entry("hard link without a target"))?
                    .into_owned();
                let link_names = safe_components(&link)
                    .map_err(|r| unsafe_entry(&format!("hard link to {}: {r}", link.display())))?;
                let missing = || {
                    unsafe_entry(&format!(
                        "hard link to {}, which is not in the source folder",
                        link.display()
                    ))
                };
                let kept = link_names.get(self.strip..).unwrap_or_default();
                let source = entry_in_root(self.root, kept)
                    .map_err(resolve_err)?
                    .ok_or_else(missing)?;
                match fs::symlink_metadata(&source) {
                    Ok(md) if md.is_file() => {}
                    _ => return Err(missing()),
                }
                if source != target {
                    remove_any(&target)?;
                    fs::hard_link(&source, &target)
                        .map_err(|e| SourceError::io("creating hard link", &target, e))?;
                }
            }
            // Devices, FIFOs: nothing a build reads. Other kinds are metadata the tar reader
            // has consumed.
            _ => return Ok(()),
        }
        self.written += 1;
        Ok(())
    }
}

/// Whether a relative symlink target, read from a folder `depth` levels below the root, stays
/// inside the root as written.
fn stays_inside(depth: usize, link: &Path) -> bool {
    let mut depth = depth;
    for c in link.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Removes whatever is at `path`, never following a symlink.
fn remove_any(path: &Path) -> Result<(), SourceError> {
    crate::run::unpack::remove_any(path).map_err(|e| SourceError::io("replacing", path, e))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Write as _;

    /// One entry as a hostile archive would write it: the name goes into the header as bytes,
    /// unchecked (the tar crate's builder refuses `..`).
    pub(crate) fn raw(
        tar: &mut Vec<u8>,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        tar.extend_from_slice(h.as_bytes());
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }

    pub(crate) fn file(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
        raw(tar, name, tar::EntryType::Regular, "", data);
    }

    pub(crate) fn finish(mut tar: Vec<u8>) -> Vec<u8> {
        tar.extend([0u8; 1024]);
        tar
    }

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// Unpacks `archive` (of `format`) into `<tmp>/src`.
    fn unpack_bytes(
        tmp: &Path,
        archive: &[u8],
        format: ArchiveFormat,
        strip: u32,
        limits: SourceLimits,
    ) -> Result<PathBuf, SourceError> {
        let file = tmp.join("archive");
        fs::write(&file, archive).unwrap();
        let dest = tmp.join("src");
        unpack(&file, format, strip, &dest, &limits).map(|()| dest)
    }

    fn refused(entries: &[(&str, tar::EntryType, &str)], reason: &str) {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("t");
        fs::create_dir(&outside).unwrap();
        let mut tar = Vec::new();
        for (name, kind, link) in entries {
            raw(&mut tar, name, *kind, link, b"");
        }
        let e = unpack_bytes(
            tmp.path(),
            &finish(tar),
            ArchiveFormat::Tar,
            1,
            default_limits(),
        )
        .unwrap_err();
        assert!(
            matches!(e, SourceError::UnsafeEntry { .. }) && e.to_string().contains(reason),
            "{entries:?}: {e}"
        );
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "wrote outside"
        );
    }

    #[test]
    fn strip_components_drops_the_top_folder() {
        let mut tar = Vec::new();
        raw(&mut tar, "proj-1.0/", tar::EntryType::Directory, "", b"");
        file(&mut tar, "proj-1.0/hello.c", b"int main;");
        file(&mut tar, "proj-1.0/sub/x.h", b"#define X");
        file(
            &mut tar,
            "pax_global_header_like_file",
            b"beside the folder",
        );
        raw(
            &mut tar,
            "proj-1.0/h.c",
            tar::EntryType::Link,
            "proj-1.0/hello.c",
            b"",
        );
        raw(
            &mut tar,
            "proj-1.0/l.c",
            tar::EntryType::Symlink,
            "sub/../hello.c",
            b"",
        );
        raw(&mut tar, "proj-1.0/null", tar::EntryType::Char, "", b"");
        let tar = finish(tar);
        let tmp = tempfile::tempdir().unwrap();
        let dest = unpack_bytes(
            tmp.path(),
            &gzip(&tar),
            ArchiveFormat::TarGz,
            1,
            default_limits(),
        )
        .unwrap();
        assert_eq!(fs::read(dest.join("hello.c")).unwrap(), b"int main;");
        assert_eq!(fs::read(dest.join("sub/x.h")).unwrap(), b"#define X");
        assert_eq!(fs::read(dest.join("h.c")).unwrap(), b"int main;");
        assert_eq!(fs::read(dest.join("l.c")).unwrap(), b"int main;");
        assert!(!dest.join("pax_global_header_like_file").exists());
        assert!(!dest.join("null").exists(), "device nodes are skipped");

        let tmp = tempfile::tempdir().unwrap();
        let dest = unpack_bytes(tmp.path(), &tar, ArchiveFormat::Tar, 0, default_limits()).unwrap();
        assert!(dest.join("proj-1.0/hello.c").is_file());

        let tmp = tempfile::tempdir().unwrap();
        let e =
            unpack_bytes(tmp.path(), &tar, ArchiveFormat::Tar, 3, default_limits()).unwrap_err();
        assert!(matches!(e, SourceError::Empty { strip: 3, .. }), "{e}");
    }

    #[test]
    fn paths_and_links_outside_the_folder_are_refused() {
        use tar::EntryType as T;
        refused(&[("p/../../t/evil", T::Regular, "")], "'..' component");
        refused(&[("/t/evil", T::Regular, "")], "absolute path");
        refused(
            &[("p/link", T::Symlink, "/etc")],
            "leaves the source folder",
        );
        refused(
            &[("p/a/link", T::Symlink, "../../t")],
            "leaves the source folder",
        );
        // Each link stays inside as written; resolved, the second leaves.
        refused(
            &[
                ("p/a/b/", T::Directory, ""),
                ("p/t/", T::Directory, ""),
                ("p/a/b/s", T::Symlink, "../../t"),
                ("p/a/b/l", T::Symlink, "s/../../.."),
            ],
            "resolves outside",
        );
        refused(
            &[("p/h", T::Link, "/etc/passwd")],
            "hard link to /etc/passwd",
        );
        refused(&[("p/h", T::Link, "p/../../t/x")], "'..' component");
        refused(&[("p/h", T::Link, "p/missing")], "not in the source folder");
        refused(
            &[("p/d/", T::Directory, ""), ("p/h", T::Link, "p/d")],
            "not in the source folder",
        );
    }

    #[test]
    fn a_write_through_a_symlinked_folder_stays_inside() {
        // `d -> .` then `d/x`: resolved in the root, never on the host's side of the link.
        let mut tar = Vec::new();
        raw(&mut tar, "p/d", tar::EntryType::Symlink, ".", b"");
        file(&mut tar, "p/d/x", b"inside");
        let tmp = tempfile::tempdir().unwrap();
        let dest = unpack_bytes(
            tmp.path(),
            &finish(tar),
            ArchiveFormat::Tar,
            1,
            default_limits(),
        )
        .unwrap();
        assert_eq!(fs::read(dest.join("x")).unwrap(), b"inside");
    }

    #[test]
    fn a_bomb_is_stopped_at_the_limits() {
        let mut tar = Vec::new();
        file(&mut tar, "p/big", &vec![0u8; 64 << 10]);
        let tar = finish(tar);
        let tmp = tempfile::tempdir().unwrap();
        let limits = SourceLimits {
            max_bytes: 1 << 10,
            max_entries: 10,
            max_ratio: None,
        };
        let e = unpack_bytes(tmp.path(), &gzip(&tar), ArchiveFormat::TarGz, 1, limits).unwrap_err();
        assert!(
            matches!(e, SourceError::TooLarge { what: "bytes", .. }),
            "{e}"
        );
        let mut many = Vec::new();
        for i in 0..20 {
            file(&mut many, &format!("p/f{i}"), b"");
        }
        let tmp = tempfile::tempdir().unwrap();
        let e = unpack_bytes(tmp.path(), &finish(many), ArchiveFormat::Tar, 1, limits).unwrap_err();
        assert!(
            matches!(
                e,
                SourceError::TooLarge {
                    what: "entries",
                    ..
                }
            ),
            "{e}"
        );
    }

    /// `p/hello.c`, then `p/zeros`: a GNU sparse entry of `logical` bytes (a hole, then 512
    /// bytes of 7s), a tar of a few KiB whatever it declares.
    pub(crate) fn sparse_archive(logical: u64) -> Vec<u8> {
        let mut tar = Vec::new();
        file(&mut tar, "p/hello.c", b"int main;");
        tar.extend(crate::test_support::sparse::gnu_sparse_entry(
            "p/zeros", logical,
        ));
        finish(tar)
    }

    #[test]
    fn an_archive_is_judged_by_its_headers_and_its_expansion_ratio() {
        // 3 GiB declared in a gzip of ~200 bytes: past 100 times its size (and the 1 GiB
        // floor), well under the absolute 8 GiB. Refused before the entry is written.
        let bytes = gzip(&sparse_archive(3 << 30));
        let tmp = tempfile::tempdir().unwrap();
        let started = std::time::Instant::now();
        let e = unpack_bytes(
            tmp.path(),
            &bytes,
            ArchiveFormat::TarGz,
            1,
            default_limits(),
        )
        .unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let shown = e.to_string();
        assert!(
            matches!(e, SourceError::TooLarge { what: "bytes", limit, .. } if limit == RATIO_FLOOR),
            "{shown}"
        );
        for part in [
            "\"p/zeros\" declares 3221225472 bytes",
            "expansion limit",
            "100 times its size",
            "max_unpack_bytes",
        ] {
            assert!(shown.contains(part), "{part:?} in {shown}");
        }
        assert!(
            !tmp.path().join("src/zeros").exists(),
            "nothing half-written"
        );

        // The absolute limit, when it binds first, is named as such.
        let tmp = tempfile::tempdir().unwrap();
        let limits = SourceLimits {
            max_bytes: 1 << 20,
            ..default_limits()
        };
        let e = unpack_bytes(tmp.path(), &bytes, ArchiveFormat::TarGz, 1, limits).unwrap_err();
        assert!(
            e.to_string().contains("the limit for a source archive"),
            "{e}"
        );

        // The recipe's own limit (no ratio) lets it through, written sparse.
        let tmp = tempfile::tempdir().unwrap();
        let limits = SourceLimits {
            max_bytes: 4 << 30,
            max_ratio: None,
            ..default_limits()
        };
        let dest = unpack_bytes(tmp.path(), &bytes, ArchiveFormat::TarGz, 1, limits).unwrap();
        use std::os::unix::fs::MetadataExt;
        let md = fs::metadata(dest.join("zeros")).unwrap();
        assert_eq!(md.len(), 3 << 30);
        assert!(md.blocks() * 512 < 1 << 20, "{} blocks", md.blocks());
    }

    #[test]
    fn xz_and_bzip2_archives_unpack() {
        let mut tar = Vec::new();
        file(&mut tar, "p/a.c", b"int a;");
        let tar = finish(tar);
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        bz.write_all(&tar).unwrap();
        let bz = bz.finish().unwrap();
        let mut xz =
            lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
        xz.write_all(&tar).unwrap();
        let xz = xz.finish().unwrap();
        for (bytes, format) in [(bz, ArchiveFormat::TarBz2), (xz, ArchiveFormat::TarXz)] {
            let tmp = tempfile::tempdir().unwrap();
            let dest = unpack_bytes(tmp.path(), &bytes, format, 1, default_limits()).unwrap();
            assert_eq!(fs::read(dest.join("a.c")).unwrap(), b"int a;", "{format:?}");
        }
        // Garbage is an error, not a panic.
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            unpack_bytes(
                tmp.path(),
                b"not xz",
                ArchiveFormat::TarXz,
                1,
                default_limits()
            )
            .is_err()
        );
    }
}
