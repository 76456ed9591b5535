//! The OCI image layout: written in a temporary sibling and swapped into place, read back.
//! `index.json` is written last, and the swap is one rename (or an atomic exchange when a
//! previous layout is there), so a reader sees the old layout or the new one, never a mix.

use super::blob::BlobWriter;
use super::config;
use super::layer::{self, LayerBlob, LayerSpec};
use super::{ImageError, ImageMeta, io_err};
use crate::digest::Digest;
use crate::fsio::IoError;
use oci_spec::image::{
    ANNOTATION_REF_NAME, Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType,
    Platform, ToDockerV2S2,
};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Clone, Debug)]
pub struct ImageOutput {
    pub dir: PathBuf,
    pub tag: String,
    pub manifest_digest: Digest,
    pub manifest_size: u64,
    pub config_digest: Digest,
    pub layers: Vec<LayerBlob>,
}

#[derive(Clone, Debug)]
pub struct LoadedImage {
    pub dir: PathBuf,
    pub tag: Option<String>,
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// The layer blobs, bottom layer first: read them with [`LocalBlob::open`].
    pub layers: Vec<LocalBlob>,
    /// The annotations of this image's entry in index.json.
    pub index_annotations: BTreeMap<String, String>,
}

impl LoadedImage {
    /// Reads every layer through, checking each against its descriptor's digest and size.
    pub fn verify_layers(&self) -> Result<(), ImageError> {
        for layer in &self.layers {
            let mut reader = layer.open()?;
            std::io::copy(&mut reader, &mut std::io::sink())
                .map_err(io_err("verifying the layer", &layer.path))?;
        }
        Ok(())
    }
}

/// The prefix of the folder an image is written in before it replaces the layout `name`.
pub(crate) fn staging_prefix(name: &str) -> String {
    format!(".{name}.staging-")
}

fn bad_layout(path: &Path, reason: impl Into<String>) -> ImageError {
    ImageError::BadLayout {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes a blob by content into `blobs_dir`; returns its digest and size.
pub(crate) fn write_blob(blobs_dir: &Path, bytes: &[u8]) -> Result<(Digest, u64), ImageError> {
    let mut w = BlobWriter::new(blobs_dir)?;
    w.write_all(bytes)
        .map_err(io_err("writing a blob in", blobs_dir))?;
    w.finish()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io_err("creating", path))?;
    f.write_all(bytes).map_err(io_err("writing", path))?;
    f.sync_all().map_err(io_err("syncing", path))
}

/// Writes an image as an OCI layout at `out`: staged beside it, then swapped into place.
/// On any error the previous content of `out` is untouched and no staging folder remains.
pub fn write_image(
    out: &Path,
    tag: &str,
    meta: &ImageMeta,
    layers: &[LayerSpec],
    manifest_annotations: &BTreeMap<String, String>,
) -> Result<ImageOutput, ImageError> {
    let parent = parent_of(out);
    std::fs::create_dir_all(&parent).map_err(io_err("creating", &parent))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "layout".into());
    let staging = crate::workdir::WorkDir::new_in(&parent, &staging_prefix(&name))
        .map_err(io_err("creating a staging folder in", &parent))?;
    let dir = staging.path();
    // The staging folder is created 0700; `create` makes the published layout readable by
    // anyone.
    let layout = Layout::create(dir)?;
    let blobs = layout.blobs_dir();
    let written: Vec<LayerBlob> = layers
        .iter()
        .map(|l| layer::write_layer_as(l, &blobs, meta.compression))
        .collect::<Result<_, _>>()?;
    let (config_digest, config_size) = layout.write_blob(&config::config_json(meta, &written)?)?;
    let manifest =
        config::manifest_json(&config_digest, config_size, &written, manifest_annotations)?;
    let (manifest_digest, manifest_size) = layout.write_blob(&manifest)?;
    // Last: a layout without index.json names no image.
    layout.write_index(&config::index_json(
        &manifest_digest,
        manifest_size,
        tag,
        meta,
    )?)?;

    publish(dir, out)?;
    Ok(ImageOutput {
        dir: out.to_path_buf(),
        tag: tag.to_owned(),
        manifest_digest,
        manifest_size,
        config_digest,
        layers: written,
    })
}

/// Writes the image index over `manifests` (already in `layout`'s blobs) and, last, the
/// index.json naming it under `tag`: the several-platform counterpart of [`write_image`],
/// into a layout being staged. Returns the index's digest and size.
pub fn write_platform_index(
    layout: &Layout,
    tag: &str,
    manifests: &[config::PlatformManifest],
    index_annotations: &BTreeMap<String, String>,
) -> Result<(Digest, u64), ImageError> {
    let (digest, size) = layout.write_blob(&config::platform_index_json(manifests)?)?;
    layout.write_index(&config::index_json_for_index(
        &digest,
        size,
        tag,
        index_annotations,
    )?)?;
    Ok((digest, size))
}

/// Moves a finished layout folder to `out` in one step. A previous layout at `out` is exchanged
/// atomically and then deleted; anything at `out` that is not an OCI layout is refused.
pub(crate) fn publish(staged: &Path, out: &Path) -> Result<(), ImageError> {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return std::fs::rename(staged, out).map_err(io_err("moving the new layout to", out));
        }
        Err(e) => return Err(io_err("inspecting", out)(e)),
        Ok(m) if !m.is_dir() => {
            return Err(bad_layout(
                out,
                "exists and is not a folder; remove it or choose another --out",
            ));
        }
        Ok(_) => {}
    }
    let is_layout = out.join(OCI_LAYOUT_FILE).is_file();
    let is_empty = std::fs::read_dir(out)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !is_layout && !is_empty {
        return Err(bad_layout(
            out,
            "exists and is not an OCI image layout (no oci-layout file); staticpack will not replace it: remove it or choose another --out",
        ));
    }
    exchange(staged, out)?;
    // `staged` now holds the previous layout.
    std::fs::remove_dir_all(staged).map_err(io_err("removing the previous layout from", staged))
}

/// Swaps two paths in one step (renameat2 RENAME_EXCHANGE).
#[cfg(target_env = "gnu")]
fn exchange(a: &Path, b: &Path) -> Result<(), ImageError> {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        a,
        nix::fcntl::AT_FDCWD,
        b,
        nix::fcntl::RenameFlags::RENAME_EXCHANGE,
    )
    .map_err(|e| io_err("swapping the new layout into", b)(std::io::Error::from(e)))
}

/// Without renameat2 in the libc bindings (musl): move the old one aside, then the new one in.
/// There is a moment with nothing at `b`, but never a half-written layout.
#[cfg(not(target_env = "gnu"))]
fn exchange(a: &Path, b: &Path) -> Result<(), ImageError> {
    let aside = a.with_extension("previous");
    std::fs::rename(b, &aside).map_err(io_err("moving the previous layout aside from", b))?;
    if let Err(e) = std::fs::rename(a, b) {
        let _ = std::fs::rename(&aside, b);
        return Err(io_err("moving the new layout to", b)(e));
    }
    std::fs::rename(&aside, a).map_err(io_err("moving the previous layout to", a))
}

/// `LAYOUT[:TAG]`: split on the last ':' when what follows is a valid tag, unless the whole
/// string names an existing path.
pub fn parse_layout_ref(s: &str) -> (PathBuf, Option<String>) {
    if Path::new(s).exists() {
        return (PathBuf::from(s), None);
    }
    match s.rsplit_once(':') {
        Some((dir, tag)) if !dir.is_empty() && crate::recipe::is_valid_tag(tag) => {
            (PathBuf::from(dir), Some(tag.to_owned()))
        }
        _ => (PathBuf::from(s), None),
    }
}

/// JSON documents (index.json, manifests, indexes, configs) bigger than this are refused:
/// registries cap manifests at 4 MiB too.
pub(crate) const JSON_MAX: u64 = 4 << 20;
/// index.json → index → manifest is two levels; a little slack for deeper nesting, none for
/// cycles.
const MAX_DEPTH: usize = 4;
/// Manifests and indexes loaded for one selection, against index fan-out blowing up.
const MAX_MANIFESTS: usize = 4096;

/// A blob of a selected image: where it is on disk and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBlob {
    pub digest: Digest,
    pub size: u64,
    /// As its descriptor says (`MediaType::to_string()`).
    pub media_type: String,
    pub path: PathBuf,
}

impl LocalBlob {
    /// Opens the blob for streaming (no symlink followed, regular files only); the reader
    /// fails unless the bytes are exactly the descriptor's size and digest, so whoever reads
    /// to the end has read verified content.
    pub fn open(&self) -> Result<crate::digest::VerifyingReader<std::fs::File>, ImageError> {
        let file = open_regular(&self.path)?;
        Ok(crate::digest::VerifyingReader::new(
            file,
            self.digest.clone(),
            self.size,
        ))
    }
}

/// A manifest (or an index) with its exact bytes, the blobs it names and, for an index, the
/// manifests it lists.
#[derive(Clone, Debug)]
pub struct LocalManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Vec<u8>,
    /// Config first, then layers (empty for an index).
    pub blobs: Vec<LocalBlob>,
    pub children: Vec<LocalManifest>,
    /// The platform its parent index's descriptor gives it, if any.
    pub platform: Option<Platform>,
}

impl LocalManifest {
    pub fn is_index(&self) -> bool {
        is_index_type(&MediaType::from(self.media_type.as_str()))
    }
}

/// The image `Layout::select` chose: the manifest (or index) tree under one index.json entry.
#[derive(Clone, Debug)]
pub struct SelectedImage {
    pub dir: PathBuf,
    /// The `ref.name` it was picked by, if it has one.
    pub tag: Option<String>,
    pub root: LocalManifest,
    /// The annotations of its entry in index.json.
    pub index_annotations: BTreeMap<String, String>,
}

impl SelectedImage {
    /// Opens `dir` and selects `tag` (see [`Layout::select`]).
    pub fn open(dir: &Path, tag: Option<&str>) -> Result<Self, ImageError> {
        Layout::open(dir)?.select(tag)
    }

    pub fn digest(&self) -> &Digest {
        &self.root.digest
    }

    /// Every blob of the image once, child manifests' blobs included.
    pub fn blobs(&self) -> Vec<&LocalBlob> {
        fn walk<'a>(m: &'a LocalManifest, out: &mut Vec<&'a LocalBlob>) {
            for child in &m.children {
                walk(child, out);
            }
            for blob in &m.blobs {
                if !out.iter().any(|b| b.digest == blob.digest) {
                    out.push(blob);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

/// An OCI image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`), read as
/// untrusted data: JSON is bounded in size and checked against its digest, blobs are opened
/// without following symlinks and must be regular files.
#[derive(Clone, Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Opens an existing layout: its `oci-layout` file must name an `imageLayoutVersion`.
    pub fn open(dir: &Path) -> Result<Self, ImageError> {
        let layout = Layout {
            dir: dir.to_path_buf(),
        };
        let marker = dir.join(OCI_LAYOUT_FILE);
        let text = match open_regular(&marker) {
            Ok(file) => read_capped(file, &marker)?,
            Err(_) => {
                return Err(bad_layout(
                    dir,
                    "not an OCI image layout (no oci-layout file)",
                ));
            }
        };
        let parsed: Option<oci_spec::image::OciLayout> = serde_json::from_slice(&text).ok();
        if parsed.is_none() {
            return Err(bad_layout(
                &marker,
                "has no imageLayoutVersion: not an OCI image layout",
            ));
        }
        for d in [dir.join("blobs"), layout.blobs_dir()] {
            if std::fs::symlink_metadata(&d).is_ok_and(|m| !m.is_dir()) {
                return Err(ImageError::NotARegularFile { path: d });
            }
        }
        Ok(layout)
    }

    /// Creates an empty layout at `dir` (which may exist, empty): `oci-layout` and
    /// `blobs/sha256`, readable by anyone. `index.json` is written last, by the caller.
    pub fn create(dir: &Path) -> Result<Self, ImageError> {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
        for d in [dir.to_path_buf(), dir.join("blobs"), blobs] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
                .map_err(io_err("setting the mode of", &d))?;
        }
        write_file(&dir.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT)?;
        Ok(Layout {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `blobs/sha256`.
    pub fn blobs_dir(&self) -> PathBuf {
        self.dir.join("blobs").join("sha256")
    }

    /// Where the blob `digest` is (the hex was validated by `Digest::parse`, so this stays
    /// inside `blobs/sha256`).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// A new blob, hashed while written, named by its digest when finished.
    pub fn blob_writer(&self) -> Result<BlobWriter, ImageError> {
        BlobWriter::new(&self.blobs_dir())
    }

    /// Writes `bytes` as a blob; returns its digest and size.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<(Digest, u64), ImageError> {
        write_blob(&self.blobs_dir(), bytes)
    }

    /// Writes `index.json` (last: a layout without it names no image).
    pub fn write_index(&self, bytes: &[u8]) -> Result<(), ImageError> {
        write_file(&self.dir.join("index.json"), bytes)
    }

    /// `index.json`, bounded in size.
    pub fn index(&self) -> Result<ImageIndex, ImageError> {
        let path = self.dir.join("index.json");
        let bytes = read_capped(open_regular(&path)?, &path)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| bad_layout(&path, format!("not an OCI image index: {e}")))
    }

    /// The digest a descriptor names, as a blob of this layout.
    fn descriptor_digest(&self, d: &Descriptor) -> Result<Digest, ImageError> {
        let text = d.digest().to_string();
        Digest::parse(&text).ok_or_else(|| {
            bad_layout(
                &self.dir,
                format!("unsupported digest {text:?} (only sha256 is supported)"),
            )
        })
    }

    /// Opens the blob a descriptor names and checks its size: not followed through a symlink,
    /// refused unless a regular file.
    fn open_blob(&self, d: &Descriptor) -> Result<(LocalBlob, std::fs::File), ImageError> {
        let digest = self.descriptor_digest(d)?;
        let path = self.blob_path(&digest);
        let file = match open_regular(&path) {
            Err(ImageError::Io(IoError { source, .. }))
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                return Err(ImageError::MissingBlob {
                    layout: self.dir.clone(),
                    digest: digest.to_string(),
                });
            }
            other => other?,
        };
        let actual = file.metadata().map_err(io_err("inspecting", &path))?.len();
        if actual != d.size() {
            return Err(ImageError::SizeMismatch {
                path,
                expected: d.size(),
                actual,
            });
        }
        let blob = LocalBlob {
            digest,
            size: d.size(),
            media_type: d.media_type().to_string(),
            path,
        };
        Ok((blob, file))
    }

    /// Reads a JSON blob (manifest, index, config): at most [`JSON_MAX`] bytes, exactly the
    /// descriptor's size, and matching its digest.
    pub fn read_json_blob(&self, d: &Descriptor) -> Result<(LocalBlob, Vec<u8>), ImageError> {
        let (blob, file) = self.open_blob(d)?;
        let bytes = read_capped(file, &blob.path)?;
        if Digest::of_bytes(&bytes) != blob.digest {
            return Err(ImageError::DigestMismatch {
                path: blob.path,
                expected: blob.digest.to_string(),
            });
        }
        Ok((blob, bytes))
    }

    /// Reads a small blob (a referrer's document) by digest: a regular file of exactly `size`
    /// bytes, at most [`JSON_MAX`], matching `digest`.
    pub(crate) fn read_small_blob(
        &self,
        digest: &Digest,
        size: u64,
    ) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest);
        let bytes = read_capped(open_regular(&path)?, &path)?;
        if bytes.len() as u64 != size || Digest::of_bytes(&bytes) != *digest {
            return Err(ImageError::DigestMismatch {
                path,
                expected: digest.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Selects an image by tag. The one tag rule: an index.json entry is tagged `tag` when its
    /// `org.opencontainers.image.ref.name` equals `tag`, or is a full reference whose tag part
    /// equals it (`example.com/hello:v1` is tagged `v1`, not `v10`, and `localhost:5000/app` is
    /// tagged nothing). With `tag` `None`, the layout must hold exactly one entry. The entry's
    /// tree is loaded whole (an index of platform manifests, nested at most a few levels), every
    /// JSON document checked against its digest and every blob present with its size.
    pub fn select(&self, tag: Option<&str>) -> Result<SelectedImage, ImageError> {
        let index = self.index()?;
        let entries = index.manifests();
        let available = || {
            let names: Vec<&str> = entries.iter().filter_map(ref_name).collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        let chosen = match tag {
            Some(tag) => {
                let matching: Vec<&Descriptor> = entries
                    .iter()
                    .filter(|d| ref_name(d).is_some_and(|name| ref_name_matches(name, tag)))
                    .collect();
                match matching.as_slice() {
                    [] => {
                        return Err(ImageError::NoSuchTag {
                            layout: self.dir.clone(),
                            tag: tag.to_owned(),
                            available: available(),
                        });
                    }
                    [first, rest @ ..] if rest.iter().all(|d| d.digest() == first.digest()) => {
                        *first
                    }
                    many => {
                        return Err(ImageError::Ambiguous {
                            layout: self.dir.clone(),
                            tag: Some(tag.to_owned()),
                            count: many.len(),
                            available: available(),
                        });
                    }
                }
            }
            None => match entries.as_slice() {
                [only] => only,
                [] => {
                    return Err(bad_layout(
                        &self.dir.join("index.json"),
                        "the layout holds no image",
                    ));
                }
                many => {
                    return Err(ImageError::Ambiguous {
                        layout: self.dir.clone(),
                        tag: None,
                        count: many.len(),
                        available: available(),
                    });
                }
            },
        };
        let mut budget = MAX_MANIFESTS;
        let root = self.load_manifest(chosen, 0, &mut budget)?;
        Ok(SelectedImage {
            dir: self.dir.clone(),
            tag: ref_name(chosen).map(str::to_owned),
            root,
            index_annotations: chosen
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
        })
    }

    fn load_manifest(
        &self,
        d: &Descriptor,
        depth: usize,
        budget: &mut usize,
    ) -> Result<LocalManifest, ImageError> {
        if depth > MAX_DEPTH || *budget == 0 {
            return Err(bad_layout(
                &self.dir,
                format!(
                    "manifest {} is nested too deep or too many manifests (over {MAX_DEPTH} levels or {MAX_MANIFESTS} manifests)",
                    d.digest()
                ),
            ));
        }
        *budget -= 1;
        let (blob, bytes) = self.read_json_blob(d)?;
        let media_type = document_type(d, &bytes);
        let invalid = |what: &str, e: serde_json::Error| {
            bad_layout(&blob.path, format!("not a valid {what}: {e}"))
        };
        let (blobs, children) = if is_index_type(&media_type) {
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| invalid("image index", e))?;
            let children = index
                .manifests()
                .iter()
                .map(|child| self.load_manifest(child, depth + 1, budget))
                .collect::<Result<Vec<_>, _>>()?;
            (Vec::new(), children)
        } else {
            let manifest: ImageManifest =
                serde_json::from_slice(&bytes).map_err(|e| invalid("image manifest", e))?;
            let mut blobs = vec![self.open_blob(manifest.config())?.0];
            for layer in manifest.layers() {
                blobs.push(self.open_blob(layer)?.0);
            }
            (blobs, Vec::new())
        };
        Ok(LocalManifest {
            digest: blob.digest,
            media_type: media_type.to_string(),
            bytes,
            blobs,
            children,
            platform: d.platform().clone(),
        })
    }

    /// Reads the image tagged `tag` (see [`Layout::select`]) for running or inspecting: one
    /// platform's manifest and config. From an index, the only manifest, or the host's.
    pub fn load(&self, tag: Option<&str>) -> Result<LoadedImage, ImageError> {
        self.load_platform(tag, None)
    }

    /// [`Layout::load`] of the manifest for `platform` (`--platform`); its config must say
    /// that platform too. `None`: as `load`.
    pub fn load_platform(
        &self,
        tag: Option<&str>,
        platform: Option<&crate::recipe::Platform>,
    ) -> Result<LoadedImage, ImageError> {
        let selected = self.select(tag)?;
        let node = match platform {
            None => single_platform(&selected.root).ok_or_else(|| {
                bad_layout(
                    &self.dir,
                    format!(
                        "{} is an index of several platforms ({}) and none is this host's ({}); pick one with --platform",
                        selected.root.digest,
                        platforms_of(&selected.root).join(", "),
                        host_platform().join("/"),
                    ),
                )
            })?,
            Some(want) => for_platform(&selected.root, want).ok_or_else(|| {
                bad_layout(
                    &self.dir,
                    format!(
                        "{} has no manifest for {want} (it has {})",
                        selected.root.digest,
                        platforms_of(&selected.root).join(", "),
                    ),
                )
            })?,
        };
        let loaded = self.loaded(&selected, node)?;
        if let Some(want) = platform {
            let config = &loaded.config;
            let has = format!("{}/{}", config.os(), config.architecture());
            if has != format!("linux/{}", want.oci_arch()) {
                return Err(bad_layout(
                    &self.dir,
                    format!(
                        "manifest {} is for {has} (its config says so), not {want}",
                        node.digest
                    ),
                ));
            }
        }
        Ok(loaded)
    }

    /// Every platform's image of the tag (one for a plain manifest), in the index's order:
    /// `inspect` of an index without `--platform`.
    pub fn load_all(&self, tag: Option<&str>) -> Result<Vec<LoadedImage>, ImageError> {
        let selected = self.select(tag)?;
        all_manifests(&selected.root)
            .into_iter()
            .map(|node| self.loaded(&selected, node))
            .collect()
    }

    /// The manifest `node` of `selected`, with its config.
    fn loaded(
        &self,
        selected: &SelectedImage,
        node: &LocalManifest,
    ) -> Result<LoadedImage, ImageError> {
        let manifest: ImageManifest = serde_json::from_slice(&node.bytes)
            .map_err(|e| bad_layout(&self.dir, format!("manifest {}: {e}", node.digest)))?;
        let (config_blob, config_bytes) = self.read_json_blob(manifest.config())?;
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| bad_layout(&config_blob.path, format!("not an image config: {e}")))?;
        Ok(LoadedImage {
            dir: self.dir.clone(),
            tag: selected.tag.clone(),
            manifest_digest: node.digest.clone(),
            layers: node.blobs.iter().skip(1).cloned().collect(),
            manifest,
            config,
            index_annotations: selected.index_annotations.clone(),
        })
    }

    /// Checks the whole layout: every blob reachable from index.json is present, a regular
    /// file, of its descriptor's size and matching its digest (layers are hashed in full), and
    /// every manifest and index parses. Returns the problems found; `Err` only when index.json
    /// itself cannot be read.
    pub fn fsck(&self) -> Result<Vec<ImageError>, ImageError> {
        let index = self.index()?;
        let mut problems = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack: Vec<(Descriptor, usize)> =
            index.manifests().iter().map(|d| (d.clone(), 0)).collect();
        while let Some((d, depth)) = stack.pop() {
            if !seen.insert(d.digest().to_string()) {
                continue;
            }
            // Manifests and indexes are read (bounded) and followed; everything else, configs
            // included, is hashed in full.
            let media_type = d.media_type().clone();
            if !(is_index_type(&media_type) || is_manifest_type(&media_type)) {
                if let Err(e) = self.check_blob(&d) {
                    problems.push(e);
                }
                continue;
            }
            let (blob, bytes) = match self.read_json_blob(&d) {
                Ok(x) => x,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            let kind = document_type(&d, &bytes);
            if depth >= MAX_DEPTH && (is_index_type(&kind) || is_manifest_type(&kind)) {
                problems.push(bad_layout(&blob.path, "indexes nest too deep"));
                continue;
            }
            if is_index_type(&kind) {
                match serde_json::from_slice::<ImageIndex>(&bytes) {
                    Ok(i) => stack.extend(i.manifests().iter().map(|c| (c.clone(), depth + 1))),
                    Err(e) => problems.push(bad_layout(
                        &blob.path,
                        format!("not a valid image index: {e}"),
                    )),
                }
            } else if is_manifest_type(&kind) {
                match serde_json::from_slice::<ImageManifest>(&bytes) {
                    Ok(m) => {
                        stack.push((m.config().clone(), depth + 1));
                        stack.extend(m.layers().iter().map(|l| (l.clone(), depth + 1)));
                    }
                    Err(e) => problems.push(bad_layout(
                        &blob.path,
                        format!("not a valid image manifest: {e}"),
                    )),
                }
            }
        }
        Ok(problems)
    }

    /// Hashes a blob in full against its descriptor.
    fn check_blob(&self, d: &Descriptor) -> Result<(), ImageError> {
        let (blob, mut file) = self.open_blob(d)?;
        let mut w = crate::digest::HashingWriter::new(std::io::sink());
        std::io::copy(&mut file, &mut w).map_err(io_err("reading", &blob.path))?;
        let (_, digest, _) = w.finish();
        if digest != blob.digest {
            return Err(ImageError::DigestMismatch {
                path: blob.path,
                expected: blob.digest.to_string(),
            });
        }
        Ok(())
    }
}

/// Reads the image named `tag` (or the only one) from the layout at `dir`: [`Layout::load`].
pub fn read_image(dir: &Path, tag: Option<&str>) -> Result<LoadedImage, ImageError> {
    Layout::open(dir)?.load(tag)
}

fn ref_name(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(ANNOTATION_REF_NAME))
        .map(String::as_str)
}

/// The tag rule: `ref.name` is usually the bare tag (`v1`), sometimes a whole reference
/// (`reg/app:v1`), whose tag is what follows the last ':' when no '/' follows it.
pub(crate) fn ref_name_matches(name: &str, tag: &str) -> bool {
    if name == tag {
        return true;
    }
    match name.rsplit_once(':') {
        Some((before, after)) => after == tag && !after.contains('/') && !before.is_empty(),
        None => false,
    }
}

fn docker_type(oci: MediaType) -> MediaType {
    MediaType::from(oci.to_docker_v2s2().unwrap_or_default())
}

fn is_index_type(m: &MediaType) -> bool {
    *m == MediaType::ImageIndex || *m == docker_type(MediaType::ImageIndex)
}

fn is_manifest_type(m: &MediaType) -> bool {
    *m == MediaType::ImageManifest || *m == docker_type(MediaType::ImageManifest)
}

/// What a manifest-or-index document is: its descriptor's media type decides; the document's
/// own `mediaType` is the fallback, then an OCI manifest.
fn document_type(d: &Descriptor, bytes: &[u8]) -> MediaType {
    let declared = d.media_type();
    if is_index_type(declared) || is_manifest_type(declared) {
        return declared.clone();
    }
    serde_json::from_slice::<serde_json::Value>(bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(MediaType::from)
        })
        .unwrap_or(MediaType::ImageManifest)
}

/// The host as an OCI platform: ["linux", "amd64"].
fn host_platform() -> [&'static str; 2] {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    [std::env::consts::OS, arch]
}

fn platforms_of(m: &LocalManifest) -> Vec<String> {
    all_manifests(m)
        .into_iter()
        .map(|c| match &c.platform {
            Some(p) => format!("{}/{}", p.os(), p.architecture()),
            None => "unknown".into(),
        })
        .collect()
}

/// Every image manifest under `m` (itself, or an index's, nested indexes walked), in order.
fn all_manifests(m: &LocalManifest) -> Vec<&LocalManifest> {
    fn walk<'a>(m: &'a LocalManifest, out: &mut Vec<&'a LocalManifest>) {
        if m.is_index() {
            for c in &m.children {
                walk(c, out);
            }
        } else {
            out.push(m);
        }
    }
    let mut all = Vec::new();
    walk(m, &mut all);
    all
}

/// The one image manifest under `m`: itself, an index's only manifest, or the host's.
fn single_platform(m: &LocalManifest) -> Option<&LocalManifest> {
    let all = all_manifests(m);
    if let [only] = all.as_slice() {
        return Some(only);
    }
    let [os, arch] = host_platform();
    all.into_iter().find(|c| {
        c.platform
            .as_ref()
            .is_some_and(|p| p.os().to_string() == os && p.architecture().to_string() == arch)
    })
}

/// The image manifest under `m` for `want`: the one whose descriptor names that platform, or
/// a lone manifest whose descriptor names none (its config is checked by the caller).
fn for_platform<'a>(
    m: &'a LocalManifest,
    want: &crate::recipe::Platform,
) -> Option<&'a LocalManifest> {
    let all = all_manifests(m);
    let named = all.iter().copied().find(|c| {
        c.platform.as_ref().is_some_and(|p| {
            p.os().to_string() == "linux" && p.architecture().to_string() == want.oci_arch()
        })
    });
    match (named, all.as_slice()) {
        (Some(found), _) => Some(found),
        (None, [only]) if only.platform.is_none() => Some(only),
        _ => None,
    }
}

/// Opens a file for reading without following a symlink and without blocking on a FIFO;
/// anything but a regular file is refused.
pub(crate) fn open_regular(path: &Path) -> Result<std::fs::File, ImageError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(ImageError::NotARegularFile {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err("opening", path)(e)),
    };
    let meta = file.metadata().map_err(io_err("inspecting", path))?;
    if !meta.is_file() {
        return Err(ImageError::NotARegularFile {
            path: path.to_path_buf(),
        });
    }
    Ok(file)
}

/// Reads at most [`JSON_MAX`] bytes; a longer file is refused.
fn read_capped(file: std::fs::File, path: &Path) -> Result<Vec<u8>, ImageError> {
    use std::io::Read;
    let mut bytes = Vec::new();
    file.take(JSON_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("reading", path))?;
    if bytes.len() as u64 > JSON_MAX {
        let size = std::fs::symlink_metadata(path).map_or(JSON_MAX + 1, |m| m.len());
        return Err(ImageError::TooBig {
            path: path.to_path_buf(),
            size,
            limit: JSON_MAX,
        });
    }
    Ok(bytes)
}

/// A plain-text summary of an image: manifest, config, layers.
pub fn describe(image: &LoadedImage) -> Result<String, ImageError> {
    let mut s = String::new();
    let c = &image.config;
    s.push_str(&format!("layout:    {}\n", image.dir.display()));
    s.push_str(&format!(
        "tag:       {}\n",
        image.tag.as_deref().unwrap_or("(none)")
    ));
    s.push_str(&format!("manifest:  {}\n", image.manifest_digest));
    s.push_str(&format!(
        "config:    {}\n",
        image.manifest.config().digest()
    ));
    s.push_str(&format!("platform:  {}/{}\n", c.os(), c.architecture()));
    s.push_str(&format!(
        "created:   {}\n",
        c.created().as_deref().unwrap_or("-")
    ));
    if let Some(cfg) = c.config() {
        let join = |v: &Option<Vec<String>>| {
            v.as_ref()
                .map(|v| format!("{v:?}"))
                .unwrap_or_else(|| "-".into())
        };
        s.push_str(&format!("entrypoint: {}\n", join(cfg.entrypoint())));
        s.push_str(&format!("cmd:       {}\n", join(cfg.cmd())));
        s.push_str(&format!("env:       {}\n", join(cfg.env())));
        s.push_str(&format!(
            "user:      {}\n",
            cfg.user().as_deref().unwrap_or("-")
        ));
        s.push_str(&format!(
            "workdir:   {}\n",
            cfg.working_dir().as_deref().unwrap_or("-")
        ));
        if let Some(labels) = cfg.labels() {
            let sorted: BTreeMap<_, _> = labels.iter().collect();
            for (k, v) in sorted {
                s.push_str(&format!("label:     {k}={v}\n"));
            }
        }
    }
    if let Some(a) = image.manifest.annotations() {
        let sorted: BTreeMap<_, _> = a.iter().collect();
        for (k, v) in sorted {
            s.push_str(&format!("annotation: {k}={v}\n"));
        }
    }
    for (k, v) in &image.index_annotations {
        if k != ANNOTATION_REF_NAME {
            s.push_str(&format!("index annotation: {k}={v}\n"));
        }
    }
    let history = c.history().clone().unwrap_or_default();
    for (i, l) in image.manifest.layers().iter().enumerate() {
        let what = history
            .get(i)
            .and_then(|h| h.created_by().clone())
            .unwrap_or_default();
        s.push_str(&format!(
            "layer {}:   {} {} bytes  {what}\n",
            i + 1,
            l.digest(),
            l.size()
        ));
    }
    Ok(s)
}

/// Images made in memory for tests of the stages that read them.
#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// An image with no layers and an empty config, as if loaded from `dir`.
    pub(crate) fn loaded_image(dir: &Path) -> LoadedImage {
        let config = oci_spec::image::DescriptorBuilder::default()
            .media_type(MediaType::ImageConfig)
            .digest(
                Digest::of_bytes(b"{}")
                    .to_string()
                    .parse::<oci_spec::image::Digest>()
                    .expect("a digest"),
            )
            .size(2u64)
            .build()
            .expect("a descriptor");
        LoadedImage {
            dir: dir.to_path_buf(),
            tag: None,
            manifest_digest: Digest::of_bytes(b"manifest"),
            manifest: oci_spec::image::ImageManifestBuilder::default()
                .schema_version(2u32)
                .config(config)
                .layers(vec![])
                .build()
                .expect("a manifest"),
            config: ImageConfiguration::default(),
            layers: Vec::new(),
            index_annotations: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{EntryKind, FileSource, LayerEntry};

    fn meta() -> ImageMeta {
        ImageMeta {
            os: "linux".into(),
            architecture: "amd64".into(),
            entrypoint: vec!["/app".into()],
            ..Default::default()
        }
    }

    fn layer(content: &[u8]) -> LayerSpec {
        LayerSpec {
            entries: vec![LayerEntry {
                path: "app".into(),
                mode: 0o755,
                uid: 0,
                gid: 0,
                kind: EntryKind::File(FileSource::Bytes(content.to_vec())),
            }],
            mtime: 0,
            comment: "app".into(),
        }
    }

    fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        for e in walk(dir) {
            out.insert(
                e.strip_prefix(dir).unwrap().to_string_lossy().into_owned(),
                std::fs::read(&e).unwrap(),
            );
        }
        out
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(walk(&p))
            } else {
                v.push(p)
            }
        }
        v
    }

    #[test]
    fn same_image_twice_in_two_folders_is_byte_identical() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let x = write_image(
            &a.path().join("one/img"),
            "latest",
            &meta(),
            &[layer(b"x")],
            &BTreeMap::new(),
        )
        .unwrap();
        let y = write_image(
            &b.path().join("img"),
            "latest",
            &meta(),
            &[layer(b"x")],
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(x.manifest_digest, y.manifest_digest);
        assert_eq!(tree(&a.path().join("one/img")), tree(&b.path().join("img")));
    }

    #[test]
    fn rewrite_swaps_and_leaves_no_staging() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("img");
        write_image(&out, "latest", &meta(), &[layer(b"1")], &BTreeMap::new()).unwrap();
        let second =
            write_image(&out, "latest", &meta(), &[layer(b"2")], &BTreeMap::new()).unwrap();
        assert_eq!(
            read_image(&out, Some("latest")).unwrap().manifest_digest,
            second.manifest_digest
        );
        let names: Vec<String> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["img"]);
        // The old layer blob went with the old layout.
        assert_eq!(walk(&out.join("blobs/sha256")).len(), 3);
    }

    #[test]
    fn a_failed_write_leaves_the_previous_layout_untouched() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("img");
        write_image(&out, "latest", &meta(), &[layer(b"1")], &BTreeMap::new()).unwrap();
        let before = tree(&out);
        let broken = LayerSpec {
            entries: vec![LayerEntry {
                path: "x".into(),
                mode: 0o644,
                uid: 0,
                gid: 0,
                kind: EntryKind::File(FileSource::Path("/nonexistent".into())),
            }],
            mtime: 0,
            comment: "broken".into(),
        };
        assert!(write_image(&out, "latest", &meta(), &[broken], &BTreeMap::new()).is_err());
        assert_eq!(tree(&out), before);
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "a staging folder was left behind"
        );
    }

    #[test]
    fn a_folder_that_is_not_a_layout_is_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("precious.txt"), "keep").unwrap();
        let e = write_image(
            d.path(),
            "latest",
            &meta(),
            &[layer(b"1")],
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("is not an OCI image layout"), "{e}");
        assert_eq!(
            std::fs::read_to_string(d.path().join("precious.txt")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn read_back_checks_tags_and_digests() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("img");
        let w = write_image(&out, "v1", &meta(), &[layer(b"1")], &BTreeMap::new()).unwrap();
        let r = read_image(&out, Some("v1")).unwrap();
        assert_eq!(r.manifest_digest, w.manifest_digest);
        assert_eq!(r.layers.len(), 1);
        assert_eq!(read_image(&out, None).unwrap().tag.as_deref(), Some("v1"));
        assert!(
            read_image(&out, Some("v2"))
                .unwrap_err()
                .to_string()
                .contains("no image tagged \"v2\"; tags: v1")
        );
        // Tampering with the config is noticed.
        let config = Layout::open(&out).unwrap().blob_path(&w.config_digest);
        std::fs::write(&config, b"{}").unwrap();
        assert!(
            read_image(&out, None)
                .unwrap_err()
                .to_string()
                .contains("the layout is corrupt")
        );
        assert!(
            describe(&r)
                .unwrap()
                .contains(&w.manifest_digest.to_string())
        );
    }

    #[test]
    fn layout_is_readable_by_anyone_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("img");
        write_image(&out, "latest", &meta(), &[layer(b"1")], &BTreeMap::new()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&out), 0o755);
        assert_eq!(mode(&out.join("blobs/sha256")), 0o755);
        assert_eq!(mode(&out.join("index.json")) & 0o444, 0o444);
        for blob in walk(&out.join("blobs/sha256")) {
            assert_eq!(mode(&blob), 0o644, "{}", blob.display());
        }
    }

    #[test]
    fn layout_refs() {
        assert_eq!(
            parse_layout_ref("out/x:v1"),
            (PathBuf::from("out/x"), Some("v1".into()))
        );
        assert_eq!(parse_layout_ref("out/x"), (PathBuf::from("out/x"), None));
        assert_eq!(parse_layout_ref(":v1"), (PathBuf::from(":v1"), None));
        assert_eq!(
            parse_layout_ref("out/x:bad/tag"),
            (PathBuf::from("out/x:bad/tag"), None)
        );
    }
}

#[cfg(test)]
#[path = "layout_tests.rs"]
mod layout_tests;
