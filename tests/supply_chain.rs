//! SBOMs and attestations end to end: real builds of hello-c, a Go example and hello-rust, their
//! SPDX and CycloneDX documents checked by independent validators from PyPI (spdx-tools,
//! CycloneDX's JSON schema through cyclonedx-python-lib), the Sigstore bundles against the
//! bundle JSON schema (`jsonschema`) and their DSSE signatures by PyPI's `cryptography`, and the
//! referrers pushed to a real docker-registry found through the referrers tag schema with skopeo
//! and curl.

mod common;

use common::registry::{Auth, RegistryServer};
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The venv .ci/setup fills with the validators.
fn venv_python() -> PathBuf {
    let venv = std::env::var_os("STATICPACK_SUPPLY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/staticpack/supply-venv")
        });
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `bash .ci/setup` (it installs spdx-tools, cyclonedx-python-lib and cryptography from PyPI into that venv)",
        python.display()
    );
    python
}

/// Runs a Python snippet of the validators' venv with `args`.
fn python(script: &str, args: &[&str]) -> Run {
    let python = venv_python();
    let mut all = vec!["-c", script];
    all.extend_from_slice(args);
    tool(&python, &all, Path::new("/"))
}

const VALIDATE_SPDX: &str = "
import sys
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
messages = validate_full_spdx_document(parse_file(sys.argv[1]))
for m in messages:
    print(m.validation_message)
sys.exit(1 if messages else 0)
";

const VALIDATE_CYCLONEDX: &str = "
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())
if error:
    print(error)
sys.exit(1 if error else 0)
";

/// Verifies a Sigstore bundle independently of staticpack: its JSON against the Sigstore bundle
/// schema (vendored, pinned by sha256), then its DSSE signature with `cryptography` and the public
/// key (PEM), the PAE computed here.
const VERIFY_BUNDLE: &str = r#"
import sys, json, base64, hashlib, jsonschema
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
schema_bytes = open(sys.argv[3], 'rb').read()
pinned = '6f94437aaf57685129ce60d26ea27beb3d2540764637958374d205563f14d46d'
if hashlib.sha256(schema_bytes).hexdigest() != pinned:
    print('the vendored schema is not the pinned one'); sys.exit(2)
schema = json.loads(schema_bytes)
# The generated schema's oneOf clauses name the protobuf fields (dsse_envelope); the properties
# and every bundle use the JSON names (dsseEnvelope): see tests/fixtures/sigstore/README.md.
def camel(name):
    head, *rest = name.split('_')
    return head + ''.join(w.title() for w in rest)
def fix(node):
    if isinstance(node, dict):
        for choice in node.get('oneOf', []):
            if 'required' in choice:
                choice['required'] = [camel(r) for r in choice['required']]
        for v in node.values():
            fix(v)
    elif isinstance(node, list):
        for v in node:
            fix(v)
fix(schema)
bundle = json.load(open(sys.argv[2]))
errors = list(jsonschema.Draft4Validator(schema).iter_errors(bundle))
for e in errors:
    print('schema:', list(e.path), e.message[:200])
if errors:
    sys.exit(1)
assert bundle['mediaType'] == 'application/vnd.dev.sigstore.bundle.v0.3+json', bundle['mediaType']
env = bundle['dsseEnvelope']
assert len(env['signatures']) == 1, 'exactly one signature'
assert bundle['verificationMaterial']['publicKey']['hint'] == env['signatures'][0]['keyid']
key = serialization.load_pem_public_key(open(sys.argv[1], 'rb').read())
payload = base64.b64decode(env['payload'])
t = env['payloadType'].encode()
pae = b'DSSEv1 %d %s %d %s' % (len(t), t, len(payload), payload)
sig = base64.b64decode(env['signatures'][0]['sig'])
try:
    if isinstance(key, ed25519.Ed25519PublicKey):
        key.verify(sig, pae)
    else:
        key.verify(sig, pae, ec.ECDSA(hashes.SHA256()))
except Exception as e:
    print('rejected:', type(e).__name__)
    sys.exit(1)
print('verified', json.loads(payload)['predicateType'])
"#;

/// The vendored Sigstore bundle schema (tests/fixtures/sigstore/README.md says whence).
fn bundle_schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sigstore/Bundle.schema.json")
}

/// A private key (PKCS#8 PEM) at argv[2] and its public key (SubjectPublicKeyInfo PEM) at
/// argv[3].
const MAKE_KEY: &str = "
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
key = ed25519.Ed25519PrivateKey.generate() if sys.argv[1] == 'ed25519' else ec.generate_private_key(ec.SECP256R1())
open(sys.argv[2], 'wb').write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[3], 'wb').write(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
";

fn build(cwd: &Path, recipe_name: &str, extra: &[&str]) -> (PathBuf, String) {
    let out = cwd.join("out").join(recipe_name);
    let recipe = recipe(recipe_name);
    let mut args = vec![
        "build",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = staticpack(cwd, &args);
    run.ok();
    (out, printed_digest(&run))
}

/// One attached document, read from the layout by its list and manifests.
struct Attached {
    manifest_digest: String,
    artifact_type: String,
    predicate: Option<String>,
    media_type: String,
    bytes: Vec<u8>,
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

fn attached(layout: &Path, image_digest: &str) -> Vec<Attached> {
    let list = read_json(&layout.join("staticpack-referrers.json"));
    assert_eq!(
        list["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{list}"
    );
    let index = read_json(&layout.join("index.json"));
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        1,
        "index.json lists the image only: {index}"
    );
    (list["manifests"].as_array().unwrap().iter())
        .map(|d| {
            let digest = d["digest"].as_str().unwrap();
            let manifest = read_json(&blob(layout, digest));
            assert_eq!(manifest["subject"]["digest"], image_digest, "{manifest}");
            assert_eq!(manifest["artifactType"], d["artifactType"], "{manifest}");
            assert_eq!(
                manifest["config"]["mediaType"], "application/vnd.oci.empty.v1+json",
                "{manifest}"
            );
            let layer = &manifest["layers"][0];
            Attached {
                manifest_digest: digest.to_owned(),
                artifact_type: d["artifactType"].as_str().unwrap().to_owned(),
                predicate: d["annotations"]["in-toto.io/predicate-type"]
                    .as_str()
                    .map(str::to_owned),
                media_type: layer["mediaType"].as_str().unwrap().to_owned(),
                bytes: std::fs::read(blob(layout, layer["digest"].as_str().unwrap())).unwrap(),
            }
        })
        .collect()
}

fn document(docs: &[Attached], artifact_type: &str, predicate: Option<&str>) -> Value {
    let doc = docs
        .iter()
        .find(|d| d.artifact_type == artifact_type && d.predicate.as_deref() == predicate)
        .unwrap_or_else(|| panic!("no {artifact_type} {predicate:?} attached"));
    serde_json::from_slice(&doc.bytes).unwrap()
}

/// Writes both SBOMs to files and has the independent validators check them.
fn validate_sboms(dir: &Path, docs: &[Attached]) {
    let mut checked = 0;
    for doc in docs {
        let script = match doc.artifact_type.as_str() {
            "application/spdx+json" => VALIDATE_SPDX,
            "application/vnd.cyclonedx+json" => VALIDATE_CYCLONEDX,
            _ => continue,
        };
        let path = dir.join(format!("sbom-{checked}.json"));
        std::fs::write(&path, &doc.bytes).unwrap();
        let run = python(script, &[path.to_str().unwrap()]);
        assert_eq!(
            run.code,
            0,
            "{} refused by its validator:\n{}{}\n{}",
            doc.artifact_type,
            run.stdout,
            run.stderr,
            String::from_utf8_lossy(&doc.bytes)
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "both SBOMs are attached");
}

/// CycloneDX components as "purl" (or name when it has none).
fn purls(cdx: &Value) -> Vec<String> {
    (cdx["components"].as_array().unwrap().iter())
        .map(|c| {
            c["purl"]
                .as_str()
                .or(c["name"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

fn spdx_relationships(spdx: &Value, kind: &str) -> Vec<(String, String)> {
    (spdx["relationships"].as_array().unwrap().iter())
        .filter(|r| r["relationshipType"] == kind)
        .map(|r| {
            (
                r["spdxElementId"].as_str().unwrap().to_owned(),
                r["relatedSpdxElement"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn c_and_go_sboms_validate_and_the_referrers_are_found_through_the_fallback_tag() {
    let work = tempfile::tempdir().unwrap();
    let (c_layout, c_digest) = build(work.path(), "hello-c", &[]);
    let c_docs = attached(&c_layout, &c_digest);
    validate_sboms(work.path(), &c_docs);
    let c_cdx = document(&c_docs, "application/vnd.cyclonedx+json", None);
    let c_purls = purls(&c_cdx);
    assert!(
        c_purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/musl-dev@") && p.contains("upstream=musl")),
        "{c_purls:?}"
    );
    assert!(
        c_purls
            .iter()
            .any(|p| p.starts_with("pkg:deb/debian/libgcc-")),
        "{c_purls:?}"
    );
    // The image contains the binary, the binary statically links libc and libgcc.
    let c_spdx = document(&c_docs, "application/spdx+json", None);
    assert_eq!(
        spdx_relationships(&c_spdx, "CONTAINS"),
        vec![("SPDXRef-image".into(), "SPDXRef-application".into())]
    );
    let links = spdx_relationships(&c_spdx, "STATIC_LINK");
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links.iter().all(|(from, _)| from == "SPDXRef-application"));
    let binary_sha256 = &c_spdx["packages"][1]["checksums"][0]["checksumValue"];
    let provenance = read_json(&c_layout.join("staticpack-provenance.json"));
    assert_eq!(
        format!("sha256:{}", binary_sha256.as_str().unwrap()),
        provenance["binary_digest"].as_str().unwrap()
    );
    // The verification statement says what verify and the run proof saw.
    let verification = document(
        &c_docs,
        "application/vnd.in-toto+json",
        Some("https://staticpack.dev/verification/v1"),
    );
    assert_eq!(
        verification["subject"][0]["digest"]["sha256"],
        c_digest.strip_prefix("sha256:").unwrap()
    );
    let v = &verification["predicate"];
    assert_eq!(v["linkage"], "static-pie", "{v}");
    assert_eq!(v["libc"], "musl", "{v}");
    assert_eq!(v["interpreter"], Value::Null, "{v}");
    assert_eq!(v["needed"], serde_json::json!([]), "{v}");
    assert_eq!(v["runProof"]["exitCode"], 0, "{v}");
    assert_eq!(v["runProof"]["filesInRoot"], 1, "{v}");
    assert_eq!(
        v["runProof"]["libcFilesInRoot"],
        serde_json::json!([]),
        "{v}"
    );
    // The SLSA verification summary: PASSED against staticpack's policy (whose digest is of the
    // content it carries), from the two statements as attached.
    let vsa = document(
        &c_docs,
        "application/vnd.in-toto+json",
        Some("https://slsa.dev/verification_summary/v1"),
    );
    assert_eq!(
        vsa["subject"][0]["digest"]["sha256"],
        c_digest.strip_prefix("sha256:").unwrap()
    );
    let p = &vsa["predicate"];
    assert_eq!(p["verificationResult"], "PASSED", "{p}");
    assert_eq!(
        p["verifiedLevels"],
        serde_json::json!([
            "SLSA_BUILD_LEVEL_1",
            "STATICPACK_STATIC_PIE",
            "STATICPACK_RUN_PROVEN"
        ]),
        "{p}"
    );
    assert_eq!(p["verifier"]["id"], "https://staticpack.dev/verify", "{p}");
    assert_eq!(p["timeVerified"], "1970-01-01T00:00:00Z", "{p}");
    assert_eq!(
        p["resourceUri"].as_str().unwrap(),
        format!(
            "pkg:oci/hello-c@sha256%3A{}",
            c_digest.strip_prefix("sha256:").unwrap()
        )
    );
    use base64::Engine;
    let policy = base64::engine::general_purpose::STANDARD
        .decode(p["policy"]["content"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        p["policy"]["digest"]["sha256"].as_str().unwrap(),
        staticpack::digest::Digest::of_bytes(&policy).hex()
    );
    let policy: Value = serde_json::from_slice(&policy).unwrap();
    assert_eq!(
        policy["checks"][1],
        serde_json::json!({ "check": "linkage", "require": "static-pie" })
    );
    let inputs = p["inputAttestations"].as_array().unwrap();
    assert_eq!(inputs.len(), 2, "{p}");
    for (input, predicate) in inputs.iter().zip([
        "https://slsa.dev/provenance/v1",
        "https://staticpack.dev/verification/v1",
    ]) {
        let doc = (c_docs.iter())
            .find(|d| d.predicate.as_deref() == Some(predicate))
            .unwrap();
        assert_eq!(
            input["digest"]["sha256"].as_str().unwrap(),
            staticpack::digest::Digest::of_bytes(&doc.bytes).hex(),
            "{predicate}"
        );
    }
    // SLSA provenance: every input file as a resolved dependency, the commands as run.
    let slsa = document(
        &c_docs,
        "application/vnd.in-toto+json",
        Some("https://slsa.dev/provenance/v1"),
    );
    let deps = slsa["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let hello_c = deps.iter().find(|d| d["name"] == "src/hello.c").unwrap();
    assert_eq!(
        format!("sha256:{}", hello_c["digest"]["sha256"].as_str().unwrap()),
        provenance["inputs"]["files"]["src/hello.c"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        slsa["predicate"]["buildDefinition"]["internalParameters"]["commands"],
        provenance["commands"]
    );

    // A Go example on the static base: the Go standard library, the base's packages.
    let (go_layout, go_digest) = build(work.path(), "go-6-nocgo-purego", &[]);
    let go_docs = attached(&go_layout, &go_digest);
    validate_sboms(work.path(), &go_docs);
    let go_purls = purls(&document(&go_docs, "application/vnd.cyclonedx+json", None));
    for expected in [
        "pkg:golang/example.com/staticpack/go-6-nocgo-purego",
        "pkg:golang/stdlib@",
        "pkg:deb/debian/ca-certificates@",
        "pkg:deb/debian/tzdata@",
        "pkg:deb/debian/netbase@",
    ] {
        assert!(
            go_purls.iter().any(|p| p.starts_with(expected)),
            "{expected} missing from {go_purls:?}"
        );
    }
    let go_spdx = document(&go_docs, "application/spdx+json", None);
    // The image contains the application and the base's packaged files: the CA bundle, zoneinfo,
    // and netbase's services and protocols.
    assert_eq!(spdx_relationships(&go_spdx, "CONTAINS").len(), 5);

    // Pushed to a registry without the referrers API: found through the sha256-<hex> tag.
    let registry = RegistryServer::start(Auth::Anonymous);
    let target = format!("{}/supply/go:v1", registry.host());
    let run = staticpack(
        work.path(),
        &[
            "build",
            recipe("go-6-nocgo-purego").to_str().unwrap(),
            "--out",
            go_layout.to_str().unwrap(),
            "--push",
            &target,
            "--insecure-registry",
            &registry.host(),
        ],
    );
    run.ok();
    let tag = format!("sha256-{}", go_digest.strip_prefix("sha256:").unwrap());
    assert!(
        run.stderr.contains(&format!(
            "5 referrer(s) in supply/go, listed by the referrers tag {tag}"
        )),
        "{}",
        run.stderr
    );
    let skopeo = need("skopeo", "skopeo");
    let base = format!("docker://{}/supply/go", registry.host());
    let raw = |reference: &str| -> Value {
        let run = tool(
            &skopeo,
            &["inspect", "--raw", "--tls-verify=false", reference],
            work.path(),
        );
        run.ok();
        serde_json::from_str(&run.stdout).unwrap()
    };
    let index = raw(&format!("{base}:{tag}"));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<&str> = (index["manifests"].as_array().unwrap().iter())
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    let local: Vec<&str> = go_docs.iter().map(|d| d.manifest_digest.as_str()).collect();
    assert_eq!(listed, local);
    let curl = need("curl", "curl");
    for doc in &go_docs {
        let manifest = raw(&format!("{base}@{}", doc.manifest_digest));
        assert_eq!(manifest["subject"]["digest"], go_digest.as_str());
        let layer = manifest["layers"][0]["digest"].as_str().unwrap();
        let url = format!("http://{}/v2/supply/go/blobs/{layer}", registry.host());
        let fetched = std::process::Command::new(&curl)
            .args(["-sfL", &url])
            .output()
            .unwrap();
        assert!(fetched.status.success(), "curl {url} failed");
        assert_eq!(fetched.stdout, doc.bytes, "{} as pushed", doc.media_type);
    }
    // The image itself is the one built, unchanged by what refers to it.
    let image = tool(
        &skopeo,
        &["inspect", "--tls-verify=false", &format!("{base}:v1")],
        work.path(),
    );
    image.ok();
    let image: Value = serde_json::from_str(&image.stdout).unwrap();
    assert_eq!(image["Digest"], go_digest.as_str());

    // --no-referrers, for registries that refuse artifacts: the image alone, no fallback tag.
    let bare = format!("{}/supply/bare:v1", registry.host());
    let run = staticpack(
        work.path(),
        &[
            "push",
            go_layout.to_str().unwrap(),
            &bare,
            "--insecure-registry",
            &registry.host(),
            "--no-referrers",
        ],
    );
    run.ok();
    assert!(!run.stderr.contains("referrer"), "{}", run.stderr);
    let bare_base = format!("docker://{}/supply/bare", registry.host());
    let pushed = tool(
        &skopeo,
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("{bare_base}:v1"),
        ],
        work.path(),
    );
    pushed.ok();
    let missing = tool(
        &skopeo,
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("{bare_base}:{tag}"),
        ],
        work.path(),
    );
    assert_ne!(missing.code, 0, "{}", missing.stdout);
    let tags = tool(
        &skopeo,
        &["list-tags", "--tls-verify=false", &bare_base],
        work.path(),
    );
    let tags: Value = serde_json::from_str(&tags.ok().stdout).unwrap();
    assert_eq!(tags["Tags"], serde_json::json!(["v1"]), "{tags}");
}

#[test]
fn hello_rust_sbom_names_its_cargo_package_and_the_rust_toolchain() {
    let work = tempfile::tempdir().unwrap();
    let (layout, digest) = build(work.path(), "hello-rust", &[]);
    let docs = attached(&layout, &digest);
    validate_sboms(work.path(), &docs);
    let cdx = document(&docs, "application/vnd.cyclonedx+json", None);
    let app = &cdx["components"][0];
    assert_eq!(app["purl"], "pkg:cargo/hello-rust@0.1.0", "{app}");
    let purls = purls(&cdx);
    assert!(
        purls.iter().any(|p| p.starts_with("pkg:generic/rust-std@")),
        "{purls:?}"
    );
}

#[test]
fn signed_statements_are_sigstore_bundles_that_verify_with_cryptography_and_tampered_ones_do_not() {
    let work = tempfile::tempdir().unwrap();
    for kind in ["ed25519", "ecdsa-p256"] {
        let key = work.path().join(format!("{kind}.pem"));
        let public = work.path().join(format!("{kind}.pub.pem"));
        python(
            MAKE_KEY,
            &[kind, key.to_str().unwrap(), public.to_str().unwrap()],
        )
        .ok();
        let (layout, digest) = build(
            work.path(),
            "hello-c",
            &["--no-cache", "--sign-key", key.to_str().unwrap()],
        );
        let docs = attached(&layout, &digest);
        let bundles: Vec<&Attached> = (docs.iter())
            .filter(|d| d.media_type == "application/vnd.dev.sigstore.bundle.v0.3+json")
            .collect();
        assert_eq!(
            bundles.len(),
            STATEMENTS,
            "every statement is a Sigstore bundle ({kind})"
        );
        // Attached as cosign v3 attaches bundles: artifactType and annotations.
        let list = read_json(&layout.join("staticpack-referrers.json"));
        for b in &bundles {
            assert_eq!(
                b.artifact_type,
                "application/vnd.dev.sigstore.bundle.v0.3+json"
            );
            let manifest = read_json(&blob(&layout, &b.manifest_digest));
            assert_eq!(
                manifest["annotations"]["dev.sigstore.bundle.content"], "dsse-envelope",
                "{manifest}"
            );
            assert_eq!(
                manifest["annotations"]["dev.sigstore.bundle.predicateType"],
                b.predicate.as_deref().unwrap(),
                "{manifest}"
            );
            assert!(
                list.to_string().contains(&b.manifest_digest),
                "listed: {list}"
            );
        }
        for (i, bundle) in bundles.iter().enumerate() {
            let path = work.path().join(format!("{kind}-{i}.sigstore.json"));
            std::fs::write(&path, &bundle.bytes).unwrap();
            let schema = bundle_schema();
            let args = [
                public.to_str().unwrap(),
                path.to_str().unwrap(),
                schema.to_str().unwrap(),
            ];
            let run = python(VERIFY_BUNDLE, &args);
            assert_eq!(run.code, 0, "{kind}: {}{}", run.stdout, run.stderr);
            assert!(
                run.stdout.starts_with("verified https://"),
                "{}",
                run.stdout
            );

            // The payload changed by one byte (the subject's digest): the signature fails.
            let mut b: Value = serde_json::from_slice(&bundle.bytes).unwrap();
            use base64::Engine;
            let b64 = base64::engine::general_purpose::STANDARD;
            let payload = b64
                .decode(b["dsseEnvelope"]["payload"].as_str().unwrap())
                .unwrap();
            let text = String::from_utf8(payload).unwrap();
            let hex = digest.strip_prefix("sha256:").unwrap();
            let forged = format!(
                "{}{}",
                &hex[..63],
                if hex.ends_with('0') { "1" } else { "0" }
            );
            assert!(text.contains(hex));
            b["dsseEnvelope"]["payload"] = b64.encode(text.replace(hex, &forged)).into();
            let tampered = work.path().join(format!("{kind}-{i}.tampered.json"));
            std::fs::write(&tampered, serde_json::to_vec(&b).unwrap()).unwrap();
            let args = [
                public.to_str().unwrap(),
                tampered.to_str().unwrap(),
                schema.to_str().unwrap(),
            ];
            let run = python(VERIFY_BUNDLE, &args);
            assert_eq!(
                run.code, 1,
                "{kind}: a tampered bundle verified: {}",
                run.stdout
            );
            assert!(
                run.stdout.contains("rejected: InvalidSignature"),
                "{}",
                run.stdout
            );
        }
    }
}

/// The in-toto statements every build attaches (SLSA provenance, staticpack's verification,
/// the SLSA verification summary).
const STATEMENTS: usize = 3;

/// The SPDX SBOM of hello-c, pinned: it is a function of the image digest, the toolchain
/// packages and the epoch only. A change here is a change of what the SBOM says.
const HELLO_C_SPDX: &str =
    "sha256:a62f6f341233f73f32dc73f18b2daec10ee954677639cece9fd373eb96dc2b80";

#[test]
fn sboms_and_statements_are_reproducible_and_chosen_by_sbom() {
    let work = tempfile::tempdir().unwrap();
    // --check-repro builds again elsewhere and compares the referrers too.
    let recipe_path = recipe("hello-c");
    let out = work.path().join("out/hello-c");
    let run = staticpack(
        work.path(),
        &[
            "build",
            recipe_path.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--check-repro",
        ],
    );
    run.ok();
    let digest = printed_digest(&run);
    let docs = attached(&out, &digest);
    let spdx = docs
        .iter()
        .find(|d| d.artifact_type == "application/spdx+json")
        .unwrap();
    assert_eq!(
        staticpack::digest::Digest::of_bytes(&spdx.bytes).to_string(),
        HELLO_C_SPDX,
        "{}",
        String::from_utf8_lossy(&spdx.bytes)
    );

    let inspect = staticpack(work.path(), &["inspect", out.to_str().unwrap()]);
    inspect.ok();
    let referrer_lines: Vec<&str> = (inspect.stdout.lines())
        .filter(|l| l.starts_with("referrer:"))
        .collect();
    assert_eq!(referrer_lines.len(), 5, "{}", inspect.stdout);
    assert!(
        referrer_lines[0].contains("application/spdx+json hello-c.spdx.json"),
        "{}",
        inspect.stdout
    );

    for (choice, expected) in [
        ("none", vec!["application/vnd.in-toto+json"; 3]),
        (
            "spdx",
            vec![
                "application/spdx+json",
                "application/vnd.in-toto+json",
                "application/vnd.in-toto+json",
                "application/vnd.in-toto+json",
            ],
        ),
        (
            "cyclonedx",
            vec![
                "application/vnd.cyclonedx+json",
                "application/vnd.in-toto+json",
                "application/vnd.in-toto+json",
                "application/vnd.in-toto+json",
            ],
        ),
    ] {
        let (layout, d) = build(work.path(), "hello-c", &["--sbom", choice]);
        assert_eq!(d, digest, "--sbom {choice} changed the image");
        let types: Vec<String> = attached(&layout, &d)
            .into_iter()
            .map(|a| a.artifact_type)
            .collect();
        assert_eq!(types, expected, "--sbom {choice}");
    }
}

/// Edits the document attached to `layout` whose referrer is annotated `predicate` (an in-toto
/// predicate type, or an artifact type for an SBOM) as a forger with write access would: the
/// statement (a bundle's payload, its old signature kept) or SBOM changed by `edit`, and every
/// digest re-hashed (the document's blob, its referrer manifest, the referrers list), so that
/// only a signature or a check against the image can tell. Returns the document's old and new
/// sha256 (hex).
fn forge(layout: &Path, predicate: &str, edit: &dyn Fn(&mut Value)) -> (String, String) {
    use base64::Engine;
    use staticpack::digest::Digest;
    let b64 = base64::engine::general_purpose::STANDARD;
    let list_path = layout.join("staticpack-referrers.json");
    let mut list = read_json(&list_path);
    let entry = (list["manifests"].as_array_mut().unwrap().iter_mut())
        .find(|m| {
            m["annotations"]["in-toto.io/predicate-type"] == predicate
                || m["artifactType"] == predicate
        })
        .unwrap_or_else(|| panic!("no {predicate} referrer"));
    let mut manifest = read_json(&blob(layout, entry["digest"].as_str().unwrap()));
    let old_layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let mut document = read_json(&blob(layout, &old_layer));
    if document.get("dsseEnvelope").is_some() {
        let payload = b64
            .decode(document["dsseEnvelope"]["payload"].as_str().unwrap())
            .unwrap();
        let mut statement: Value = serde_json::from_slice(&payload).unwrap();
        edit(&mut statement);
        let forged = serde_json::to_vec_pretty(&statement).unwrap();
        assert_ne!(forged, payload, "the edit changed nothing");
        document["dsseEnvelope"]["payload"] = b64.encode(&forged).into();
    } else {
        // A bare statement or an SBOM: edited as it is.
        let before = document.clone();
        edit(&mut document);
        assert_ne!(document, before, "the edit changed nothing");
    }
    let write = |bytes: &[u8]| -> (String, usize) {
        let d = Digest::of_bytes(bytes);
        std::fs::write(layout.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        (d.to_string(), bytes.len())
    };
    let (layer, layer_size) = write(&serde_json::to_vec_pretty(&document).unwrap());
    manifest["layers"][0]["digest"] = layer.clone().into();
    manifest["layers"][0]["size"] = layer_size.into();
    let (m, m_size) = write(&serde_json::to_vec(&manifest).unwrap());
    entry["digest"] = m.into();
    entry["size"] = m_size.into();
    std::fs::write(&list_path, serde_json::to_vec_pretty(&list).unwrap()).unwrap();
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_owned();
    (hex(&old_layer), hex(&layer))
}

#[test]
fn verify_attestations_accepts_genuine_signed_statements_and_names_the_signature_of_a_forged_one() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key.pem");
    let public = work.path().join("key.pub");
    python(
        MAKE_KEY,
        &["ed25519", key.to_str().unwrap(), public.to_str().unwrap()],
    )
    .ok();
    let (layout, _) = build(
        work.path(),
        "hello-c",
        &["--no-cache", "--sign-key", key.to_str().unwrap()],
    );
    let image = format!("oci:{}", layout.display());
    let verify = |args: &[&str]| {
        let mut all = vec!["verify", image.as_str(), "--attestations"];
        all.extend_from_slice(args);
        staticpack(work.path(), &all)
    };
    let genuine = verify(&["--key", public.to_str().unwrap()]);
    assert_eq!(genuine.code, 0, "{}{}", genuine.stdout, genuine.stderr);
    assert_eq!(
        genuine.stdout.matches(", signature verified)").count(),
        STATEMENTS,
        "{}",
        genuine.stdout
    );
    assert!(
        genuine.stdout.contains("attested yes: 5 document(s)"),
        "{}",
        genuine.stdout
    );

    // Another key: every statement's signature fails, named.
    let other = work.path().join("other.pem");
    let other_public = work.path().join("other.pub");
    python(
        MAKE_KEY,
        &[
            "ecdsa-p256",
            other.to_str().unwrap(),
            other_public.to_str().unwrap(),
        ],
    )
    .ok();
    let wrong = verify(&["--key", other_public.to_str().unwrap()]);
    assert_eq!(wrong.code, 1, "{}", wrong.stdout);
    assert_eq!(
        wrong.stdout.matches("signature INVALID").count(),
        STATEMENTS,
        "{}",
        wrong.stdout
    );

    // The verification statement forged (verdict, the run proof's exit code 42), and the summary
    // made to name the forged statement's digest: every digest re-hashed.
    let (old, new) = forge(&layout, "https://staticpack.dev/verification/v1", &|s| {
        s["predicate"]["verdict"] = "static-pie (forged)".into();
        s["predicate"]["runProof"]["exitCode"] = 42.into();
    });
    forge(&layout, "https://slsa.dev/verification_summary/v1", &|s| {
        for input in s["predicate"]["inputAttestations"].as_array_mut().unwrap() {
            if input["digest"]["sha256"] == old.as_str() {
                input["digest"]["sha256"] = new.clone().into();
            }
        }
    });
    // The layout is consistent again: inspect reads it, and without a key nothing is caught.
    staticpack(work.path(), &["inspect", layout.to_str().unwrap()]).ok();
    let unkeyed = verify(&[]);
    assert_eq!(
        unkeyed.code, 0,
        "only a signature can catch this forgery: {}{}",
        unkeyed.stdout, unkeyed.stderr
    );
    assert!(
        unkeyed.stdout.contains("not checked: no --key"),
        "{}",
        unkeyed.stdout
    );
    let forged = verify(&["--key", public.to_str().unwrap()]);
    assert_eq!(forged.code, 1, "{}{}", forged.stdout, forged.stderr);
    for name in [
        "hello-c.verification.sigstore.json",
        "hello-c.vsa.sigstore.json",
    ] {
        assert!(
            forged.stdout.contains(&format!(
                "error: {name}: the signature does not verify with {}",
                public.display()
            )),
            "{name}: {}",
            forged.stdout
        );
    }
    assert!(
        forged.stdout.contains("  ok   hello-c.slsa.sigstore.json"),
        "the untouched provenance still verifies: {}",
        forged.stdout
    );

    // --json: one object for the attestations, with each document's problems.
    let json = verify(&["--key", public.to_str().unwrap(), "--json"]);
    assert_eq!(json.code, 1);
    let line: Value = (json.stdout.lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v.get("attestations").is_some())
        .unwrap();
    assert_eq!(line["status"], "fail", "{line}");
    let docs = line["attestations"]["documents"].as_array().unwrap();
    let verification = (docs.iter())
        .find(|d| d["name"] == "hello-c.verification.sigstore.json")
        .unwrap();
    assert_eq!(
        verification["signature"]["status"], "invalid",
        "{verification}"
    );
}

#[test]
fn verify_attestations_reads_an_oci_archive_and_fails_an_unsigned_statement_under_a_key() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key.pem");
    let public = work.path().join("key.pub");
    python(
        MAKE_KEY,
        &[
            "ecdsa-p256",
            key.to_str().unwrap(),
            public.to_str().unwrap(),
        ],
    )
    .ok();
    let archive = work.path().join("hello-c.oci.tar");
    let run = staticpack(
        work.path(),
        &[
            "build",
            recipe("hello-c").to_str().unwrap(),
            "--format",
            "oci-archive",
            "--out",
            archive.to_str().unwrap(),
            "--sign-key",
            key.to_str().unwrap(),
        ],
    );
    run.ok();
    let image = format!("oci-archive:{}", archive.display());
    let signed = staticpack(
        work.path(),
        &[
            "verify",
            &image,
            "--attestations",
            "--key",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(signed.code, 0, "{}{}", signed.stdout, signed.stderr);

    // Unsigned statements: reported without a key, refused with one.
    let (layout, _) = build(work.path(), "hello-c", &[]);
    let image = format!("oci:{}", layout.display());
    let unsigned = staticpack(work.path(), &["verify", &image, "--attestations"]);
    assert_eq!(unsigned.code, 0, "{}", unsigned.stdout);
    assert!(
        unsigned.stdout.contains("3 statement(s) unsigned"),
        "{}",
        unsigned.stdout
    );
    let keyed = staticpack(
        work.path(),
        &[
            "verify",
            &image,
            "--attestations",
            "--key",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(keyed.code, 1, "{}", keyed.stdout);
    assert!(
        keyed
            .stdout
            .contains("error: hello-c.slsa.intoto.json: unsigned"),
        "{}",
        keyed.stdout
    );
}

#[test]
fn verify_attestations_of_a_pushed_image_pulls_its_signed_referrers() {
    let work = tempfile::tempdir().unwrap();
    let key = work.path().join("key.pem");
    let public = work.path().join("key.pub");
    python(
        MAKE_KEY,
        &["ed25519", key.to_str().unwrap(), public.to_str().unwrap()],
    )
    .ok();
    let registry = RegistryServer::start(Auth::Anonymous);
    let target = format!("{}/attest/hello:v1", registry.host());
    let (layout, digest) = build(
        work.path(),
        "hello-c",
        &["--sign-key", key.to_str().unwrap()],
    );
    staticpack(work.path(), &["push", layout.to_str().unwrap(), &target]).ok();
    // Debian's docker-registry has no referrers API: they come from the sha256-<hex> tag.
    let image = format!("docker://{target}");
    let run = staticpack(
        work.path(),
        &[
            "verify",
            &image,
            "--attestations",
            "--key",
            public.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("attestations of {digest} (5 attached)")),
        "{}",
        run.stdout
    );
    assert_eq!(
        run.stdout.matches(", signature verified)").count(),
        STATEMENTS,
        "{}",
        run.stdout
    );
}

#[test]
fn verify_attestations_checks_unsigned_documents_against_the_image() {
    let work = tempfile::tempdir().unwrap();
    let (layout, _) = build(work.path(), "hello-c", &[]);
    let image = format!("oci:{}", layout.display());
    let verify = || staticpack(work.path(), &["verify", &image, "--attestations"]);
    let run = verify();
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);

    // The verification statement names another binary: no file of the image, and not the
    // provenance's.
    let other = "ab".repeat(32);
    forge(&layout, "https://staticpack.dev/verification/v1", &|s| {
        s["predicate"]["binary"]["digest"]["sha256"] = other.clone().into();
    });
    // The SPDX SBOM claims a file the image does not have.
    forge(&layout, "application/spdx+json", &|s| {
        let packages = s["packages"].as_array_mut().unwrap();
        let mut extra = packages[1].clone();
        extra["SPDXID"] = "SPDXRef-extra".into();
        extra["name"] = "ca-certificates".into();
        extra["primaryPackagePurpose"] = "FILE".into();
        extra["comment"] = "staticpack:path: /etc/ssl/certs/ca-certificates.crt".into();
        packages.push(extra);
    });
    let run = verify();
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    for expected in [
        format!("error: hello-c.verification.intoto.json: its binary sha256:{other} is no file of the image"),
        "error: the statements name different binaries".to_owned(),
        "error: hello-c.spdx.json: its component ca-certificates at /etc/ssl/certs/ca-certificates.crt is not in the image".to_owned(),
        "  ok   hello-c.cdx.json".to_owned(),
        "  ok   hello-c.slsa.intoto.json".to_owned(),
    ] {
        assert!(run.stdout.contains(&expected), "{expected}: {}", run.stdout);
    }
}
