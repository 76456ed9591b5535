//! Base images, layers by concern, image metadata and the output formats, checked with the
//! tools users load images with: skopeo, umoci, oci-image-tool, podman.

mod common;

use common::*;
use std::path::Path;

/// The `static` base layer's digest: a function of images/static alone (vendored files pinned by
/// digest in base.toml). It changes only when those files or the tar/gzip bytes change.
const STATIC_BASE_LAYER: &str =
    "sha256:487cc1946fb75bffcfe5157c8017ffe203e21283f4a59499dc7d9e994b6706cc";

#[test]
fn static_base_layer_digest_is_golden() {
    let base = staticpack::image::load_base("static", Path::new(".")).unwrap();
    let blobs = tempfile::tempdir().unwrap();
    let layer = staticpack::image::write_layer(&base.layer.unwrap(), blobs.path()).unwrap();
    assert_eq!(
        layer.digest.to_string(),
        STATIC_BASE_LAYER,
        "size {} bytes compressed",
        layer.size
    );
}

fn build_static_base_recipe(work: &Path, extra: &[&str]) -> Run {
    need("go", "golang-go");
    let recipe = recipe("go-static-base").join("recipe.toml");
    let mut args = vec!["build", recipe.to_str().unwrap()];
    args.extend_from_slice(extra);
    staticpack(work, &args)
}

#[test]
fn the_program_works_on_static_and_fails_on_scratch() {
    let work = tempfile::tempdir().unwrap();
    let run = build_static_base_recipe(work.path(), &[]);
    run.ok();
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    // The same program on scratch: the proof expects the four failures (and gets them).
    let scratch = recipe("go-static-base").join("scratch.toml");
    let run = staticpack(work.path(), &["build", scratch.to_str().unwrap()]);
    run.ok();
    // build says so before the proof runs, with the base that fixes it.
    let warned = run.stderr.find("warning: no CA certificates in the image");
    let proved = run.stderr.find("run     ok");
    assert!(warned.is_some() && warned < proved, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning: no /etc/passwd in the image")
            && run.stderr.contains("fix: base = \"static\""),
        "{}",
        run.stderr
    );
    // verify IMAGE finds those four failures from the binary and the image's files alone,
    // without running it; the static base has every file it looks for.
    let codes = |image: &str| -> Vec<String> {
        let run = staticpack(work.path(), &["verify", "--json", image]);
        let entry: serde_json::Value = serde_json::from_str(
            run.ok()
                .stdout
                .lines()
                .nth(1)
                .expect("the entrypoint's object"),
        )
        .unwrap();
        (entry["findings"].as_array().unwrap().iter())
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        codes("oci:out/go-static-base-scratch"),
        [
            "missing-ca-certificates",
            "missing-zoneinfo",
            "missing-passwd",
            "missing-hosts",
            "missing-nsswitch-conf",
            "missing-services",
            "missing-protocols",
            // os/user's Current falls back to os.UserHomeDir: no HOME in Env, no passwd.
            "no-home"
        ]
    );
    assert_eq!(codes("oci:out/go-static-base"), Vec::<String>::new());
    // Same base layer in two recipes: byte-identical, so registries share it.
    let other = staticpack(
        work.path(),
        &[
            "build",
            recipe("go-6-nocgo-purego")
                .join("recipe.toml")
                .to_str()
                .unwrap(),
            "--no-run",
        ],
    );
    other.ok();
    let a = staticpack(work.path(), &["inspect", "out/go-static-base"]);
    let b = staticpack(work.path(), &["inspect", "out/go-6-nocgo-purego"]);
    let first_layer = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("layer 1:"))
            .unwrap_or_default()
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(first_layer(&a.ok().stdout), first_layer(&b.ok().stdout));
    assert_eq!(first_layer(&a.stdout), STATIC_BASE_LAYER);
}

#[test]
fn every_format_is_accepted_and_the_config_matches_the_recipe() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    build_static_base_recipe(w, &[]).ok();
    build_static_base_recipe(w, &["--format", "oci-archive", "--no-run"]).ok();
    build_static_base_recipe(w, &["--format", "docker-archive", "--no-run"]).ok();
    let layout = w.join("out/go-static-base");
    let oci_tar = w.join("out/go-static-base.oci.tar");
    let docker_tar = w.join("out/go-static-base.docker.tar");

    let skopeo = need("skopeo", "skopeo");
    let config_of = |reference: String| -> serde_json::Value {
        let r = tool(&skopeo, &["inspect", "--config", &reference], w);
        serde_json::from_str(&r.ok().stdout).unwrap()
    };
    let configs = [
        config_of(format!("oci:{}:latest", layout.display())),
        config_of(format!("oci-archive:{}:latest", oci_tar.display())),
        config_of(format!("docker-archive:{}", docker_tar.display())),
    ];
    for c in &configs {
        assert_eq!(c, &configs[0], "every format carries the same config");
    }
    let cfg = &configs[0]["config"];
    assert_eq!(cfg["User"], "nonroot");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/app"]));
    assert_eq!(cfg["WorkingDir"], "/home/nonroot");
    assert_eq!(cfg["StopSignal"], "SIGTERM");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object(), "{cfg}");
    assert!(
        cfg["Env"].as_array().unwrap().iter().any(|e| e == "TZ=UTC"),
        "{cfg}"
    );
    assert_eq!(
        cfg["Labels"]["org.opencontainers.image.source"],
        "https://example.org/staticpack/go-static-base"
    );
    let history: Vec<String> = configs[0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(history.len(), 3, "base, files, binary: {history:?}");
    assert!(
        history[0].starts_with("staticpack base static"),
        "{history:?}"
    );
    assert!(history[1].contains("/etc/motd"), "{history:?}");

    let umoci = need("umoci", "umoci");
    let bundle = w.join("bundle");
    tool(
        &umoci,
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{}:latest", layout.display()),
            bundle.to_str().unwrap(),
        ],
        w,
    )
    .ok();
    let rootfs = bundle.join("rootfs");
    for f in [
        "etc/passwd",
        "etc/group",
        "etc/nsswitch.conf",
        "etc/hosts",
        "etc/ssl/certs/ca-certificates.crt",
        "usr/share/zoneinfo/Europe/Paris",
        "etc/motd",
        "app",
    ] {
        assert!(rootfs.join(f).is_file(), "{f} missing from the image");
    }
    assert_eq!(
        std::fs::read_link(rootfs.join("etc/ssl/cert.pem")).unwrap(),
        Path::new("certs/ca-certificates.crt")
    );

    // Debian's oci-image-tool (1.0.0-rc1 code) cannot walk any tar of an index.json layout, not
    // even one GNU tar makes from a valid layout; the archive is validated unpacked instead.
    let oit = need("oci-image-tool", "oci-image-tool");
    let validate = |dir: &Path| {
        let args = [
            "validate",
            "--type",
            "image",
            "--ref",
            "name=latest",
            dir.to_str().unwrap(),
        ];
        tool(&oit, &args, w).ok();
    };
    validate(&layout);
    let unpacked = w.join("oci-archive-unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = need("tar", "tar");
    tool(
        &tar,
        &[
            "-xf",
            oci_tar.to_str().unwrap(),
            "-C",
            unpacked.to_str().unwrap(),
        ],
        w,
    )
    .ok();
    validate(&unpacked);
}

#[test]
fn podman_loads_the_docker_archive() {
    let podman = need("podman", "podman");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    build_static_base_recipe(w, &["--format", "docker-archive", "--no-run"]).ok();
    let layout_run = build_static_base_recipe(w, &["--no-run"]);
    let inspect = staticpack(w, &["inspect", "out/go-static-base"]);
    let config_digest = inspect
        .ok()
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("config:"))
        .unwrap()
        .trim()
        .to_owned();
    printed_digest(layout_run.ok());

    let store = w.join("store");
    let base_args = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "--root",
            &store.join("root").to_string_lossy(),
            "--runroot",
            &store.join("run").to_string_lossy(),
            "--storage-driver",
            "vfs",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let docker_tar = w.join("out/go-static-base.docker.tar");
    let args = base_args(&["load", "-i", docker_tar.to_str().unwrap()]);
    let loaded = tool(
        &podman,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        w,
    );
    loaded.ok();
    let args = base_args(&["image", "inspect", "go-static-base:latest"]);
    let shown = tool(
        &podman,
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        w,
    );
    let json: serde_json::Value = serde_json::from_str(&shown.ok().stdout).unwrap();
    let image = &json[0];
    assert_eq!(
        format!("sha256:{}", image["Id"].as_str().unwrap()),
        config_digest,
        "podman's image ID is the config digest"
    );
    assert_eq!(image["Config"]["User"], "nonroot");
    assert_eq!(image["Config"]["Entrypoint"], serde_json::json!(["/app"]));
}
