//! linux/arm64 images built on this amd64 host: hello-c (musl:arm64 + the cross gcc), a cgo Go
//! scenario (musl), hello-rust (aarch64-unknown-linux-musl), each verified static by readelf,
//! read by skopeo and umoci, and proven under qemu-aarch64-static in the empty-root sandbox;
//! a prebuilt binary per platform, and a mismatched one refused.

mod common;

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
