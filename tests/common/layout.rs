//! A hand-made OCI image layout: blobs stored one by one, index.json written last. Written
//! without the library's layout writer, so that what the tests feed the library is independent
//! of it.

use serde_json::{Value, json};
use staticpack::digest::Digest;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

pub struct LayoutFixture {
    pub dir: PathBuf,
}

impl LayoutFixture {
    /// An empty layout at `dir`: the `oci-layout` file, no index.json yet.
    pub fn create(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        LayoutFixture {
            dir: dir.to_path_buf(),
        }
    }

    /// Stores `bytes` as a blob; returns its descriptor.
    pub fn put(&self, media_type: &str, bytes: &[u8]) -> Value {
        let digest = Digest::of_bytes(bytes);
        let path = self.dir.join("blobs/sha256").join(digest.hex());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        json!({"mediaType": media_type, "digest": digest.to_string(), "size": bytes.len()})
    }

    /// Stores `config` and an image manifest of it and `layers`; returns the manifest's
    /// descriptor.
    pub fn manifest(&self, config: &Value, layers: Vec<Value>) -> Value {
        let config = self.put(CONFIG, config.to_string().as_bytes());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": config,
            "layers": layers,
        });
        self.put(MANIFEST, manifest.to_string().as_bytes())
    }

    /// Stores an image index over `children`; returns its descriptor.
    pub fn index_of(&self, children: Vec<Value>) -> Value {
        let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": children});
        self.put(INDEX, index.to_string().as_bytes())
    }

    /// Writes index.json with the one entry `descriptor`, tagged `ref_name`.
    pub fn tag(&self, mut descriptor: Value, ref_name: &str) {
        descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": ref_name});
        let index = json!({"schemaVersion": 2, "manifests": [descriptor]});
        std::fs::write(self.dir.join("index.json"), index.to_string()).unwrap();
    }
}

/// The digest a descriptor names.
pub fn digest_of(descriptor: &Value) -> Digest {
    Digest::parse(descriptor["digest"].as_str().unwrap()).unwrap()
}
