//! Image assembly: deterministic layers, canonical OCI JSON, the OCI image layout on disk.
//! Pure file output: no process, no network.

pub(crate) mod archive;
pub(crate) mod base;
pub(crate) mod blob;
pub(crate) mod config;
pub(crate) mod layer;
pub(crate) mod layout;
pub(crate) mod pgzip;
pub mod source;
pub(crate) mod users;

use crate::fsio::IoError;
use std::path::{Path, PathBuf};

pub use archive::{ArchiveFormat, write_archive};
pub use base::{BASE_MTIME, Base, BaseError, BasePackage, load as load_base};
pub use blob::BlobWriter;
pub use config::{ImageMeta, PlatformManifest};
pub use layer::{
    EntryKind, FileSource, LayerBlob, LayerCompression, LayerEntry, LayerFormat, LayerSpec,
    write_layer, write_layer_as,
};
pub use layout::{
    ImageOutput, Layout, LoadedImage, LocalBlob, LocalManifest, SelectedImage, describe,
    parse_layout_ref, read_image, write_image, write_platform_index,
};
pub use users::{Owner, User};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("invalid layer entry {path:?}: {reason}")]
    BadEntry { path: String, reason: String },
    #[error("invalid OCI layout {path}: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    #[error("serializing {what}: {reason}")]
    Json { what: &'static str, reason: String },
    #[error("{layout} has no image tagged {tag:?}; tags: {available}")]
    NoSuchTag {
        layout: PathBuf,
        tag: String,
        available: String,
    },
    #[error("{layout} holds {count} images{}: name one as LAYOUT:TAG (tags: {available})", for_tag(.tag))]
    Ambiguous {
        layout: PathBuf,
        tag: Option<String>,
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
    #[error("{path} does not match its digest {expected}: the layout is corrupt")]
    DigestMismatch { path: PathBuf, expected: String },
    #[error(
        "{path} is not a regular file (a symlink, folder or device); a layout's blobs must be plain files"
    )]
    NotARegularFile { path: PathBuf },
    /// docker-archive of an index: docker's manifest.json has no platforms, and `docker load`
    /// would give every platform's image the one name, keeping the last.
    #[error(
        "a docker-archive holds one platform's image, and {digest} is an index of {platforms}: `docker load` would give each the same name and keep the last; build one platform per docker-archive (--platform linux/amd64), or write --format oci-archive, which holds the index"
    )]
    DockerArchiveOfIndex { digest: String, platforms: String },
    #[error("{path} is {size} bytes; JSON documents over {limit} bytes are refused")]
    TooBig {
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

fn for_tag(tag: &Option<String>) -> String {
    match tag {
        Some(t) => format!(" tagged {t:?}"),
        None => String::new(),
    }
}

/// Maps an I/O error to `ImageError::Io` naming the action and the path.
pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
    move |source| IoError::new(action, path, source).into()
}
