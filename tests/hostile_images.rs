//! Issue 16: hostile images are data, not instructions, for `verify IMAGE` — layers with `..`,
//! absolute paths, symlink and hardlink escapes, device nodes, whiteouts reaching outside, a
//! gzip bomb; a layer that does not match its digest, an oversize config, wrong media types;
//! and a registry that serves bytes other than it promised. Each is refused with a clear error
//! or kept inside the private temp dir, and a canary folder beside that temp dir is never
//! touched. (`run` over tampered layouts is in hostile_layouts.rs; the unpacker's rules one by
//! one in src/run/tests.rs.)

mod common;

use common::fake_http::{FakeServer, Reply, binary_response, response};
use common::layout::{LAYER_GZIP, LayoutFixture};
use common::{Run, compile_c, need, sparse};
use serde_json::json;
use staticpack::digest::Digest;
use std::path::{Path, PathBuf};

/// One tar entry, written raw so that names the tar crate refuses (`..`, absolute) can be made.
enum E<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    CharDevice(&'a str),
}

fn tar(entries: &[E<'_>]) -> Vec<u8> {
    use tar::EntryType as T;
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let (kind, path, link, data): (T, &str, Option<&str>, &[u8]) = match *e {
            E::File(p, d) => (T::Regular, p, None, d),
            E::Symlink(p, t) => (T::Symlink, p, Some(t), b""),
            E::Hardlink(p, t) => (T::Link, p, Some(t), b""),
            E::CharDevice(p) => (T::Char, p, None, b""),
        };
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(l) = link {
            gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
        h.set_cksum();
        builder.append(&h, data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, bytes).unwrap();
    gz.finish().unwrap()
}

/// A work folder: `canary/keep` (which nothing may touch), `tmp` (staticpack's TMPDIR, where
/// verify makes its private folders, empty again after each run) and the layouts.
struct Work {
    dir: tempfile::TempDir,
    app: PathBuf,
}

impl Work {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("canary")).unwrap();
        std::fs::write(dir.path().join("canary/keep"), "intact").unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        need("musl-gcc", "musl-tools");
        let app = compile_c(
            "musl-gcc",
            &["-static"],
            "int main(void) { return 0; }\n",
            dir.path(),
            "app",
        );
        Work { dir, app }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn canary(&self) -> String {
        self.path().join("canary").display().to_string()
    }

    fn app(&self) -> Vec<u8> {
        std::fs::read(&self.app).unwrap()
    }

    /// A layout `name` with an image whose entrypoint is /app over one layer of `layer`
    /// (its blob and media type as given).
    fn image(&self, name: &str, layer: &[u8], media_type: &str) -> (String, LayoutFixture) {
        let fixture = LayoutFixture::create(&self.path().join("layouts").join(name));
        let layer_desc = fixture.put(media_type, layer);
        let config = json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": ["/app"]},
            "rootfs": {"type": "layers", "diff_ids": [Digest::of_bytes(layer).to_string()]},
        });
        let manifest = fixture.manifest(&config, vec![layer_desc]);
        fixture.tag(manifest, "v1");
        (format!("oci:{}:v1", fixture.dir.display()), fixture)
    }

    fn verify(&self, args: &[&str]) -> Run {
        let mut cmd = common::staticpack_command(self.path(), &[&["verify"], args].concat());
        cmd.env("TMPDIR", self.path().join("tmp"));
        let run = common::run_with_timeout(cmd, std::time::Duration::from_secs(120));
        self.assert_untouched();
        run
    }

    /// The canary holds what it held, and verify left nothing in its TMPDIR.
    fn assert_untouched(&self) {
        let canary: Vec<_> = std::fs::read_dir(self.path().join("canary"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            canary,
            ["keep"],
            "something was written beside the temp dir"
        );
        assert_eq!(
            std::fs::read_to_string(self.path().join("canary/keep")).unwrap(),
            "intact"
        );
        let left: Vec<_> = std::fs::read_dir(self.path().join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "verify left {left:?} in its TMPDIR");
    }
}

/// Refused: exit 1, nothing on stdout, and the error names `what`.
fn assert_refused(run: &Run, what: &str) {
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.is_empty(),
        "a verdict on a refused image: {}",
        run.stdout
    );
    assert!(
        run.stderr.contains(what),
        "wanted {what:?} in:\n{}",
        run.stderr
    );
}

#[test]
fn layer_entries_reaching_outside_are_refused_and_nothing_is_written_there() {
    let work = Work::new();
    let app = work.app();
    let canary = work.canary();
    let abs_pwned = format!("{canary}/pwned");
    let abs_keep = format!("{canary}/keep");
    // The private root is TMPDIR/staticpack-verify-XXXX: `../..` from it is the work folder.
    let cases: Vec<(&str, Vec<E<'_>>, &str)> = vec![
        (
            "dotdot",
            vec![E::File("app", &app), E::File("../../canary/pwned", b"x")],
            "../../canary/pwned",
        ),
        (
            "absolute",
            vec![E::File("app", &app), E::File(&abs_pwned, b"x")],
            "absolute",
        ),
        (
            "hardlink-dotdot",
            vec![E::File("app", &app), E::Hardlink("h", "../../canary/keep")],
            "hard link target",
        ),
        (
            "hardlink-absolute",
            vec![E::File("app", &app), E::Hardlink("h", &abs_keep)],
            "hard link target",
        ),
        (
            "hardlink-through-symlink",
            vec![
                E::File("app", &app),
                E::Symlink("esc", &canary),
                E::Hardlink("h", "esc/keep"),
            ],
            "is not in the image",
        ),
        (
            "whiteout-dotdot",
            vec![E::File("app", &app), E::File("../../canary/.wh.keep", b"")],
            "..",
        ),
    ];
    for (name, entries, what) in cases {
        let (image, _) = work.image(name, &gzip(&tar(&entries)), LAYER_GZIP);
        let run = work.verify(&[&image]);
        assert_refused(&run, what);
        assert!(
            run.stderr.contains("unpacking the image") && run.stderr.contains("unsafe"),
            "{name}: {}",
            run.stderr
        );
        eprintln!("{name}: {}", run.stderr.trim().replace('\n', " / "));
    }
}

#[test]
fn symlink_escapes_whiteouts_and_devices_stay_inside_the_root() {
    let work = Work::new();
    let app = work.app();
    let canary = work.canary();
    // Links are kept verbatim and resolved inside the root when used: writing through one
    // lands inside, a whiteout through one hides nothing outside, a device node is not made.
    let cases: Vec<(&str, Vec<E<'_>>)> = vec![
        (
            "write-through-absolute-symlink",
            vec![
                E::File("app", &app),
                E::Symlink("esc", &canary),
                E::File("esc/pwned", b"x"),
            ],
        ),
        (
            "write-through-dotdot-symlink",
            vec![
                E::File("app", &app),
                E::Symlink("up", "../../../.."),
                E::File("up/canary/pwned", b"x"),
            ],
        ),
        (
            "whiteout-through-symlink",
            vec![
                E::File("app", &app),
                E::Symlink("esc", &canary),
                E::File("esc/.wh.keep", b""),
            ],
        ),
        (
            "device-node",
            vec![E::File("app", &app), E::CharDevice("dev/mem")],
        ),
    ];
    for (name, entries) in cases {
        let (image, _) = work.image(name, &gzip(&tar(&entries)), LAYER_GZIP);
        let run = work.verify(&[&image]);
        assert_eq!(run.code, 0, "{name}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("starts   yes"),
            "{name}: {}",
            run.stdout
        );
        eprintln!("{name}: {}", run.stdout.lines().last().unwrap_or(""));
    }

    // An entrypoint that is a symlink to a host program is looked up in the image, not here.
    let host_program = "/usr/bin/env";
    assert!(Path::new(host_program).is_file());
    let (image, _) = work.image(
        "entrypoint-to-host",
        &gzip(&tar(&[E::Symlink("app", host_program)])),
        LAYER_GZIP,
    );
    let run = work.verify(&[&image]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("starts   NO") && !run.stdout.contains("dynamic"),
        "{}",
        run.stdout
    );
    eprintln!(
        "entrypoint-to-host: {}",
        run.stdout.lines().last().unwrap_or("")
    );
}

#[test]
fn bombs_digest_mismatches_oversize_json_and_wrong_media_types_are_refused() {
    let work = Work::new();
    let app = work.app();

    let zeros = vec![0u8; 64 << 20];
    let bomb = gzip(&tar(&[E::File("app", &app), E::File("bomb", &zeros)]));
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    let (image, _) = work.image("bomb", &bomb, LAYER_GZIP);
    let run = work.verify(&["--max-unpack-bytes", "8M", &image]);
    assert_refused(&run, "8388608");
    eprintln!("gzip-bomb: {}", run.stderr.trim().replace('\n', " / "));

    // The layer's bytes changed after its manifest was written.
    let layer = gzip(&tar(&[E::File("app", &app)]));
    let (image, fixture) = work.image("tampered", &layer, LAYER_GZIP);
    let blob = fixture
        .dir
        .join("blobs/sha256")
        .join(Digest::of_bytes(&layer).hex());
    let mut bytes = layer.clone();
    let last = bytes.len() - 9;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let run = work.verify(&[&image]);
    assert_refused(&run, "digest");
    eprintln!(
        "digest-mismatch: {}",
        run.stderr.trim().replace('\n', " / ")
    );

    // A config of 5 MiB (over the 4 MiB any JSON of a layout may be).
    let fixture = LayoutFixture::create(&work.path().join("layouts/big-config"));
    let layer_desc = fixture.put(LAYER_GZIP, &layer);
    let config = json!({
        "architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": []}, "pad": "x".repeat(5 << 20),
    });
    let manifest = fixture.manifest(&config, vec![layer_desc]);
    fixture.tag(manifest, "v1");
    let run = work.verify(&[&format!("oci:{}:v1", fixture.dir.display())]);
    assert_refused(&run, "4194304");
    eprintln!(
        "oversize-config: {}",
        run.stderr.trim().replace('\n', " / ")
    );

    // A layer that is not a tar (a Helm chart's content type).
    let (image, _) = work.image(
        "helm",
        &layer,
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
    );
    let run = work.verify(&[&image]);
    assert_refused(&run, "application/vnd.cncf.helm.chart.content.v1.tar+gzip");
    eprintln!(
        "wrong-layer-type: {}",
        run.stderr.trim().replace('\n', " / ")
    );

    // index.json naming a config as if it were a manifest.
    let fixture = LayoutFixture::create(&work.path().join("layouts/not-a-manifest"));
    let config = fixture.put(
        "application/vnd.oci.image.config.v1+json",
        json!({"architecture": "amd64", "os": "linux"})
            .to_string()
            .as_bytes(),
    );
    fixture.tag(config, "v1");
    let run = work.verify(&[&format!("oci:{}:v1", fixture.dir.display())]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    eprintln!(
        "config-as-manifest: {}",
        run.stderr.trim().replace('\n', " / ")
    );
}

/// A registry that answers the API root, a manifest by tag and its blobs, with `layer` as the
/// bytes it sends for the layer whatever the manifest promised.
fn hostile_registry(
    manifest: String,
    config: Vec<u8>,
    layer_digest: Digest,
    layer: Vec<u8>,
) -> FakeServer {
    let config_digest = Digest::of_bytes(&config);
    FakeServer::start(move |req| {
        let target = req.target.as_str();
        if target == "/v2/" {
            Reply::Raw(response("200 OK", "", "{}"))
        } else if target.starts_with("/v2/app/manifests/") {
            Reply::Raw(response(
                "200 OK",
                "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                &manifest,
            ))
        } else if target == format!("/v2/app/blobs/{config_digest}") {
            Reply::Bytes(binary_response(&config))
        } else if target == format!("/v2/app/blobs/{layer_digest}") {
            Reply::Bytes(binary_response(&layer))
        } else {
            Reply::Raw(response("404 Not Found", "", ""))
        }
    })
}

#[test]
fn a_registry_sending_other_bytes_or_oversize_manifests_is_refused() {
    let work = Work::new();
    let layer = gzip(&tar(&[E::File("app", &work.app())]));
    let config = json!({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/app"]},
        "rootfs": {"type": "layers", "diff_ids": []}})
    .to_string()
    .into_bytes();
    let manifest = |layer: &[u8]| {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": Digest::of_bytes(&config).to_string(), "size": config.len()},
            "layers": [{"mediaType": LAYER_GZIP, "digest": Digest::of_bytes(layer).to_string(),
                "size": layer.len()}],
        })
        .to_string()
    };
    let verify_from = |server: &FakeServer| {
        let run = work.verify(&[&format!("docker://127.0.0.1:{}/app:v1", server.port)]);
        // Nothing pulled is left anywhere either (the pull's temp dir is in TMPDIR too).
        work.assert_untouched();
        run
    };

    // The control: the honest registry's image is judged.
    let honest = hostile_registry(
        manifest(&layer),
        config.clone(),
        Digest::of_bytes(&layer),
        layer.clone(),
    );
    let run = verify_from(&honest);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("starts   yes"), "{}", run.stdout);

    let mut other = layer.clone();
    let at = other.len() - 9;
    other[at] ^= 0xff;
    let server = hostile_registry(
        manifest(&layer),
        config.clone(),
        Digest::of_bytes(&layer),
        other,
    );
    let run = verify_from(&server);
    assert_refused(&run, "the registry sent bytes with digest");
    eprintln!(
        "registry-digest-mismatch: {}",
        run.stderr.trim().replace('\n', " / ")
    );

    // Far more bytes than the descriptor says (a bomb in transit): cut off at the size.
    let longer = [layer.clone(), vec![0u8; 4 << 20]].concat();
    let server = hostile_registry(
        manifest(&layer),
        config.clone(),
        Digest::of_bytes(&layer),
        longer,
    );
    let run = verify_from(&server);
    assert_refused(&run, "longer than the");
    eprintln!(
        "registry-longer-blob: {}",
        run.stderr.trim().replace('\n', " / ")
    );

    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(5 << 20));
    let server = hostile_registry(
        huge,
        config.clone(),
        Digest::of_bytes(&layer),
        layer.clone(),
    );
    let run = verify_from(&server);
    assert_refused(&run, "is over 4194304 bytes");
    eprintln!(
        "registry-oversize-manifest: {}",
        run.stderr.trim().replace('\n', " / ")
    );
}

/// A tar of `entries` then a GNU sparse entry `sparse` of `logical` bytes: a hole, then 512
/// bytes of 7s. Its header declares `logical`; the archive stores 512 bytes of data.
fn with_sparse(entries: &[E<'_>], logical: u64) -> Vec<u8> {
    let mut tar = tar(entries);
    tar.truncate(tar.len() - 1024); // the end-of-archive blocks go after the sparse entry
    tar.extend(sparse::gnu_sparse_entry("sparse", logical));
    tar.extend([0u8; 1024]);
    tar
}

/// Bytes the children of this test process dirtied in files, so far (the kernel counts a
/// write when the page is dirtied, whether or not it reaches the disk).
fn children_written_bytes() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    usage.block_writes() as u64 * 512
}

/// `staticpack run IMAGE` with the work folder's private TMPDIR, killed after `timeout`.
fn run_image(work: &Work, image: &str, timeout: std::time::Duration) -> Run {
    let mut cmd = common::staticpack_command(work.path(), &["run", image]);
    cmd.env("TMPDIR", work.path().join("tmp"));
    common::run_with_timeout(cmd, timeout)
}

#[test]
fn a_sparse_header_declaring_20_gib_is_refused_before_anything_is_written() {
    let work = Work::new();
    let app = work.app();
    // ~1 KiB of layer that declares 20 GiB: `run` used to write 16 GiB of zeros (113 s)
    // before the default --max-unpack-bytes (16G) stopped it.
    let layer = gzip(&with_sparse(&[E::File("app", &app)], 20 << 30));
    assert!(layer.len() < 64 << 10, "{}", layer.len());
    let (image, _) = work.image("sparse-20g", &layer, LAYER_GZIP);
    let written_before = children_written_bytes();
    let started = std::time::Instant::now();
    let run = run_image(&work, &image, std::time::Duration::from_secs(60));
    let took = started.elapsed();
    let written = children_written_bytes() - written_before;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    for part in [
        "\"sparse\"",
        "declares 21474836480 bytes",
        "17179869184",
        "--max-unpack-bytes",
    ] {
        assert!(run.stderr.contains(part), "{part:?} in:\n{}", run.stderr);
    }
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    // Other tests' children may be counted too: they write a few MiB, not GiBs.
    assert!(written < 256 << 20, "{written} bytes written");
    work.assert_untouched();
    eprintln!("sparse-20g: {}", run.stderr.trim().replace('\n', " / "));
}

#[test]
fn a_sparse_file_within_the_limit_is_unpacked_sparse() {
    let work = Work::new();
    // The entrypoint looks at /sparse from inside the root: its size, the blocks it takes
    // and its bytes at both ends.
    let app = compile_c(
        "musl-gcc",
        &["-static"],
        r#"#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(void) {
    struct stat st;
    if (stat("/sparse", &st) != 0) { perror("stat /sparse"); return 2; }
    int fd = open("/sparse", O_RDONLY);
    unsigned char b[512];
    int ok = fd >= 0 && pread(fd, b, 512, st.st_size - 512) == 512;
    for (int i = 0; ok && i < 512; i++) ok = b[i] == 7;
    ok = ok && pread(fd, b, 512, 0) == 512;
    for (int i = 0; ok && i < 512; i++) ok = b[i] == 0;
    printf("size=%lld blocks=%lld content=%s\n", (long long)st.st_size,
           (long long)st.st_blocks, ok ? "ok" : "bad");
    return 0;
}
"#,
        work.path(),
        "stat-app",
    );
    let app = std::fs::read(app).unwrap();
    let layer = gzip(&with_sparse(&[E::File("app", &app)], 1 << 30));
    let (image, _) = work.image("sparse-1g", &layer, LAYER_GZIP);
    let run = run_image(&work, &image, std::time::Duration::from_secs(120));
    run.ok();
    let line = run
        .stdout
        .lines()
        .find(|l| l.starts_with("size="))
        .unwrap_or_else(|| {
            panic!(
                "no report from the entrypoint:\n{}{}",
                run.stdout, run.stderr
            )
        });
    let field = |name: &str| -> String {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_owned()
    };
    assert_eq!(field("size"), (1u64 << 30).to_string(), "{line}");
    assert_eq!(field("content"), "ok", "{line}");
    // 512-byte blocks: the data takes a few, the GiB of hole none (it used to take 2097152).
    let blocks: u64 = field("blocks").parse().unwrap();
    assert!(blocks < 2048, "written whole: {line}");
    work.assert_untouched();
}
