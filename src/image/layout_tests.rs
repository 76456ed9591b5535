//! The layout reader over hand-made layouts: the tag rule, nested indexes, corrupt and
//! hostile blobs, fsck.

use super::*;
use serde_json::{Value, json};

/// Builds a layout blob by blob; `index` writes index.json from the entries given.
struct Fixture {
    tmp: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Layout::create(tmp.path()).unwrap();
        Fixture { tmp }
    }

    fn dir(&self) -> &Path {
        self.tmp.path()
    }

    fn layout(&self) -> Layout {
        Layout::open(self.dir()).unwrap()
    }

    /// Stores `bytes`; returns a descriptor of them.
    fn put(&self, media: MediaType, bytes: &[u8]) -> Value {
        let (d, size) = self.layout().write_blob(bytes).unwrap();
        json!({"mediaType": media.to_string(), "digest": d.to_string(), "size": size})
    }

    /// An image manifest with a config and one layer, both unique to `name`.
    fn manifest(&self, name: &str, arch: &str) -> Value {
        let config = json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": {"Labels": {"name": name}},
        })
        .to_string();
        let config = self.put(MediaType::ImageConfig, config.as_bytes());
        let layer = self.put(
            MediaType::ImageLayerGzip,
            format!("layer of {name}").as_bytes(),
        );
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageManifest.to_string(),
            "config": config,
            "layers": [layer],
        });
        let mut d = self.put(MediaType::ImageManifest, manifest.to_string().as_bytes());
        d["platform"] = json!({"os": "linux", "architecture": arch});
        d
    }

    /// An index over `children`.
    fn index_of(&self, children: Vec<Value>) -> Value {
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MediaType::ImageIndex.to_string(),
            "manifests": children,
        });
        self.put(MediaType::ImageIndex, index.to_string().as_bytes())
    }

    fn tagged(mut d: Value, ref_name: &str) -> Value {
        d["annotations"] = json!({ ANNOTATION_REF_NAME: ref_name });
        d
    }

    fn index(&self, entries: Vec<Value>) {
        let index = json!({"schemaVersion": 2, "manifests": entries}).to_string();
        std::fs::write(self.dir().join("index.json"), index).unwrap();
    }

    fn blob(&self, d: &Value) -> PathBuf {
        let digest = Digest::parse(d["digest"].as_str().unwrap()).unwrap();
        self.layout().blob_path(&digest)
    }
}

/// index.json: "example.com/hello:v1" → an index of amd64 and arm64 manifests.
fn multi_platform() -> (Fixture, Value) {
    let f = Fixture::new();
    let amd64 = f.manifest("amd64", "amd64");
    let arm64 = f.manifest("arm64", "arm64");
    let index = f.index_of(vec![amd64, arm64]);
    f.index(vec![Fixture::tagged(index.clone(), "example.com/hello:v1")]);
    (f, index)
}

#[test]
fn a_full_reference_tags_a_nested_index_by_its_tag_part() {
    let (f, index) = multi_platform();
    let layout = f.layout();
    let image = layout.select(Some("v1")).unwrap();
    assert_eq!(
        image.digest().to_string(),
        index["digest"].as_str().unwrap()
    );
    assert_eq!(image.tag.as_deref(), Some("example.com/hello:v1"));
    assert!(image.root.is_index());
    assert_eq!(image.root.media_type, MediaType::ImageIndex.to_string());
    assert_eq!(image.root.children.len(), 2);
    let arches: Vec<String> = image
        .root
        .children
        .iter()
        .map(|c| c.platform.as_ref().unwrap().architecture().to_string())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    // Two configs and two layers, each with its path, size and media type.
    let blobs = image.blobs();
    assert_eq!(blobs.len(), 4);
    for b in &blobs {
        assert_eq!(std::fs::metadata(&b.path).unwrap().len(), b.size);
    }
    assert_eq!(
        image.root.children[0].blobs[0].media_type,
        MediaType::ImageConfig.to_string()
    );
    // The exact bytes, as the registry gets them.
    assert_eq!(
        Digest::of_bytes(&image.root.bytes),
        image.root.digest,
        "the bytes are the blob's"
    );
    // The whole reference works too; `None` picks the only entry.
    assert!(layout.select(Some("example.com/hello:v1")).is_ok());
    assert!(layout.select(None).is_ok());
    // run and inspect take the host's platform from the index.
    let loaded = layout.load(Some("v1")).unwrap();
    assert_eq!(
        loaded.config.architecture().to_string(),
        host_platform()[1],
        "{loaded:?}"
    );
    assert_eq!(loaded.layers.len(), 1);
}

/// `--platform` picks one manifest of an index; a platform the index lacks is named.
#[test]
fn a_platform_picks_its_manifest() {
    let (f, _) = multi_platform();
    let layout = f.layout();
    for arch in ["amd64", "arm64"] {
        let p: crate::recipe::Platform = format!("linux/{arch}").parse().unwrap();
        let loaded = layout.load_platform(Some("v1"), Some(&p)).unwrap();
        assert_eq!(loaded.config.architecture().to_string(), arch);
    }
    // A lone manifest of another platform is refused, naming what it has.
    let g = Fixture::new();
    let m = g.manifest("x", "amd64");
    g.index(vec![m]);
    let arm64: crate::recipe::Platform = "linux/arm64".parse().unwrap();
    let e = g.layout().load_platform(None, Some(&arm64)).unwrap_err();
    assert!(
        e.to_string()
            .contains("no manifest for linux/arm64 (it has linux/amd64)"),
        "{e}"
    );
}

#[test]
fn a_tag_is_not_a_prefix_and_missing_tags_are_listed() {
    let (f, _) = multi_platform();
    let err = f.layout().select(Some("v10")).unwrap_err();
    assert!(matches!(err, ImageError::NoSuchTag { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("no image tagged \"v10\"") && text.contains("tags: example.com/hello:v1"),
        "{text}"
    );
    assert!(f.layout().select(Some("hello:v1")).is_err());
}

#[test]
fn bare_tags_and_ambiguity() {
    let f = Fixture::new();
    let a = f.manifest("a", "amd64");
    let b = f.manifest("b", "amd64");
    let c = f.manifest("c", "amd64");
    f.index(vec![
        Fixture::tagged(a.clone(), "v1"),
        Fixture::tagged(b, "reg.example/app:v1"),
        Fixture::tagged(c.clone(), "v2"),
    ]);
    let layout = f.layout();
    assert_eq!(
        layout.select(Some("v2")).unwrap().digest().to_string(),
        c["digest"].as_str().unwrap()
    );
    let err = layout.select(Some("v1")).unwrap_err();
    assert!(
        matches!(err, ImageError::Ambiguous { count: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("tagged \"v1\"") && text.contains("v1, reg.example/app:v1, v2"),
        "{text}"
    );
    let err = layout.select(None).unwrap_err().to_string();
    assert!(
        err.contains("3 images") && err.contains("v1, reg.example/app:v1, v2"),
        "{err}"
    );
    // Two names for one manifest are not ambiguous.
    f.index(vec![
        Fixture::tagged(a.clone(), "v1"),
        Fixture::tagged(a, "reg.example/app:v1"),
    ]);
    assert!(f.layout().select(Some("v1")).is_ok());
}

#[test]
fn ref_names_can_be_full_references() {
    assert!(ref_name_matches("v1", "v1"));
    assert!(ref_name_matches("docker.io/library/app:v1", "v1"));
    assert!(!ref_name_matches("localhost:5000/app", "5000/app"));
    assert!(!ref_name_matches("v10", "v1"));
    assert!(!ref_name_matches("example.com/hello:v10", "v1"));
    assert!(!ref_name_matches(":v1", "v1"));
}

#[test]
fn corrupt_layouts_are_named() {
    let f = Fixture::new();
    let m = f.manifest("x", "amd64");
    f.index(vec![Fixture::tagged(m.clone(), "v1")]);
    let layout = f.layout();
    let image = layout.select(None).unwrap();
    // A layer that lost bytes.
    let layer = image.root.blobs[1].path.clone();
    std::fs::write(&layer, "short").unwrap();
    let err = layout.select(None).unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
    std::fs::remove_file(&layer).unwrap();
    let err = layout.select(None).unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    assert!(err.to_string().contains("is missing from"), "{err}");
    // A manifest whose bytes changed (same size).
    let manifest = f.blob(&m);
    let mut bytes = std::fs::read(&manifest).unwrap();
    bytes[0] = b' ';
    std::fs::write(&manifest, bytes).unwrap();
    let err = layout.select(None).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    // Not a layout at all.
    let empty = tempfile::tempdir().unwrap();
    let err = Layout::open(empty.path()).unwrap_err();
    assert!(err.to_string().contains("not an OCI image layout"), "{err}");
}

#[test]
fn symlinked_and_fifo_blobs_are_refused() {
    let f = Fixture::new();
    let m = f.manifest("x", "amd64");
    f.index(vec![Fixture::tagged(m.clone(), "v1")]);
    let image = f.layout().select(None).unwrap();
    // A layer replaced by a symlink to a file with the same bytes, outside the layout.
    let layer = image.root.blobs[1].path.clone();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("layer");
    std::fs::copy(&layer, &target).unwrap();
    std::fs::remove_file(&layer).unwrap();
    std::os::unix::fs::symlink(&target, &layer).unwrap();
    let err = f.layout().select(None).unwrap_err();
    assert!(matches!(err, ImageError::NotARegularFile { .. }), "{err}");
    // The manifest replaced by a FIFO: refused at once, not read forever.
    let manifest = f.blob(&m);
    std::fs::remove_file(&manifest).unwrap();
    nix::unistd::mkfifo(&manifest, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let err = f.layout().select(None).unwrap_err();
    assert!(matches!(err, ImageError::NotARegularFile { .. }), "{err}");
    // A symlinked index.json too.
    let index = f.dir().join("index.json");
    let elsewhere = outside.path().join("index.json");
    std::fs::rename(&index, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &index).unwrap();
    let err = f.layout().select(None).unwrap_err();
    assert!(matches!(err, ImageError::NotARegularFile { .. }), "{err}");
}

#[test]
fn oversized_json_is_refused() {
    let f = Fixture::new();
    let big = vec![b' '; (JSON_MAX + 1) as usize];
    std::fs::write(f.dir().join("index.json"), big).unwrap();
    let err = f.layout().select(None).unwrap_err();
    assert!(matches!(err, ImageError::TooBig { .. }), "{err}");
}

#[test]
fn fsck_finds_a_tampered_layer() {
    let (f, _) = multi_platform();
    let layout = f.layout();
    assert!(layout.fsck().unwrap().is_empty());
    let image = layout.select(Some("v1")).unwrap();
    let layer = &image.root.children[1].blobs[1];
    // Same size, other bytes: select (which only stats layers) does not see it; fsck does.
    let mut bytes = std::fs::read(&layer.path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&layer.path, bytes).unwrap();
    assert!(layout.select(Some("v1")).is_ok());
    let problems = layout.fsck().unwrap();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        matches!(&problems[0], ImageError::DigestMismatch { path, .. } if path == &layer.path),
        "{problems:?}"
    );
    // A missing config is one more.
    std::fs::remove_file(&image.root.children[0].blobs[0].path).unwrap();
    let problems = layout.fsck().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, ImageError::MissingBlob { .. })),
        "{problems:?}"
    );
}

#[test]
fn a_blob_writer_checks_what_it_was_promised() {
    let f = Fixture::new();
    let layout = f.layout();
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"hello").unwrap();
    let wrong = Digest::of_bytes(b"other");
    let err = w.finish_expecting(&wrong, 5).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"hello").unwrap();
    let right = Digest::of_bytes(b"hello");
    let err = w.finish_expecting(&right, 6).unwrap_err();
    assert!(matches!(err, ImageError::SizeMismatch { .. }), "{err}");
    // Nothing of the failed writes remains.
    assert_eq!(std::fs::read_dir(layout.blobs_dir()).unwrap().count(), 0);
    let mut w = layout.blob_writer().unwrap();
    w.write_all(b"hello").unwrap();
    w.finish_expecting(&right, 5).unwrap();
    assert_eq!(std::fs::read(layout.blob_path(&right)).unwrap(), b"hello");
}
