//! linux/arm64 images built on this amd64 host: hello-c (musl:arm64 + the cross gcc), a cgo Go
//! scenario (musl), hello-rust (aarch64-unknown-linux-musl), each verified static by readelf,
//! read by skopeo and umoci, and proven under qemu-aarch64-static in the empty-root sandbox;
//! a prebuilt binary per platform, and a mismatched one refused. Then the same three for
//! linux/amd64 and linux/arm64 in one build: one OCI image index, read by skopeo, validated by
//! oci-image-tool, copied into a real registry and back, each platform unpacked by umoci and
//! checked by readelf, pushed by staticpack with a re-push uploading nothing.

mod common;

use common::registry::{Auth, RegistryServer};
use common::*;
use std::path::{Path, PathBuf};

const ARM64: &str = "linux/arm64";

/// The tools every test here needs, or a failing test that names their packages.
fn need_cross() {
    need(
        "aarch64-linux-gnu-gcc",
        "gcc-aarch64-linux-gnu (bash .ci/setup)",
    );
    need("qemu-aarch64-static", "qemu-user-static (bash .ci/setup)");
    assert!(
        Path::new("/usr/lib/aarch64-linux-musl/rcrt1.o").is_file(),
        "musl for arm64 is required: dpkg --add-architecture arm64 && apt-get install musl-dev:arm64 (or bash .ci/setup)"
    );
}

/// `staticpack build RECIPE --out OUT` with a cache of the test's own, and `extra`.
fn build(work: &Path, recipe: &Path, out: &str, extra: &[&str]) -> Run {
    let cache = work.join("cache");
    let mut args = vec![
        "--cache-dir",
        cache.to_str().unwrap(),
        "build",
        recipe.to_str().unwrap(),
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    staticpack(work, &args)
}

/// What an arm64 image must be: its manifest and config say arm64 (skopeo), umoci unpacks it,
/// its binary is AArch64 with no INTERP (readelf), verify passes it for arm64 and refuses it
/// for amd64, and the proof ran under emulation. Returns the unpacked binary.
fn check_arm64_image(work: &Path, run: &Run, layout: &str, binary: &str) -> PathBuf {
    run.ok();
    assert!(
        run.stderr
            .contains("linux/arm64 proven under emulation (qemu-aarch64)"),
        "{}",
        run.stderr
    );
    let digest = printed_digest(run);
    let layout_path = work.join(layout);
    let layout_s = layout_path.to_str().unwrap();

    let skopeo = need("skopeo", "skopeo");
    let raw = tool(
        &skopeo,
        &["inspect", "--raw", &format!("oci:{layout_s}:latest")],
        work,
    );
    raw.ok();
    let manifest: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let config = tool(
        &skopeo,
        &["inspect", "--config", &format!("oci:{layout_s}:latest")],
        work,
    );
    config.ok();
    let config: serde_json::Value = serde_json::from_str(&config.stdout).unwrap();
    assert_eq!(
        (&config["os"], &config["architecture"]),
        (&"linux".into(), &"arm64".into())
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout_path.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest);
    assert_eq!(
        index["manifests"][0]["platform"],
        serde_json::json!({"architecture": "arm64", "os": "linux"})
    );

    let umoci = need("umoci", "umoci");
    let bundle = work.join(format!("{layout}-bundle"));
    tool(
        &umoci,
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{layout_s}:latest"),
            bundle.to_str().unwrap(),
        ],
        work,
    )
    .ok();
    let bin = bundle.join("rootfs").join(binary.trim_start_matches('/'));
    let bin_s = bin.to_str().unwrap();

    let readelf = need("readelf", "binutils");
    let header = tool(&readelf, &["-h", bin_s], work);
    header.ok();
    assert!(
        header
            .stdout
            .lines()
            .any(|l| l.contains("Machine:") && l.contains("AArch64")),
        "{}",
        header.stdout
    );
    let programs = tool(&readelf, &["-lW", bin_s], work);
    programs.ok();
    assert!(
        !programs.stdout.contains("INTERP"),
        "a static binary has no program interpreter:\n{}",
        programs.stdout
    );
    assert!(!programs.stdout.contains("(NEEDED)"), "{}", programs.stdout);

    staticpack(
        work,
        &["verify", "--require", "static", "--platform", ARM64, bin_s],
    )
    .ok();
    let wrong = staticpack(work, &["verify", "--platform", "linux/amd64", bin_s]);
    assert_eq!(wrong.code, 1, "{}{}", wrong.stdout, wrong.stderr);
    assert!(
        wrong.stdout.contains("exec format error"),
        "{}",
        wrong.stdout
    );
    bin
}

#[test]
fn hello_c_for_arm64_is_static_pie_and_proven_under_qemu() {
    need_cross();
    let work = tempfile::tempdir().unwrap();
    let run = build(
        work.path(),
        &recipe("hello-c"),
        "hello-arm64",
        &["--platform", ARM64],
    );
    assert!(
        run.stderr.contains("aarch64-linux-gnu-gcc") && run.stderr.contains("aarch64-linux-musl"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("verify  static-pie (musl, aarch64)"),
        "{}",
        run.stderr
    );
    let bin = check_arm64_image(work.path(), &run, "hello-arm64", "/hello");
    let header = tool(
        &need("readelf", "binutils"),
        &["-h", bin.to_str().unwrap()],
        work.path(),
    );
    assert!(
        header.stdout.contains("DYN"),
        "static-pie: {}",
        header.stdout
    );

    // run and inspect pick the platform too; the same image is not there for amd64.
    let ran = staticpack(
        work.path(),
        &[
            "run",
            "--platform",
            ARM64,
            "hello-arm64",
            "--",
            "--selftest",
        ],
    );
    ran.ok();
    assert!(
        ran.stdout.contains("ok: no libc in this root"),
        "{}",
        ran.stdout
    );
    let inspected = staticpack(
        work.path(),
        &["inspect", "--platform", ARM64, "hello-arm64"],
    );
    inspected.ok();
    assert!(
        inspected.stdout.contains("platform:  linux/arm64"),
        "{}",
        inspected.stdout
    );
    let missing = staticpack(
        work.path(),
        &["inspect", "--platform", "linux/amd64", "hello-arm64"],
    );
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("no manifest for linux/amd64 (it has linux/arm64)"),
        "{}",
        missing.stderr
    );

    // A native build of the same recipe is another image (the caches key on the platform).
    let native = build(work.path(), &recipe("hello-c"), "hello-amd64", &[]);
    native.ok();
    assert_ne!(printed_digest(&native), printed_digest(&run));
    assert!(!native.stderr.contains("emulation"), "{}", native.stderr);

    // Both in one build: an index over exactly these two images (the same bytes per platform).
    let two = build(
        work.path(),
        &recipe("hello-c"),
        "both",
        &["--platform", "linux/arm64,linux/amd64"],
    );
    two.ok();
    let raw = tool(
        &need("skopeo", "skopeo"),
        &[
            "inspect",
            "--raw",
            &format!("oci:{}:latest", work.path().join("both").display()),
        ],
        work.path(),
    );
    raw.ok();
    let index: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(index["manifests"][0]["digest"], printed_digest(&native));
    assert_eq!(index["manifests"][1]["digest"], printed_digest(&run));
}

#[test]
fn go_cgo_musl_for_arm64_links_externally_and_runs_under_qemu() {
    need_cross();
    need("go", "golang-go");
    let work = tempfile::tempdir().unwrap();
    let run = build(
        work.path(),
        &recipe("go-5-cgo-plain-purego"),
        "go-arm64",
        &["--platform", ARM64],
    );
    assert!(
        run.stderr.contains("verify  static-pie (musl, Go"),
        "{}",
        run.stderr
    );
    check_arm64_image(work.path(), &run, "go-arm64", "/app");
}

#[test]
fn hello_rust_for_arm64_links_with_the_cross_gcc_and_runs_under_qemu() {
    need_cross();
    let work = tempfile::tempdir().unwrap();
    // The recipe as it is asks for a static-pie, which the arm64 musl target cannot make.
    let refused = build(
        work.path(),
        &recipe("hello-rust"),
        "refused",
        &["--platform", ARM64],
    );
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("aarch64-unknown-linux-musl target makes no static-pie")
            && refused.stderr.contains("Fix: link = \"static\""),
        "{}",
        refused.stderr
    );
    // Its arm64 form: link = "static", the platform named in the recipe.
    let dir = work.path().join("hello-rust-arm64");
    copy_tree(&recipe("hello-rust"), &dir);
    let text = std::fs::read_to_string(dir.join("recipe.toml")).unwrap();
    let text = text
        .replace("link   = \"static-pie\"", "link   = \"static\"")
        .replace("[image]\n", "[image]\nplatforms  = [\"linux/arm64\"]\n");
    assert!(text.contains("platforms") && text.contains("\"static\""));
    std::fs::write(dir.join("recipe.toml"), text).unwrap();
    let run = build(work.path(), &dir, "rust-arm64", &[]);
    assert!(
        run.stderr.contains("rustc ") && run.stderr.contains("(aarch64-unknown-linux-musl)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("verify  static (musl, Rust, aarch64)"),
        "{}",
        run.stderr
    );
    check_arm64_image(work.path(), &run, "rust-arm64", "/hello");
}

/// A static binary for the host: the amd64 side of the prebuilt recipes.
fn host_binary(dir: &Path) -> PathBuf {
    compile_c(
        "musl-gcc",
        &["-static", "-O2"],
        "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n",
        dir,
        "hi-amd64",
    )
}

#[test]
fn a_prebuilt_is_packed_per_platform_and_a_mismatch_is_refused() {
    need_cross();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pre");
    std::fs::create_dir_all(&dir).unwrap();
    host_binary(&dir);
    compile_c(
        "aarch64-linux-gnu-gcc",
        &[
            "-specs",
            "/usr/lib/aarch64-linux-musl/musl-gcc.specs",
            "-static",
            "-O2",
        ],
        "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n",
        &dir,
        "hi-arm64",
    );
    let recipe_text = |source: &str| {
        format!(
            "name = \"hi\"\n[build]\nlang = \"prebuilt\"\nlibc = \"musl\"\nlink = \"static\"\noutput = \"/hi\"\nsource = {source}\n[test]\nexpect_stdout = \"hi\"\n"
        )
    };
    std::fs::write(
        dir.join("recipe.toml"),
        recipe_text("{ \"linux/amd64\" = \"hi-amd64\", \"linux/arm64\" = \"hi-arm64\" }"),
    )
    .unwrap();
    let arm = build(work.path(), &dir, "hi-arm64", &["--platform", ARM64]);
    check_arm64_image(work.path(), &arm, "hi-arm64", "/hi");
    let amd = build(work.path(), &dir, "hi-amd64", &[]);
    amd.ok();
    assert!(!amd.stderr.contains("emulation"), "{}", amd.stderr);

    // The amd64 binary named as the arm64 one: refused before anything is packed.
    std::fs::write(
        dir.join("recipe.toml"),
        recipe_text("{ \"linux/arm64\" = \"hi-amd64\" }"),
    )
    .unwrap();
    let wrong = build(work.path(), &dir, "wrong", &["--platform", ARM64]);
    assert_ne!(wrong.code, 0);
    for says in [
        "verify refused the binary",
        "not for linux/arm64",
        "exec format error",
        "--platform linux/amd64",
    ] {
        assert!(
            wrong.stderr.contains(says),
            "{says:?} in:\n{}",
            wrong.stderr
        );
    }
    assert!(!work.path().join("wrong").exists(), "nothing is published");
    // And a platform the recipe has no binary for is named, with the ones it has.
    let none = build(work.path(), &dir, "none", &["--platform", "linux/amd64"]);
    assert_ne!(none.code, 0);
    assert!(
        none.stderr
            .contains("no binary for linux/amd64 (it has linux/arm64)"),
        "{}",
        none.stderr
    );
}

const BOTH: &str = "linux/amd64,linux/arm64";

/// What a two-platform build must be. The build said how each platform was proven; the layout's
/// tag is an OCI image index (skopeo, oci-image-tool) over an amd64 and an arm64 manifest, each
/// with its platform; `skopeo copy --all` takes it into the registry and back unchanged; each
/// platform, fetched from the registry by its digest, unpacks with umoci into a binary of its
/// machine (readelf) with no INTERP; `staticpack push` of the index, pushed again, uploads
/// nothing. Returns the index's digest and its manifests' digests (amd64, arm64).
fn check_index(
    work: &Path,
    run: &Run,
    layout: &str,
    binary: &str,
    registry: &RegistryServer,
) -> (String, [String; 2]) {
    run.ok();
    let digest = printed_digest(run);
    assert!(
        run.stderr
            .contains(&format!("index   {digest} (2 platforms)")),
        "{}",
        run.stderr
    );
    let proven = |platform: &str, how: &str| {
        run.stderr
            .lines()
            .any(|l| l.trim_start().starts_with(platform) && l.contains(how))
    };
    assert!(
        proven("linux/amd64 sha256:", "proven natively"),
        "{}",
        run.stderr
    );
    assert!(
        proven(
            "linux/arm64 sha256:",
            "proven under emulation (qemu-aarch64)"
        ),
        "{}",
        run.stderr
    );

    let skopeo = need("skopeo", "skopeo");
    let layout_path = work.join(layout);
    let layout_s = layout_path.to_str().unwrap();
    let raw = tool(
        &skopeo,
        &["inspect", "--raw", &format!("oci:{layout_s}:latest")],
        work,
    );
    raw.ok();
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.stdout.as_bytes())),
        digest,
        "the index skopeo reads is the one the build printed"
    );
    let index: serde_json::Value = serde_json::from_str(&raw.stdout).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let manifests = index["manifests"].as_array().unwrap();
    let platforms: Vec<&serde_json::Value> = manifests.iter().map(|m| &m["platform"]).collect();
    assert_eq!(
        platforms,
        [
            &serde_json::json!({"architecture": "amd64", "os": "linux"}),
            &serde_json::json!({"architecture": "arm64", "os": "linux"})
        ]
    );
    let children: [String; 2] = [0, 1].map(|i| manifests[i]["digest"].as_str().unwrap().to_owned());

    // Debian's oci-image-tool (1.0.0-rc1 code) does not walk into an index when it validates a
    // layout (it warns "unknown media type"), so the index and each manifest are validated
    // against the spec's schemas one by one, and the layout as a whole as far as it goes.
    let oit = need("oci-image-tool", "oci-image-tool");
    let blob = |d: &str| {
        layout_path
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index_blob = blob(&digest);
    tool(
        &oit,
        &[
            "validate",
            "--type",
            "imageIndex",
            index_blob.to_str().unwrap(),
        ],
        work,
    )
    .ok();
    for child in &children {
        let b = blob(child);
        tool(
            &oit,
            &["validate", "--type", "manifest", b.to_str().unwrap()],
            work,
        )
        .ok();
    }
    tool(
        &oit,
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            "name=latest",
            layout_s,
        ],
        work,
    )
    .ok();

    // Into the registry and back, every platform.
    let remote = format!("docker://{}/{layout}", registry.host());
    tool(
        &skopeo,
        &[
            "copy",
            "--all",
            "--dest-tls-verify=false",
            &format!("oci:{layout_s}:latest"),
            &format!("{remote}:multi"),
        ],
        work,
    )
    .ok();
    let remote_raw = tool(
        &skopeo,
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("{remote}:multi"),
        ],
        work,
    );
    remote_raw.ok();
    assert_eq!(
        format!("sha256:{}", sha256_hex(remote_raw.stdout.as_bytes())),
        digest
    );
    let back = work.join(format!("{layout}-back"));
    tool(
        &skopeo,
        &[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("{remote}:multi"),
            &format!("oci:{}:latest", back.display()),
        ],
        work,
    )
    .ok();
    let back_index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(back.join("index.json")).unwrap()).unwrap();
    assert_eq!(back_index["manifests"][0]["digest"], digest.as_str());

    // Each platform by its digest: from the registry into a layout of its own (umoci 0.4
    // unpacks by tag only, and refuses an index's tag as ambiguous), unpacked, its binary read.
    let umoci = need("umoci", "umoci");
    let readelf = need("readelf", "binutils");
    for (child, machine) in children.iter().zip(["X86-64", "AArch64"]) {
        let one = work.join(format!("{layout}-{}", &child[7..19]));
        tool(
            &skopeo,
            &[
                "copy",
                "--src-tls-verify=false",
                &format!("{remote}@{child}"),
                &format!("oci:{}:one", one.display()),
            ],
            work,
        )
        .ok();
        let bundle = one.with_extension("bundle");
        tool(
            &umoci,
            &[
                "unpack",
                "--rootless",
                "--image",
                &format!("{}:one", one.display()),
                bundle.to_str().unwrap(),
            ],
            work,
        )
        .ok();
        let bin = bundle.join("rootfs").join(binary.trim_start_matches('/'));
        let header = tool(&readelf, &["-h", bin.to_str().unwrap()], work);
        header.ok();
        assert!(
            header
                .stdout
                .lines()
                .any(|l| l.contains("Machine:") && l.contains(machine)),
            "{child}: {}",
            header.stdout
        );
        let programs = tool(&readelf, &["-lW", bin.to_str().unwrap()], work);
        programs.ok();
        assert!(!programs.stdout.contains("INTERP"), "{}", programs.stdout);
    }

    // staticpack's own push: every manifest, then the index; again, and nothing is uploaded.
    let target = format!("{}/{layout}-pushed:v1", registry.host());
    let push = |what: &str| {
        let run = staticpack(
            work,
            &[
                "push",
                &format!("{layout_s}:latest"),
                &target,
                "--insecure-registry",
                &registry.host(),
                "--json",
            ],
        );
        run.ok();
        let report: serde_json::Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{what}: {e}: {}", run.stdout));
        assert_eq!(report["digest"], digest.as_str(), "{what}");
        report
    };
    let first = push("first push");
    let actions = |r: &serde_json::Value| -> Vec<String> {
        r["blobs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["action"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(actions(&first).iter().any(|a| a == "uploaded"), "{first:#}");
    // Each platform's SBOMs and statements, about its own manifest.
    assert_eq!(
        first["referrers"].as_array().map(Vec::len),
        Some(2),
        "{first:#}"
    );
    let again = push("second push");
    assert!(
        !actions(&again).is_empty() && actions(&again).iter().all(|a| a == "skipped"),
        "{again:#}"
    );
    // The registry has the index under the tag and each platform's manifest by digest.
    let pushed = format!("docker://{target}");
    let pushed_raw = tool(
        &skopeo,
        &["inspect", "--raw", "--tls-verify=false", &pushed],
        work,
    );
    pushed_raw.ok();
    assert_eq!(
        format!("sha256:{}", sha256_hex(pushed_raw.stdout.as_bytes())),
        digest
    );
    (digest, children)
}

fn sha256_hex(bytes: &[u8]) -> String {
    staticpack::digest::Digest::of_bytes(bytes).hex().to_owned()
}

#[test]
fn hello_c_for_amd64_and_arm64_is_one_index_that_skopeo_umoci_and_a_registry_take() {
    need_cross();
    let registry = RegistryServer::start(Auth::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let run = build(w, &recipe("hello-c"), "hello-both", &["--platform", BOTH]);
    let (index, [amd64, _]) = check_index(w, &run, "hello-both", "/hello", &registry);

    // One platform is still a plain manifest: the amd64 image in the index, byte for byte.
    let one = build(
        w,
        &recipe("hello-c"),
        "hello-one",
        &["--platform", "linux/amd64"],
    );
    one.ok();
    assert_eq!(printed_digest(&one), amd64);

    // Unchanged: the cache finds the index.
    let cached = build(w, &recipe("hello-c"), "hello-both", &["--platform", BOTH]);
    cached.ok();
    assert!(
        cached.stderr.contains("cached  inputs"),
        "{}",
        cached.stderr
    );
    assert_eq!(printed_digest(&cached), index);

    // inspect lists both; --platform picks one; run takes the host's.
    let all = staticpack(w, &["inspect", "hello-both"]);
    all.ok();
    assert!(
        all.stdout
            .contains(&format!("index:     {index} (2 platforms)"))
    );
    assert!(
        all.stdout.contains("platform:  linux/amd64")
            && all.stdout.contains("platform:  linux/arm64")
    );
    let arm = staticpack(w, &["inspect", "--platform", ARM64, "hello-both"]);
    arm.ok();
    assert!(!arm.stdout.contains("linux/amd64"), "{}", arm.stdout);
    let ran = staticpack(w, &["run", "hello-both"]);
    ran.ok();
    let ran_arm = staticpack(w, &["run", "--platform", ARM64, "hello-both"]);
    ran_arm.ok();
    assert_eq!(ran.stdout, ran_arm.stdout);

    // --check-repro builds every platform a second time and compares each.
    let repro = build(
        w,
        &recipe("hello-c"),
        "hello-repro",
        &["--platform", BOTH, "--check-repro"],
    );
    repro.ok();
    assert!(
        repro
            .stderr
            .contains(&format!("repro   ok: both builds gave {index}")),
        "{}",
        repro.stderr
    );

    // An oci-archive holds the index; a docker-archive cannot, and the build says so first.
    let tar = w.join("hello.oci.tar");
    build(
        w,
        &recipe("hello-c"),
        tar.to_str().unwrap(),
        &["--platform", BOTH, "--format", "oci-archive"],
    )
    .ok();
    let skopeo = need("skopeo", "skopeo");
    let raw = tool(
        &skopeo,
        &[
            "inspect",
            "--raw",
            &format!("oci-archive:{}:latest", tar.display()),
        ],
        w,
    );
    raw.ok();
    assert_eq!(
        format!("sha256:{}", sha256_hex(raw.stdout.as_bytes())),
        index
    );
    let docker = build(
        w,
        &recipe("hello-c"),
        "hello.docker.tar",
        &["--platform", BOTH, "--format", "docker-archive"],
    );
    assert_ne!(docker.code, 0);
    assert!(
        docker
            .stderr
            .contains("docker-archive holds one platform's image")
            && docker.stderr.contains("--format oci-archive"),
        "{}",
        docker.stderr
    );
    assert!(!w.join("hello.docker.tar").exists());
}

#[test]
fn go_cgo_musl_for_amd64_and_arm64_is_one_index() {
    need_cross();
    need("go", "golang-go");
    let registry = RegistryServer::start(Auth::Anonymous);
    let work = tempfile::tempdir().unwrap();
    let run = build(
        work.path(),
        &recipe("go-5-cgo-plain-purego"),
        "go-both",
        &["--platform", BOTH],
    );
    let (_, children) = check_index(work.path(), &run, "go-both", "/app", &registry);
    // The `static` base is architecture-independent: both manifests start with its one blob.
    let layers = |digest: &str| {
        let path = work
            .path()
            .join("go-both/blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        m["layers"].as_array().unwrap().clone()
    };
    let (amd64, arm64) = (layers(&children[0]), layers(&children[1]));
    assert_eq!(amd64[0]["digest"], arm64[0]["digest"]);
    assert_ne!(
        amd64.last().unwrap()["digest"],
        arm64.last().unwrap()["digest"]
    );
}

#[test]
fn hello_rust_for_amd64_and_arm64_is_one_index() {
    need_cross();
    let registry = RegistryServer::start(Auth::Anonymous);
    let work = tempfile::tempdir().unwrap();
    // link = "static": the arm64 musl target makes no static-pie (see above); both platforms
    // named in the recipe this time.
    let dir = work.path().join("hello-rust-both");
    copy_tree(&recipe("hello-rust"), &dir);
    let text = std::fs::read_to_string(dir.join("recipe.toml")).unwrap();
    let text = text
        .replace("link   = \"static-pie\"", "link   = \"static\"")
        .replace(
            "[image]\n",
            "[image]\nplatforms  = [\"linux/arm64\", \"linux/amd64\"]\n",
        );
    assert!(text.contains("platforms") && text.contains("\"static\""));
    std::fs::write(dir.join("recipe.toml"), text).unwrap();
    let run = build(work.path(), &dir, "rust-both", &[]);
    check_index(work.path(), &run, "rust-both", "/hello", &registry);
}
