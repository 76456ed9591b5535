//! One layer: entries → deterministic tar → gzip → blob, hashed in one streaming pass.
//!
//! tar bytes → HashingWriter (diff_id) → ParGzEncoder (parallel, thread-count independent) →
//! HashingWriter (digest) → temp file in the blobs folder, renamed to its digest. Nothing is
//! buffered whole (a few MiB in flight) and no input is copied first.

use super::{ImageError, io_err};
use crate::digest::{Digest, HashingWriter};
use crate::fsio::IoError;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Fixed so the compressed bytes (and so the digest) depend only on the content.
const GZIP_LEVEL: i32 = 6;
/// Fixed like the gzip level.
const ZSTD_LEVEL: i32 = 3;

/// How layers are compressed: the recipe's `[image] compression`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    #[default]
    Gzip,
    Zstd,
}

impl LayerCompression {
    pub fn media_type(self) -> oci_spec::image::MediaType {
        match self {
            LayerCompression::Gzip => oci_spec::image::MediaType::ImageLayerGzip,
            LayerCompression::Zstd => oci_spec::image::MediaType::ImageLayerZstd,
        }
    }
}

/// How a layer's tar is stored, by its media type: what readers of images accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerFormat {
    Tar,
    Gzip,
    Zstd,
}

impl LayerFormat {
    /// The media types read here, as a list for messages.
    pub const SUPPORTED: &str = "plain, gzip- or zstd-compressed tar layers";

    pub fn of_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(LayerFormat::Gzip)
            }
            "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd" => {
                Some(LayerFormat::Zstd)
            }
            "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar" => Some(LayerFormat::Tar),
            _ => None,
        }
    }

    /// The tar stream inside `blob`.
    pub fn decoder<'a, R: io::BufRead + 'a>(self, blob: R) -> io::Result<Box<dyn io::Read + 'a>> {
        Ok(match self {
            LayerFormat::Tar => Box::new(blob),
            // Multi-member: other tools' layers may be several gzip members back to back.
            LayerFormat::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(blob)),
            LayerFormat::Zstd => Box::new(zstd::Decoder::with_buffer(blob)?),
        })
    }
}

/// zstd workers: one per core. Any count ≥ 1 gives the same bytes, but 0 (single-threaded mode)
/// gives different ones, so it is never 0.
fn zstd_workers() -> u32 {
    std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
        .max(1)
}

/// A zstd frame: level 3, no checksum, no content size (the stream's length is not known
/// upfront); `workers` ≥ 1.
fn zstd_encoder<W: Write>(out: W, workers: u32) -> io::Result<zstd::Encoder<'static, W>> {
    let mut z = zstd::Encoder::new(out, ZSTD_LEVEL)?;
    z.multithread(workers.max(1))?;
    z.include_checksum(false)?;
    z.include_contentsize(false)?;
    Ok(z)
}

#[derive(Clone, Debug)]
pub enum FileSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Clone, Debug)]
pub enum EntryKind {
    Dir,
    File(FileSource),
    Symlink(String),
}

#[derive(Clone, Debug)]
pub struct LayerEntry {
    /// Path inside the image, relative ("etc/passwd", no leading slash, no "..").
    pub path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub kind: EntryKind,
}

#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub entries: Vec<LayerEntry>,
    /// SOURCE_DATE_EPOCH: the mtime of every entry.
    pub mtime: u64,
    /// What the layer is, for the config's history (`created_by`).
    pub comment: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerBlob {
    /// sha256 of the compressed blob (the manifest's layer digest).
    pub digest: Digest,
    /// sha256 of the uncompressed tar (the config's rootfs.diff_ids).
    pub diff_id: Digest,
    /// Compressed size in bytes.
    pub size: u64,
    pub comment: String,
    pub compression: LayerCompression,
}

fn bad(path: &str, reason: impl Into<String>) -> ImageError {
    ImageError::BadEntry {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Checks a layer path: relative, no empty, "." or ".." parts, no NUL.
pub(crate) fn check_path(path: &str) -> Result<(), ImageError> {
    if path.is_empty() {
        return Err(bad(path, "empty path"));
    }
    if path.starts_with('/') {
        return Err(bad(path, "must be relative (no leading '/')"));
    }
    if path.contains('\0') {
        return Err(bad(path, "contains a NUL byte"));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(bad(path, "empty, '.' or '..' component"));
    }
    Ok(())
}

/// The entries in tar order: validated, parents added (0755, root), sorted by path so parents
/// come before children.
pub(crate) fn normalized_entries(spec: &LayerSpec) -> Result<Vec<LayerEntry>, ImageError> {
    let mut by_path: BTreeMap<String, LayerEntry> = BTreeMap::new();
    for e in &spec.entries {
        check_path(&e.path)?;
        if by_path.insert(e.path.clone(), e.clone()).is_some() {
            return Err(bad(&e.path, "listed twice in one layer"));
        }
    }
    let parents: Vec<String> = by_path
        .keys()
        .flat_map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |n| parts[..n].join("/"))
        })
        .collect();
    for parent in parents {
        match by_path.get(&parent) {
            Some(e) if !matches!(e.kind, EntryKind::Dir) => {
                return Err(bad(
                    &parent,
                    "is a parent folder of other entries but not a directory",
                ));
            }
            Some(_) => {}
            None => {
                by_path.insert(
                    parent.clone(),
                    LayerEntry {
                        path: parent,
                        mode: 0o755,
                        uid: 0,
                        gid: 0,
                        kind: EntryKind::Dir,
                    },
                );
            }
        }
    }
    // BTreeMap order is byte order, where "a" < "a/b" < "a0": every parent precedes its children.
    Ok(by_path.into_values().collect())
}

/// Writes the layer's tar stream into `out`; returns `out` when done.
pub(crate) fn write_tar<W: Write>(spec: &LayerSpec, out: W) -> Result<W, ImageError> {
    let entries = normalized_entries(spec)?;
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Deterministic);
    builder.follow_symlinks(false);
    for e in &entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(e.mode & 0o7777);
        h.set_uid(u64::from(e.uid));
        h.set_gid(u64::from(e.gid));
        h.set_mtime(spec.mtime);
        // Deterministic headers: no user or group names.
        let _ = h.set_username("");
        let _ = h.set_groupname("");
        let tar_err = |source: io::Error| {
            ImageError::from(IoError::new(
                "writing tar entry",
                PathBuf::from(&e.path),
                source,
            ))
        };
        match &e.kind {
            EntryKind::Dir => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                builder
                    .append_data(&mut h, format!("{}/", e.path), io::empty())
                    .map_err(tar_err)?;
            }
            EntryKind::Symlink(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                builder
                    .append_link(&mut h, &e.path, target)
                    .map_err(tar_err)?;
            }
            EntryKind::File(FileSource::Bytes(bytes)) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(bytes.len() as u64);
                builder
                    .append_data(&mut h, &e.path, bytes.as_slice())
                    .map_err(tar_err)?;
            }
            EntryKind::File(FileSource::Path(src)) => {
                let file = std::fs::File::open(src).map_err(io_err("opening", src))?;
                let meta = file
                    .metadata()
                    .map_err(io_err("reading metadata of", src))?;
                if !meta.is_file() {
                    return Err(bad(
                        &e.path,
                        format!("{} is not a regular file", src.display()),
                    ));
                }
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(meta.len());
                builder
                    .append_data(&mut h, &e.path, file)
                    .map_err(tar_err)?;
            }
        }
    }
    builder.into_inner().map_err(|source| {
        ImageError::from(IoError::new(
            "finishing the tar stream of",
            PathBuf::from(&spec.comment),
            source,
        ))
    })
}

/// Streams the layer into `blobs_dir` (the layout's blobs/sha256) as gzip and returns its
/// digests.
pub fn write_layer(spec: &LayerSpec, blobs_dir: &Path) -> Result<LayerBlob, ImageError> {
    write_layer_as(spec, blobs_dir, LayerCompression::Gzip)
}

/// Streams the layer into `blobs_dir` compressed as asked and returns its digests.
pub fn write_layer_as(
    spec: &LayerSpec,
    blobs_dir: &Path,
    compression: LayerCompression,
) -> Result<LayerBlob, ImageError> {
    write_layer_with(spec, blobs_dir, compression, zstd_workers())
}

fn write_layer_with(
    spec: &LayerSpec,
    blobs_dir: &Path,
    compression: LayerCompression,
    zstd_workers: u32,
) -> Result<LayerBlob, ImageError> {
    let compressed = super::blob::BlobWriter::new(blobs_dir)?;
    let failed = || io_err("compressing a layer in", blobs_dir);
    let (diff_id, compressed) = match compression {
        LayerCompression::Gzip => {
            let gz = super::pgzip::ParGzEncoder::new(compressed, GZIP_LEVEL).map_err(failed())?;
            let (gz, diff_id, _) = write_tar(spec, HashingWriter::new(gz))?.finish();
            (diff_id, gz.finish().map_err(failed())?)
        }
        LayerCompression::Zstd => {
            let z = zstd_encoder(compressed, zstd_workers).map_err(failed())?;
            let (z, diff_id, _) = write_tar(spec, HashingWriter::new(z))?.finish();
            (diff_id, z.finish().map_err(failed())?)
        }
    };
    let (digest, size) = compressed.finish()?;
    Ok(LayerBlob {
        digest,
        diff_id,
        size,
        comment: spec.comment.clone(),
        compression,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn file(path: &str, content: &[u8], mode: u32) -> LayerEntry {
        LayerEntry {
            path: path.into(),
            mode,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Bytes(content.to_vec())),
        }
    }

    fn spec(entries: Vec<LayerEntry>) -> LayerSpec {
        LayerSpec {
            entries,
            mtime: 1_700_000_000,
            comment: "test".into(),
        }
    }

    #[test]
    fn parents_are_added_and_come_first() {
        let s = spec(vec![
            file("usr/bin/hello", b"x", 0o755),
            file("etc/passwd", b"root", 0o644),
            file("a0", b"", 0o644),
        ]);
        let paths: Vec<String> = normalized_entries(&s)
            .unwrap()
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            ["a0", "etc", "etc/passwd", "usr", "usr/bin", "usr/bin/hello"]
        );
    }

    #[test]
    fn bad_paths_and_duplicates_are_refused() {
        for p in ["/abs", "a/../b", "a//b", "./a", "", "a/."] {
            assert!(
                normalized_entries(&spec(vec![file(p, b"", 0o644)])).is_err(),
                "{p:?}"
            );
        }
        assert!(
            normalized_entries(&spec(vec![file("a", b"", 0o644), file("a", b"", 0o644)])).is_err()
        );
        assert!(
            normalized_entries(&spec(vec![file("a", b"", 0o644), file("a/b", b"", 0o644)]))
                .is_err()
        );
    }

    #[test]
    fn same_entries_in_any_order_give_the_same_digest() {
        let d1 = tempfile::tempdir().unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let a = vec![
            file("b", b"2", 0o644),
            file("a/x", b"1", 0o755),
            file("c", b"3", 0o600),
        ];
        let mut b = a.clone();
        b.reverse();
        let l1 = write_layer(&spec(a), d1.path()).unwrap();
        let l2 = write_layer(&spec(b), d2.path()).unwrap();
        assert_eq!(l1, l2);
        assert_eq!(
            std::fs::read(d1.path().join(l1.digest.hex())).unwrap(),
            std::fs::read(d2.path().join(l2.digest.hex())).unwrap()
        );
    }

    #[test]
    fn digests_match_sha256sum_and_the_gunzipped_tar() {
        let d = tempfile::tempdir().unwrap();
        let l = write_layer(
            &spec(vec![file("hello", b"hello world\n", 0o755)]),
            d.path(),
        )
        .unwrap();
        let blob = d.path().join(l.digest.hex());
        let out = std::process::Command::new("sha256sum")
            .arg(&blob)
            .output()
            .unwrap();
        let printed = String::from_utf8(out.stdout).unwrap();
        assert_eq!(printed.split_whitespace().next().unwrap(), l.digest.hex());
        let bytes = std::fs::read(&blob).unwrap();
        assert_eq!(l.size, bytes.len() as u64);
        let mut tar_bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(Digest::of_bytes(&tar_bytes), l.diff_id);
    }

    #[test]
    fn gzip_header_has_no_mtime_and_no_name() {
        let d = tempfile::tempdir().unwrap();
        let l = write_layer(&spec(vec![file("x", b"x", 0o644)]), d.path()).unwrap();
        let bytes = std::fs::read(d.path().join(l.digest.hex())).unwrap();
        assert_eq!(&bytes[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(bytes[3] & 0x08, 0, "FNAME flag set");
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "mtime not zero");
        assert_eq!(bytes[9], 255, "OS byte not 'unknown'");
    }

    #[test]
    fn tar_headers_are_deterministic() {
        let s = LayerSpec {
            entries: vec![
                LayerEntry {
                    path: "tmp".into(),
                    mode: 0o1777,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::Dir,
                },
                LayerEntry {
                    path: "home/nonroot".into(),
                    mode: 0o700,
                    uid: 65532,
                    gid: 65532,
                    kind: EntryKind::Dir,
                },
                LayerEntry {
                    path: "bin/sh".into(),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::Symlink("/app".into()),
                },
                file("app", b"\x7fELF", 0o755),
            ],
            mtime: 42,
            comment: "t".into(),
        };
        let tar_bytes = write_tar(&s, Vec::new()).unwrap();
        let mut archive = tar::Archive::new(tar_bytes.as_slice());
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 42);
            assert_eq!(h.username().unwrap(), Some(""));
            assert_eq!(h.groupname().unwrap(), Some(""));
            seen.push((
                e.path().unwrap().to_string_lossy().into_owned(),
                h.mode().unwrap(),
                h.uid().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("app".to_owned(), 0o755, 0),
                ("bin/".to_owned(), 0o755, 0),
                ("bin/sh".to_owned(), 0o777, 0),
                ("home/".to_owned(), 0o755, 0),
                ("home/nonroot/".to_owned(), 0o700, 65532),
                ("tmp/".to_owned(), 0o1777, 0),
            ]
        );
    }

    #[test]
    fn golden_layer_digest() {
        // Changes only when the tar or gzip bytes change (tar layout, the gzip encoder (libdeflate), its version or level):
        // such a change alters every image digest and must be deliberate.
        let d = tempfile::tempdir().unwrap();
        let l = write_layer(&spec(vec![file("hello", b"hello\n", 0o755)]), d.path()).unwrap();
        assert_eq!(l.digest.to_string(), GOLDEN);
    }
    const GOLDEN: &str = "sha256:89df31b5636c8596a5e868000a7f78a028e6287b8caff79c4cc2d509622f735b";

    #[test]
    fn zstd_bytes_do_not_depend_on_the_worker_count() {
        // Over zstd's minimum job size, so that several workers do get jobs.
        let big: Vec<u8> = (0..3_000_000u32)
            .flat_map(|i| (i.wrapping_mul(2654435761) >> 7).to_le_bytes())
            .collect();
        let s = spec(vec![
            file("big", &big, 0o644),
            file("hello", b"hello\n", 0o755),
        ]);
        let d1 = tempfile::tempdir().unwrap();
        let d4 = tempfile::tempdir().unwrap();
        let l1 = write_layer_with(&s, d1.path(), LayerCompression::Zstd, 1).unwrap();
        let l4 = write_layer_with(&s, d4.path(), LayerCompression::Zstd, 4).unwrap();
        assert_eq!(l1, l4);
        let bytes = std::fs::read(d1.path().join(l1.digest.hex())).unwrap();
        assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        let tar_bytes = zstd::decode_all(bytes.as_slice()).unwrap();
        assert_eq!(Digest::of_bytes(&tar_bytes), l1.diff_id);
        assert_eq!(
            l1.compression.media_type().to_string(),
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
        let gz = write_layer(&s, d1.path()).unwrap();
        assert_eq!(gz.diff_id, l1.diff_id, "same tar whatever the compression");
    }

    #[test]
    fn missing_source_file_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let s = spec(vec![LayerEntry {
            path: "x".into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Path("/nonexistent/x".into())),
        }]);
        assert!(matches!(write_layer(&s, d.path()), Err(ImageError::Io(_))));
    }
}
