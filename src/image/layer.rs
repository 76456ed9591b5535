//! One layer: entries → deterministic tar → gzip → blob, hashed in one streaming pass.
use super::ImageError;
use crate::digest::Digest;
use std::path::{Path, PathBuf};

pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

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
}

pub fn write_layer(_spec: &LayerSpec, _blobs_dir: &Path) -> Result<LayerBlob, ImageError> {
    unimplemented!("image helper")
}
