//! Image-source references for `verify IMAGE` / `run IMAGE` (issue 16): which transport an
//! argument names, and loading it. `oci:`, `oci-archive:` and `docker-archive:` load (the
//! archives into a private temp dir); `docker://` is pulled into one by [`crate::registry::pull_to_layout`].

use crate::registry::{Reference, ReferenceError};
use crate::workdir::WorkDir;
use std::path::PathBuf;

/// Where an image to diagnose comes from. The prefixes follow skopeo's transport names so a
/// reference copied from a skopeo command line means the same thing here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// `oci:LAYOUT[:TAG]`
    OciLayout { path: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE`
    OciArchive(PathBuf),
    /// `docker-archive:FILE`
    DockerArchive(PathBuf),
    /// `docker://REGISTRY/REPO[:TAG|@DIGEST]`
    Registry(Reference),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("image reference {input:?} has an empty path after {prefix:?}")]
    EmptyPath { input: String, prefix: &'static str },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Image(#[from] super::ImageError),
    #[error("{archive}: {reason}")]
    BadArchive { archive: PathBuf, reason: String },
    /// The reference is said by the caller ("opening the image …") and by the error itself.
    #[error(transparent)]
    Pull(Box<crate::registry::RegistryError>),
    #[error(
        "{transport} images cannot be read yet; copy it to a layout first: skopeo copy {input} oci:DIR"
    )]
    Unsupported {
        transport: &'static str,
        input: String,
    },
}

impl ImageSource {
    /// `Ok(None)` when `arg` has none of the image prefixes: it is a file or directory path,
    /// as `verify` has always taken.
    pub fn parse(arg: &str) -> Result<Option<Self>, SourceError> {
        let nonempty = |rest: &str, prefix: &'static str| {
            if rest.is_empty() {
                Err(SourceError::EmptyPath {
                    input: arg.to_owned(),
                    prefix,
                })
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if let Some(rest) = arg.strip_prefix("docker://") {
            return Ok(Some(Self::Registry(Reference::parse(rest)?)));
        }
        if let Some(rest) = arg.strip_prefix("oci-archive:") {
            return Ok(Some(Self::OciArchive(nonempty(rest, "oci-archive:")?)));
        }
        if let Some(rest) = arg.strip_prefix("docker-archive:") {
            return Ok(Some(Self::DockerArchive(nonempty(
                rest,
                "docker-archive:",
            )?)));
        }
        if let Some(rest) = arg.strip_prefix("oci:") {
            nonempty(rest, "oci:")?;
            let (path, tag) = super::layout::parse_layout_ref(rest);
            return Ok(Some(Self::OciLayout { path, tag }));
        }
        Ok(None)
    }

    /// Loads the image; the temp dir an archive is extracted into lives as long as the result.
    /// `docker://` is pulled with default registry options (see [`ImageSource::open_with`]).
    pub fn open(
        &self,
        input: &str,
        platform: Option<&crate::recipe::Platform>,
    ) -> Result<OpenedImage, SourceError> {
        self.open_with(input, platform, &crate::registry::ClientOptions::default())
    }

    /// [`ImageSource::open`], pulling `docker://` with `registry`'s options (insecure
    /// registries, timeouts, keychain).
    pub fn open_with(
        &self,
        input: &str,
        platform: Option<&crate::recipe::Platform>,
        registry: &crate::registry::ClientOptions,
    ) -> Result<OpenedImage, SourceError> {
        match self {
            Self::OciArchive(file) => {
                let tmp = extract_oci_archive(file)?;
                let image = super::Layout::open(tmp.path())?.load_platform(None, platform)?;
                Ok(OpenedImage {
                    image,
                    layout: Some(tmp.path().to_path_buf()),
                    pulled: None,
                    _tmp: Some(tmp),
                })
            }
            Self::DockerArchive(file) => {
                let tmp = docker_archive_as_layout(file)?;
                let image = super::Layout::open(tmp.path())?.load_platform(None, platform)?;
                Ok(OpenedImage {
                    image,
                    layout: Some(tmp.path().to_path_buf()),
                    pulled: None,
                    _tmp: Some(tmp),
                })
            }
            Self::Registry(reference) => {
                let fail = |error| SourceError::Pull(Box::new(error));
                let tmp = WorkDir::new(PULL_DIR_PREFIX).map_err(|e| {
                    fail(crate::registry::RegistryError::BadPull {
                        reference: reference.to_string(),
                        reason: format!("creating a temp dir: {e}"),
                    })
                })?;
                // The push client's session: same credentials, helpers, insecure registries.
                let client = crate::registry::Client::new(registry.clone());
                let pulled = crate::registry::pull_to_layout(
                    &client,
                    reference,
                    platform,
                    tmp.path(),
                    &crate::registry::NoProgress,
                )
                .map_err(fail)?;
                let image = super::Layout::open(tmp.path())?.load_platform(None, platform)?;
                Ok(OpenedImage {
                    image,
                    layout: Some(tmp.path().to_path_buf()),
                    pulled: Some(pulled),
                    _tmp: Some(tmp),
                })
            }
            Self::OciLayout { path, .. } => Ok(OpenedImage {
                layout: Some(path.clone()),
                ..OpenedImage::from(self.load(input, platform)?)
            }),
        }
    }

    /// For `docker://`: pulls the referrers of the opened image (its SBOMs and statements) into
    /// its private layout, for `verify --attestations`. Other sources hold theirs already.
    pub fn pull_referrers(
        &self,
        opened: &OpenedImage,
        registry: &crate::registry::ClientOptions,
    ) -> Result<(), SourceError> {
        let (Self::Registry(reference), Some(dir)) = (self, &opened.layout) else {
            return Ok(());
        };
        let client = crate::registry::Client::new(registry.clone());
        crate::registry::pull_referrers(
            &client,
            reference,
            &opened.image.manifest_digest,
            dir,
            &crate::registry::NoProgress,
        )
        .map_err(|e| SourceError::Pull(Box::new(e)))?;
        Ok(())
    }

    /// Loads the image's manifest and config (digest-checked, bounded, by the layout reader);
    /// layers are read later through [`super::LocalBlob::open`], which checks them too.
    pub fn load(
        &self,
        input: &str,
        platform: Option<&crate::recipe::Platform>,
    ) -> Result<super::LoadedImage, SourceError> {
        let unsupported = |transport| SourceError::Unsupported {
            transport,
            input: input.to_owned(),
        };
        match self {
            Self::OciLayout { path, tag } => {
                Ok(super::Layout::open(path)?.load_platform(tag.as_deref(), platform)?)
            }
            Self::OciArchive(_) => Err(unsupported("oci-archive: (use open)")),
            Self::DockerArchive(_) => Err(unsupported("docker-archive: (use open)")),
            Self::Registry(_) => Err(unsupported("docker:// (use open)")),
        }
    }
}

/// An image and, for archives and pulls, the private temp dir holding its blobs.
pub struct OpenedImage {
    pub image: super::LoadedImage,
    /// The OCI layout the image was read from (an archive's or a pull's private copy): where
    /// its referrers are listed. `None` when made from a loaded image.
    pub layout: Option<PathBuf>,
    /// For `docker://`: what was pulled (the index and the platform chosen from it).
    pub pulled: Option<crate::registry::Pulled>,
    _tmp: Option<WorkDir>,
}

impl From<super::LoadedImage> for OpenedImage {
    fn from(image: super::LoadedImage) -> Self {
        OpenedImage {
            image,
            layout: None,
            pulled: None,
            _tmp: None,
        }
    }
}

/// The private folders in TMPDIR an image is pulled or an archive extracted into: locked
/// while in use, so the next run, verify or build removes those a killed one left
/// (`crate::run::sweep_leftovers`).
pub(crate) const PULL_DIR_PREFIX: &str = "staticpack-pull-";
pub(crate) const ARCHIVE_DIR_PREFIX: &str = "staticpack-image-";

/// Archives bigger than this are refused: the extraction is bounded, not the disk.
const ARCHIVE_MAX: u64 = 64 << 30;

/// Extracts an OCI archive into a private temp dir. Only the layout's own names are accepted
/// (`oci-layout`, `index.json`, `blobs/ALG/HEX`) as regular files, so no entry can reach
/// outside the dir; blobs are digest-checked later by the layout reader.
fn extract_oci_archive(file: &std::path::Path) -> Result<WorkDir, SourceError> {
    let bad = |reason: String| SourceError::BadArchive {
        archive: file.to_owned(),
        reason,
    };
    let f = std::fs::File::open(file).map_err(|e| bad(format!("opening: {e}")))?;
    let tmp =
        WorkDir::new(ARCHIVE_DIR_PREFIX).map_err(|e| bad(format!("creating a temp dir: {e}")))?;
    let mut archive = tar::Archive::new(std::io::Read::take(f, ARCHIVE_MAX));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("reading: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("reading: {e}")))?;
        let name = entry
            .path()
            .map_err(|e| bad(format!("entry name: {e}")))?
            .to_string_lossy()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() && (name.is_empty() || name == "blobs" || is_alg_dir(&name)) {
            continue;
        }
        // staticpack's archives also carry the build's record and the list of referrers.
        let ok_name = name == "oci-layout"
            || name == "index.json"
            || name == crate::supply::REFERRERS_FILE
            || name == crate::provenance::FILE_NAME
            || is_blob_name(&name);
        if !kind.is_file() || !ok_name {
            return Err(bad(format!(
                "entry {name:?} is not part of an OCI layout (only oci-layout, index.json, blobs/ALG/HEX and staticpack's {} and {} files are)",
                crate::supply::REFERRERS_FILE,
                crate::provenance::FILE_NAME
            )));
        }
        let dest = tmp.path().join(&name);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| bad(format!("extracting {name}: {e}")))?;
        }
        let mut out =
            std::fs::File::create(&dest).map_err(|e| bad(format!("extracting {name}: {e}")))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("extracting {name}: {e}")))?;
    }
    Ok(tmp)
}

/// `manifest.json` of a `docker save` / `skopeo copy … docker-archive:` tar.
#[derive(serde::Deserialize)]
struct DockerArchiveImage {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Bounds on the JSON files of a docker archive (real ones are a few KiB).
const DOCKER_JSON_MAX: u64 = 4 << 20;

/// A docker archive turned into an OCI layout in a private temp dir: its regular files
/// extracted under `raw/` (names checked: relative, no `..`; links and devices refused), then
/// the config and layers named by `manifest.json` hashed into `blobs/sha256/`, with an OCI
/// manifest and index.json written over them — so the layout reader's digest checks and the
/// unpacker's path rules apply as for any layout.
fn docker_archive_as_layout(file: &std::path::Path) -> Result<WorkDir, SourceError> {
    use std::io::Read;
    let bad = |reason: String| SourceError::BadArchive {
        archive: file.to_owned(),
        reason,
    };
    let f = std::fs::File::open(file).map_err(|e| bad(format!("opening: {e}")))?;
    let tmp =
        WorkDir::new(ARCHIVE_DIR_PREFIX).map_err(|e| bad(format!("creating a temp dir: {e}")))?;
    let raw = tmp.path().join("raw");
    let mut links = std::collections::BTreeMap::<std::path::PathBuf, std::path::PathBuf>::new();
    let mut archive = tar::Archive::new(f.take(ARCHIVE_MAX));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("reading: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("reading: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("entry name: {e}")))?
            .into_owned();
        let name = path.to_string_lossy().into_owned();
        let safe = path.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        });
        if !safe {
            return Err(bad(format!(
                "entry {name:?} reaches outside the archive (absolute or ..)"
            )));
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        // Links are never created: remembered by name, resolved inside the archive when
        // manifest.json names one (docker's legacy `<id>/layer.tar -> ../<digest>.tar`).
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| bad(format!("entry {name:?}: {e}")))?
                .ok_or_else(|| bad(format!("entry {name:?}: a link without a target")))?;
            let base = if kind.is_symlink() {
                path.parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default()
            } else {
                std::path::PathBuf::new()
            };
            let resolved = inside_archive(&base.join(&target)).ok_or_else(|| {
                bad(format!(
                    "link {name:?} -> {target:?} reaches outside the archive"
                ))
            })?;
            links.insert(inside_archive(&path).unwrap_or_default(), resolved);
            continue;
        }
        if !kind.is_file() {
            return Err(bad(format!(
                "entry {name:?} is a {kind:?}, not a regular file: only files are read from a docker archive"
            )));
        }
        let dest = raw.join(&path);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| bad(format!("extracting {name}: {e}")))?;
        }
        let mut out =
            std::fs::File::create(&dest).map_err(|e| bad(format!("extracting {name}: {e}")))?;
        std::io::copy(&mut entry, &mut out).map_err(|e| bad(format!("extracting {name}: {e}")))?;
    }
    // A member manifest.json names: inside the archive, through its links, a regular file.
    let member = |name: &str| -> Result<std::path::PathBuf, SourceError> {
        let mut rel = inside_archive(std::path::Path::new(name))
            .ok_or_else(|| bad(format!("manifest.json names {name:?}, outside the archive")))?;
        for _ in 0..8 {
            match links.get(&rel) {
                Some(target) => rel = target.clone(),
                None => break,
            }
        }
        let path = raw.join(&rel);
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| bad(format!("{name} (named by manifest.json): {e}")))?;
        if !meta.is_file() {
            return Err(bad(format!(
                "{name} (named by manifest.json) is not a file"
            )));
        }
        Ok(path)
    };
    let read_json = |name: &str| -> Result<Vec<u8>, SourceError> {
        let path = member(name)?;
        let f = std::fs::File::open(&path)
            .map_err(|e| bad(format!("{name} (named by manifest.json): {e}")))?;
        let mut bytes = Vec::new();
        f.take(DOCKER_JSON_MAX + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("reading {name}: {e}")))?;
        if bytes.len() as u64 > DOCKER_JSON_MAX {
            return Err(bad(format!(
                "{name} is larger than {DOCKER_JSON_MAX} bytes"
            )));
        }
        Ok(bytes)
    };
    let manifest: Vec<DockerArchiveImage> = serde_json::from_slice(&read_json("manifest.json")?)
        .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let image = match manifest.as_slice() {
        [one] => one,
        [] => return Err(bad("manifest.json lists no image".into())),
        many => {
            return Err(bad(format!(
                "manifest.json lists {} images; copy the one to check into a layout: skopeo copy docker-archive:FILE:REPO:TAG oci:DIR",
                many.len()
            )));
        }
    };
    let blobs = tmp.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| bad(format!("creating blobs: {e}")))?;
    // Moves a member (checked to be one of the extracted files) to its digest's name.
    let to_blob = |name: &str| -> Result<(crate::digest::Digest, u64, [u8; 4]), SourceError> {
        let path = member(name)?;
        let size = std::fs::metadata(&path)
            .map_err(|e| bad(format!("{name}: {e}")))?
            .len();
        let mut f = std::fs::File::open(&path).map_err(|e| bad(format!("{name}: {e}")))?;
        let mut magic = [0u8; 4];
        let _ = f.read(&mut magic);
        std::io::Seek::rewind(&mut f).map_err(|e| bad(format!("{name}: {e}")))?;
        let digest = crate::digest::Digest::of_reader(&mut f)
            .map_err(|e| bad(format!("hashing {name}: {e}")))?;
        let dest = blobs.join(digest.hex());
        // A link, not a move: manifest.json may name one member twice.
        if !dest.exists() {
            std::fs::hard_link(&path, &dest).map_err(|e| bad(format!("linking {name}: {e}")))?;
        }
        Ok((digest, size, magic))
    };
    // Bounded like every JSON file here; the layout reader parses it.
    read_json(&image.config)?;
    let (config_digest, config_size, _) = to_blob(&image.config)?;
    let mut layers = Vec::new();
    for layer in &image.layers {
        let (digest, size, magic) = to_blob(layer)?;
        let media_type = match magic {
            [0x1f, 0x8b, ..] => "application/vnd.oci.image.layer.v1.tar+gzip",
            [0x28, 0xb5, 0x2f, 0xfd] => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        layers.push(serde_json::json!({
            "mediaType": media_type, "digest": digest.to_string(), "size": size,
        }));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest.to_string(),
            "size": config_size,
        },
        "layers": layers,
    }))
    .map_err(|e| bad(format!("writing the manifest: {e}")))?;
    let manifest_digest = crate::digest::Digest::of_bytes(&manifest);
    let write = |path: std::path::PathBuf, bytes: &[u8]| {
        std::fs::write(&path, bytes).map_err(|e| bad(format!("writing {}: {e}", path.display())))
    };
    write(blobs.join(manifest_digest.hex()), &manifest)?;
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest.to_string(),
            "size": manifest.len(),
        }],
    }))
    .map_err(|e| bad(format!("writing index.json: {e}")))?;
    write(tmp.path().join("index.json"), &index)?;
    write(
        tmp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    std::fs::remove_dir_all(&raw).map_err(|e| bad(format!("removing raw/: {e}")))?;
    Ok(tmp)
}

/// `path` with `.` and `..` folded, if it stays inside the archive's root.
fn inside_archive(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut out = std::path::PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::Normal(p) => out.push(p),
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(out)
}

fn is_alg_dir(name: &str) -> bool {
    name.strip_prefix("blobs/")
        .is_some_and(|alg| !alg.is_empty() && alg.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn is_blob_name(name: &str) -> bool {
    let mut parts = name.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some("blobs"), Some(alg), Some(hex), None)
            if !alg.is_empty() && alg.bytes().all(|b| b.is_ascii_alphanumeric())
                && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_not_images() {
        assert_eq!(ImageSource::parse("target/app").unwrap(), None);
        assert_eq!(ImageSource::parse("/usr/bin/ls").unwrap(), None);
    }

    #[test]
    fn prefixes_select_the_transport() {
        assert_eq!(
            ImageSource::parse("oci:/no/such/layout:v1").unwrap(),
            Some(ImageSource::OciLayout {
                path: PathBuf::from("/no/such/layout"),
                tag: Some("v1".into())
            })
        );
        assert_eq!(
            ImageSource::parse("oci-archive:img.tar").unwrap(),
            Some(ImageSource::OciArchive(PathBuf::from("img.tar")))
        );
        assert_eq!(
            ImageSource::parse("docker-archive:img.tar").unwrap(),
            Some(ImageSource::DockerArchive(PathBuf::from("img.tar")))
        );
        match ImageSource::parse("docker://localhost:5000/app:v2").unwrap() {
            Some(ImageSource::Registry(r)) => {
                assert_eq!(r.registry, "localhost:5000");
                assert_eq!(r.repository, "app");
                assert_eq!(r.tag.as_deref(), Some("v2"));
            }
            other => panic!("not a registry source: {other:?}"),
        }
    }

    /// A layout with one image tagged v1 whose config says Entrypoint ["/app"].
    fn one_image_layout() -> tempfile::TempDir {
        use oci_spec::image::MediaType;
        use serde_json::json;
        let tmp = tempfile::tempdir().unwrap();
        let layout = super::super::Layout::create(tmp.path()).unwrap();
        let put = |media: MediaType, bytes: &[u8]| {
            let (d, size) = layout.write_blob(bytes).unwrap();
            json!({"mediaType": media.to_string(), "digest": d.to_string(), "size": size})
        };
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Entrypoint": ["/app"]},
        });
        let config = put(MediaType::ImageConfig, config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": config, "layers": [],
        });
        let mut d = put(MediaType::ImageManifest, manifest.to_string().as_bytes());
        d["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
        let index = json!({"schemaVersion": 2, "manifests": [d]});
        layout.write_index(index.to_string().as_bytes()).unwrap();
        tmp
    }

    fn entrypoint(img: &super::super::LoadedImage) -> Option<Vec<String>> {
        img.config.config().as_ref()?.entrypoint().clone()
    }

    #[test]
    fn oci_archives_load_from_a_private_dir() {
        let layout = one_image_layout();
        let out = tempfile::tempdir().unwrap();
        let tar_path = out.path().join("img.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        b.append_dir_all(".", layout.path()).unwrap();
        b.finish().unwrap();
        drop(b);
        let arg = format!("oci-archive:{}", tar_path.display());
        let opened = ImageSource::parse(&arg)
            .unwrap()
            .unwrap()
            .open(&arg, None)
            .unwrap();
        assert_eq!(entrypoint(&opened.image), Some(vec!["/app".to_owned()]));
        assert!(!opened.image.dir.starts_with(out.path()));
    }

    #[test]
    fn oci_layouts_load_by_tag() {
        let tmp = one_image_layout();
        let arg = format!("oci:{}:v1", tmp.path().display());
        let src = ImageSource::parse(&arg).unwrap().unwrap();
        let img = src.load(&arg, None).unwrap();
        assert_eq!(
            img.config
                .config()
                .as_ref()
                .unwrap()
                .entrypoint()
                .as_deref(),
            Some(&["/app".to_owned()][..])
        );
        let missing = format!("oci:{}:v2", tmp.path().display());
        let err = ImageSource::parse(&missing)
            .unwrap()
            .unwrap()
            .load(&missing, None);
        assert!(err.is_err(), "tag v2 does not exist");
    }

    #[test]
    fn hostile_archive_entries_are_refused() {
        let cases: [(&[u8], tar::EntryType, &str); 4] = [
            (b"blobs/../../x", tar::EntryType::Regular, "dot-dot"),
            (b"/etc/x", tar::EntryType::Regular, "absolute"),
            (b"index.json", tar::EntryType::Symlink, "symlink"),
            (b"index.json", tar::EntryType::Link, "hardlink"),
        ];
        for (name, kind, what) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let tar_path = tmp.path().join("a.tar");
            let mut b = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_size(if kind == tar::EntryType::Regular {
                1
            } else {
                0
            });
            h.set_entry_type(kind);
            // Raw name bytes: set_path itself refuses "..".
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            if kind != tar::EntryType::Regular {
                h.set_link_name("/etc/passwd").unwrap();
            }
            h.set_cksum();
            let body: &[u8] = if kind == tar::EntryType::Regular {
                b"x"
            } else {
                b""
            };
            b.append(&h, body).unwrap();
            b.finish().unwrap();
            drop(b);
            let arg = format!("oci-archive:{}", tar_path.display());
            let err = ImageSource::parse(&arg)
                .unwrap()
                .unwrap()
                .open(&arg, None)
                .err();
            let err = err.unwrap_or_else(|| panic!("{what} entry accepted"));
            assert!(
                err.to_string().contains("not part of an OCI layout"),
                "{what}: {err}"
            );
            assert!(!tmp.path().parent().unwrap().join("x").exists(), "{what}");
        }
    }

    #[test]
    fn unread_transports_say_so() {
        let arg = "docker-archive:img.tar";
        let err = ImageSource::parse(arg)
            .unwrap()
            .unwrap()
            .load(arg, None)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("skopeo copy docker-archive:img.tar oci:DIR"),
            "{err}"
        );
    }

    #[test]
    fn empty_or_bad_references_are_refused() {
        assert!(ImageSource::parse("oci:").is_err());
        assert!(ImageSource::parse("oci-archive:").is_err());
        assert!(ImageSource::parse("docker://").is_err());
        assert!(ImageSource::parse("docker://UPPER/Case").is_err());
    }

    /// A docker archive of `entries`: (name, regular file bytes) or (name, "->target") links.
    fn docker_tar(dir: &std::path::Path, entries: &[(&str, &[u8])]) -> std::path::PathBuf {
        let file = dir.join("d.tar");
        let mut b = tar::Builder::new(std::fs::File::create(&file).unwrap());
        for (name, bytes) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match bytes.strip_prefix(b"->") {
                Some(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    h.set_link_name(std::str::from_utf8(target).unwrap())
                        .unwrap();
                    b.append_data(&mut h, name, std::io::empty()).unwrap();
                }
                None => {
                    h.set_size(bytes.len() as u64);
                    // set_path would refuse `..`: write the name bytes directly.
                    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
                    h.set_cksum();
                    b.append(&h, *bytes).unwrap();
                }
            }
        }
        b.finish().unwrap();
        file
    }

    #[test]
    fn docker_archives_become_layouts_and_hostile_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/app"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let manifest = br#"[{"Config":"c.json","RepoTags":["x:1"],"Layers":["id/layer.tar"]}]"#;
        let mut layer = tar::Builder::new(Vec::new());
        layer.finish().unwrap();
        let layer = layer.into_inner().unwrap();
        let file = docker_tar(
            dir.path(),
            &[
                ("manifest.json", manifest),
                ("c.json", config),
                ("l.tar", &layer),
                ("id/layer.tar", b"->../l.tar"),
            ],
        );
        let arg = format!("docker-archive:{}", file.display());
        let opened = ImageSource::parse(&arg)
            .unwrap()
            .unwrap()
            .open(&arg, None)
            .unwrap();
        assert_eq!(opened.image.layers.len(), 1);
        assert_eq!(
            opened.image.layers[0].media_type,
            "application/vnd.oci.image.layer.v1.tar"
        );
        opened.image.verify_layers().unwrap();

        for (entries, want) in [
            (
                vec![("manifest.json", &manifest[..]), ("../x", &b"x"[..])],
                "reaches outside the archive",
            ),
            (
                vec![
                    ("manifest.json", &manifest[..]),
                    ("id/layer.tar", &b"->../../etc/passwd"[..]),
                ],
                "reaches outside the archive",
            ),
            (
                vec![(
                    "manifest.json",
                    &br#"[{"Config":"../c.json","Layers":[]}]"#[..],
                )],
                "outside the archive",
            ),
            (
                vec![(
                    "manifest.json",
                    &br#"[{"Config":"/etc/passwd","Layers":[]}]"#[..],
                )],
                "outside the archive",
            ),
            (vec![("manifest.json", &b"[]"[..])], "lists no image"),
        ] {
            let sub = tempfile::tempdir().unwrap();
            let file = docker_tar(sub.path(), &entries);
            let arg = format!("docker-archive:{}", file.display());
            let err = ImageSource::parse(&arg)
                .unwrap()
                .unwrap()
                .open(&arg, None)
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains(want), "{want}: {err}");
            assert!(!sub.path().join("x").exists() && !dir.path().join("x").exists());
        }
    }
}
