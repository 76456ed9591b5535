//! `docker://` pull for `verify IMAGE` / `run IMAGE` (issue 16): the manifest (or index, then
//! the chosen platform's manifest), its config and layers fetched through the push client's
//! session (same auth, credential helpers, plain http only for loopback or
//! `--insecure-registry`) and written as an OCI layout holding that one image manifest, so the
//! layout reader checks everything a second time and the rest of verify/run works unchanged.
//!
//! A pulled image is untrusted data: manifests are bounded by [`MANIFEST_MAX`] and held in
//! memory; configs by [`CONFIG_MAX`]; layers are streamed into temp files while hashed, bounded
//! by their descriptor's size and by [`PULL_MAX`] in all. A blob appears under its digest's
//! name only after its length and digest matched.

use super::auth::repository_scope;
use super::errors::RegistryError;
use super::progress::Progress;
use super::reference::Reference;
use super::session::{Call, Client, Registry};
use super::transport::Body;
use crate::digest::Digest;
use crate::recipe::Platform;
use serde::Deserialize;
use std::path::Path;
use ureq::http;

/// Manifests and indexes bigger than this are refused (registries cap them at 4 MiB too).
pub const MANIFEST_MAX: u64 = 4 << 20;
/// An image config bigger than this is refused: it is JSON, read whole by the layout reader,
/// which takes no more.
pub const CONFIG_MAX: u64 = crate::image::layout::JSON_MAX;
/// The most blob bytes one pull writes (config and layers): as much as `run` unpacks by default.
pub const PULL_MAX: u64 = 16 << 30;
/// An index naming more manifests than this is refused.
const INDEX_MAX: usize = 256;
/// A manifest with more layers than this is refused (overlayfs stops well below).
const LAYERS_MAX: usize = 500;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// What a pull fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pulled {
    /// The index the reference named, when it named one, and the platforms it lists.
    pub index: Option<(Digest, Vec<String>)>,
    /// The image manifest whose blobs were fetched.
    pub manifest: Digest,
    /// The platform of that manifest as the index said (`None` for a lone manifest).
    pub platform: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    media_type: Option<String>,
    digest: String,
    size: u64,
    #[serde(default)]
    urls: Vec<String>,
    platform: Option<DescPlatform>,
}

#[derive(Clone, Deserialize)]
struct DescPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl DescPlatform {
    fn name(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }

    /// OS and architecture equal; the variant too when both say one.
    fn matches(&self, want: &Platform) -> bool {
        self.os == want.os
            && self.architecture == want.oci_arch()
            && match (&self.variant, &want.variant) {
                (Some(have), Some(want)) => have == want,
                _ => true,
            }
    }
}

#[derive(Deserialize)]
struct IndexDoc {
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct ManifestDoc {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

fn bad(reference: &Reference, reason: String) -> RegistryError {
    RegistryError::BadPull {
        reference: reference.to_string(),
        reason,
    }
}

/// Pulls `reference` into a new OCI layout at `dir` (an existing empty folder, private to the
/// caller). From an index, only the manifest for `platform` (the host's when `None`) is
/// fetched, with its blobs; the layout's index.json names that manifest alone.
pub fn pull_to_layout(
    client: &Client,
    reference: &Reference,
    platform: Option<&Platform>,
    dir: &Path,
    p: &dyn Progress,
) -> Result<Pulled, RegistryError> {
    let reg = client.registry(&reference.registry, p)?;
    let by = match (&reference.digest, &reference.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_owned(),
    };
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs)
        .map_err(|e| bad(reference, format!("creating {}: {e}", blobs.display())))?;
    let root = fetch_manifest(client, &reg, reference, &by, reference.digest.as_ref(), p)?;
    let (manifest, index, chosen_platform) = if is_index(&root.media_type) {
        let want = platform.cloned().unwrap_or_else(Platform::host_or_default);
        let doc: IndexDoc = serde_json::from_slice(&root.bytes).map_err(|e| {
            bad(
                reference,
                format!("index {}: not an image index: {e}", root.digest),
            )
        })?;
        if doc.manifests.len() > INDEX_MAX {
            return Err(bad(
                reference,
                format!(
                    "index {} names {} manifests (at most {INDEX_MAX})",
                    root.digest,
                    doc.manifests.len()
                ),
            ));
        }
        let have: Vec<String> = doc
            .manifests
            .iter()
            .map(|d| {
                d.platform
                    .as_ref()
                    .map_or("unknown".into(), DescPlatform::name)
            })
            // BuildKit's attestation manifests (SBOM, provenance) are no platform to pick.
            .filter(|name| name != "unknown/unknown")
            .collect();
        let Some(entry) = doc
            .manifests
            .iter()
            .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(&want)))
        else {
            return Err(bad(
                reference,
                format!(
                    "index {} has no manifest for {want} (it has {}); pick one with --platform",
                    root.digest,
                    have.join(", ")
                ),
            ));
        };
        let child = parse_digest(reference, &entry.digest, "the index")?;
        let fetched = fetch_manifest(client, &reg, reference, &entry.digest, Some(&child), p)?;
        if !is_manifest(&fetched.media_type) {
            return Err(bad(
                reference,
                format!(
                    "{} (for {want} in index {}) is a {}, not an image manifest",
                    fetched.digest, root.digest, fetched.media_type
                ),
            ));
        }
        if fetched.bytes.len() as u64 != entry.size {
            return Err(bad(
                reference,
                format!(
                    "manifest {} is {} bytes, the index says {}",
                    fetched.digest,
                    fetched.bytes.len(),
                    entry.size
                ),
            ));
        }
        let chosen = entry.platform.clone();
        (fetched, Some((root.digest, have)), chosen)
    } else {
        (root, None, None)
    };
    let doc: ManifestDoc = serde_json::from_slice(&manifest.bytes).map_err(|e| {
        bad(
            reference,
            format!("manifest {}: not an image manifest: {e}", manifest.digest),
        )
    })?;
    if doc.layers.len() > LAYERS_MAX {
        return Err(bad(
            reference,
            format!(
                "manifest {} has {} layers (at most {LAYERS_MAX})",
                manifest.digest,
                doc.layers.len()
            ),
        ));
    }
    check_blob_types(reference, &manifest.digest, &doc)?;
    let mut total = 0u64;
    for (d, max) in
        std::iter::once((&doc.config, CONFIG_MAX)).chain(doc.layers.iter().map(|l| (l, PULL_MAX)))
    {
        let digest = parse_digest(reference, &d.digest, "the manifest")?;
        if d.size > max {
            return Err(bad(
                reference,
                format!("blob {digest} is {} bytes (at most {max})", d.size),
            ));
        }
        total = total.saturating_add(d.size);
        if total > PULL_MAX {
            return Err(bad(
                reference,
                format!("the image's blobs add up to over {PULL_MAX} bytes"),
            ));
        }
        // A blob named twice (an empty layer repeated) is fetched once.
        if !blobs.join(digest.hex()).exists() {
            fetch_blob(client, &reg, reference, &blobs, &digest, d.size, p)?;
        }
    }
    write_file(
        reference,
        &blobs.join(manifest.digest.hex()),
        &manifest.bytes,
    )?;
    let mut entry = serde_json::json!({
        "mediaType": manifest.media_type,
        "digest": manifest.digest.to_string(),
        "size": manifest.bytes.len(),
    });
    if let Some(pl) = &chosen_platform {
        entry["platform"] = serde_json::json!({"os": pl.os, "architecture": pl.architecture});
        if let Some(v) = &pl.variant {
            entry["platform"]["variant"] = serde_json::json!(v);
        }
    }
    let index_json = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry],
    });
    write_file(
        reference,
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index_json = serde_json::to_vec(&index_json).map_err(|e| bad(reference, e.to_string()))?;
    write_file(reference, &dir.join("index.json"), &index_json)?;
    Ok(Pulled {
        index,
        manifest: manifest.digest,
        platform: chosen_platform.as_ref().map(DescPlatform::name),
    })
}

fn parse_digest(reference: &Reference, s: &str, whose: &str) -> Result<Digest, RegistryError> {
    Digest::parse(s).ok_or_else(|| bad(reference, format!("{whose} names a bad digest {s:?}")))
}

/// A config that is not an image config, a layer that is not a tar, or one fetched from
/// elsewhere (`urls`) is refused before anything is downloaded.
fn check_blob_types(
    reference: &Reference,
    manifest: &Digest,
    doc: &ManifestDoc,
) -> Result<(), RegistryError> {
    let config_type = doc.config.media_type.as_deref().unwrap_or("");
    if config_type != OCI_CONFIG && config_type != DOCKER_CONFIG {
        return Err(bad(
            reference,
            format!(
                "manifest {manifest}'s config is of media type {config_type:?}, not an image config (it is not a container image)"
            ),
        ));
    }
    for layer in &doc.layers {
        let t = layer.media_type.as_deref().unwrap_or("");
        if crate::image::layer::LayerFormat::of_media_type(t).is_none() {
            return Err(bad(
                reference,
                format!(
                    "layer {} is of media type {t:?}; only {} are read",
                    layer.digest,
                    crate::image::layer::LayerFormat::SUPPORTED
                ),
            ));
        }
        if !layer.urls.is_empty() {
            return Err(bad(
                reference,
                format!(
                    "layer {} is a foreign layer fetched from other URLs; it is not pulled",
                    layer.digest
                ),
            ));
        }
    }
    Ok(())
}

/// Streams one blob into a temp file in `blobs` while hashing it; renames it to its digest's
/// name only when it has its descriptor's size and digest.
fn fetch_blob(
    client: &Client,
    reg: &Registry,
    reference: &Reference,
    blobs: &Path,
    digest: &Digest,
    size: u64,
    p: &dyn Progress,
) -> Result<(), RegistryError> {
    let repo = reference.repository.as_str();
    let tmp = tempfile::NamedTempFile::new_in(blobs).map_err(|e| {
        bad(
            reference,
            format!("creating a temp file in {}: {e}", blobs.display()),
        )
    })?;
    let action = format!("pull blob {digest} from");
    let call = Call {
        method: http::Method::GET,
        url: format!("{}/v2/{repo}/blobs/{digest}", reg.base),
        headers: Vec::new(),
        body: Body::Empty,
        authenticate: true,
        scopes: vec![repository_scope(repo, "pull")],
        repository: repo,
        action: &action,
        retry: true,
        max_body: Some(size),
        save_to: Some(tmp.path()),
    };
    let resp = client.execute(reg, &call, p)?;
    if resp.status != 200 {
        return Err(status_error(client, reg, reference, &action, &resp));
    }
    let Some(saved) = resp.saved else {
        return Err(bad(reference, format!("blob {digest}: no body was saved")));
    };
    if saved.len != size {
        return Err(bad(
            reference,
            format!(
                "blob {digest}: the registry sent {} bytes, the manifest says {size}",
                saved.len
            ),
        ));
    }
    if &saved.digest != digest {
        return Err(bad(
            reference,
            format!(
                "blob {digest}: the registry sent bytes with digest {}",
                saved.digest
            ),
        ));
    }
    tmp.persist(blobs.join(digest.hex()))
        .map_err(|e| bad(reference, format!("saving blob {digest}: {}", e.error)))?;
    Ok(())
}

/// The session's error for an unexpected status, with a hint for pulls where push's is wrong.
fn status_error(
    client: &Client,
    reg: &Registry,
    reference: &Reference,
    action: &str,
    resp: &super::transport::Resp,
) -> RegistryError {
    match client.status_error(reg, &reference.repository, action, resp) {
        RegistryError::NotFound {
            registry,
            repository,
            action,
            detail,
            ..
        } => RegistryError::NotFound {
            hint: format!(
                "Check the repository name and the tag or digest (skopeo list-tags docker://{}/{repository} lists the tags)",
                reference.registry
            ),
            registry,
            repository,
            action,
            detail,
        },
        other => other,
    }
}

struct Fetched {
    digest: Digest,
    media_type: String,
    bytes: Vec<u8>,
}

/// GETs a manifest or index by tag or digest: of a known media type, at most
/// [`MANIFEST_MAX`] bytes, and having the digest asked for (by digest) or the one the
/// registry says in `Docker-Content-Digest` (by tag).
fn fetch_manifest(
    client: &Client,
    reg: &Registry,
    reference: &Reference,
    by: &str,
    expect: Option<&Digest>,
    p: &dyn Progress,
) -> Result<Fetched, RegistryError> {
    let repo = reference.repository.as_str();
    let action = format!("pull manifest {by} from");
    let call = Call {
        method: http::Method::GET,
        url: format!("{}/v2/{repo}/manifests/{by}", reg.base),
        headers: vec![(
            "accept",
            [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST].join(", "),
        )],
        body: Body::Empty,
        authenticate: true,
        scopes: vec![repository_scope(repo, "pull")],
        repository: repo,
        action: &action,
        retry: true,
        // One byte over, so an oversize manifest is told apart from a transport failure.
        max_body: Some(MANIFEST_MAX + 1),
        save_to: None,
    };
    let resp = match client.execute(reg, &call, p) {
        Err(RegistryError::Transport { message, .. })
            if message.starts_with("response larger than") =>
        {
            return Err(bad(
                reference,
                format!("manifest {by} is over {MANIFEST_MAX} bytes"),
            ));
        }
        other => other?,
    };
    if resp.status != 200 {
        return Err(status_error(client, reg, reference, &action, &resp));
    }
    if resp.body.len() as u64 > MANIFEST_MAX {
        return Err(bad(
            reference,
            format!("manifest {by} is over {MANIFEST_MAX} bytes"),
        ));
    }
    let served = resp
        .header("content-type")
        .map(|t| t.split(';').next().unwrap_or("").trim().to_owned())
        .filter(|t| is_index(t) || is_manifest(t));
    let own = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_owned));
    let media_type = match (own, served) {
        (Some(own), Some(served)) if own != served => {
            return Err(bad(
                reference,
                format!(
                    "manifest {by} says it is a {own} but the registry serves it as a {served}"
                ),
            ));
        }
        (Some(t), _) | (None, Some(t)) => t,
        (None, None) => String::new(),
    };
    if !(is_index(&media_type) || is_manifest(&media_type)) {
        let shown = resp.header("content-type").unwrap_or("none");
        return Err(bad(
            reference,
            format!(
                "manifest {by} is of media type {media_type:?} (served as {shown}), not an OCI or docker v2 image manifest or index"
            ),
        ));
    }
    let digest = Digest::of_bytes(&resp.body);
    let claimed = resp.header("docker-content-digest").and_then(Digest::parse);
    if let Some(want) = expect.or(claimed.as_ref()) {
        if &digest != want {
            return Err(bad(
                reference,
                format!("manifest {by} has digest {digest}, not {want}"),
            ));
        }
    }
    Ok(Fetched {
        digest,
        media_type,
        bytes: resp.body,
    })
}

/// Temp file + rename, so a cut-off pull leaves no half file under its final name.
fn write_file(reference: &Reference, path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| bad(reference, format!("writing {}: {e}", path.display()));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// The most referrers one pull fetches for `verify --attestations`.
const REFERRERS_MAX: usize = 64;

/// GETs an image index at `path` (under `/v2/<repo>/`): `None` on a 404; at most
/// [`MANIFEST_MAX`] bytes.
fn get_index(
    client: &Client,
    reg: &Registry,
    reference: &Reference,
    path: &str,
    p: &dyn Progress,
) -> Result<Option<Vec<u8>>, RegistryError> {
    let repo = reference.repository.as_str();
    let action = format!("ask for {path} in");
    let call = Call {
        method: http::Method::GET,
        url: format!("{}/v2/{repo}/{path}", reg.base),
        headers: vec![("accept", OCI_INDEX.to_owned())],
        body: Body::Empty,
        authenticate: true,
        scopes: vec![repository_scope(repo, "pull")],
        repository: repo,
        action: &action,
        retry: true,
        max_body: Some(MANIFEST_MAX + 1),
        save_to: None,
    };
    let resp = client.execute(reg, &call, p)?;
    match resp.status {
        404 => Ok(None),
        200 if resp.body.len() as u64 <= MANIFEST_MAX => Ok(Some(resp.body)),
        200 => Err(bad(
            reference,
            format!("{path} is over {MANIFEST_MAX} bytes"),
        )),
        _ => Err(status_error(client, reg, reference, &action, &resp)),
    }
}

/// Pulls the OCI 1.1 referrers of `subject` (SBOMs, statements) into the layout at `dir` that
/// [`pull_to_layout`] made: the list from the referrers API, else the referrers tag schema's
/// `sha256-<hex>` index; each artifact manifest and its blobs (at most 4 MiB each) checked
/// against their digests; the list written as the layout's referrers file. Returns how many
/// were listed (0 when the registry has none).
pub fn pull_referrers(
    client: &Client,
    reference: &Reference,
    subject: &Digest,
    dir: &Path,
    p: &dyn Progress,
) -> Result<usize, RegistryError> {
    let reg = client.registry(&reference.registry, p)?;
    let blobs = dir.join("blobs").join("sha256");
    let listed = match get_index(client, &reg, reference, &format!("referrers/{subject}"), p)? {
        Some(body) => Some(body),
        None => get_index(
            client,
            &reg,
            reference,
            &format!("manifests/sha256-{}", subject.hex()),
            p,
        )?,
    };
    let Some(listed) = listed else {
        return Ok(0);
    };
    let doc: serde_json::Value = serde_json::from_slice(&listed).map_err(|e| {
        bad(
            reference,
            format!("the referrers of {subject}: not JSON: {e}"),
        )
    })?;
    let entries = doc["manifests"].as_array().cloned().unwrap_or_default();
    if entries.len() > REFERRERS_MAX {
        return Err(bad(
            reference,
            format!(
                "{subject} has {} referrers (at most {REFERRERS_MAX} are read)",
                entries.len()
            ),
        ));
    }
    let mut kept = Vec::new();
    for entry in entries {
        let Some(digest) = entry["digest"].as_str() else {
            continue;
        };
        let digest = parse_digest(reference, digest, "the referrers list")?;
        let fetched = fetch_manifest(
            client,
            &reg,
            reference,
            &digest.to_string(),
            Some(&digest),
            p,
        )?;
        let m: serde_json::Value = serde_json::from_slice(&fetched.bytes)
            .map_err(|e| bad(reference, format!("referrer {digest}: not JSON: {e}")))?;
        let blobs_of =
            std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten());
        for d in blobs_of {
            let (Some(blob), Some(size)) = (
                d["digest"].as_str().and_then(Digest::parse),
                d["size"].as_u64(),
            ) else {
                return Err(bad(
                    reference,
                    format!("referrer {digest} names a blob without digest or size"),
                ));
            };
            if size > crate::image::layout::JSON_MAX {
                return Err(bad(
                    reference,
                    format!("referrer {digest}'s blob {blob} is {size} bytes (at most 4 MiB)"),
                ));
            }
            if !blobs.join(blob.hex()).exists() {
                fetch_blob(client, &reg, reference, &blobs, &blob, size, p)?;
            }
        }
        write_file(reference, &blobs.join(digest.hex()), &fetched.bytes)?;
        kept.push(entry);
    }
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": kept,
    });
    let bytes = serde_json::to_vec(&list).map_err(|e| bad(reference, e.to_string()))?;
    write_file(reference, &dir.join(crate::supply::REFERRERS_FILE), &bytes)?;
    Ok(kept.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::Arch;
    use crate::registry::NoProgress;
    use crate::registry::credentials::Keychain;
    use crate::registry::session::ClientOptions;
    use crate::registry::transport::RetryPolicy;
    use crate::registry::transport::fake::{Reply, Scripted, Step, answer, expect};
    use std::sync::Arc;

    fn client(script: Vec<Step>) -> (Client, Arc<Scripted>) {
        let fake = Arc::new(Scripted::new(script));
        let options = ClientOptions {
            keychain: Keychain::anonymous(),
            retry: RetryPolicy::none(),
            ..ClientOptions::default()
        };
        (Client::with_transport(options, fake.clone()), fake)
    }

    const CONFIG: &[u8] = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
    const LAYER: &[u8] = b"not really gzip, but pull does not unpack";

    fn bytes_reply(body: &[u8]) -> Reply {
        Reply::Answer {
            status: 200,
            headers: Vec::new(),
            body: body.to_vec(),
        }
    }

    fn manifest(config_type: &str, layer_type: &str) -> String {
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": Digest::of_bytes(CONFIG).to_string(), "size": CONFIG.len()},
            "layers": [{"mediaType": layer_type, "digest": Digest::of_bytes(LAYER).to_string(), "size": LAYER.len()}],
        })
        .to_string()
    }

    fn good_manifest() -> String {
        manifest(OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar+gzip")
    }

    fn reference(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    fn blob_steps(config: &[u8], layer: &[u8]) -> Vec<Step> {
        vec![
            expect(
                "GET",
                &format!("/v2/app/blobs/{}", Digest::of_bytes(CONFIG)),
                bytes_reply(config),
            ),
            expect(
                "GET",
                &format!("/v2/app/blobs/{}", Digest::of_bytes(LAYER)),
                bytes_reply(layer),
            ),
        ]
    }

    fn pull(
        script: Vec<Step>,
        r: &str,
        platform: Option<&Platform>,
    ) -> (Result<Pulled, RegistryError>, tempfile::TempDir) {
        let mut steps = vec![expect("GET", "/v2/", answer(200, &[], "{}"))];
        steps.extend(script);
        let (client, fake) = client(steps);
        let dir = tempfile::tempdir().unwrap();
        let result = pull_to_layout(&client, &reference(r), platform, dir.path(), &NoProgress);
        if result.is_ok() {
            fake.assert_done();
        }
        (result, dir)
    }

    fn files_under(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_tagged_manifest_and_its_blobs_become_a_layout() {
        let m = good_manifest();
        let mut script = vec![expect(
            "GET",
            "/v2/app/manifests/v1",
            answer(200, &[("content-type", OCI_MANIFEST)], &m),
        )];
        script.extend(blob_steps(CONFIG, LAYER));
        let (pulled, dir) = pull(script, "registry.example/app:v1", None);
        let pulled = pulled.unwrap();
        assert_eq!(pulled.manifest, Digest::of_bytes(m.as_bytes()));
        assert_eq!((pulled.index, pulled.platform), (None, None));
        let loaded = crate::image::Layout::open(dir.path())
            .unwrap()
            .load(None)
            .unwrap();
        assert_eq!(loaded.manifest_digest, pulled.manifest);
        assert_eq!(loaded.layers.len(), 1);
        // Only the layout's own files: no temp file left behind.
        assert_eq!(files_under(dir.path()).len(), 2 + 3);
    }

    fn two_platform_index() -> (String, String, String) {
        let amd = good_manifest();
        let arm = manifest(OCI_CONFIG, "application/vnd.oci.image.layer.v1.tar");
        let entry = |m: &str, arch: &str| {
            serde_json::json!({"mediaType": OCI_MANIFEST, "digest": Digest::of_bytes(m.as_bytes()).to_string(),
                "size": m.len(), "platform": {"os": "linux", "architecture": arch}})
        };
        let attestation = entry(&arm, "unknown");
        let mut attestation = attestation;
        attestation["platform"]["os"] = "unknown".into();
        let index = serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64"), attestation]})
        .to_string();
        (index, amd, arm)
    }

    #[test]
    fn an_index_gives_the_asked_platform_or_names_the_ones_it_has() {
        let (index, _, arm) = two_platform_index();
        let arm_digest = Digest::of_bytes(arm.as_bytes());
        let mut script = vec![
            expect(
                "GET",
                "/v2/app/manifests/latest",
                answer(200, &[("content-type", OCI_INDEX)], &index),
            ),
            expect(
                "GET",
                &format!("/v2/app/manifests/{arm_digest}"),
                answer(200, &[("content-type", OCI_MANIFEST)], &arm),
            ),
        ];
        script.extend(blob_steps(CONFIG, LAYER));
        let arm64 = Platform {
            os: "linux".into(),
            arch: Arch::Arm64,
            variant: None,
        };
        let (pulled, dir) = pull(script, "registry.example/app", Some(&arm64));
        let pulled = pulled.unwrap();
        assert_eq!(pulled.manifest, arm_digest);
        assert_eq!(pulled.platform.as_deref(), Some("linux/arm64"));
        let (index_digest, platforms) = pulled.index.unwrap();
        assert_eq!(index_digest, Digest::of_bytes(index.as_bytes()));
        assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
        let layout = crate::image::Layout::open(dir.path()).unwrap();
        assert_eq!(
            layout.load(None).unwrap().manifest_digest,
            arm_digest,
            "the layout holds the chosen manifest alone"
        );

        let freebsd = Platform {
            os: "freebsd".into(),
            arch: Arch::Amd64,
            variant: None,
        };
        let script = vec![expect(
            "GET",
            "/v2/app/manifests/latest",
            answer(200, &[("content-type", OCI_INDEX)], &index),
        )];
        let (err, _) = pull(script, "registry.example/app", Some(&freebsd));
        let err = err.unwrap_err().to_string();
        assert!(
            err.contains("no manifest for freebsd/amd64 (it has linux/amd64, linux/arm64)"),
            "{err}"
        );
    }

    fn refused(script: Vec<Step>, r: &str) -> (String, Vec<String>) {
        let (result, dir) = pull(script, r, None);
        let err = result.unwrap_err().to_string();
        (err, files_under(dir.path()))
    }

    #[test]
    fn a_blob_with_other_bytes_or_length_is_refused_and_not_kept() {
        let m = good_manifest();
        let by_tag = || {
            expect(
                "GET",
                "/v2/app/manifests/v1",
                answer(200, &[("content-type", OCI_MANIFEST)], &m),
            )
        };
        let mut wrong = LAYER.to_vec();
        wrong[0] ^= 1;
        let mut script = vec![by_tag()];
        script.extend(blob_steps(CONFIG, &wrong));
        let (err, files) = refused(script, "registry.example/app:v1");
        assert!(err.contains("the registry sent bytes with digest"), "{err}");
        let layer_name = format!("blobs/sha256/{}", Digest::of_bytes(LAYER).hex());
        assert!(!files.contains(&layer_name), "{files:?}");

        let longer = [LAYER, b"!"].concat();
        let mut script = vec![by_tag()];
        script.extend(blob_steps(CONFIG, &longer));
        let (err, files) = refused(script, "registry.example/app:v1");
        assert!(err.contains("longer than the"), "{err}");
        assert!(!files.contains(&layer_name), "{files:?}");

        let mut script = vec![by_tag()];
        script.extend(blob_steps(CONFIG, &LAYER[1..]));
        let (err, _) = refused(script, "registry.example/app:v1");
        assert!(err.contains("the manifest says"), "{err}");
    }

    #[test]
    fn manifests_of_other_types_sizes_or_digests_are_refused() {
        let get = |body: &str, ct: &str| {
            vec![expect(
                "GET",
                "/v2/app/manifests/",
                answer(200, &[("content-type", ct)], body),
            )]
        };
        let schema1 = r#"{"schemaVersion":1,"name":"app","tag":"v1","fsLayers":[]}"#;
        let (err, _) = refused(
            get(
                schema1,
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            ),
            "registry.example/app:v1",
        );
        assert!(
            err.contains("not an OCI or docker v2 image manifest or index"),
            "{err}"
        );

        let m = good_manifest();
        let (err, _) = refused(get(&m, DOCKER_LIST), "registry.example/app:v1");
        assert!(err.contains("but the registry serves it as"), "{err}");

        let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MANIFEST_MAX as usize));
        let (err, _) = refused(get(&huge, OCI_MANIFEST), "registry.example/app:v1");
        assert!(err.contains("is over 4194304 bytes"), "{err}");

        let other = Digest::of_bytes(b"another manifest");
        let (err, _) = refused(
            get(&m, OCI_MANIFEST),
            &format!("registry.example/app@{other}"),
        );
        assert!(err.contains(&format!("not {other}")), "{err}");

        let script = vec![expect(
            "GET",
            "/v2/app/manifests/v1",
            answer(
                200,
                &[
                    ("content-type", OCI_MANIFEST),
                    ("docker-content-digest", &other.to_string()),
                ],
                &m,
            ),
        )];
        let (err, _) = refused(script, "registry.example/app:v1");
        assert!(err.contains(&format!("not {other}")), "{err}");
    }

    #[test]
    fn configs_and_layers_of_other_types_are_refused_before_download() {
        let helm = manifest(
            "application/vnd.cncf.helm.config.v1+json",
            "application/vnd.oci.image.layer.v1.tar+gzip",
        );
        let (err, _) = refused(
            vec![expect(
                "GET",
                "/v2/app/manifests/v1",
                answer(200, &[("content-type", OCI_MANIFEST)], &helm),
            )],
            "registry.example/app:v1",
        );
        assert!(err.contains("not an image config"), "{err}");

        let chart = manifest(
            OCI_CONFIG,
            "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
        );
        let (err, _) = refused(
            vec![expect(
                "GET",
                "/v2/app/manifests/v1",
                answer(200, &[("content-type", OCI_MANIFEST)], &chart),
            )],
            "registry.example/app:v1",
        );
        assert!(
            err.contains("only plain, gzip- or zstd-compressed tar"),
            "{err}"
        );
    }
}
