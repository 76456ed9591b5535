//! Supply-chain documents about an image, from what the build knew (never a scan after the
//! fact): SBOMs in SPDX 2.3 and CycloneDX 1.5, in-toto statements (SLSA provenance v1,
//! staticpack's verification, a SLSA verification summary v1), each a Sigstore bundle when
//! signed. Each is attached to the image the OCI 1.1 way: an artifact manifest whose `subject`
//! is the image manifest, its blobs in the layout and its descriptor in [`REFERRERS_FILE`]. The
//! image manifest is untouched: its digest does not depend on any of them.

pub mod check;
pub(crate) mod components;
pub(crate) mod cyclonedx;
pub(crate) mod intoto;
pub(crate) mod spdx;

use crate::digest::Digest;
use crate::image::layout::Layout;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use check::{AttestationReport, PublicKey, check_attestations};
pub(crate) use intoto::Policy;
pub use intoto::{Signer, SigningKey};

/// The empty JSON object, the config of every artifact manifest (image-spec 1.1).
pub(crate) const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub(crate) const EMPTY_JSON: &[u8] = b"{}";
pub(crate) const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const PREDICATE_ANNOTATION: &str = "in-toto.io/predicate-type";
const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

#[derive(Debug, thiserror::Error)]
pub enum SupplyError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the signing key {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("the image layout")]
    Image(#[from] crate::image::ImageError),
    #[error("serializing {what}: {reason}")]
    Json { what: String, reason: String },
}

/// `--sbom`: which SBOM formats to attach.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SbomChoice {
    None,
    Spdx,
    CycloneDx,
    #[default]
    Both,
}

impl SbomChoice {
    pub fn spdx(self) -> bool {
        matches!(self, SbomChoice::Spdx | SbomChoice::Both)
    }
    pub fn cyclonedx(self) -> bool {
        matches!(self, SbomChoice::CycloneDx | SbomChoice::Both)
    }
    pub fn name(self) -> &'static str {
        match self {
            SbomChoice::None => "none",
            SbomChoice::Spdx => "spdx",
            SbomChoice::CycloneDx => "cyclonedx",
            SbomChoice::Both => "both",
        }
    }
}

/// What a build attaches besides the image.
#[derive(Clone, Debug, Default)]
pub struct SupplyOptions {
    pub sbom: SbomChoice,
    /// Sign the statements with this key: each becomes a Sigstore bundle.
    pub sign_key: Option<Arc<dyn Signer>>,
}

/// One document to attach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub artifact_type: String,
    /// The layer's media type (a DSSE envelope's differs from its statement's).
    pub media_type: String,
    /// The file name a puller gives it.
    pub title: String,
    pub bytes: Vec<u8>,
    pub annotations: BTreeMap<String, String>,
}

fn to_bytes(what: &str, v: &Value) -> Result<Vec<u8>, SupplyError> {
    // Pretty, with sorted keys (serde_json's map is ordered) and a final newline: the same
    // value, the same bytes.
    let mut b = serde_json::to_vec_pretty(v).map_err(|e| SupplyError::Json {
        what: what.to_owned(),
        reason: e.to_string(),
    })?;
    b.push(b'\n');
    Ok(b)
}

/// Everything the documents are made from.
pub(crate) struct Input<'a> {
    pub bom: components::BomInput<'a>,
    pub provenance: &'a crate::provenance::Provenance,
    pub verdict: &'a str,
    pub proof: Option<&'a crate::pipeline::Proof>,
    pub epoch: u64,
    /// The checks the binary was held to, for the verification summary.
    pub policy: intoto::Policy,
    /// Whether the binary met them (false when `--allow-dynamic` packed a refused one).
    pub passed: bool,
}

/// The SBOMs and statements `options` asks for, in a fixed order.
pub(crate) fn documents(
    input: &Input,
    options: &SupplyOptions,
) -> Result<Vec<Document>, SupplyError> {
    let mut docs = Vec::new();
    let image_hex = input.bom.manifest_sha256;
    let name = &input.bom.recipe.name;
    if options.sbom != SbomChoice::None {
        let bom = components::bom(&input.bom)?;
        if options.sbom.spdx() {
            docs.push(Document {
                artifact_type: spdx::MEDIA_TYPE.into(),
                media_type: spdx::MEDIA_TYPE.into(),
                title: format!("{name}.spdx.json"),
                bytes: to_bytes("the SPDX SBOM", &spdx::document(&bom, input.epoch))?,
                annotations: BTreeMap::new(),
            });
        }
        if options.sbom.cyclonedx() {
            docs.push(Document {
                artifact_type: cyclonedx::MEDIA_TYPE.into(),
                media_type: cyclonedx::MEDIA_TYPE.into(),
                title: format!("{name}.cdx.json"),
                bytes: to_bytes(
                    "the CycloneDX SBOM",
                    &cyclonedx::document(&bom, input.epoch),
                )?,
                annotations: BTreeMap::new(),
            });
        }
    }
    let statements = [
        (
            intoto::SLSA_PREDICATE,
            "slsa",
            intoto::slsa(input.provenance, image_hex),
        ),
        (
            intoto::VERIFICATION_PREDICATE,
            "verification",
            intoto::verification(
                name,
                image_hex,
                &input.provenance.binary_digest,
                input.verdict,
                input.bom.facts,
                input.proof,
            ),
        ),
    ];
    let mut summarized = Vec::new();
    for (predicate, short, statement) in statements {
        docs.push(statement_document(
            name, predicate, short, &statement, options,
        )?);
        summarized.push(docs.len() - 1);
    }
    // The verification summary, from the two statements as attached (signed or not).
    let hexes: Vec<Digest> = (summarized.iter())
        .map(|&i| Digest::of_bytes(&docs[i].bytes))
        .collect();
    let inputs: Vec<intoto::InputAttestation> = (summarized.iter().zip(&hexes))
        .map(|(&i, d)| intoto::InputAttestation {
            name: &docs[i].title,
            media_type: &docs[i].media_type,
            sha256_hex: d.hex(),
        })
        .collect();
    let resource_uri = format!(
        "pkg:oci/{}@sha256%3A{image_hex}",
        components::purl_name(name)
    );
    let summary = intoto::verification_summary(
        name,
        &resource_uri,
        image_hex,
        &input.policy,
        &inputs,
        input.passed,
        input.epoch,
    )?;
    docs.push(statement_document(
        name,
        intoto::VSA_PREDICATE,
        "vsa",
        &summary,
        options,
    )?);
    Ok(docs)
}

/// One in-toto statement as attached: bare, or with a key a Sigstore bundle.
fn statement_document(
    name: &str,
    predicate: &str,
    short: &str,
    statement: &Value,
    options: &SupplyOptions,
) -> Result<Document, SupplyError> {
    let bytes = to_bytes("an in-toto statement", statement)?;
    let mut annotations = BTreeMap::from([(PREDICATE_ANNOTATION.to_owned(), predicate.to_owned())]);
    Ok(match &options.sign_key {
        None => Document {
            artifact_type: intoto::STATEMENT_MEDIA_TYPE.into(),
            media_type: intoto::STATEMENT_MEDIA_TYPE.into(),
            title: format!("{name}.{short}.intoto.json"),
            bytes,
            annotations,
        },
        Some(key) => {
            annotations.insert(
                intoto::BUNDLE_CONTENT_ANNOTATION.to_owned(),
                "dsse-envelope".to_owned(),
            );
            annotations.insert(
                intoto::BUNDLE_PREDICATE_ANNOTATION.to_owned(),
                predicate.to_owned(),
            );
            Document {
                artifact_type: intoto::BUNDLE_MEDIA_TYPE.into(),
                media_type: intoto::BUNDLE_MEDIA_TYPE.into(),
                title: format!("{name}.{short}.sigstore.json"),
                bytes: to_bytes("a Sigstore bundle", &intoto::bundle(&bytes, key.as_ref())?)?,
                annotations,
            }
        }
    })
}

/// The image a referrer points at.
#[derive(Clone, Debug)]
pub struct Subject {
    pub digest: Digest,
    pub size: u64,
}

/// An artifact manifest of the layout: its descriptor's facts and its one document's blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referrer {
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: String,
    pub annotations: BTreeMap<String, String>,
    /// The document: its media type, digest and size.
    pub layer_media_type: String,
    pub layer_digest: Digest,
    pub layer_size: u64,
    /// The document's file name (its layer's `org.opencontainers.image.title`).
    pub title: Option<String>,
}

impl Referrer {
    /// One line for `staticpack inspect`.
    pub fn describe(&self) -> String {
        let mut line = format!("{} {}", self.digest, self.artifact_type);
        if let Some(p) = self.annotations.get(PREDICATE_ANNOTATION) {
            line.push_str(&format!(" {p}"));
        }
        if self.layer_media_type != self.artifact_type {
            line.push_str(&format!(" as {}", self.layer_media_type));
        }
        if let Some(t) = &self.title {
            line.push_str(&format!(" {t}"));
        }
        format!("{line} ({} bytes)", self.layer_size)
    }
}

fn json_err(what: &str) -> impl Fn(serde_json::Error) -> SupplyError + '_ {
    move |e| SupplyError::Json {
        what: what.to_owned(),
        reason: e.to_string(),
    }
}

/// The artifact manifest of one document about `subject`.
pub(crate) fn artifact_manifest(
    doc: &Document,
    doc_digest: &Digest,
    subject: &Subject,
    epoch: u64,
) -> Result<Vec<u8>, SupplyError> {
    let mut annotations = doc.annotations.clone();
    annotations.insert(
        CREATED_ANNOTATION.into(),
        crate::image::config::rfc3339(epoch),
    );
    let m = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "artifactType": doc.artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": Digest::of_bytes(EMPTY_JSON).to_string(),
            "size": EMPTY_JSON.len(),
            "data": "e30=",
        },
        "layers": [{
            "mediaType": doc.media_type,
            "digest": doc_digest.to_string(),
            "size": doc.bytes.len(),
            "annotations": { TITLE_ANNOTATION: doc.title },
        }],
        "subject": {
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": subject.digest.to_string(),
            "size": subject.size,
        },
        "annotations": annotations,
    });
    serde_json::to_vec(&m).map_err(json_err("an artifact manifest"))
}

/// The layout's list of referrers: an OCI image index of the artifact manifests, as the
/// referrers API would answer. Not index.json: tools that take a layout's only image (skopeo
/// without a tag, oci-image-tool) refuse a layout whose index.json lists more than one entry.
pub const REFERRERS_FILE: &str = "staticpack-referrers.json";

/// Writes each document as an artifact manifest about `subject` into the layout's blobs and
/// lists them, in the order given, in [`REFERRERS_FILE`] (replacing any list it had).
pub(crate) fn attach(
    layout: &Layout,
    subject: &Subject,
    docs: &[Document],
    epoch: u64,
) -> Result<Vec<Referrer>, SupplyError> {
    if !docs.is_empty() {
        layout.write_blob(EMPTY_JSON)?;
    }
    let mut entries = Vec::new();
    let mut referrers = Vec::new();
    for doc in docs {
        let (layer_digest, layer_size) = layout.write_blob(&doc.bytes)?;
        let manifest = artifact_manifest(doc, &layer_digest, subject, epoch)?;
        let (digest, size) = layout.write_blob(&manifest)?;
        let mut annotations = doc.annotations.clone();
        annotations.insert(
            CREATED_ANNOTATION.into(),
            crate::image::config::rfc3339(epoch),
        );
        entries.push(json!({
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": doc.artifact_type,
            "digest": digest.to_string(),
            "size": size,
            "annotations": annotations,
        }));
        referrers.push(Referrer {
            digest,
            size,
            artifact_type: doc.artifact_type.clone(),
            annotations,
            layer_media_type: doc.media_type.clone(),
            layer_digest,
            layer_size,
            title: Some(doc.title.clone()),
        });
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let path = layout.dir().join(REFERRERS_FILE);
    let bytes = to_bytes(REFERRERS_FILE, &index)?;
    std::fs::write(&path, bytes).map_err(|source| SupplyError::Write { path, source })?;
    Ok(referrers)
}

/// The [`REFERRERS_FILE`] at `path`, bounded; `None` when there is none.
fn read_list(path: &Path) -> Result<Option<Vec<u8>>, SupplyError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SupplyError::Read {
            path: path.to_path_buf(),
            source,
        }),
        Ok(m) if !m.is_file() || m.len() > crate::image::layout::JSON_MAX => {
            Err(SupplyError::Invalid {
                path: path.to_path_buf(),
                reason: "not a regular file of at most 4 MiB".into(),
            })
        }
        Ok(_) => std::fs::read(path)
            .map(Some)
            .map_err(|source| SupplyError::Read {
                path: path.to_path_buf(),
                source,
            }),
    }
}

/// Lists in `into`'s [`REFERRERS_FILE`] the referrers of every layout of `from`, in order
/// (their blobs already moved into `into`): one list for an index, each referrer naming its
/// own platform's manifest as subject. Nothing is written when none of them has a list.
pub(crate) fn merge_referrers(into: &Layout, from: &[&Path]) -> Result<(), SupplyError> {
    let mut entries = Vec::new();
    let mut any = false;
    for dir in from {
        let path = dir.join(REFERRERS_FILE);
        let Some(bytes) = read_list(&path)? else {
            continue;
        };
        any = true;
        let list: Value = serde_json::from_slice(&bytes).map_err(|e| SupplyError::Invalid {
            path: path.clone(),
            reason: format!("not JSON: {e}"),
        })?;
        match list.get("manifests").and_then(Value::as_array) {
            Some(m) => entries.extend(m.iter().cloned()),
            None => {
                return Err(SupplyError::Invalid {
                    path,
                    reason: "lists no manifests".into(),
                });
            }
        }
    }
    if !any {
        return Ok(());
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    });
    let path = into.dir().join(REFERRERS_FILE);
    let bytes = to_bytes(REFERRERS_FILE, &index)?;
    std::fs::write(&path, bytes).map_err(|source| SupplyError::Write { path, source })
}

/// The artifact manifests of the layout whose subject is `subject`, in the list's order; none
/// when the layout has no [`REFERRERS_FILE`]. Every manifest is read against its digest.
pub fn referrers(layout: &Layout, subject: &Digest) -> Result<Vec<Referrer>, SupplyError> {
    let path = layout.dir().join(REFERRERS_FILE);
    let Some(bytes) = read_list(&path)? else {
        return Ok(Vec::new());
    };
    let index: oci_spec::image::ImageIndex =
        serde_json::from_slice(&bytes).map_err(|e| SupplyError::Invalid {
            path: path.clone(),
            reason: format!("not an OCI image index: {e}"),
        })?;
    let mut out = Vec::new();
    for d in index.manifests() {
        let Some(artifact_type) = d.artifact_type().as_ref() else {
            continue;
        };
        let (blob, bytes) = layout.read_json_blob(d)?;
        let m: Value = serde_json::from_slice(&bytes).map_err(json_err("an artifact manifest"))?;
        let invalid = |reason: &str| SupplyError::Invalid {
            path: blob.path.clone(),
            reason: reason.to_owned(),
        };
        if m["subject"]["digest"].as_str() != Some(subject.to_string().as_str()) {
            continue;
        }
        let layer = &m["layers"][0];
        let layer_digest = layer["digest"]
            .as_str()
            .and_then(Digest::parse)
            .ok_or_else(|| invalid("its layer names no sha256 digest"))?;
        out.push(Referrer {
            digest: blob.digest.clone(),
            size: blob.size,
            artifact_type: artifact_type.to_string(),
            annotations: d
                .annotations()
                .as_ref()
                .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default(),
            layer_media_type: layer["mediaType"].as_str().unwrap_or_default().to_owned(),
            layer_digest,
            layer_size: layer["size"].as_u64().unwrap_or_default(),
            title: layer["annotations"][TITLE_ANNOTATION]
                .as_str()
                .map(str::to_owned),
        });
    }
    Ok(out)
}
