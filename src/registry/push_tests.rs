//! Push honesty over the scripted transport (issue 11): blobs are sent only as the regular
//! files and bytes the layout names, a registry's DIGEST_INVALID is told apart (local file or
//! transfer) and retried once, and a manifest stored without a digest header is read back.

use super::*;
use crate::registry::NoProgress;
use crate::registry::credentials::Keychain;
use crate::registry::transport::RetryPolicy;
use crate::registry::transport::fake::{Scripted, Step, answer, expect};
use std::sync::Arc;
use std::time::Duration;

const UP: &str = "/v2/app/blobs/uploads/u1";

pub(super) fn client(script: Vec<Step>) -> (Client, Arc<Scripted>) {
    let fake = Arc::new(Scripted::new(script));
    let options = ClientOptions {
        keychain: Keychain::anonymous(),
        retry: RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            max_elapsed: Duration::from_secs(5),
        },
        ..ClientOptions::default()
    };
    (Client::with_transport(options, fake.clone()), fake)
}

/// A blob whose descriptor says `described` while its file at `dir/blob` holds whatever the
/// test puts there.
fn blob_described_as(dir: &Path, described: &[u8]) -> LocalBlob {
    LocalBlob {
        digest: Digest::of_bytes(described),
        size: described.len() as u64,
        media_type: "application/octet-stream".into(),
        path: dir.join("blob"),
    }
}

/// The ping, the `HEAD` that finds nothing, and a new upload session at `location`.
fn upload_start(blob: &LocalBlob) -> Vec<Step> {
    vec![
        expect("GET", "/v2/", answer(200, &[], "{}")),
        expect(
            "HEAD",
            &format!("/v2/app/blobs/{}", blob.digest),
            answer(404, &[], ""),
        ),
        new_session(UP),
    ]
}

fn new_session(location: &str) -> Step {
    expect(
        "POST",
        "/v2/app/blobs/uploads/",
        answer(202, &[("location", location)], ""),
    )
}

fn stored(blob: &LocalBlob) -> Step {
    let d = blob.digest.to_string();
    expect(
        "PUT",
        "digest=sha256",
        answer(201, &[("docker-content-digest", &d)], ""),
    )
}

fn digest_invalid() -> Step {
    expect(
        "PUT",
        "digest=sha256",
        answer(
            400,
            &[],
            r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}"#,
        ),
    )
}

#[allow(clippy::result_large_err)]
fn push_one(
    client: &Client,
    blob: &LocalBlob,
    chunk_size: u64,
) -> Result<BlobReport, RegistryError> {
    let reg = client.registry("registry.test", &NoProgress).unwrap();
    let options = PushOptions {
        chunk_size,
        ..PushOptions::default()
    };
    let locations = Mutex::new(BlobLocations::default());
    client.push_blob(&reg, "app", blob, &options, &locations, &NoProgress)
}

#[test]
fn a_blob_swapped_for_a_symlink_never_sends_the_file_it_points_to() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), b"TOP-SECRET").unwrap();
    // The layout was checked when selected; the blob became a link to a host file since.
    let blob = blob_described_as(dir.path(), b"0123456789");
    std::os::unix::fs::symlink(dir.path().join("secret"), &blob.path).unwrap();
    let mut script = upload_start(&blob);
    script.push(stored(&blob));
    let (client, fake) = client(script);
    let err = push_one(&client, &blob, 0).unwrap_err().to_string();
    assert!(
        err.contains(&blob.path.display().to_string()) && err.contains("not a regular file"),
        "{err}"
    );
    for seen in fake.seen() {
        assert!(
            !String::from_utf8_lossy(&seen.body).contains("TOP-SECRET"),
            "the host file went to the registry in {} {}",
            seen.method,
            seen.url
        );
    }
}

#[test]
fn a_blob_changed_on_disk_aborts_the_upload_before_its_last_byte_and_blames_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let blob = blob_described_as(dir.path(), b"0123456789");
    std::fs::write(&blob.path, b"0123456780").unwrap();
    let mut script = upload_start(&blob);
    script.push(stored(&blob));
    let (client, fake) = client(script);
    let err = push_one(&client, &blob, 0).unwrap_err().to_string();
    assert!(
        err.contains(&blob.path.display().to_string())
            && err.contains("changed during the push")
            && err.contains("digest"),
        "{err}"
    );
    let put = fake.seen().pop().unwrap();
    assert_eq!(put.method, "PUT");
    assert!(
        put.body.len() < 10,
        "the whole wrong blob was sent: {:?}",
        put.body
    );
}

#[test]
fn a_chunked_upload_rehashes_the_file_before_the_final_put() {
    let dir = tempfile::tempdir().unwrap();
    let blob = blob_described_as(dir.path(), b"0123456789");
    std::fs::write(&blob.path, b"0123456780").unwrap();
    let mut script = upload_start(&blob);
    for (n, range) in [(1, "0-3"), (2, "0-7"), (3, "0-9")] {
        let next = format!("{UP}?s={n}");
        script.push(expect(
            "PATCH",
            UP,
            answer(202, &[("location", &next), ("range", range)], ""),
        ));
    }
    // No closing PUT: the registry is never asked to commit the wrong bytes.
    let (client, fake) = client(script);
    let err = push_one(&client, &blob, 4).unwrap_err().to_string();
    assert!(
        err.contains(&blob.path.display().to_string()) && err.contains("changed during the push"),
        "{err}"
    );
    fake.assert_done();
}

#[test]
fn digest_invalid_with_a_sound_local_file_is_retried_once_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let blob = blob_described_as(dir.path(), b"0123456789");
    std::fs::write(&blob.path, b"0123456789").unwrap();
    let mut script = upload_start(&blob);
    script.extend([
        digest_invalid(),
        new_session("/v2/app/blobs/uploads/u2"),
        stored(&blob),
    ]);
    let (client, fake) = client(script);
    let report = push_one(&client, &blob, 0).unwrap();
    assert_eq!(
        report.action,
        BlobAction::Uploaded {
            chunked: false,
            resumed: 0,
            restarted: 1
        }
    );
    fake.assert_done();
    let seen = fake.seen();
    assert!(seen[5].url.contains("uploads/u2"), "{}", seen[5].url);
    assert_eq!(seen[5].body, b"0123456789");
}

#[test]
fn digest_invalid_twice_blames_the_transfer_not_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let blob = blob_described_as(dir.path(), b"0123456789");
    std::fs::write(&blob.path, b"0123456789").unwrap();
    let mut script = upload_start(&blob);
    script.extend([
        digest_invalid(),
        new_session("/v2/app/blobs/uploads/u2"),
        digest_invalid(),
    ]);
    let (client, fake) = client(script);
    let err = push_one(&client, &blob, 0).unwrap_err().to_string();
    assert!(
        err.contains("corrupted in transfer") && err.contains("DIGEST_INVALID"),
        "{err}"
    );
    assert!(!err.contains("changed during the push"), "{err}");
    fake.assert_done();
}

fn manifest(bytes: &str) -> LocalManifest {
    LocalManifest {
        digest: Digest::of_bytes(bytes.as_bytes()),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        bytes: bytes.as_bytes().to_vec(),
        blobs: Vec::new(),
        children: Vec::new(),
        platform: None,
    }
}

/// A `PUT` of `m` answered 201 without `Docker-Content-Digest`, then the read-back answered
/// `read_back`.
#[allow(clippy::result_large_err)]
fn put_without_digest_header(
    m: &LocalManifest,
    read_back: Step,
) -> (Result<(), RegistryError>, Arc<Scripted>) {
    let (client, fake) = client(vec![
        expect("GET", "/v2/", answer(200, &[], "{}")),
        expect("PUT", "/v2/app/manifests/v1", answer(201, &[], "")),
        read_back,
    ]);
    let reg = client.registry("registry.test", &NoProgress).unwrap();
    let result = client.put_manifest(&reg, "app", "v1", m, &NoProgress);
    (result, fake)
}

#[test]
fn a_manifest_stored_without_a_digest_header_is_read_back_by_digest() {
    let m = manifest(r#"{"schemaVersion":2,"layers":[]}"#);
    let by_digest = format!("/v2/app/manifests/{}", m.digest);
    let (result, fake) = put_without_digest_header(
        &m,
        expect(
            "GET",
            &by_digest,
            answer(200, &[], r#"{"schemaVersion":2,"layers":[]}"#),
        ),
    );
    result.unwrap();
    fake.assert_done();
    let get = fake.seen().pop().unwrap();
    assert!(
        get.headers
            .contains(&("accept".into(), m.media_type.clone())),
        "{:?}",
        get.headers
    );
}

#[test]
fn a_manifest_the_registry_stored_altered_or_lost_fails_the_push() {
    let m = manifest(r#"{"schemaVersion":2,"layers":[]}"#);
    let by_digest = format!("/v2/app/manifests/{}", m.digest);
    for reply in [
        answer(200, &[], r#"{"schemaVersion": 2, "layers": []}"#),
        answer(404, &[], r#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
    ] {
        let (result, fake) = put_without_digest_header(&m, expect("GET", &by_digest, reply));
        let err = result.unwrap_err().to_string();
        assert!(
            err.contains("stored something else") && err.contains("manifest v1"),
            "{err}"
        );
        fake.assert_done();
    }
}

#[test]
fn a_registry_refusing_an_artifact_manifest_is_quoted_with_the_way_around_it() {
    let bytes = br#"{"schemaVersion":2,"artifactType":"application/spdx+json"}"#.to_vec();
    let referrer = crate::supply::Referrer {
        digest: Digest::of_bytes(&bytes),
        size: bytes.len() as u64,
        artifact_type: "application/spdx+json".into(),
        annotations: Default::default(),
        layer_media_type: "application/spdx+json".into(),
        layer_digest: Digest::of_bytes(b"{}"),
        layer_size: 2,
        title: None,
    };
    let (client, fake) = client(vec![
        expect("GET", "/v2/", answer(200, &[], "{}")),
        expect(
            "PUT",
            &format!("/v2/app/manifests/{}", referrer.digest),
            answer(
                400,
                &[("content-type", "application/json")],
                r#"{"errors":[{"code":"MANIFEST_INVALID","message":"artifactType is not supported"}]}"#,
            ),
        ),
    ]);
    let reg = client.registry("registry.test", &NoProgress).unwrap();
    let err = client
        .put_referrer(&reg, "app", &referrer, bytes, &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::ReferrerRefused { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("refused the referrer")
            && text.contains("application/spdx+json")
            && text.contains("artifactType is not supported")
            && text.contains("--no-referrers"),
        "{text}"
    );
    fake.assert_done();
}
