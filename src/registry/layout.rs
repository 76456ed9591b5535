//! Reading the image to push from an OCI image layout: `index.json` → the manifest (or index)
//! picked by its `org.opencontainers.image.ref.name` → the blobs under `blobs/sha256/`.
//! Manifests and configs are small and read whole; layers are only stat'ed here and streamed
//! from disk when uploaded.

use crate::digest::Digest;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use std::path::{Path, PathBuf};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Manifests bigger than this are not manifests (registries cap them at 4 MiB too).
const MANIFEST_MAX: u64 = 4 << 20;
/// Index → manifest is one level; a little slack for nested indexes, none for cycles.
const MAX_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not an OCI image layout: {reason}")]
    NotALayout { path: PathBuf, reason: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{layout} has no image tagged {tag:?} (tags: {available})")]
    NoSuchTag {
        layout: PathBuf,
        tag: String,
        available: String,
    },
    #[error("{layout} holds {count} images: name one as LAYOUT:TAG (tags: {available})")]
    Ambiguous {
        layout: PathBuf,
        count: usize,
        available: String,
    },
    #[error("blob {digest} is missing from {layout}")]
    MissingBlob { layout: PathBuf, digest: String },
    #[error(
        "blob {path} has {actual} bytes but its descriptor says {expected}: the layout is corrupt"
    )]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path} does not match its digest: the layout is corrupt")]
    DigestMismatch { path: PathBuf },
}

/// A blob to push: where it is on disk and what it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalBlob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub path: PathBuf,
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
}

impl LocalManifest {
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }
}

/// The image chosen from a layout.
#[derive(Clone, Debug)]
pub struct LayoutImage {
    pub dir: PathBuf,
    /// The `ref.name` it was picked by, if it has one.
    pub tag: Option<String>,
    pub root: LocalManifest,
}

impl LayoutImage {
    /// Opens `dir` and picks the image tagged `tag`, or the only image when `tag` is `None`.
    pub fn open(dir: &Path, tag: Option<&str>) -> Result<Self, LayoutError> {
        let marker = dir.join("oci-layout");
        let marker_text =
            std::fs::read_to_string(&marker).map_err(|e| LayoutError::NotALayout {
                path: dir.to_owned(),
                reason: format!("cannot read its oci-layout file ({e})"),
            })?;
        if !marker_text.contains("imageLayoutVersion") {
            return Err(LayoutError::NotALayout {
                path: dir.to_owned(),
                reason: "its oci-layout file has no imageLayoutVersion".into(),
            });
        }
        let index_path = dir.join("index.json");
        let index_bytes = read_small(&index_path)?;
        let index: ImageIndex =
            serde_json::from_slice(&index_bytes).map_err(|e| LayoutError::Invalid {
                path: index_path.clone(),
                message: format!("not an OCI image index: {e}"),
            })?;
        let entries = index.manifests();
        let name_of = |d: &Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .cloned()
        };
        let available = || {
            let names: Vec<String> = entries.iter().filter_map(name_of).collect();
            if names.is_empty() {
                "none".to_owned()
            } else {
                names.join(", ")
            }
        };
        let chosen = match tag {
            Some(tag) => entries
                .iter()
                .find(|d| name_of(d).is_some_and(|name| ref_name_matches(&name, tag)))
                .ok_or_else(|| LayoutError::NoSuchTag {
                    layout: dir.to_owned(),
                    tag: tag.to_owned(),
                    available: available(),
                })?,
            None => match entries.as_slice() {
                [only] => only,
                [] => {
                    return Err(LayoutError::Invalid {
                        path: index_path,
                        message: "the layout holds no image".into(),
                    });
                }
                many => {
                    return Err(LayoutError::Ambiguous {
                        layout: dir.to_owned(),
                        count: many.len(),
                        available: available(),
                    });
                }
            },
        };
        let root = load_manifest(dir, chosen, 0)?;
        Ok(LayoutImage {
            dir: dir.to_owned(),
            tag: name_of(chosen),
            root,
        })
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

/// `ref.name` is usually the bare tag (`v1`), sometimes a whole reference (`reg/app:v1`).
fn ref_name_matches(name: &str, tag: &str) -> bool {
    if name == tag {
        return true;
    }
    match name.rsplit_once(':') {
        Some((before, after)) => after == tag && !after.contains('/') && !before.is_empty(),
        None => false,
    }
}

fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

fn descriptor_digest(dir: &Path, d: &Descriptor) -> Result<Digest, LayoutError> {
    let text = d.digest().to_string();
    Digest::parse(&text).ok_or_else(|| LayoutError::Invalid {
        path: dir.join("index.json"),
        message: format!("unsupported digest {text:?} (only sha256 is supported)"),
    })
}

fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    // The hex was validated by Digest::parse, so this stays inside blobs/sha256.
    dir.join("blobs").join("sha256").join(digest.hex())
}

fn read_small(path: &Path) -> Result<Vec<u8>, LayoutError> {
    let io = |source| LayoutError::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MANIFEST_MAX {
        return Err(LayoutError::Invalid {
            path: path.to_owned(),
            message: format!("{len} bytes is too big for a manifest or index"),
        });
    }
    std::fs::read(path).map_err(io)
}

fn local_blob(dir: &Path, d: &Descriptor) -> Result<LocalBlob, LayoutError> {
    let digest = descriptor_digest(dir, d)?;
    let path = blob_path(dir, &digest);
    let meta = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta,
        _ => {
            return Err(LayoutError::MissingBlob {
                layout: dir.to_owned(),
                digest: digest.to_string(),
            });
        }
    };
    if meta.len() != d.size() {
        return Err(LayoutError::SizeMismatch {
            path,
            expected: d.size(),
            actual: meta.len(),
        });
    }
    Ok(LocalBlob {
        digest,
        size: d.size(),
        media_type: d.media_type().to_string(),
        path,
    })
}

fn load_manifest(dir: &Path, d: &Descriptor, depth: usize) -> Result<LocalManifest, LayoutError> {
    let blob = local_blob(dir, d)?;
    if depth > MAX_DEPTH {
        return Err(LayoutError::Invalid {
            path: blob.path,
            message: "indexes nest too deep".into(),
        });
    }
    let bytes = read_small(&blob.path)?;
    if Digest::of_bytes(&bytes) != blob.digest {
        return Err(LayoutError::DigestMismatch { path: blob.path });
    }
    // The descriptor's media type decides; the document's own `mediaType` is the fallback.
    let declared = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_owned)
        });
    let media_type = match blob.media_type.as_str() {
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST => {
            blob.media_type.clone()
        }
        _ => declared.unwrap_or_else(|| OCI_MANIFEST.to_owned()),
    };
    let invalid = |what: &str, e: serde_json::Error| LayoutError::Invalid {
        path: blob.path.clone(),
        message: format!("not a valid {what}: {e}"),
    };
    if is_index_type(&media_type) {
        let index: ImageIndex =
            serde_json::from_slice(&bytes).map_err(|e| invalid("image index", e))?;
        let children = index
            .manifests()
            .iter()
            .map(|child| load_manifest(dir, child, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LocalManifest {
            digest: blob.digest,
            media_type,
            bytes,
            blobs: Vec::new(),
            children,
        })
    } else {
        let manifest: ImageManifest =
            serde_json::from_slice(&bytes).map_err(|e| invalid("image manifest", e))?;
        let mut blobs = vec![local_blob(dir, manifest.config())?];
        for layer in manifest.layers() {
            blobs.push(local_blob(dir, layer)?);
        }
        Ok(LocalManifest {
            digest: blob.digest,
            media_type,
            bytes,
            blobs,
            children: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(dir: &Path, bytes: &[u8]) -> Digest {
        let d = Digest::of_bytes(bytes);
        let p = blob_path(dir, &d);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
        d
    }

    fn desc(media: &str, d: &Digest, size: usize, tag: Option<&str>) -> serde_json::Value {
        let mut v = serde_json::json!({"mediaType": media, "digest": d.to_string(), "size": size});
        if let Some(tag) = tag {
            v["annotations"] = serde_json::json!({ REF_NAME: tag });
        }
        v
    }

    /// A layout with one image per tag; returns (dir, manifest digests).
    fn layout(tags: &[&str]) -> (tempfile::TempDir, Vec<Digest>) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let mut entries = Vec::new();
        let mut digests = Vec::new();
        for tag in tags {
            let config = format!(r#"{{"architecture":"amd64","os":"linux","tag":"{tag}"}}"#);
            let c = put(dir, config.as_bytes());
            let layer = format!("layer of {tag}");
            let l = put(dir, layer.as_bytes());
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": desc("application/vnd.oci.image.config.v1+json", &c, config.len(), None),
                "layers": [desc("application/vnd.oci.image.layer.v1.tar+gzip", &l, layer.len(), None)],
            })
            .to_string();
            let m = put(dir, manifest.as_bytes());
            entries.push(desc(OCI_MANIFEST, &m, manifest.len(), Some(tag)));
            digests.push(m);
        }
        let index = serde_json::json!({"schemaVersion": 2, "manifests": entries});
        std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
        (tmp, digests)
    }

    #[test]
    fn picks_by_tag_or_the_only_image() {
        let (tmp, digests) = layout(&["v1"]);
        let image = LayoutImage::open(tmp.path(), None).unwrap();
        assert_eq!(image.digest(), &digests[0]);
        assert_eq!(image.tag.as_deref(), Some("v1"));
        assert_eq!(image.blobs().len(), 2);
        assert_eq!(
            image.root.blobs[0].media_type,
            "application/vnd.oci.image.config.v1+json"
        );

        let (tmp, digests) = layout(&["a", "b"]);
        assert_eq!(
            LayoutImage::open(tmp.path(), Some("b")).unwrap().digest(),
            &digests[1]
        );
        let err = LayoutImage::open(tmp.path(), None).unwrap_err().to_string();
        assert!(err.contains("2 images") && err.contains("a, b"), "{err}");
        let err = LayoutImage::open(tmp.path(), Some("c"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"c\"") && err.contains("a, b"), "{err}");
    }

    #[test]
    fn corrupt_layouts_are_named() {
        let (tmp, digests) = layout(&["v1"]);
        let dir = tmp.path();
        // A layer that lost bytes.
        let image = LayoutImage::open(dir, None).unwrap();
        let layer = image.root.blobs[1].path.clone();
        std::fs::write(&layer, "short").unwrap();
        let err = LayoutImage::open(dir, None).unwrap_err();
        assert!(matches!(err, LayoutError::SizeMismatch { .. }), "{err}");
        std::fs::remove_file(&layer).unwrap();
        assert!(matches!(
            LayoutImage::open(dir, None).unwrap_err(),
            LayoutError::MissingBlob { .. }
        ));
        // A manifest whose bytes changed.
        let manifest = blob_path(dir, &digests[0]);
        let mut bytes = std::fs::read(&manifest).unwrap();
        bytes[0] = b' ';
        std::fs::write(&manifest, bytes).unwrap();
        assert!(matches!(
            LayoutImage::open(dir, None).unwrap_err(),
            LayoutError::DigestMismatch { .. }
        ));
        // Not a layout at all.
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            LayoutImage::open(empty.path(), None).unwrap_err(),
            LayoutError::NotALayout { .. }
        ));
    }

    #[test]
    fn indexes_carry_their_manifests() {
        let (tmp, digests) = layout(&["amd64", "arm64"]);
        let dir = tmp.path();
        let children: Vec<_> = digests
            .iter()
            .map(|d| {
                let size = std::fs::metadata(blob_path(dir, d)).unwrap().len() as usize;
                desc(OCI_MANIFEST, d, size, None)
            })
            .collect();
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children})
                .to_string();
        let i = put(dir, index.as_bytes());
        let top = serde_json::json!({"schemaVersion": 2, "manifests": [desc(OCI_INDEX, &i, index.len(), Some("multi"))]});
        std::fs::write(dir.join("index.json"), top.to_string()).unwrap();
        let image = LayoutImage::open(dir, Some("multi")).unwrap();
        assert!(image.root.is_index());
        assert_eq!(image.root.children.len(), 2);
        assert_eq!(image.blobs().len(), 4);
    }

    #[test]
    fn ref_names_can_be_full_references() {
        assert!(ref_name_matches("v1", "v1"));
        assert!(ref_name_matches("docker.io/library/app:v1", "v1"));
        assert!(!ref_name_matches("localhost:5000/app", "5000/app"));
        assert!(!ref_name_matches("v10", "v1"));
    }
}
