//! `verify IMAGE --attestations`: every document attached to an image, checked against the
//! image and against each other. A statement's signature (with a public key), its subject (the
//! image manifest), the binary it names (a file of the image, the same in the provenance and the
//! verification statement), the SBOMs' image digest and file components (present in the image,
//! the application's digest that of its file), the verification summary's policy digest and
//! input attestations (the documents attached). Each document gets its list of problems; the
//! image passes when no list has one.

use super::{SupplyError, intoto};
use crate::digest::Digest;
use crate::image::layout::Layout;
use base64::Engine;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const SPDX: &str = super::spdx::MEDIA_TYPE;
const CYCLONEDX: &str = super::cyclonedx::MEDIA_TYPE;
const PATH_PROPERTY: &str = "staticpack:path";

/// A public key to check signatures with (`--key`): SubjectPublicKeyInfo PEM ("PUBLIC KEY"),
/// ed25519 or ECDSA P-256 — what `openssl pkey -pubout` and `cosign generate-key-pair` write.
pub struct PublicKey {
    path: PathBuf,
    algorithm: KeyAlgorithm,
    /// The raw key (ed25519: 32 bytes; P-256: the uncompressed point).
    raw: Vec<u8>,
    /// sha256 of the raw key, hex: the keyid staticpack signs with.
    pub keyid: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    Ed25519,
    EcdsaP256,
}

impl KeyAlgorithm {
    fn name(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::EcdsaP256 => "ECDSA P-256",
        }
    }
}

/// The DER prefix of an ed25519 SubjectPublicKeyInfo (RFC 8410): the 32-byte key follows.
const ED25519_SPKI: &[u8] = &[
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// The DER prefix of an id-ecPublicKey / prime256v1 SubjectPublicKeyInfo (RFC 5480): the
/// 65-byte uncompressed point follows.
const P256_SPKI: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey({}, {}, keyid {})",
            self.path.display(),
            self.algorithm.name(),
            self.keyid
        )
    }
}

impl PublicKey {
    pub fn load(path: &Path) -> Result<Self, SupplyError> {
        let bad = |reason: &str| SupplyError::Key {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let der = intoto::pem_block(
            path,
            "PUBLIC KEY",
            "; write the public key of a --sign-key with `openssl pkey -in key.pem -pubout -out key.pub`",
        )?;
        let (algorithm, raw) = if let Some(raw) = der.strip_prefix(ED25519_SPKI) {
            (KeyAlgorithm::Ed25519, raw)
        } else if let Some(raw) = der.strip_prefix(P256_SPKI) {
            (KeyAlgorithm::EcdsaP256, raw)
        } else {
            return Err(bad("not an ed25519 or ECDSA P-256 public key"));
        };
        let expected = match algorithm {
            KeyAlgorithm::Ed25519 => 32,
            KeyAlgorithm::EcdsaP256 => 65,
        };
        if raw.len() != expected {
            return Err(bad("the key's length is not its algorithm's"));
        }
        Ok(PublicKey {
            path: path.to_path_buf(),
            algorithm,
            raw: raw.to_vec(),
            keyid: Digest::of_bytes(raw).hex().to_owned(),
        })
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match self.algorithm {
            KeyAlgorithm::Ed25519 => &ring::signature::ED25519,
            KeyAlgorithm::EcdsaP256 => &ring::signature::ECDSA_P256_SHA256_ASN1,
        };
        ring::signature::UnparsedPublicKey::new(algorithm, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// What became of a document's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum Signature {
    /// An SBOM: staticpack does not sign those (the provenance names what they describe).
    NotSigned,
    /// A bare statement.
    Unsigned,
    /// Signed, and no key was given to check it with.
    NotChecked { keyid: String },
    /// Verified with the key.
    Verified { keyid: String },
    /// Does not verify with the key.
    Invalid { keyid: String },
}

/// One attached document and what its checks found.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentCheck {
    /// Its file name (the layer's title), else its referrer manifest's digest.
    pub name: String,
    /// The referrer (artifact manifest).
    pub referrer: String,
    pub artifact_type: String,
    /// The in-toto statement's predicate type.
    pub predicate_type: Option<String>,
    pub signature: Signature,
    /// What was checked and held, in words.
    pub checked: Vec<String>,
    /// What failed; empty when the document passes.
    pub problems: Vec<String>,
}

impl DocumentCheck {
    pub fn passes(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Every attached document of one image.
#[derive(Clone, Debug, Serialize)]
pub struct AttestationReport {
    /// The image manifest the documents must be about.
    pub subject: String,
    pub documents: Vec<DocumentCheck>,
    /// Failures of the set: a statement missing, none attached.
    pub problems: Vec<String>,
}

impl AttestationReport {
    pub fn passes(&self) -> bool {
        self.problems.is_empty() && self.documents.iter().all(DocumentCheck::passes)
    }
}

/// The image's files, read once from its unpacked root (no symlink followed).
struct ImageFiles {
    /// "/usr/bin/app" → sha256 hex for regular files, `None` for anything else.
    by_path: BTreeMap<String, Option<String>>,
}

impl ImageFiles {
    fn read(root: &Path) -> Result<Self, SupplyError> {
        let mut by_path = BTreeMap::new();
        for entry in walkdir::WalkDir::new(root).follow_links(false) {
            let entry = entry.map_err(|e| SupplyError::Invalid {
                path: root.to_path_buf(),
                reason: format!("walking the unpacked image: {e}"),
            })?;
            let Ok(rel) = entry.path().strip_prefix(root) else {
                continue;
            };
            let name = format!("/{}", rel.to_string_lossy());
            let digest = if entry.file_type().is_file() {
                let mut f = crate::image::layout::open_regular(entry.path())?;
                let d = Digest::of_reader(&mut f).map_err(|source| SupplyError::Read {
                    path: entry.path().to_path_buf(),
                    source,
                })?;
                Some(d.hex().to_owned())
            } else {
                None
            };
            by_path.insert(name, digest);
        }
        Ok(ImageFiles { by_path })
    }

    fn paths_with(&self, hex: &str) -> Vec<&str> {
        (self.by_path.iter())
            .filter(|(_, d)| d.as_deref() == Some(hex))
            .map(|(p, _)| p.as_str())
            .collect()
    }

    fn exists(&self, path: &str) -> bool {
        let p = path.trim_end_matches('/');
        self.by_path
            .contains_key(if p.is_empty() { "/" } else { p })
    }
}

/// Checks every document attached to the image `manifest` of `layout` against the image (its
/// files unpacked at `root`) and each other; signatures with `key`, when given.
pub fn check_attestations(
    layout: &Layout,
    manifest: &Digest,
    root: &Path,
    key: Option<&PublicKey>,
) -> Result<AttestationReport, SupplyError> {
    let files = ImageFiles::read(root)?;
    let referrers = super::referrers(layout, manifest)?;
    let mut report = AttestationReport {
        subject: manifest.to_string(),
        documents: Vec::new(),
        problems: Vec::new(),
    };
    if referrers.is_empty() {
        report.problems.push(format!(
            "no SBOM or statement is attached to {manifest} (a layout lists them in {}; a registry by its referrers API or sha256-<hex> tag)",
            super::REFERRERS_FILE
        ));
        return Ok(report);
    }
    // Every attached document's digest, for the summary's input attestations.
    let attached: BTreeMap<String, String> = (referrers.iter())
        .map(|r| {
            let name = r.title.clone().unwrap_or_else(|| r.digest.to_string());
            (r.layer_digest.hex().to_owned(), name)
        })
        .collect();
    let mut binaries: Vec<(String, String)> = Vec::new();
    let mut predicates = BTreeSet::new();
    for r in &referrers {
        let mut doc = DocumentCheck {
            name: r.title.clone().unwrap_or_else(|| r.digest.to_string()),
            referrer: r.digest.to_string(),
            artifact_type: r.artifact_type.clone(),
            predicate_type: None,
            signature: Signature::NotSigned,
            checked: Vec::new(),
            problems: Vec::new(),
        };
        let bytes = match layout.read_small_blob(&r.layer_digest, r.layer_size) {
            Ok(b) => b,
            Err(e) => {
                doc.problems.push(format!("its document: {e}"));
                report.documents.push(doc);
                continue;
            }
        };
        let json: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                doc.problems.push(format!("its document is not JSON: {e}"));
                report.documents.push(doc);
                continue;
            }
        };
        match r.layer_media_type.as_str() {
            SPDX => spdx(&json, manifest, &files, &mut doc),
            CYCLONEDX => cyclonedx(&json, manifest, &files, &mut doc),
            intoto::BUNDLE_MEDIA_TYPE => {
                if let Some(statement) = open_bundle(&json, key, &mut doc) {
                    statement_checks(&statement, r, manifest, &files, &attached, &mut doc)
                        .into_iter()
                        .for_each(|b| binaries.push(b));
                }
            }
            intoto::STATEMENT_MEDIA_TYPE => {
                doc.signature = Signature::Unsigned;
                if let Some(k) = key {
                    doc.problems.push(format!(
                        "unsigned: a bare in-toto statement, and --key {} asks for signed ones (build with --sign-key)",
                        k.path.display()
                    ));
                }
                statement_checks(&json, r, manifest, &files, &attached, &mut doc)
                    .into_iter()
                    .for_each(|b| binaries.push(b));
            }
            other => doc
                .checked
                .push(format!("a {other} document: not one staticpack reads")),
        }
        if let Some(p) = &doc.predicate_type {
            predicates.insert(p.clone());
        }
        report.documents.push(doc);
    }
    for wanted in [
        intoto::SLSA_PREDICATE,
        intoto::VERIFICATION_PREDICATE,
        intoto::VSA_PREDICATE,
    ] {
        if !predicates.contains(wanted) {
            report
                .problems
                .push(format!("no {wanted} statement is attached"));
        }
    }
    // The provenance's binary and the verification statement's are one file.
    let distinct: BTreeSet<&str> = binaries.iter().map(|(_, hex)| hex.as_str()).collect();
    if distinct.len() > 1 {
        let said: Vec<String> = (binaries.iter())
            .map(|(who, hex)| format!("{who} says sha256:{hex}"))
            .collect();
        report.problems.push(format!(
            "the statements name different binaries: {}",
            said.join(", ")
        ));
    }
    Ok(report)
}

/// The statement inside a Sigstore bundle, its signature checked with `key`.
fn open_bundle(bundle: &Value, key: Option<&PublicKey>, doc: &mut DocumentCheck) -> Option<Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if bundle["mediaType"] != intoto::BUNDLE_MEDIA_TYPE {
        doc.problems.push(format!(
            "the bundle's mediaType is {}, not {}",
            bundle["mediaType"],
            intoto::BUNDLE_MEDIA_TYPE
        ));
        return None;
    }
    let envelope = &bundle["dsseEnvelope"];
    let signatures = envelope["signatures"].as_array().map(Vec::as_slice);
    let [signature] = signatures.unwrap_or_default() else {
        doc.problems.push(
            "the bundle's DSSE envelope must have exactly one signature (Sigstore bundle v0.3)"
                .into(),
        );
        return None;
    };
    let keyid = signature["keyid"].as_str().unwrap_or_default().to_owned();
    let hint = bundle["verificationMaterial"]["publicKey"]["hint"].as_str();
    if hint.is_some_and(|h| h != keyid) {
        doc.problems.push(format!(
            "the bundle's public-key hint {} is not its signature's keyid {keyid}",
            hint.unwrap_or_default()
        ));
    }
    let payload_type = envelope["payloadType"].as_str().unwrap_or_default();
    if payload_type != intoto::STATEMENT_MEDIA_TYPE {
        doc.problems.push(format!(
            "the envelope's payloadType is {payload_type:?}, not an in-toto statement's"
        ));
        return None;
    }
    let (Some(payload), Some(sig)) = (
        envelope["payload"]
            .as_str()
            .and_then(|p| b64.decode(p).ok()),
        signature["sig"].as_str().and_then(|s| b64.decode(s).ok()),
    ) else {
        doc.problems
            .push("the envelope's payload or signature is not base64".into());
        return None;
    };
    doc.signature = match key {
        None => Signature::NotChecked {
            keyid: keyid.clone(),
        },
        Some(k) if k.verifies(&intoto::pae(payload_type, &payload), &sig) => {
            doc.checked.push(format!(
                "signature verified with {} ({})",
                k.path.display(),
                k.algorithm.name()
            ));
            Signature::Verified {
                keyid: keyid.clone(),
            }
        }
        Some(k) => {
            doc.problems.push(format!(
                "the signature does not verify with {} ({}, keyid {}): the statement was changed after it was signed, or another key signed it{}",
                k.path.display(),
                k.algorithm.name(),
                k.keyid,
                if keyid == k.keyid {
                    String::new()
                } else {
                    format!(" (its keyid is {keyid})")
                }
            ));
            Signature::Invalid {
                keyid: keyid.clone(),
            }
        }
    };
    match serde_json::from_slice(&payload) {
        Ok(v) => Some(v),
        Err(e) => {
            doc.problems
                .push(format!("the envelope's payload is not JSON: {e}"));
            None
        }
    }
}

/// The checks of an in-toto statement; returns the binary it names, if it names one.
fn statement_checks(
    statement: &Value,
    r: &super::Referrer,
    manifest: &Digest,
    files: &ImageFiles,
    attached: &BTreeMap<String, String>,
    doc: &mut DocumentCheck,
) -> Option<(String, String)> {
    if statement["_type"] != "https://in-toto.io/Statement/v1" {
        doc.problems.push(format!(
            "not an in-toto v1 statement: _type is {}",
            statement["_type"]
        ));
        return None;
    }
    let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
    doc.predicate_type = Some(predicate_type.to_owned());
    if let Some(annotated) = r.annotations.get(super::PREDICATE_ANNOTATION) {
        if annotated != predicate_type {
            doc.problems.push(format!(
                "its referrer says predicate {annotated}, the statement {predicate_type}"
            ));
        }
    }
    let subjects: Vec<&str> = (statement["subject"].as_array().into_iter().flatten())
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .collect();
    if subjects == [manifest.hex()] {
        doc.checked
            .push("its subject is the image manifest".to_owned());
    } else {
        doc.problems.push(format!(
            "its subject is {}, not the image manifest {manifest}",
            if subjects.is_empty() {
                "missing".to_owned()
            } else {
                subjects
                    .iter()
                    .map(|h| format!("sha256:{h}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ));
    }
    let p = &statement["predicate"];
    let binary = match predicate_type {
        intoto::SLSA_PREDICATE => (p["runDetails"]["byproducts"]
            .as_array()
            .into_iter()
            .flatten())
        .find(|b| b["name"] == "binary")
        .and_then(|b| b["digest"]["sha256"].as_str()),
        intoto::VERIFICATION_PREDICATE => p["binary"]["digest"]["sha256"].as_str(),
        intoto::VSA_PREDICATE => {
            summary_checks(p, attached, doc);
            return None;
        }
        _ => return None,
    };
    let Some(hex) = binary else {
        doc.problems.push("it names no binary digest".into());
        return None;
    };
    match files.paths_with(hex).as_slice() {
        [] => doc
            .problems
            .push(format!("its binary sha256:{hex} is no file of the image")),
        paths => doc.checked.push(format!(
            "its binary sha256:{hex} is {} in the image",
            paths.join(", ")
        )),
    }
    Some((doc.name.clone(), hex.to_owned()))
}

/// The SLSA verification summary: its result, its policy digest against the content it
/// carries, its input attestations among the documents attached.
fn summary_checks(p: &Value, attached: &BTreeMap<String, String>, doc: &mut DocumentCheck) {
    match p["verificationResult"].as_str() {
        Some("PASSED") => doc.checked.push(format!(
            "verification result PASSED, levels {}",
            p["verifiedLevels"]
        )),
        other => doc.problems.push(format!(
            "its verification result is {}, not PASSED: the binary did not meet staticpack's policy",
            other.unwrap_or("missing")
        )),
    }
    let policy = &p["policy"];
    if let (Some(content), Some(hex)) = (
        policy["content"].as_str(),
        policy["digest"]["sha256"].as_str(),
    ) {
        match base64::engine::general_purpose::STANDARD.decode(content) {
            Ok(bytes) if Digest::of_bytes(&bytes).hex() == hex => doc
                .checked
                .push(format!("its policy is the content of digest sha256:{hex}")),
            _ => doc.problems.push(format!(
                "its policy's content is not the policy of digest sha256:{hex}"
            )),
        }
    } else {
        doc.problems
            .push("its policy has no content and digest to check".into());
    }
    let inputs = p["inputAttestations"].as_array().map(Vec::as_slice);
    let inputs = inputs.unwrap_or_default();
    if inputs.is_empty() {
        doc.problems.push("it names no input attestation".into());
    }
    for input in inputs {
        let hex = input["digest"]["sha256"].as_str().unwrap_or_default();
        match attached.get(hex) {
            Some(name) => doc
                .checked
                .push(format!("its input attestation {name} is attached")),
            None => doc.problems.push(format!(
                "its input attestation {} (sha256:{hex}) is not among the documents attached",
                input["name"].as_str().unwrap_or("(unnamed)")
            )),
        }
    }
}

/// A component's path in the image and sha256, as an SBOM says them.
struct FileClaim {
    name: String,
    path: String,
    sha256: Option<String>,
    application: bool,
}

fn claims_hold(claims: &[FileClaim], files: &ImageFiles, doc: &mut DocumentCheck) {
    let mut present = 0;
    for c in claims {
        if !files.exists(&c.path) {
            doc.problems.push(format!(
                "its component {} at {} is not in the image",
                c.name, c.path
            ));
            continue;
        }
        present += 1;
        // The application's digest is its file's (a base file's pin may describe a tree).
        if c.application {
            let on_disk = files.by_path.get(c.path.trim_end_matches('/'));
            match (&c.sha256, on_disk) {
                (Some(said), Some(Some(found))) if said == found => doc
                    .checked
                    .push(format!("{} is sha256:{said} as it says", c.path)),
                (Some(said), _) => doc.problems.push(format!(
                    "it says {} is sha256:{said}; the image's file is not",
                    c.path
                )),
                (None, _) => {}
            }
        }
    }
    doc.checked.push(format!(
        "{present} of {} file component(s) present in the image",
        claims.len()
    ));
}

fn image_digest_holds(said: Option<&str>, manifest: &Digest, doc: &mut DocumentCheck) {
    match said {
        Some(hex) if hex == manifest.hex() => doc
            .checked
            .push("its image is the image manifest".to_owned()),
        Some(hex) => doc.problems.push(format!(
            "it describes the image sha256:{hex}, not {manifest}"
        )),
        None => doc.problems.push("it names no image digest".to_owned()),
    }
}

fn spdx(sbom: &Value, manifest: &Digest, files: &ImageFiles, doc: &mut DocumentCheck) {
    let packages = sbom["packages"].as_array().map(Vec::as_slice);
    let packages = packages.unwrap_or_default();
    let sha256 = |p: &Value| {
        (p["checksums"].as_array().into_iter().flatten())
            .find(|c| c["algorithm"] == "SHA256")
            .and_then(|c| c["checksumValue"].as_str())
            .map(str::to_owned)
    };
    let image = packages
        .iter()
        .find(|p| p["primaryPackagePurpose"] == "CONTAINER");
    image_digest_holds(image.and_then(sha256).as_deref(), manifest, doc);
    let claims: Vec<FileClaim> = packages
        .iter()
        .filter_map(|p| {
            let comment = p["comment"].as_str()?;
            let path = comment
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{PATH_PROPERTY}: ")))?;
            Some(FileClaim {
                name: p["name"].as_str().unwrap_or_default().to_owned(),
                path: path.to_owned(),
                sha256: sha256(p),
                application: p["primaryPackagePurpose"] == "APPLICATION",
            })
        })
        .collect();
    claims_hold(&claims, files, doc);
}

fn cyclonedx(sbom: &Value, manifest: &Digest, files: &ImageFiles, doc: &mut DocumentCheck) {
    let mut all: Vec<&Value> = sbom["components"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    all.push(&sbom["metadata"]["component"]);
    let sha256 = |c: &Value| {
        (c["hashes"].as_array().into_iter().flatten())
            .find(|h| h["alg"] == "SHA-256")
            .and_then(|h| h["content"].as_str())
            .map(str::to_owned)
    };
    let image = all.iter().find(|c| c["type"] == "container");
    image_digest_holds(image.and_then(|c| sha256(c)).as_deref(), manifest, doc);
    let claims: Vec<FileClaim> = all
        .iter()
        .filter_map(|c| {
            let path = (c["properties"].as_array().into_iter().flatten())
                .find(|p| p["name"] == PATH_PROPERTY)
                .and_then(|p| p["value"].as_str())?;
            Some(FileClaim {
                name: c["name"].as_str().unwrap_or_default().to_owned(),
                path: path.to_owned(),
                sha256: sha256(c),
                application: c["type"] == "application",
            })
        })
        .collect();
    claims_hold(&claims, files, doc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(der: &[u8]) -> String {
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(der)
        )
    }

    #[test]
    fn public_keys_load_by_their_spki_prefix_and_others_are_named() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k.pub");
        let mut der = ED25519_SPKI.to_vec();
        der.extend([7u8; 32]);
        std::fs::write(&path, pem(&der)).unwrap();
        let k = PublicKey::load(&path).unwrap();
        assert_eq!(k.algorithm, KeyAlgorithm::Ed25519);
        assert_eq!(k.keyid, Digest::of_bytes(&[7u8; 32]).hex());
        der.pop();
        std::fs::write(&path, pem(&der)).unwrap();
        assert!(PublicKey::load(&path).is_err());
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
        let e = PublicKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("PUBLIC KEY"), "{e}");
    }

    #[test]
    fn a_signature_verifies_only_over_the_statement_it_signed() {
        use ring::signature::KeyPair;
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k.pub");
        let mut der = ED25519_SPKI.to_vec();
        der.extend(pair.public_key().as_ref());
        std::fs::write(&path, pem(&der)).unwrap();
        let key = PublicKey::load(&path).unwrap();
        let message = intoto::pae(intoto::STATEMENT_MEDIA_TYPE, b"{}");
        let sig = pair.sign(&message);
        assert!(key.verifies(&message, sig.as_ref()));
        let other = intoto::pae(intoto::STATEMENT_MEDIA_TYPE, b"{ }");
        assert!(!key.verifies(&other, sig.as_ref()));
    }
}
