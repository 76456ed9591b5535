//! Single-file outputs made from a finished OCI layout: `oci-archive` (the layout as a tar) and
//! `docker-archive` (the blobs plus the `manifest.json` that `docker load` and `podman load`
//! read). Deterministic like the layers: sorted entries, fixed owner, mode and mtime.
//!
//! The docker archive leaves out `oci-layout` and `index.json`: with them, podman takes the tar
//! for an OCI archive and names the image after the index's bare tag.

use super::layer::{EntryKind, FileSource, LayerEntry, LayerSpec, write_tar};
use super::{ImageError, LoadedImage, io_err};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    Oci,
    Docker,
}

/// The files of a layout folder, as tar entries relative to it.
fn layout_entries(layout: &Path) -> Result<Vec<LayerEntry>, ImageError> {
    Ok(crate::fsio::tree(layout)?
        .into_iter()
        .filter(|e| e.kind.is_file())
        .map(|e| LayerEntry {
            path: e.rel,
            mode: 0o644,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Path(e.path)),
        })
        .collect())
}

/// docker's `manifest.json` for one image: config and layers by their paths in the archive.
pub(crate) fn docker_manifest(image: &LoadedImage, repo_tag: &str) -> Result<Vec<u8>, ImageError> {
    let path_of = |d: &oci_spec::image::Digest| format!("blobs/sha256/{}", d.digest());
    let manifest = serde_json::json!([{
        "Config": path_of(image.manifest.config().digest()),
        "RepoTags": [repo_tag],
        "Layers": image.manifest.layers().iter().map(|l| path_of(l.digest())).collect::<Vec<_>>(),
    }]);
    super::config::canonical_json(&manifest)
}

/// Writes `layout` as a tar archive at `out`, atomically (a temporary sibling, then renamed).
pub fn write_archive(
    layout: &Path,
    out: &Path,
    format: ArchiveFormat,
    repo_tag: &str,
    mtime: u64,
) -> Result<(), ImageError> {
    let mut entries = layout_entries(layout)?;
    if format == ArchiveFormat::Docker {
        entries.retain(|e| e.path != "index.json" && e.path != super::layout::OCI_LAYOUT_FILE);
        let opened = super::Layout::open(layout)?;
        let all = opened.load_all(None)?;
        let [image] = all.as_slice() else {
            let platforms: Vec<String> = all
                .iter()
                .map(|i| format!("{}/{}", i.config.os(), i.config.architecture()))
                .collect();
            return Err(ImageError::DockerArchiveOfIndex {
                digest: opened.select(None)?.digest().to_string(),
                platforms: platforms.join(", "),
            });
        };
        entries.push(LayerEntry {
            path: "manifest.json".into(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Bytes(docker_manifest(image, repo_tag)?)),
        });
    }
    let spec = LayerSpec {
        entries,
        mtime,
        comment: out.display().to_string(),
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(io_err("creating", &parent))?;
    // Written in a locked folder beside `out` (one rename away, on its file system): a build
    // killed while writing hundreds of MiB leaves a folder the next build sweeps.
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = crate::workdir::WorkDir::new_in(&parent, &partial_prefix(&name))
        .map_err(io_err("creating a folder in", &parent))?;
    let temp_path = staging.path().join("archive");
    let temp = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temp_path)
            .map_err(io_err("creating", &temp_path))?
    };
    let writer = std::io::BufWriter::new(temp);
    let writer = write_tar(&spec, writer)?;
    let temp = writer
        .into_inner()
        .map_err(|e| io_err("writing", out)(e.into_error()))?;
    {
        use std::os::unix::fs::PermissionsExt;
        temp.set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io_err("setting the mode of", out))?;
    }
    temp.sync_all().map_err(io_err("syncing", out))?;
    std::fs::rename(&temp_path, out).map_err(io_err("naming", out))?;
    staging.close().map_err(io_err("removing", &parent))?;
    Ok(())
}

/// The folders an archive named `name` is written in before it is renamed into place
/// (swept by the next build when their writer died).
pub(crate) fn partial_prefix(name: &str) -> String {
    format!(".{name}.partial-")
}
