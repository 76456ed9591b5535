//! in-toto statements v1 about the image: SLSA provenance v1 from the build's record, and
//! staticpack's verification statement (what verify found and what the run proof saw).
//! With a key, each is DSSE-signed and wrapped in a Sigstore bundle v0.3, as cosign v3 attaches
//! attestations (`--new-bundle-format`).

use super::SupplyError;
use crate::pipeline::Proof;
use crate::provenance::Provenance;
use crate::verify::ElfFacts;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

pub(crate) const STATEMENT_MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// A Sigstore bundle v0.3 (sigstore/protobuf-specs, `protos/sigstore_bundle.proto`): the
/// artifact type and layer media type of a signed statement, as cosign v3 attaches it.
pub(crate) const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// cosign's annotations of a bundle referrer (cosign's specs/BUNDLE_SPEC.md).
pub(crate) const BUNDLE_CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
pub(crate) const BUNDLE_PREDICATE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
pub(crate) const SLSA_PREDICATE: &str = "https://slsa.dev/provenance/v1";
pub(crate) const VERIFICATION_PREDICATE: &str = "https://staticpack.dev/verification/v1";
pub(crate) const VSA_PREDICATE: &str = "https://slsa.dev/verification_summary/v1";
/// The type of staticpack's policy document (the checks a build holds its binary to).
pub(crate) const POLICY_TYPE: &str = "https://staticpack.dev/policy/v1";
const VERIFIER_ID: &str = "https://staticpack.dev/verify";
const BUILD_TYPE: &str = "https://staticpack.dev/buildtypes/recipe/v1";

fn statement(name: &str, manifest_hex: &str, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{ "name": name, "digest": { "sha256": manifest_hex } }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// "sha256:…" → {"sha256": "…"}; anything else (a symlink's record) stays as written.
fn digest_set(recorded: &str) -> Value {
    match recorded.split_once(':') {
        Some(("sha256", hex)) if super::components::is_sha256_hex(hex) => json!({ "sha256": hex }),
        _ => json!({ "sha256": crate::digest::Digest::of_bytes(recorded.as_bytes()).hex() }),
    }
}

/// SLSA provenance v1: the recipe and each input file as resolved dependencies, the commands
/// and hermetic environment as the build's internal parameters.
pub(crate) fn slsa(record: &Provenance, manifest_hex: &str) -> Value {
    let inputs = &record.inputs;
    let mut deps: Vec<Value> = inputs
        .files
        .iter()
        .map(|(path, digest)| {
            let mut d = json!({ "name": path, "digest": digest_set(digest) });
            if let Some(url) = archive_url(path) {
                d["uri"] = url.into();
            }
            if digest.starts_with("symlink:") {
                d["annotations"] = json!({ "symlink": digest });
            }
            d
        })
        .collect();
    for (name, digest) in &inputs.deps {
        deps.push(json!({
            "name": format!("recipe {name}"),
            "digest": digest_set(digest),
            "annotations": { "staticpack.inputs-digest": digest },
        }));
    }
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "recipe": inputs.recipe,
                "options": inputs.options,
                "sourceDateEpoch": inputs.epoch,
            },
            "internalParameters": {
                "toolchain": inputs.toolchain,
                "commands": record.commands,
                "environment": record.environment,
            },
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {
                "id": "https://staticpack.dev/builder",
                "version": { "staticpack": inputs.staticpack },
            },
            // The inputs digest names the build: the same inputs, the same invocation.
            "metadata": { "invocationId": record.inputs_digest },
            "byproducts": [{
                "name": "binary",
                "digest": digest_set(&record.binary_digest),
            }],
        },
    });
    statement(&inputs.recipe, manifest_hex, SLSA_PREDICATE, predicate)
}

/// "<archive https://… strip_components=1>" → the URL.
fn archive_url(key: &str) -> Option<&str> {
    let inner = key.strip_prefix("<archive ")?;
    let origin = inner.split_whitespace().next()?;
    origin.contains("://").then_some(origin)
}

/// What verify decided about the binary and what the run proof saw in the image's root.
pub(crate) fn verification(
    name: &str,
    manifest_hex: &str,
    binary_digest: &str,
    verdict: &str,
    facts: &ElfFacts,
    proof: Option<&Proof>,
) -> Value {
    let run = proof.map(|p| {
        json!({
            "runtime": match p.runtime {
                crate::run::Runtime::Builtin => "staticpack-sandbox",
                crate::run::Runtime::Runc => "runc",
            },
            "expectedExitCode": p.expect_exit,
            "exitCode": p.outcome.exit_code,
            "signal": p.outcome.signal,
            "filesInRoot": p.rootfs_files,
            "libcFilesInRoot": p.libc_files,
        })
    });
    let predicate = json!({
        "verifier": { "id": VERIFIER_ID, "version": env!("CARGO_PKG_VERSION") },
        "binary": { "digest": digest_set(binary_digest), "machine": facts.machine },
        "verdict": verdict,
        "linkage": facts.linkage,
        "libc": facts.libc,
        "libcEvidence": facts.libc_evidence,
        "interpreter": facts.interpreter,
        "needed": facts.needed,
        "nssHazards": facts.nss_hazards,
        "hardening": facts.hardening,
        "runProof": run,
    });
    statement(name, manifest_hex, VERIFICATION_PREDICATE, predicate)
}

/// The checks a build holds its binary to: staticpack's policy, whose digest the verification
/// summary names. Deterministic: the same recipe and flags, the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Policy {
    /// "static-pie" or "static": what the recipe's `link` requires of the binary.
    pub require: &'static str,
    /// NSS hazards accepted (the recipe's `allow_nss_hazards` or `--allow-nss-hazards`).
    pub nss_hazards_allowed: bool,
    /// The platform whose machine the binary must be for.
    pub platform: String,
    /// The run proof's expected exit code, when the build ran it.
    pub run_proof: Option<i32>,
}

impl Policy {
    /// The policy document (in the summary's `policy.content`, its sha256 in `policy.digest`).
    pub(crate) fn document(&self) -> Value {
        let mut checks = vec![
            json!({ "check": "machine", "platform": self.platform }),
            json!({ "check": "linkage", "require": self.require }),
            json!({ "check": "nss-hazards", "allowed": self.nss_hazards_allowed }),
        ];
        if let Some(code) = self.run_proof {
            checks.push(json!({
                "check": "run-proof",
                "root": "the image alone",
                "expectedExitCode": code,
            }));
        }
        json!({ "_type": POLICY_TYPE, "checks": checks })
    }
}

/// An attestation the summary was made from: the attached document's file name and digest.
pub(crate) struct InputAttestation<'a> {
    pub name: &'a str,
    pub media_type: &'a str,
    pub sha256_hex: &'a str,
}

/// SLSA verification summary v1: that staticpack verified the image against `policy`, from
/// the provenance and verification statements, and what it found. `passed`: the binary met the
/// policy (false when `--allow-dynamic` packed one it refused).
pub(crate) fn verification_summary(
    name: &str,
    resource_uri: &str,
    manifest_hex: &str,
    policy: &Policy,
    inputs: &[InputAttestation],
    passed: bool,
    epoch: u64,
) -> Result<Value, SupplyError> {
    use base64::Engine;
    let policy_bytes = super::to_bytes("the policy", &policy.document())?;
    let levels: Vec<String> = if passed {
        // Build L1: provenance made by the build platform, distributed with the image. Not L2:
        // that needs a hosted build platform, which a staticpack on a laptop is not. The custom
        // levels (which must not start with SLSA_) name staticpack's own checks.
        let mut l = vec![
            "SLSA_BUILD_LEVEL_1".to_owned(),
            format!(
                "STATICPACK_{}",
                policy.require.to_ascii_uppercase().replace('-', "_")
            ),
        ];
        if policy.run_proof.is_some() {
            l.push("STATICPACK_RUN_PROVEN".to_owned());
        }
        l
    } else {
        vec!["FAILED".to_owned()]
    };
    let predicate = json!({
        "verifier": {
            "id": VERIFIER_ID,
            "version": { "staticpack": env!("CARGO_PKG_VERSION") },
        },
        "timeVerified": crate::image::config::rfc3339(epoch),
        "resourceUri": resource_uri,
        "policy": {
            "uri": POLICY_TYPE,
            "digest": { "sha256": crate::digest::Digest::of_bytes(&policy_bytes).hex() },
            "mediaType": "application/json",
            "content": base64::engine::general_purpose::STANDARD.encode(&policy_bytes),
        },
        "inputAttestations": inputs.iter().map(|i| json!({
            "name": i.name,
            "mediaType": i.media_type,
            "digest": { "sha256": i.sha256_hex },
        })).collect::<Vec<_>>(),
        "verificationResult": if passed { "PASSED" } else { "FAILED" },
        "verifiedLevels": levels,
        "slsaVersion": "1.0",
    });
    Ok(statement(name, manifest_hex, VSA_PREDICATE, predicate))
}

/// A signing key from `--sign-key`: PKCS#8 PEM, ed25519 or ECDSA P-256.
pub struct SigningKey {
    path: PathBuf,
    key: Key,
    /// sha256 of the public key, hex: the envelope's keyid.
    pub keyid: String,
}

enum Key {
    Ed25519(ring::signature::Ed25519KeyPair),
    EcdsaP256(ring::signature::EcdsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({}, keyid {})",
            self.path.display(),
            self.keyid
        )
    }
}

/// What signs the statements: the seam between the bundle and where its signature and
/// verification material come from.
///
/// [`SigningKey`] is a key the user holds (`--sign-key`): the bundle's verification material is
/// a public-key hint, and the verifier brings the public key (`verify --attestations --key`,
/// `cosign verify-attestation --key`). Keyless signing (Sigstore's Fulcio and Rekor) would be
/// another implementation: an ephemeral key, a short-lived certificate from Fulcio for an OIDC
/// token (the material's `certificate`), and the signed envelope entered in Rekor (the
/// material's `tlogEntries`, with its inclusion proof). It needs the network and an identity
/// token, so staticpack does not do it: no transparency-log entry is ever made up
/// (docs/attestations.md).
pub trait Signer: std::fmt::Debug + Send + Sync {
    /// The DSSE signature's `keyid`, and the bundle's public-key hint.
    fn keyid(&self) -> &str;
    /// Signs DSSE's pre-authentication encoding of a statement.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SupplyError>;
    /// The bundle's `verificationMaterial`.
    fn verification_material(&self) -> Value;
}

impl Signer for SigningKey {
    fn keyid(&self) -> &str {
        &self.keyid
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SupplyError> {
        SigningKey::sign(self, message)
    }

    fn verification_material(&self) -> Value {
        // A key held out of band: a hint only (form 1 of the bundle's verification material),
        // the same string as the envelope's keyid, as the bundle spec requires.
        json!({ "publicKey": { "hint": self.keyid } })
    }
}

/// The DER bytes of the `-----BEGIN {label}-----` block of the PEM file at `path`; `missing`
/// follows "no … block" in the error, saying how to make one, when the file has none.
pub(crate) fn pem_block(path: &Path, label: &str, missing: &str) -> Result<Vec<u8>, SupplyError> {
    let text = std::fs::read_to_string(path).map_err(|source| SupplyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |reason: String| SupplyError::Key {
        path: path.to_path_buf(),
        reason,
    };
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let body: String = text
        .lines()
        .skip_while(|l| l.trim() != begin)
        .skip(1)
        .take_while(|l| l.trim() != end)
        .map(str::trim)
        .collect();
    if body.is_empty() {
        return Err(bad(format!("no \"{begin}\" block{missing}")));
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| bad("the PEM block is not base64".to_owned()))
}

impl SigningKey {
    pub fn load(path: &Path) -> Result<Self, SupplyError> {
        let bad = |reason: &str| SupplyError::Key {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        let der = pem_block(
            path,
            "PRIVATE KEY",
            " (PKCS#8 PEM); make one with `openssl genpkey -algorithm ed25519 -out key.pem`",
        )?;
        use ring::signature::KeyPair;
        let key = if let Ok(k) = ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der) {
            Key::Ed25519(k)
        } else if let Ok(k) = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            &der,
            &ring::rand::SystemRandom::new(),
        ) {
            Key::EcdsaP256(k)
        } else {
            return Err(bad(
                "not an ed25519 or ECDSA P-256 private key in PKCS#8; make one with `openssl genpkey -algorithm ed25519 -out key.pem`",
            ));
        };
        let public = match &key {
            Key::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Key::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
        };
        Ok(SigningKey {
            path: path.to_path_buf(),
            key,
            keyid: crate::digest::Digest::of_bytes(&public).hex().to_owned(),
        })
    }

    /// The public key's bytes (ed25519: 32 bytes; P-256: the uncompressed point).
    pub fn public_key(&self) -> Vec<u8> {
        use ring::signature::KeyPair;
        match &self.key {
            Key::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Key::EcdsaP256(k) => k.public_key().as_ref().to_vec(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SupplyError> {
        match &self.key {
            // Ed25519 signatures are deterministic: a signed build stays reproducible.
            Key::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
            // ECDSA takes a random nonce: its envelopes differ from build to build.
            Key::EcdsaP256(k) => k
                .sign(&ring::rand::SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SupplyError::Key {
                    path: self.path.clone(),
                    reason: "ECDSA signing failed".into(),
                }),
        }
    }
}

/// DSSE's pre-authentication encoding: what the signature covers.
pub(crate) fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut m = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    m.extend_from_slice(payload);
    m
}

/// The statement in a DSSE envelope signed by `key` (exactly one signature, as a bundle's
/// envelope must have).
pub(crate) fn envelope(statement: &[u8], key: &dyn Signer) -> Result<Value, SupplyError> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = key.sign(&pae(STATEMENT_MEDIA_TYPE, statement))?;
    Ok(json!({
        "payloadType": STATEMENT_MEDIA_TYPE,
        "payload": b64.encode(statement),
        "signatures": [{ "keyid": key.keyid(), "sig": b64.encode(sig) }],
    }))
}

/// The statement as a Sigstore bundle v0.3: the signer's verification material and the signed
/// DSSE envelope.
pub(crate) fn bundle(statement: &[u8], key: &dyn Signer) -> Result<Value, SupplyError> {
    Ok(json!({
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": key.verification_material(),
        "dsseEnvelope": envelope(statement, key)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    /// A fresh ed25519 key, loaded from a PKCS#8 PEM file as --sign-key reads it.
    fn ed25519_key() -> SigningKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        use base64::Engine;
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        SigningKey::load(&path).unwrap()
    }

    #[test]
    fn an_ed25519_envelope_verifies_and_a_tampered_one_does_not() {
        let key = ed25519_key();
        let env = envelope(b"{\"a\":1}", &key).unwrap();
        use base64::Engine;
        let sig = base64::engine::general_purpose::STANDARD
            .decode(env["signatures"][0]["sig"].as_str().unwrap())
            .unwrap();
        let public =
            ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key.public_key());
        assert!(
            public
                .verify(&pae(STATEMENT_MEDIA_TYPE, b"{\"a\":1}"), &sig)
                .is_ok()
        );
        assert!(
            public
                .verify(&pae(STATEMENT_MEDIA_TYPE, b"{\"a\":2}"), &sig)
                .is_err()
        );
    }

    #[test]
    fn a_bundle_names_its_key_as_the_envelope_does() {
        let key = ed25519_key();
        let b = bundle(b"{}", &key).unwrap();
        assert_eq!(b["mediaType"], BUNDLE_MEDIA_TYPE);
        assert_eq!(b["verificationMaterial"]["publicKey"]["hint"], key.keyid);
        let sigs = b["dsseEnvelope"]["signatures"].as_array().unwrap();
        assert_eq!(
            sigs.len(),
            1,
            "a bundle's envelope has exactly one signature"
        );
        assert_eq!(sigs[0]["keyid"], key.keyid);
        assert_eq!(b["dsseEnvelope"]["payloadType"], STATEMENT_MEDIA_TYPE);
    }

    fn policy() -> Policy {
        Policy {
            require: "static-pie",
            nss_hazards_allowed: false,
            platform: "linux/amd64".into(),
            run_proof: Some(0),
        }
    }

    #[test]
    fn a_summary_names_its_policy_by_the_digest_of_the_content_it_carries() {
        let inputs = [InputAttestation {
            name: "x.slsa.intoto.json",
            media_type: STATEMENT_MEDIA_TYPE,
            sha256_hex: "ab",
        }];
        let v = verification_summary("x", "pkg:oci/x", "cd", &policy(), &inputs, true, 0).unwrap();
        assert_eq!(v["predicateType"], VSA_PREDICATE);
        let p = &v["predicate"];
        assert_eq!(p["verificationResult"], "PASSED");
        assert_eq!(
            p["verifiedLevels"],
            json!([
                "SLSA_BUILD_LEVEL_1",
                "STATICPACK_STATIC_PIE",
                "STATICPACK_RUN_PROVEN"
            ])
        );
        use base64::Engine;
        let content = base64::engine::general_purpose::STANDARD
            .decode(p["policy"]["content"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            p["policy"]["digest"]["sha256"],
            crate::digest::Digest::of_bytes(&content).hex()
        );
        assert_eq!(p["inputAttestations"][0]["digest"]["sha256"], "ab");
    }

    #[test]
    fn a_refused_binary_packed_anyway_fails_the_summary_and_claims_no_level() {
        let v = verification_summary("x", "pkg:oci/x", "cd", &policy(), &[], false, 0).unwrap();
        assert_eq!(v["predicate"]["verificationResult"], "FAILED");
        assert_eq!(v["predicate"]["verifiedLevels"], json!(["FAILED"]));
    }

    #[test]
    fn a_key_that_is_not_pkcs8_is_named() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("key.pem");
        std::fs::write(&path, "ssh-ed25519 AAAA").unwrap();
        let e = SigningKey::load(&path).unwrap_err().to_string();
        assert!(e.contains("key.pem") && e.contains("PKCS#8"), "{e}");
    }
}
