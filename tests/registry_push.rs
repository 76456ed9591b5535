//! The registry client against a real `docker-registry` (Debian's build of distribution 2.8)
//! that each test starts on a free 127.0.0.1 port with its own config and storage, plus skopeo
//! as the independent witness. A Bearer test runs distribution's real `token` auth against a
//! small token server in this file that signs ES256 JWTs with a throwaway key.

mod common;

use common::fake_http::{FakeServer, Reply, Request, response};
use common::layout::{LAYER_GZIP, LayoutFixture, digest_of};
use common::registry::{Auth, RegistryServer, TOKEN_ISSUER, TOKEN_SERVICE, free_port};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use staticpack::digest::Digest;
use staticpack::registry::{
    self, BlobAction, Client, ClientOptions, Credential, Keychain, LayoutImage, Progress,
    PushOptions, PushReport, Reference, RegistryError, RetryPolicy, Secret, StoredIn,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// Test images: a small OCI layout with a 3 MiB layer (chunked with 1 MiB chunks), a small
// layer and a config.

struct TestImage {
    _tmp: tempfile::TempDir,
    path: PathBuf,
    digest: String,
    big_layer: Digest,
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn make_image(seed: u64) -> TestImage {
    let tmp = tempfile::tempdir().unwrap();
    let layout = LayoutFixture::create(&tmp.path().join("layout"));
    // Real gzip streams (of incompressible noise): skopeo sniffs the compression of layers.
    let big = layout.put(LAYER_GZIP, &gzip(&noise(seed, 3 << 20)));
    let small = layout.put(LAYER_GZIP, &gzip(&noise(seed + 1, 100 << 10)));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": [big["digest"], small["digest"]]},
    });
    let manifest = layout.manifest(&config, vec![big.clone(), small]);
    layout.tag(manifest.clone(), "v1");
    TestImage {
        _tmp: tmp,
        path: layout.dir,
        digest: digest_of(&manifest).to_string(),
        big_layer: digest_of(&big),
    }
}

// ---------------------------------------------------------------------------------------------
// Running pushes.

fn client_options(keychain: Keychain) -> ClientOptions {
    ClientOptions {
        keychain,
        retry: RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(30),
        },
        ..ClientOptions::default()
    }
}

fn push_options(cache: Option<&Path>) -> PushOptions {
    PushOptions {
        chunk_size: 1 << 20,
        blob_cache: cache.map(Path::to_owned),
        ..PushOptions::default()
    }
}

/// Keeps every note (for failure messages and for checking that no secret is ever logged).
#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Notes {
    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

impl Progress for Notes {
    fn note(&self, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
}

// The library's error is returned unboxed by its public API too; boxing it here would only hide that.
#[allow(clippy::result_large_err)]
fn push(
    image: &TestImage,
    targets: &[Reference],
    client: &ClientOptions,
    options: &PushOptions,
) -> Result<PushReport, RegistryError> {
    registry::push(
        &image.path,
        Some("v1"),
        targets,
        client,
        options,
        &Notes::default(),
    )
}

fn action_of<'a>(report: &'a PushReport, digest: &Digest) -> &'a BlobAction {
    &report
        .blobs
        .iter()
        .find(|b| &b.digest == digest)
        .expect("blob in the report")
        .action
}

// ---------------------------------------------------------------------------------------------
// skopeo, the independent witness.

fn skopeo(args: &[&str]) -> String {
    let skopeo = common::need("skopeo", "skopeo");
    let out = Command::new(skopeo)
        .arg("--insecure-policy")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo_digest(reference: &str, creds: Option<&str>) -> String {
    let url = format!("docker://{reference}");
    let mut args = vec!["inspect", "--no-tags", "--tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--creds", creds]);
    }
    args.push(&url);
    let v: serde_json::Value = serde_json::from_str(&skopeo(&args)).unwrap();
    v["Digest"].as_str().unwrap().to_owned()
}

/// Copies `reference` back into an OCI layout and checks every blob of `image` is there with
/// identical bytes, and the manifest digest is the same.
fn assert_round_trip(image: &TestImage, reference: &str, creds: Option<&str>) {
    let out = tempfile::tempdir().unwrap();
    let src = format!("docker://{reference}");
    let dst = format!("oci:{}:v1", out.path().join("copy").display());
    let mut args = vec!["copy", "--quiet", "--src-tls-verify=false"];
    if let Some(creds) = creds {
        args.extend(["--src-creds", creds]);
    }
    args.extend([src.as_str(), dst.as_str()]);
    skopeo(&args);
    let copied = LayoutImage::open(&out.path().join("copy"), Some("v1")).unwrap();
    assert_eq!(copied.digest().to_string(), image.digest);
    let ours = LayoutImage::open(&image.path, Some("v1")).unwrap();
    for blob in ours.blobs() {
        let theirs = out.path().join("copy/blobs/sha256").join(blob.digest.hex());
        assert!(
            std::fs::read(&theirs).unwrap() == std::fs::read(&blob.path).unwrap(),
            "blob {} differs after the round trip",
            blob.digest
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn anonymous_push_is_seen_by_skopeo_with_the_same_digest_and_bytes() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(1);
    let target = server.reference("app:v1");
    let report = push(
        &image,
        &[target, server.reference("app:latest")],
        &client_options(Keychain::anonymous()),
        &push_options(None),
    )
    .unwrap();
    assert_eq!(report.digest.to_string(), image.digest);
    assert_eq!(report.uploaded(), 3, "{report:#?}");
    assert_eq!(
        action_of(&report, &image.big_layer),
        &BlobAction::Uploaded {
            chunked: true,
            resumed: 0,
            restarted: 0
        }
    );
    let tags: Vec<_> = report
        .references
        .iter()
        .map(|r| r.reference.as_str())
        .collect();
    assert_eq!(
        tags,
        [
            format!("{}/app:v1", server.host()),
            format!("{}/app:latest", server.host())
        ]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["digest"], image.digest);
    assert_eq!(json["blobs"][0]["action"], "uploaded");

    assert_eq!(
        skopeo_digest(&format!("{}/app:v1", server.host()), None),
        image.digest
    );
    assert_eq!(
        skopeo_digest(&format!("{}/app:latest", server.host()), None),
        image.digest
    );
    assert_round_trip(&image, &format!("{}/app:v1", server.host()), None);
}

#[test]
fn a_second_push_of_the_same_image_uploads_no_blob() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(2);
    let options = client_options(Keychain::anonymous());
    let first = push(
        &image,
        &[server.reference("app:v1")],
        &options,
        &push_options(None),
    )
    .unwrap();
    assert_eq!(first.uploaded(), 3);
    let second = push(
        &image,
        &[server.reference("app:v2")],
        &options,
        &push_options(None),
    )
    .unwrap();
    assert_eq!(
        (second.uploaded(), second.mounted(), second.skipped()),
        (0, 0, 3),
        "{second:#?}"
    );
    assert_eq!(
        skopeo_digest(&format!("{}/app:v2", server.host()), None),
        image.digest
    );
}

#[test]
fn a_push_to_another_repository_mounts_instead_of_uploading() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(3);
    let cache = tempfile::tempdir().unwrap();
    let cache_file = cache.path().join("blob-locations.json");
    let options = client_options(Keychain::anonymous());
    let first = push(
        &image,
        &[server.reference("one:v1")],
        &options,
        &push_options(Some(&cache_file)),
    )
    .unwrap();
    assert_eq!(first.uploaded(), 3);

    // A separate run: the cache file says where the blobs are.
    let second = push(
        &image,
        &[server.reference("two:v1")],
        &options,
        &push_options(Some(&cache_file)),
    )
    .unwrap();
    assert_eq!((second.uploaded(), second.mounted()), (0, 3), "{second:#?}");
    assert_eq!(
        action_of(&second, &image.big_layer),
        &BlobAction::Mounted { from: "one".into() }
    );
    assert_eq!(
        skopeo_digest(&format!("{}/two:v1", server.host()), None),
        image.digest
    );

    // Several repositories and tags in one run, and push by digest: both new repositories
    // mount; no bytes travel.
    let by_digest = Reference::parse(&format!("{}/four@{}", server.host(), image.digest)).unwrap();
    let third = push(
        &image,
        &[
            server.reference("three:a"),
            server.reference("three:b"),
            by_digest,
        ],
        &options,
        &push_options(Some(&cache_file)),
    )
    .unwrap();
    assert_eq!(third.uploaded(), 0, "{third:#?}");
    assert_eq!(third.mounted(), 6);
    assert_eq!(third.references.len(), 3);
    assert_eq!(third.references[2].tag, None);
    for reference in ["three:a", "three:b"] {
        assert_eq!(
            skopeo_digest(&format!("{}/{reference}", server.host()), None),
            image.digest
        );
    }
    assert_eq!(
        skopeo_digest(&format!("{}/four@{}", server.host(), image.digest), None),
        image.digest
    );

    // A digest reference that does not match the image is refused before any request.
    let wrong = Reference::parse(&format!(
        "{}/five@{}",
        server.host(),
        Digest::of_bytes(b"x")
    ))
    .unwrap();
    let err = push(&image, &[wrong], &options, &push_options(None)).unwrap_err();
    assert!(
        matches!(err, RegistryError::ReferenceDigestMismatch { .. }),
        "{err}"
    );
}

#[test]
fn htpasswd_basic_auth_right_and_wrong_passwords() {
    let password = "s3cret-Pa55word";
    let server = RegistryServer::start(Auth::Htpasswd {
        user: "alice".into(),
        password: password.into(),
    });
    let image = make_image(4);
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("docker/config.json");

    // Anonymous: an error that says what is missing and what to do.
    let err = push(
        &image,
        &[server.reference("app:v1")],
        &client_options(Keychain::with_files(vec![config.clone()])),
        &push_options(None),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::AuthenticationRequired { .. }),
        "{text}"
    );
    for part in [
        server.host().as_str(),
        "repository app",
        "staticpack login",
        "config.json",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    // login() checks the password against the registry before writing anything.
    let err = registry::login(
        &server.host(),
        "alice",
        &Secret::new("wrong-password"),
        &client_options(Keychain::anonymous()),
        &config,
    )
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::CredentialsRejected { .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("wrong-password"));
    assert!(!config.exists());
    let stored = registry::login(
        &server.host(),
        "alice",
        &Secret::new(password),
        &client_options(Keychain::anonymous()),
        &config,
    )
    .unwrap();
    assert!(matches!(stored, StoredIn::File(_)));

    // The stored login works; a broken helper for another registry is never run.
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    cfg["credHelpers"] = serde_json::json!({"other.example": "broken"});
    std::fs::write(&config, cfg.to_string()).unwrap();
    let bin = home.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-broken");
    std::fs::write(&helper, "#!/bin/sh\necho broken >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let notes = Notes::default();
    let keychain = Keychain::with_files(vec![config.clone()]).with_helper_path(&bin);
    let report = registry::push(
        &image.path,
        None,
        &[server.reference("app:v1")],
        &client_options(keychain),
        &push_options(None),
        &notes,
    )
    .unwrap();
    assert_eq!(report.uploaded(), 3);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    let creds = format!("alice:{password}");
    assert_eq!(
        skopeo_digest(&format!("{}/app:v1", server.host()), Some(&creds)),
        image.digest
    );
    assert_round_trip(&image, &format!("{}/app:v1", server.host()), Some(&creds));
    // Verbose notes name the credential source but never the secret.
    let all = notes.all();
    assert!(all.contains("config.json"), "{all}");
    assert!(
        !all.contains(password) && !all.contains(&B64.encode(&creds)),
        "{all}"
    );

    // A wrong password from the config file: rejected, named, not shown.
    let wrong_cfg = home.path().join("wrong.json");
    std::fs::write(
        &wrong_cfg,
        serde_json::json!({"auths": {server.host(): {"auth": B64.encode("alice:not-it-at-all")}}})
            .to_string(),
    )
    .unwrap();
    let err = push(
        &image,
        &[server.reference("app:v2")],
        &client_options(Keychain::with_files(vec![wrong_cfg])),
        &push_options(None),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::CredentialsRejected { .. }),
        "{text}"
    );
    assert!(
        text.contains("\"alice\"") && text.contains("wrong.json"),
        "{text}"
    );
    assert!(!text.contains("not-it-at-all") && !format!("{err:?}").contains("not-it-at-all"));

    // Pull (docker:// for verify/run) with the password from a credential helper.
    let helper = bin.join("docker-credential-pulltest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread url\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"alice\",\"Secret\":\"{password}\"}}' \"$url\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let helper_cfg = home.path().join("helper.json");
    std::fs::write(
        &helper_cfg,
        serde_json::json!({"credHelpers": {server.host(): "pulltest"}}).to_string(),
    )
    .unwrap();
    let keychain = Keychain::with_files(vec![helper_cfg]).with_helper_path(&bin);
    let pulled_dir = home.path().join("pulled");
    std::fs::create_dir(&pulled_dir).unwrap();
    let pulled = registry::pull_to_layout(
        &Client::new(client_options(keychain)),
        &server.reference("app:v1"),
        None,
        &pulled_dir,
        &notes,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", notes.all()));
    assert_eq!(pulled.manifest.to_string(), image.digest);
    assert!(
        notes.all().contains("docker-credential-pulltest"),
        "{}",
        notes.all()
    );
}

#[test]
fn registry_killed_between_chunks_and_restarted_resumes_from_its_range() {
    let server = Arc::new(Mutex::new(RegistryServer::start(Auth::Anonymous)));
    let host = server.lock().unwrap().host();
    let image = make_image(5);

    /// Kills the registry once the first 1 MiB chunk of the big layer is committed and brings
    /// it back (same port, same storage) a moment later from another thread.
    struct KillAfterFirstChunk {
        server: Arc<Mutex<RegistryServer>>,
        big: Digest,
        fired: AtomicBool,
        notes: Notes,
        restarter: Mutex<Option<std::thread::JoinHandle<()>>>,
    }
    impl Progress for KillAfterFirstChunk {
        fn chunk_committed(&self, digest: &Digest, committed: u64, _total: u64) {
            if digest == &self.big
                && committed == 1 << 20
                && !self.fired.swap(true, Ordering::SeqCst)
            {
                self.server.lock().unwrap().kill();
                let server = self.server.clone();
                *self.restarter.lock().unwrap() = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(1200));
                    server.lock().unwrap().spawn();
                }));
            }
        }
        fn note(&self, message: &str) {
            self.notes.note(message);
        }
    }
    let hook = KillAfterFirstChunk {
        server: server.clone(),
        big: image.big_layer.clone(),
        fired: AtomicBool::new(false),
        notes: Notes::default(),
        restarter: Mutex::new(None),
    };
    let options = PushOptions {
        concurrency: 1,
        ..push_options(None)
    };
    let target = Reference::parse(&format!("{host}/app:v1")).unwrap();
    let result = registry::push(
        &image.path,
        Some("v1"),
        &[target],
        &client_options(Keychain::anonymous()),
        &options,
        &hook,
    );
    if let Some(t) = hook.restarter.lock().unwrap().take() {
        t.join().unwrap();
    }
    let report = result.unwrap_or_else(|e| panic!("{e}\nnotes:\n{}", hook.notes.all()));
    assert!(hook.fired.load(Ordering::SeqCst));
    match action_of(&report, &image.big_layer) {
        BlobAction::Uploaded {
            chunked: true,
            resumed,
            restarted: 0,
        } => assert!(*resumed >= 1),
        other => panic!(
            "expected a resumed chunked upload, got {other:?}\n{}",
            hook.notes.all()
        ),
    }
    assert!(
        hook.notes.all().contains("resuming"),
        "{}",
        hook.notes.all()
    );
    assert_eq!(skopeo_digest(&format!("{host}/app:v1"), None), image.digest);
    assert_round_trip(&image, &format!("{host}/app:v1"), None);
}

#[test]
fn registry_down_mid_push_fails_clearly_and_a_retry_completes_the_push() {
    let server = Arc::new(Mutex::new(RegistryServer::start(Auth::Anonymous)));
    let host = server.lock().unwrap().host();
    let image = make_image(6);

    /// Kills the registry for good after the first blob is in.
    struct KillAfterFirstBlob(Arc<Mutex<RegistryServer>>, AtomicUsize);
    impl Progress for KillAfterFirstBlob {
        fn blob_finished(&self, _repository: &str, _report: &registry::BlobReport) {
            if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
                self.0.lock().unwrap().kill();
            }
        }
    }
    let mut options = client_options(Keychain::anonymous());
    options.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(2),
    };
    let push_opts = PushOptions {
        concurrency: 1,
        ..push_options(None)
    };
    let target = Reference::parse(&format!("{host}/app:v1")).unwrap();
    let started = Instant::now();
    let err = registry::push(
        &image.path,
        None,
        std::slice::from_ref(&target),
        &options,
        &push_opts,
        &KillAfterFirstBlob(server.clone(), AtomicUsize::new(0)),
    )
    .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "retries are bounded"
    );
    let text = err.to_string();
    assert!(err.is_retryable(), "{text}");
    assert!(text.contains(&host) && text.contains("blob"), "{text}");

    server.lock().unwrap().restart();
    let report = registry::push(
        &image.path,
        None,
        &[target],
        &options,
        &push_opts,
        &registry::NoProgress,
    )
    .unwrap();
    assert_eq!(
        report.skipped(),
        1,
        "the blob that made it is not sent again: {report:#?}"
    );
    assert_eq!(report.uploaded(), 2);
    assert_eq!(skopeo_digest(&format!("{host}/app:v1"), None), image.digest);
}

#[test]
fn localhost_by_name_works_over_plain_http() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(7);
    let target = Reference::parse(&format!("localhost:{}/app:v1", server.port)).unwrap();
    let report = push(
        &image,
        &[target],
        &client_options(Keychain::anonymous()),
        &push_options(None),
    )
    .unwrap();
    assert_eq!(
        report.references[0].reference,
        format!("localhost:{}/app:v1", server.port)
    );
    assert_eq!(
        skopeo_digest(&format!("{}/app:v1", server.host()), None),
        image.digest
    );
}

#[test]
fn a_loopback_registry_speaking_tls_is_used_over_https() {
    let server = RegistryServer::start_with(Auth::Anonymous, true);
    let image = make_image(11);
    let notes = Notes::default();
    let report = registry::push(
        &image.path,
        None,
        &[server.reference("app:v1")],
        &client_options(Keychain::anonymous()),
        &push_options(None),
        &notes,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", notes.all()));
    assert_eq!(report.uploaded(), 3);
    let all = notes.all();
    assert!(
        all.contains(&format!("https://{}/v2/", server.host())),
        "{all}"
    );
    assert!(
        !all.contains("plain HTTP") && !all.contains("http://"),
        "{all}"
    );
    assert_eq!(
        skopeo_digest(&format!("{}/app:v1", server.host()), None),
        image.digest
    );
}

#[test]
fn registries_off_loopback_get_tls_only() {
    // No network is needed: the name does not resolve, and what matters is what was tried.
    let notes = Notes::default();
    let image = make_image(12);
    let mut options = client_options(Keychain::anonymous());
    options.retry = RetryPolicy::none();
    let err = registry::push(
        &image.path,
        None,
        &[Reference::parse("registry.invalid:5000/app:v1").unwrap()],
        &options,
        &push_options(None),
        &notes,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("https://registry.invalid:5000/v2/"), "{text}");
    assert!(!notes.all().contains("http://"), "{}", notes.all());
}

#[test]
fn nested_repositories_work_and_an_absent_registry_is_named() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(8);
    let client = Client::new(client_options(Keychain::anonymous()));
    let layout = LayoutImage::open(&image.path, None).unwrap();
    let report = client
        .push(
            &layout,
            &[server.reference("a/b/c:v1")],
            &push_options(None),
            &registry::NoProgress,
        )
        .unwrap();
    assert_eq!(report.uploaded(), 3);
    // Nothing listening: a transport error naming the registry and what was attempted.
    let port = free_port();
    let mut options = client_options(Keychain::anonymous());
    options.retry = RetryPolicy::none();
    let err = push(
        &image,
        &[Reference::parse(&format!("127.0.0.1:{port}/x:y")).unwrap()],
        &options,
        &push_options(None),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("/v2/"),
        "{text}"
    );
}

#[test]
fn an_image_index_is_pushed_with_its_manifests_by_digest_first() {
    let server = RegistryServer::start(Auth::Anonymous);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let layout = LayoutFixture::create(dir);
    let shared = layout.put(LAYER_GZIP, &gzip(&noise(20, 200 << 10)));
    let mut children = Vec::new();
    for (seed, arch) in [(31, "amd64"), (32, "arm64")] {
        let own = layout.put(LAYER_GZIP, &gzip(&noise(seed, 50 << 10)));
        let config = serde_json::json!({"architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [shared["digest"], own["digest"]]}});
        let mut manifest = layout.manifest(&config, vec![shared.clone(), own]);
        manifest["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        children.push(manifest);
    }
    let index = layout.index_of(children);
    layout.tag(index.clone(), "multi");
    let index_digest = digest_of(&index);

    let report = registry::push(
        dir,
        Some("multi"),
        &[server.reference("multi:v1")],
        &client_options(Keychain::anonymous()),
        &push_options(None),
        &registry::NoProgress,
    )
    .unwrap();
    assert_eq!(report.digest, index_digest);
    assert_eq!(report.media_type, "application/vnd.oci.image.index.v1+json");
    // 1 shared layer + 2 own layers + 2 configs, each once.
    assert_eq!(report.uploaded(), 5, "{report:#?}");
    // The registry serves the index bytes we pushed, and each platform's manifest by digest.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/multi:v1", server.host()),
    ]);
    assert_eq!(Digest::of_bytes(raw.as_bytes()), index_digest);
    for child in ["amd64", "arm64"] {
        let arch = skopeo(&[
            "inspect",
            "--no-tags",
            "--tls-verify=false",
            "--override-arch",
            child,
            &format!("docker://{}/multi:v1", server.host()),
        ]);
        let v: serde_json::Value = serde_json::from_str(&arch).unwrap();
        assert_eq!(v["Architecture"], child);
    }
}

/// Issue 11: a nested index of fan-out 6 over 4 levels (1555 nodes in the tree, 5 distinct
/// documents) made push send 1555 manifest PUTs. Each manifest and index goes once, children
/// before parents, and the root once per tag. A fake registry counts the PUTs.
#[test]
fn a_fanned_out_nested_index_pushes_each_manifest_once() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = LayoutFixture::create(tmp.path());
    let layer = layout.put(LAYER_GZIP, &gzip(b"fan-out"));
    let config = serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}});
    let mut node = layout.manifest(&config, vec![layer]);
    let mut distinct = vec![digest_of(&node)];
    for _ in 0..4 {
        node = layout.index_of(vec![node.clone(); 6]);
        distinct.push(digest_of(&node));
    }
    layout.tag(node, "fan");
    let sizes: std::collections::HashMap<String, u64> =
        std::fs::read_dir(tmp.path().join("blobs/sha256"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = format!("sha256:{}", e.file_name().to_string_lossy());
                (name, e.metadata().unwrap().len())
            })
            .collect();
    let puts = Arc::new(Mutex::new(Vec::new()));
    let seen_puts = puts.clone();
    // Every blob is there already; manifests are stored and their digest said.
    let server = FakeServer::start(move |req| {
        let digest = req.target.rsplit('/').next().unwrap_or_default();
        Reply::Raw(match (req.method.as_str(), sizes.get(digest)) {
            ("GET", _) if req.target == "/v2/" => response("200 OK", "", "{}"),
            ("HEAD", Some(size)) => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nDocker-Content-Digest: {digest}\r\n\
                 Connection: close\r\n\r\n"
            ),
            ("PUT", _) if req.target.contains("/manifests/") => {
                seen_puts.lock().unwrap().push(req.target.clone());
                let stored = Digest::of_bytes(&req.body);
                response(
                    "201 Created",
                    &format!("Docker-Content-Digest: {stored}\r\n"),
                    "",
                )
            }
            _ => response("500 Internal Server Error", "", "unexpected"),
        })
    });
    let host = server.host();
    let targets = [
        Reference::parse(&format!("{host}/fan:a")).unwrap(),
        Reference::parse(&format!("{host}/fan:b")).unwrap(),
    ];
    let report = registry::push(
        tmp.path(),
        Some("fan"),
        &targets,
        &client_options(Keychain::anonymous()),
        &push_options(None),
        &registry::NoProgress,
    )
    .unwrap();
    assert_eq!(report.skipped(), 2, "{report:#?}");
    let mut expected: Vec<String> = distinct[..4]
        .iter()
        .map(|d| format!("/v2/fan/manifests/{d}"))
        .collect();
    expected.extend(["/v2/fan/manifests/a".into(), "/v2/fan/manifests/b".into()]);
    let puts = puts.lock().unwrap().clone();
    assert_eq!(puts.len(), 6, "{} manifest PUTs", puts.len());
    assert_eq!(puts, expected);
}

/// Issue 11: a blob swapped for a symlink after the layout was checked (here: after it was
/// selected) is refused as the layout reader refuses it, naming the file; the registry never
/// gets the host file it points to.
#[test]
fn a_blob_swapped_for_a_symlink_after_selection_is_refused_not_followed() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(41);
    let selected = LayoutImage::open(&image.path, Some("v1")).unwrap();
    let small = selected
        .blobs()
        .into_iter()
        .find(|b| b.media_type == LAYER_GZIP && b.digest != image.big_layer)
        .unwrap()
        .clone();
    let secret = image.path.parent().unwrap().join("secret");
    std::fs::write(&secret, noise(99, small.size as usize)).unwrap();
    std::fs::remove_file(&small.path).unwrap();
    std::os::unix::fs::symlink(&secret, &small.path).unwrap();
    let client = Client::new(client_options(Keychain::anonymous()));
    let err = client
        .push(
            &selected,
            &[server.reference("swapped:v1")],
            &push_options(None),
            &registry::NoProgress,
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&small.path.display().to_string()) && text.contains("not a regular file"),
        "{text}"
    );
}

/// Issue 11: a blob whose bytes changed after the layout was checked is caught while it is
/// sent, in one `PUT` (the body stops before its last byte) or in chunks (the file is hashed
/// again before the closing `PUT`), with an error that blames the local file; the registry
/// holds no such blob afterwards.
#[test]
fn a_blob_changed_after_selection_aborts_the_upload_and_blames_the_local_file() {
    let server = RegistryServer::start(Auth::Anonymous);
    let image = make_image(43);
    let selected = LayoutImage::open(&image.path, Some("v1")).unwrap();
    let small = selected
        .blobs()
        .into_iter()
        .find(|b| b.media_type == LAYER_GZIP && b.digest != image.big_layer)
        .unwrap()
        .clone();
    let big = selected
        .blobs()
        .into_iter()
        .find(|b| b.digest == image.big_layer)
        .unwrap()
        .clone();
    // One PUT for the small layer, 1 MiB chunks for the big one (push_options).
    for (blob, repository) in [(&small, "changed-whole"), (&big, "changed-chunked")] {
        // A client of its own: the first push's good blobs are not to be mounted from.
        let client = Client::new(client_options(Keychain::anonymous()));
        let original = std::fs::read(&blob.path).unwrap();
        let mut changed = original.clone();
        let last = changed.len() - 1;
        changed[last] ^= 1;
        std::fs::write(&blob.path, &changed).unwrap();
        let err = client
            .push(
                &selected,
                &[server.reference(&format!("{repository}:v1"))],
                &push_options(None),
                &registry::NoProgress,
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&blob.path.display().to_string())
                && text.contains("changed during the push")
                && text.contains("the registry was not given it"),
            "{text}"
        );
        std::fs::write(&blob.path, &original).unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        write!(
            stream,
            "HEAD /v2/{repository}/blobs/{} HTTP/1.0\r\n\r\n",
            blob.digest
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.0 404"), "{answer}");
    }
}

/// Issue 11 item 7b: a registry that accepts connections and never answers was waited on for
/// 306 s in silence. `--timeout` bounds each request, the error names the host and the
/// deadline, and a line on stderr says what is being waited for every 10 s.
#[test]
fn cli_push_to_a_registry_that_never_answers_gives_up_at_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        // Accepted and held open, never answered.
        let _held: Vec<_> = listener.incoming().collect();
    });
    let image = make_image(42);
    let work = tempfile::tempdir().unwrap();
    let push = |timeout: &str| {
        let target = format!("127.0.0.1:{port}/app:v1");
        let args = [
            "push",
            image.path.to_str().unwrap(),
            &target,
            "--timeout",
            timeout,
        ];
        let mut cmd = common::staticpack_command(work.path(), &args);
        cmd.env("DOCKER_CONFIG", work.path().join("docker"))
            .env("XDG_CACHE_HOME", work.path().join("cache"))
            .env_remove("REGISTRY_AUTH_FILE");
        let started = Instant::now();
        let run = common::run_with_timeout(cmd, Duration::from_secs(60));
        (run, started.elapsed())
    };
    let (run, took) = push("3");
    assert_eq!(run.code, 1, "{}", run.stderr);
    // One deadline for the TLS probe of a loopback registry, one for plain HTTP.
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(10),
        "took {took:?}: {}",
        run.stderr
    );
    for part in [&format!("127.0.0.1:{port}"), "within 3 s", "--timeout"] {
        assert!(run.stderr.contains(part), "{part:?} not in {}", run.stderr);
    }
    let (run, _) = push("11");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "push    still waiting for 127.0.0.1:{port} (10 s)"
        )),
        "{}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Bearer: distribution's real `token` auth against an in-test token server.

struct Signer {
    key: ring::signature::EcdsaKeyPair,
    cert_der: Vec<u8>,
}

impl Signer {
    /// A fresh P-256 key with a self-signed certificate written to `bundle` (the registry's
    /// `rootcertbundle`).
    fn new(bundle: &Path) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["token-server".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        std::fs::write(bundle, cert.pem()).unwrap();
        let rng = ring::rand::SystemRandom::new();
        let key = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &key.serialize_der(),
            &rng,
        )
        .unwrap();
        Signer {
            key,
            cert_der: cert.der().to_vec(),
        }
    }

    fn jwt(&self, subject: &str, access: &[serde_json::Value]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header =
            serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [B64.encode(&self.cert_der)]});
        let claims = serde_json::json!({
            "iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE,
            "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", rand_suffix()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&ring::rand::SystemRandom::new(), signing_input.as_bytes())
            .unwrap();
        format!("{signing_input}.{}", B64URL.encode(signature.as_ref()))
    }
}

fn rand_suffix() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

/// A minimal docker token server: `GET /token?service&scope&account` with optional Basic
/// auth, and `POST /token` with an OAuth2 refresh token. Authenticated users get every action
/// they ask for; anonymous ones get a token with no access (like Docker Hub for private repos).
struct TokenServer {
    server: FakeServer,
    signer: Arc<Mutex<Signer>>,
    bundle: PathBuf,
}

const TOKEN_USER: &str = "bob";
const TOKEN_PASSWORD: &str = "bearer-Pa55";
const REFRESH_TOKEN: &str = "refresh-token-value-42";

impl TokenServer {
    fn start(dir: &Path) -> Self {
        let bundle = dir.join("token-ca.pem");
        let signer = Arc::new(Mutex::new(Signer::new(&bundle)));
        let s = signer.clone();
        let server = FakeServer::start(move |request| Reply::Raw(answer_token(request, &s)));
        TokenServer {
            server,
            signer,
            bundle,
        }
    }

    /// How many token requests it answered.
    fn requests(&self) -> usize {
        self.server.seen().len()
    }

    fn realm(&self) -> String {
        format!("http://{}/token", self.server.host())
    }

    /// A new signing key and certificate (the registry must be restarted to trust it).
    fn rotate(&self) {
        *self.signer.lock().unwrap() = Signer::new(&self.bundle);
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The token server's answer to one request.
fn answer_token(request: &Request, signer: &Mutex<Signer>) -> String {
    let authorization = request.header("authorization");
    let query = if request.method == "POST" {
        String::from_utf8(request.body.clone()).unwrap()
    } else {
        request
            .target
            .split_once('?')
            .map(|(_, q)| q.to_owned())
            .unwrap_or_default()
    };
    let params: Vec<(String, String)> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), percent_decode(v)))
        .collect();
    let get = |k: &str| -> Vec<&str> {
        params
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let scopes: Vec<String> = get("scope")
        .into_iter()
        .flat_map(|s| s.split(' '))
        .map(str::to_owned)
        .collect();

    let user = match (&authorization, get("grant_type").first().copied()) {
        (_, Some("refresh_token")) => (get("refresh_token").first().copied()
            == Some(REFRESH_TOKEN))
        .then(|| Some(TOKEN_USER.to_owned())),
        (Some(auth), _) => {
            let decoded = auth
                .strip_prefix("Basic ")
                .and_then(|b| B64.decode(b).ok())
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            (decoded == format!("{TOKEN_USER}:{TOKEN_PASSWORD}"))
                .then(|| Some(TOKEN_USER.to_owned()))
        }
        (None, _) => Some(None),
    };
    let (status, body) = match user {
        None => (
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#
                .to_owned(),
        ),
        Some(user) => {
            let access: Vec<serde_json::Value> = match &user {
                Some(_) => scopes
                    .iter()
                    .filter_map(|s| {
                        let (kind, rest) = s.split_once(':')?;
                        let (name, actions) = rest.rsplit_once(':')?;
                        Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
                    })
                    .collect(),
                None => Vec::new(),
            };
            let token = signer
                .lock()
                .unwrap()
                .jwt(user.as_deref().unwrap_or(""), &access);
            (
                "200 OK",
                serde_json::json!({"token": token, "access_token": token, "expires_in": 300})
                    .to_string(),
            )
        }
    };
    response(status, "Content-Type: application/json\r\n", &body)
}

#[test]
fn bearer_token_auth_with_distributions_token_verification() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(dir.path());
    let mut server = RegistryServer::start(Auth::Token {
        realm: tokens.realm(),
        bundle: tokens.bundle.clone(),
    });
    let image = make_image(9);
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"auths": {
            server.host(): {"auth": B64.encode(format!("{TOKEN_USER}:{TOKEN_PASSWORD}"))}
        }})
        .to_string(),
    )
    .unwrap();
    let notes = Notes::default();
    let client = Client::new(client_options(Keychain::with_files(vec![config.clone()])));
    let layout = LayoutImage::open(&image.path, None).unwrap();
    let report = client
        .push(
            &layout,
            &[server.reference("app:v1")],
            &push_options(None),
            &notes,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}\n{}", notes.all(), server.log()));
    assert_eq!(report.uploaded(), 3);
    // One token for the repository, cached for every blob and the manifest.
    assert_eq!(tokens.requests(), 1, "{}", notes.all());
    assert!(!notes.all().contains(TOKEN_PASSWORD));

    // A second repository with the same client: the mount needs pull on the source too,
    // which is a new scope and therefore one more token.
    let report = client
        .push(
            &layout,
            &[server.reference("other:v1")],
            &push_options(None),
            &notes,
        )
        .unwrap();
    assert_eq!(report.mounted(), 3, "{report:#?}\n{}", notes.all());

    // Refresh on 401: the token server's key changes and the registry now trusts only the new
    // one, so every cached token is refused; the client must fetch new ones and carry on.
    let before = tokens.requests();
    tokens.rotate();
    server.restart();
    let report = client
        .push(
            &layout,
            &[server.reference("app:v2")],
            &push_options(None),
            &notes,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", notes.all()));
    assert_eq!(report.skipped(), 3);
    assert!(tokens.requests() > before);
    assert!(
        notes.all().contains("fetching a new token"),
        "{}",
        notes.all()
    );
    let creds = format!("{TOKEN_USER}:{TOKEN_PASSWORD}");
    assert_eq!(
        skopeo_digest(&format!("{}/app:v2", server.host()), Some(&creds)),
        image.digest
    );

    // Pull (docker:// for verify/run) through the same Bearer flow: a fresh client asks for a
    // pull token, then fetches manifest and blobs, each checked, into a layout.
    let before = tokens.requests();
    let pulled_dir = dir.path().join("pulled");
    std::fs::create_dir(&pulled_dir).unwrap();
    let puller = Client::new(client_options(Keychain::with_files(vec![config.clone()])));
    let pulled = registry::pull_to_layout(
        &puller,
        &server.reference("app:v2"),
        None,
        &pulled_dir,
        &notes,
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", notes.all()));
    assert_eq!(pulled.manifest.to_string(), image.digest);
    assert_eq!(tokens.requests(), before + 1, "{}", notes.all());
    let loaded = staticpack::image::Layout::open(&pulled_dir)
        .unwrap()
        .load(None)
        .unwrap();
    loaded.verify_layers().unwrap();
    assert_eq!(loaded.layers.len(), 2);

    // An OAuth2 identity token (docker's `identitytoken`) goes through the refresh-token grant.
    let id_config = dir.path().join("identity.json");
    std::fs::write(
        &id_config,
        serde_json::json!({"auths": {server.host(): {"identitytoken": REFRESH_TOKEN}}}).to_string(),
    )
    .unwrap();
    let report = push(
        &image,
        &[server.reference("app:v3")],
        &client_options(Keychain::with_files(vec![id_config])),
        &push_options(None),
    )
    .unwrap();
    assert_eq!(report.skipped(), 3);

    // login() against the token server: the right password is stored, a wrong one is not.
    let login_file = dir.path().join("login/config.json");
    let anonymous = client_options(Keychain::anonymous());
    let err = registry::login(
        &server.host(),
        TOKEN_USER,
        &Secret::new("nope"),
        &anonymous,
        &login_file,
    )
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::CredentialsRejected { .. }),
        "{err}"
    );
    assert!(!login_file.exists());
    registry::login(
        &server.host(),
        TOKEN_USER,
        &Secret::new(TOKEN_PASSWORD),
        &anonymous,
        &login_file,
    )
    .unwrap();
    let stored = Keychain::with_files(vec![login_file]).resolve(&server.host(), "app");
    assert_eq!(
        stored.credential,
        Some(Credential::basic(TOKEN_USER, TOKEN_PASSWORD))
    );

    // Wrong password: the token server says no, and the error says who and what.
    let err = push(
        &image,
        &[server.reference("app:v4")],
        &client_options(Keychain::anonymous().with_credential(
            &server.host(),
            Credential::basic(TOKEN_USER, "Wrong-Bearer-Pw"),
        )),
        &push_options(None),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RegistryError::CredentialsRejected { .. }),
        "{text}"
    );
    assert!(
        text.contains("token server") && text.contains("repository app"),
        "{text}"
    );
    assert!(!text.contains("Wrong-Bearer-Pw"));

    // Anonymous: a token without access, a second 401, and a hint to log in.
    let err = push(
        &image,
        &[server.reference("app:v5")],
        &client_options(Keychain::anonymous()),
        &push_options(None),
    )
    .unwrap_err();
    assert!(
        matches!(err, RegistryError::AuthenticationRequired { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("staticpack login"), "{err}");
}

/// The CLI end to end: `login` with a password on stdin, `build --push`, then `push --json` of
/// the unchanged layout uploading nothing.
#[test]
fn cli_login_build_push_and_repush() {
    let server = RegistryServer::start(Auth::Htpasswd {
        user: "ci".into(),
        password: "s3cret".into(),
    });
    let host = format!("127.0.0.1:{}", server.port);
    let work = tempfile::tempdir().unwrap();
    let config_dir = work.path().join("docker");
    let run = |args: &[&str], stdin: &str| {
        let mut cmd = common::staticpack_command(work.path(), args);
        cmd.env("DOCKER_CONFIG", &config_dir)
            .env("XDG_CACHE_HOME", work.path().join("cache"))
            .env_remove("REGISTRY_AUTH_FILE");
        let run = common::run_with_input(cmd, Some(stdin.as_bytes()), common::RUN_TIMEOUT);
        (run.code, run.stdout, run.stderr)
    };

    let (code, _, err) = run(&["login", &host, "-u", "ci", "--password-stdin"], "wrong\n");
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("wrong"), "the password leaked: {err}");
    let (code, _, err) = run(
        &["login", &host, "-u", "ci", "--password-stdin"],
        "s3cret\n",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        std::fs::read_to_string(config_dir.join("config.json"))
            .unwrap()
            .contains(&host)
    );

    let recipe = common::recipe("hello-c");
    let target = format!("{host}/hello:1.0");
    let (code, out, err) = run(&["build", recipe.to_str().unwrap(), "--push", &target], "");
    assert_eq!(code, 0, "{err}");
    let digest = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    assert!(out.contains(&format!("{digest} {target}")), "{out}");
    assert_eq!(skopeo_digest(&target, Some("ci:s3cret")), digest);

    let (code, out, err) = run(&["push", "out/hello-c:latest", &target, "--json"], "");
    assert_eq!(code, 0, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["digest"], digest);
    let actions: Vec<String> = report["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"].to_string())
        .collect();
    assert!(
        actions
            .iter()
            .all(|a| a.contains("skipped") || a.contains("Skipped")),
        "{actions:?}"
    );
}

/// Any combination of outputs in one build: an oci-archive and a registry push together, both
/// of the same image.
#[test]
fn cli_build_writes_an_oci_archive_and_pushes_in_one_build() {
    let server = RegistryServer::start(Auth::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let target = format!("127.0.0.1:{}/hello-archive:1.0", server.port);
    let mut cmd = common::staticpack_command(
        work.path(),
        &[
            "build",
            common::recipe("hello-c").to_str().unwrap(),
            "--format",
            "oci-archive",
            "--push",
            &target,
        ],
    );
    cmd.env("XDG_CACHE_HOME", work.path().join("cache"))
        .env("DOCKER_CONFIG", work.path().join("docker"))
        .env_remove("REGISTRY_AUTH_FILE");
    let run = common::run_with_timeout(cmd, common::RUN_TIMEOUT);
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert_eq!(run.code, 0, "{stderr}");
    let digest = stdout.split_whitespace().next().unwrap().to_owned();
    assert!(stdout.contains(&format!("{digest} {target}")), "{stdout}");
    assert_eq!(skopeo_digest(&target, None), digest);
    let archive = work.path().join("out/hello-c.oci.tar");
    let inspected: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        &format!("oci-archive:{}", archive.display()),
    ]))
    .unwrap();
    assert_eq!(inspected["Digest"], digest.as_str());
    // Only the archive: no layout folder and no staging folder beside it.
    let names: Vec<String> = std::fs::read_dir(work.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["hello-c.oci.tar"]);
}

/// `[image] compression = "zstd"`: the build's run proof reads the zstd layers, the manifest
/// names them `tar+zstd`, skopeo copies the layout, and the image pushed to a real registry
/// comes back with the same digest and media types.
#[test]
fn a_zstd_image_builds_proves_copies_and_pushes() {
    let server = RegistryServer::start(Auth::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let recipe = work.path().join("hello-c-zstd");
    common::copy_tree(&common::recipe("hello-c"), &recipe);
    let toml = std::fs::read_to_string(recipe.join("recipe.toml")).unwrap();
    let toml = toml.replace(
        "base       = \"scratch\"",
        "base       = \"scratch\"\ncompression = \"zstd\"",
    );
    assert!(toml.contains("compression = \"zstd\""));
    std::fs::write(recipe.join("recipe.toml"), toml).unwrap();

    let target = format!("127.0.0.1:{}/hello-zstd:1.0", server.port);
    let mut cmd = common::staticpack_command(
        work.path(),
        &["build", recipe.to_str().unwrap(), "--push", &target],
    );
    cmd.env("XDG_CACHE_HOME", work.path().join("cache"))
        .env("DOCKER_CONFIG", work.path().join("docker"))
        .env_remove("REGISTRY_AUTH_FILE");
    let run = common::run_with_timeout(cmd, common::RUN_TIMEOUT);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let digest = run.stdout.split_whitespace().next().unwrap().to_owned();

    let layout = format!("oci:{}:latest", work.path().join("out/hello-c").display());
    let manifest: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--raw", &layout])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{manifest}"
        );
    }

    let copy = work.path().join("copy");
    skopeo(&["copy", &layout, &format!("oci:{}:latest", copy.display())]);
    let copied: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        &format!("oci:{}:latest", copy.display()),
    ]))
    .unwrap();
    assert_eq!(copied, manifest, "skopeo changed the manifest");

    assert_eq!(skopeo_digest(&target, None), digest);
    let pulled: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{target}"),
    ]))
    .unwrap();
    assert_eq!(pulled, manifest, "the registry serves another manifest");
    let back = work.path().join("back");
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{target}"),
        &format!("oci:{}:latest", back.display()),
    ]);
    for l in layers {
        let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        assert_eq!(
            std::fs::read(back.join("blobs/sha256").join(hex)).unwrap(),
            std::fs::read(work.path().join("out/hello-c/blobs/sha256").join(hex)).unwrap()
        );
    }
}

/// `GET /v2/<repo>/tags/list` on the test registry: its status code and body.
fn tags_list(host: &str, repo: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET /v2/{repo}/tags/list HTTP/1.0\r\nHost: {host}\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `build --check-repro --push` compares first and publishes after: a build that is not
/// reproducible fails with nothing in the registry; one that is gets pushed once compared.
#[test]
fn check_repro_pushes_only_after_the_comparison_passed() {
    let server = RegistryServer::start(Auth::Anonymous);
    let host = server.host();
    let work = tempfile::tempdir().unwrap();
    let leaky = common::repo_root().join("tests/fixtures/leaky-c/recipe.toml");
    let target = format!("{host}/leaky:1.0");
    let run = common::staticpack(
        work.path(),
        &[
            "build",
            leaky.to_str().unwrap(),
            "--check-repro",
            "--push",
            &target,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NOT reproducible"), "{}", run.stderr);
    assert!(!run.stderr.contains("push    "), "{}", run.stderr);
    let (status, body) = tags_list(&host, "leaky");
    assert_eq!(status, 404, "the image reached the registry: {body}");
    assert!(body.contains("NAME_UNKNOWN"), "{body}");

    let hello = common::recipe("hello-c");
    let target = format!("{host}/hello:1.0");
    let run = common::staticpack(
        work.path(),
        &[
            "build",
            hello.to_str().unwrap(),
            "--check-repro",
            "--push",
            &target,
        ],
    );
    run.ok();
    let compared = run.stderr.find("repro   ok").expect(&run.stderr);
    let pushed = run.stderr.find("push    ").expect(&run.stderr);
    assert!(compared < pushed, "pushed before comparing: {}", run.stderr);
    let digest = common::printed_digest(&run);
    assert!(
        run.stdout.contains(&format!("{digest} {target}")),
        "{}",
        run.stdout
    );
    let (status, body) = tags_list(&host, "hello");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"1.0\""), "{body}");
    assert_eq!(skopeo_digest(&target, None), digest);
}
