//! The OCI image layout: written in a temporary sibling and swapped into place, read back.
//! `index.json` is written last, and the swap is one rename (or an atomic exchange when a
//! previous layout is there), so a reader sees the old layout or the new one, never a mix.

use super::config::{self, REF_NAME_ANNOTATION};
use super::layer::{self, LayerBlob, LayerSpec};
use super::{ImageError, ImageMeta, io_err};
use crate::digest::{Digest, HashingWriter};
use oci_spec::image::{ImageConfiguration, ImageIndex, ImageManifest};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const OCI_LAYOUT_FILE: &str = "oci-layout";
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
    /// Paths of the layer blobs, bottom layer first.
    pub layer_blobs: Vec<PathBuf>,
    /// The annotations of this image's entry in index.json.
    pub index_annotations: BTreeMap<String, String>,
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
pub fn write_blob(blobs_dir: &Path, bytes: &[u8]) -> Result<(Digest, u64), ImageError> {
    let temp = tempfile::NamedTempFile::new_in(blobs_dir)
        .map_err(io_err("creating a blob in", blobs_dir))?;
    let mut w = HashingWriter::new(temp);
    w.write_all(bytes)
        .map_err(io_err("writing a blob in", blobs_dir))?;
    let (temp, digest, size) = w.finish();
    layer::persist_blob(temp, blobs_dir, &digest)?;
    Ok((digest, size))
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
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{name}.staging-"))
        .tempdir_in(&parent)
        .map_err(io_err("creating a staging folder in", &parent))?;
    let dir = staging.path();
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io_err("creating", &blobs))?;
    // The staging folder is created 0700; the published layout is readable by anyone.
    for d in [dir.to_path_buf(), dir.join("blobs"), blobs.clone()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err("setting the mode of", &d))?;
    }

    let written: Vec<LayerBlob> = layers
        .iter()
        .map(|l| layer::write_layer(l, &blobs))
        .collect::<Result<_, _>>()?;
    let (config_digest, config_size) = write_blob(&blobs, &config::config_json(meta, &written)?)?;
    let manifest =
        config::manifest_json(&config_digest, config_size, &written, manifest_annotations)?;
    let (manifest_digest, manifest_size) = write_blob(&blobs, &manifest)?;
    write_file(&dir.join(OCI_LAYOUT_FILE), OCI_LAYOUT_CONTENT)?;
    // Last: a layout without index.json names no image.
    write_file(
        &dir.join("index.json"),
        &config::index_json(&manifest_digest, manifest_size, tag, meta)?,
    )?;

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

/// Moves a finished layout folder to `out` in one step. A previous layout at `out` is exchanged
/// atomically and then deleted; anything at `out` that is not an OCI layout is refused.
pub fn publish(staged: &Path, out: &Path) -> Result<(), ImageError> {
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

fn read_small(path: &Path) -> Result<Vec<u8>, ImageError> {
    const LIMIT: u64 = 4 << 20;
    let meta = std::fs::metadata(path).map_err(io_err("reading", path))?;
    if meta.len() > LIMIT {
        return Err(bad_layout(
            path,
            format!(
                "is {} bytes; JSON documents over {LIMIT} bytes are refused",
                meta.len()
            ),
        ));
    }
    std::fs::read(path).map_err(io_err("reading", path))
}

fn blob_path(layout: &Path, digest: &str) -> Result<PathBuf, ImageError> {
    let d = Digest::parse(digest)
        .ok_or_else(|| bad_layout(layout, format!("unsupported digest {digest:?}")))?;
    Ok(layout.join("blobs").join(d.algorithm()).join(d.hex()))
}

/// Reads a JSON blob and checks it against its digest.
fn read_verified(layout: &Path, digest: &str) -> Result<Vec<u8>, ImageError> {
    let path = blob_path(layout, digest)?;
    let bytes = read_small(&path)?;
    if Digest::of_bytes(&bytes).to_string() != digest {
        return Err(bad_layout(
            &path,
            format!("content does not match its digest {digest}"),
        ));
    }
    Ok(bytes)
}

/// Reads the image named `tag` (or the only one) from an OCI layout, checking digests.
pub fn read_image(layout: &Path, tag: Option<&str>) -> Result<LoadedImage, ImageError> {
    if !layout.join(OCI_LAYOUT_FILE).is_file() {
        return Err(bad_layout(
            layout,
            "not an OCI image layout (no oci-layout file)",
        ));
    }
    let index_path = layout.join("index.json");
    let index: ImageIndex = serde_json::from_slice(&read_small(&index_path)?)
        .map_err(|e| bad_layout(&index_path, e.to_string()))?;
    let name_of = |d: &oci_spec::image::Descriptor| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION).cloned())
    };
    let manifests = index.manifests();
    let chosen = match tag {
        Some(t) => manifests.iter().find(|d| name_of(d).as_deref() == Some(t)),
        None if manifests.len() == 1 => manifests.first(),
        None => None,
    };
    let Some(descriptor) = chosen else {
        let tags: Vec<String> = manifests.iter().filter_map(name_of).collect();
        return Err(bad_layout(
            &index_path,
            match tag {
                Some(t) => format!("no image tagged {t:?}; tags: {}", tags.join(", ")),
                None => format!(
                    "{} images; name one with LAYOUT:TAG ({})",
                    manifests.len(),
                    tags.join(", ")
                ),
            },
        ));
    };
    let manifest_digest = descriptor.digest().to_string();
    let manifest: ImageManifest = serde_json::from_slice(&read_verified(layout, &manifest_digest)?)
        .map_err(|e| bad_layout(layout, format!("manifest {manifest_digest}: {e}")))?;
    let config_digest = manifest.config().digest().to_string();
    let config: ImageConfiguration =
        serde_json::from_slice(&read_verified(layout, &config_digest)?)
            .map_err(|e| bad_layout(layout, format!("config {config_digest}: {e}")))?;
    let mut layer_blobs = Vec::new();
    for l in manifest.layers() {
        let path = blob_path(layout, l.digest().as_ref())?;
        if !path.is_file() {
            return Err(bad_layout(&path, "layer blob missing"));
        }
        layer_blobs.push(path);
    }
    Ok(LoadedImage {
        dir: layout.to_path_buf(),
        tag: name_of(descriptor),
        manifest_digest: Digest::parse(&manifest_digest)
            .ok_or_else(|| bad_layout(layout, "bad manifest digest"))?,
        manifest,
        config,
        layer_blobs,
        index_annotations: descriptor
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
    })
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
        if k != REF_NAME_ANNOTATION {
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
        assert_eq!(r.layer_blobs.len(), 1);
        assert_eq!(read_image(&out, None).unwrap().tag.as_deref(), Some("v1"));
        assert!(
            read_image(&out, Some("v2"))
                .unwrap_err()
                .to_string()
                .contains("no image tagged \"v2\"; tags: v1")
        );
        // Tampering with the config is noticed.
        let config = blob_path(&out, &w.config_digest.to_string()).unwrap();
        std::fs::write(&config, b"{}").unwrap();
        assert!(
            read_image(&out, None)
                .unwrap_err()
                .to_string()
                .contains("does not match its digest")
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
