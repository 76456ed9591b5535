//! Image assembly: deterministic layers, canonical OCI JSON, the OCI image layout on disk.
//! Pure file output: no process, no network.

pub mod archive;
pub mod base;
pub mod config;
pub mod layer;
pub mod layout;
pub mod users;

use std::path::{Path, PathBuf};

pub use config::ImageMeta;
pub use layer::{EntryKind, FileSource, LayerBlob, LayerEntry, LayerSpec};
pub use layout::{ImageOutput, LoadedImage, read_image, write_image};

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid layer entry {path:?}: {reason}")]
    BadEntry { path: String, reason: String },
    #[error("invalid OCI layout {path}: {reason}")]
    BadLayout { path: PathBuf, reason: String },
    #[error("serializing {what}: {reason}")]
    Json { what: &'static str, reason: String },
}

/// Maps an I/O error to `ImageError::Io` naming the action and the path.
pub(crate) fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> ImageError + 'a {
    move |source| ImageError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
