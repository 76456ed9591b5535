//! Issue 16: image sources read by `verify IMAGE` / `run IMAGE`, over images made by the real
//! tools (umoci, skopeo), and `verify IMAGE`'s verdicts on third-party-shaped images: a dynamic
//! program without its loader, the same with loader and libc copied in, a shell-form command
//! on scratch, a static program behind an absolute symlink.

mod common;

use common::{Run, compile_c, need, staticpack};
use staticpack::image::source::ImageSource;
use std::path::Path;
use std::process::Command;

fn tool(cmd: &mut Command) {
    let out = cmd.output().expect("running the tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn skopeo_oci_archives_open() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    tool(
        Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    );
    tool(
        Command::new("umoci")
            .arg("new")
            .arg("--image")
            .arg(format!("{}:v1", layout.display())),
    );
    tool(
        Command::new("umoci")
            .arg("config")
            .arg("--image")
            .arg(format!("{}:v1", layout.display()))
            .arg("--config.entrypoint=/app"),
    );
    let archive = tmp.path().join("img.tar");
    tool(
        Command::new("skopeo")
            .arg("copy")
            .arg("-q")
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let arg = format!("oci-archive:{}", archive.display());
    let opened = ImageSource::parse(&arg)
        .unwrap()
        .unwrap()
        .open(&arg, None)
        .unwrap();
    let entrypoint = opened
        .image
        .config
        .config()
        .as_ref()
        .unwrap()
        .entrypoint()
        .clone();
    assert_eq!(entrypoint, Some(vec!["/app".to_owned()]));
    opened.image.verify_layers().unwrap();
}

/// An image made the way users make one by hand: umoci's empty image, `files` (in-image path,
/// host file or `->target` for a symlink) put into its rootfs, repacked, then `config` applied.
fn umoci_image(dir: &Path, files: &[(&str, &str)], config: &[&str]) -> String {
    need("umoci", "umoci");
    let layout = dir.join("layout");
    let image = format!("{}:img", layout.display());
    tool(
        Command::new("umoci")
            .arg("init")
            .arg("--layout")
            .arg(&layout),
    );
    tool(Command::new("umoci").args(["new", "--image", &image]));
    let bundle = dir.join("bundle");
    tool(
        Command::new("umoci")
            .args(["unpack", "--image", &image])
            .arg(&bundle),
    );
    let rootfs = bundle.join("rootfs");
    for (path, from) in files {
        let dest = rootfs.join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        match from.strip_prefix("->") {
            Some(target) => std::os::unix::fs::symlink(target, &dest).unwrap(),
            None => {
                std::fs::copy(from, &dest).unwrap();
            }
        }
    }
    tool(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    let mut cmd = Command::new("umoci");
    cmd.args(["config", "--image", &image]).args(config);
    tool(&mut cmd);
    format!("oci:{image}")
}

fn verify(dir: &Path, image: &str) -> Run {
    staticpack(dir, &["verify", image])
}

/// The host's dynamic /bin/true, its loader and its libc, as `ldd` names them.
const TRUE_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
const TRUE_LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

#[test]
fn a_dynamic_program_without_its_loader_will_not_start_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let image = umoci_image(
        tmp.path(),
        &[("/app", "/bin/true")],
        &["--config.entrypoint=/app"],
    );
    let run = verify(tmp.path(), &image);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("/app: dynamic"), "{}", run.stdout);
    assert!(
        run.stdout.contains("starts   NO")
            && run
                .stdout
                .contains(&format!("lacks {TRUE_LOADER} (needed by /app)"))
            && run.stdout.contains("libc.so.6 (needed by /app)")
            && run.stdout.contains("no such file or directory"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("will not start"), "{}", run.stderr);
    // The same image as skopeo writes a docker archive (with its legacy layer.tar links).
    let archive = tmp.path().join("docker.tar");
    tool(
        Command::new("skopeo")
            .args(["copy", "-q", image.as_str()])
            .arg(format!("docker-archive:{}", archive.display())),
    );
    let run = verify(tmp.path(), &format!("docker-archive:{}", archive.display()));
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("lacks {TRUE_LOADER} (needed by /app)")),
        "{}",
        run.stdout
    );
    // The run proof agrees, in the same words.
    let run = staticpack(tmp.path(), &["run", &image]);
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "its ELF interpreter {TRUE_LOADER} is not in the image"
        )),
        "{}",
        run.stderr
    );
}

#[test]
fn a_dynamic_program_with_its_loader_and_libc_starts_and_an_archive_says_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let image = umoci_image(
        tmp.path(),
        &[
            ("/app", "/bin/true"),
            (TRUE_LOADER, TRUE_LOADER),
            (TRUE_LIBC, TRUE_LIBC),
        ],
        &["--config.entrypoint=/app"],
    );
    let run = verify(tmp.path(), &image);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "starts   yes: /app is dynamic, and the image has its interpreter and the 1 library it needs"
        ),
        "{}",
        run.stdout
    );
    // The libc and loader are reported as the image's other ELF files.
    assert!(
        run.stdout.contains(TRUE_LIBC) && run.stderr.contains("2 other ELF files"),
        "{}{}",
        run.stdout,
        run.stderr
    );

    let archive = tmp.path().join("img.tar");
    tool(
        Command::new("skopeo")
            .args(["copy", "-q", image.as_str()])
            .arg(format!("oci-archive:{}", archive.display())),
    );
    let run = verify(tmp.path(), &format!("oci-archive:{}", archive.display()));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("starts   yes"), "{}", run.stdout);
    // And `run` takes the same reference: the image's own libc, nothing from the host.
    let run = staticpack(
        tmp.path(),
        &["run", &format!("oci-archive:{}", archive.display())],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn a_shell_form_command_on_scratch_and_a_static_program_behind_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    need("musl-gcc", "musl-tools");
    let app = compile_c(
        "musl-gcc",
        &["-static"],
        "int main(void) { return 0; }\n",
        tmp.path(),
        "app",
    );
    let app = app.to_str().unwrap();
    let shell = tmp.path().join("shell");
    std::fs::create_dir(&shell).unwrap();
    let image = umoci_image(
        &shell,
        &[("/app", app)],
        &[
            "--config.cmd=/bin/sh",
            "--config.cmd=-c",
            "--config.cmd=/app",
        ],
    );
    let run = verify(tmp.path(), &image);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("shell-form command (`/bin/sh -c …`) on an image without /bin/sh"),
        "{}",
        run.stdout
    );

    // PATH lookup, then an absolute symlink resolved inside the image, not on the host.
    let linked = tmp.path().join("linked");
    std::fs::create_dir(&linked).unwrap();
    let image = umoci_image(
        &linked,
        &[
            ("/opt/app/bin/real", app),
            ("/usr/bin/app", "->/opt/app/bin/real"),
        ],
        &["--config.entrypoint=app", "--config.env=PATH=/usr/bin"],
    );
    let run = verify(tmp.path(), &image);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("/opt/app/bin/real: static")
            && run
                .stdout
                .contains("starts   yes: /usr/bin/app needs no interpreter"),
        "{}",
        run.stdout
    );
}

/// `staticpack ARGS` with its own docker config (`auths` for `host` when `creds` is given) and
/// no other credential source.
fn staticpack_as(dir: &Path, args: &[&str], host: &str, creds: Option<(&str, &str)>) -> Run {
    use base64::Engine as _;
    let docker = dir.join(format!("docker-{}", creds.map_or("none", |c| c.1)));
    std::fs::create_dir_all(&docker).unwrap();
    let auths = match creds {
        Some((user, password)) => {
            let auth =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            serde_json::json!({ "auths": { host: { "auth": auth } } })
        }
        None => serde_json::json!({}),
    };
    std::fs::write(docker.join("config.json"), auths.to_string()).unwrap();
    let mut cmd = common::staticpack_command(dir, args);
    cmd.env("DOCKER_CONFIG", &docker)
        .env("HOME", dir)
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR");
    common::run_with_timeout(cmd, std::time::Duration::from_secs(120))
}

/// `skopeo copy` into the registry with credentials; returns the manifest digest skopeo stored.
fn skopeo_push(from: &str, to: &str, creds: &str, extra: &[&str]) -> String {
    need("skopeo", "skopeo");
    let digest_file = tempfile::NamedTempFile::new().unwrap();
    tool(
        Command::new("skopeo")
            .args([
                "copy",
                "-q",
                "--dest-tls-verify=false",
                "--dest-creds",
                creds,
            ])
            .arg("--digestfile")
            .arg(digest_file.path())
            .args(extra)
            .args([from, to]),
    );
    std::fs::read_to_string(digest_file.path())
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn registry_images_behind_basic_auth_are_pulled_by_tag_and_digest_and_judged() {
    use common::registry::{Auth, RegistryServer};
    let tmp = tempfile::tempdir().unwrap();
    let registry = RegistryServer::start(Auth::Htpasswd {
        user: "ada".into(),
        password: "s3cret-pw".into(),
    });
    let host = registry.host();
    need("musl-gcc", "musl-tools");
    let app = compile_c(
        "musl-gcc",
        &["-static"],
        "#include <stdio.h>\nint main(void) { puts(\"hello from the registry\"); return 0; }\n",
        tmp.path(),
        "app",
    );
    let good_dir = tmp.path().join("good");
    std::fs::create_dir(&good_dir).unwrap();
    let good = umoci_image(
        &good_dir,
        &[("/app", app.to_str().unwrap())],
        &["--config.entrypoint=/app"],
    );
    let digest = skopeo_push(
        &good,
        &format!("docker://{host}/team/app:v1"),
        "ada:s3cret-pw",
        &[],
    );
    // The same image as docker's schema 2 (docker media types for manifest, config, layers).
    let docker_digest = skopeo_push(
        &good,
        &format!("docker://{host}/team/app:v2s2"),
        "ada:s3cret-pw",
        &["--format", "v2s2"],
    );
    assert_ne!(docker_digest, digest);
    let dynamic_dir = tmp.path().join("dynamic");
    std::fs::create_dir(&dynamic_dir).unwrap();
    let dynamic = umoci_image(
        &dynamic_dir,
        &[("/app", "/bin/true")],
        &["--config.entrypoint=/app"],
    );
    skopeo_push(
        &dynamic,
        &format!("docker://{host}/team/app:dyn"),
        "ada:s3cret-pw",
        &[],
    );
    let creds = Some(("ada", "s3cret-pw"));

    let by_tag = format!("docker://{host}/team/app:v1");
    let run = staticpack_as(tmp.path(), &["verify", &by_tag], &host, creds);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("image    {by_tag} ({digest}, linux/amd64)"))
            && run.stdout.contains("/app: static")
            && run.stdout.contains("starts   yes"),
        "{}",
        run.stdout
    );

    let by_digest = format!("docker://{host}/team/app@{digest}");
    let run = staticpack_as(tmp.path(), &["verify", "--json", &by_digest], &host, creds);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let image: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(image["manifest_digest"], digest.as_str());
    assert_eq!(image["starts"], true);

    // `run` takes the same reference: the pulled image's entrypoint runs in the empty root.
    let run = staticpack_as(tmp.path(), &["run", &by_tag], &host, creds);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "hello from the registry\n");

    let v2s2 = format!("docker://{host}/team/app:v2s2");
    let run = staticpack_as(tmp.path(), &["verify", &v2s2], &host, creds);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("({docker_digest}, linux/amd64)"))
            && run.stdout.contains("starts   yes"),
        "{}",
        run.stdout
    );
    let run = staticpack_as(tmp.path(), &["run", &v2s2], &host, creds);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "hello from the registry\n");

    let run = staticpack_as(
        tmp.path(),
        &["verify", &format!("docker://{host}/team/app:dyn")],
        &host,
        creds,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("lacks {TRUE_LOADER} (needed by /app)")),
        "{}",
        run.stdout
    );

    // A wrong password and no credentials are auth errors that say so, not a verdict.
    let run = staticpack_as(
        tmp.path(),
        &["verify", &by_tag],
        &host,
        Some(("ada", "wrong")),
    );
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    eprintln!("wrong password: {}", run.stderr);
    assert!(
        run.stderr.contains(&format!("opening the image {by_tag}")) && run.stderr.contains("401"),
        "{}",
        run.stderr
    );
    let run = staticpack_as(tmp.path(), &["verify", &by_tag], &host, None);
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    eprintln!("no credentials: {}", run.stderr);

    // A tag that is not there names the repository and the tag.
    let run = staticpack_as(
        tmp.path(),
        &["verify", &format!("docker://{host}/team/app:v2")],
        &host,
        creds,
    );
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("MANIFEST_UNKNOWN")
            && run
                .stderr
                .contains(&format!("skopeo list-tags docker://{host}/team/app")),
        "{}",
        run.stderr
    );
}

/// A layout at `dir` whose one entry (tagged `multi`) is an index over the one image of each
/// of `images` (umoci layouts tagged `img`), each with its platform.
fn index_layout(dir: &Path, images: &[(&Path, &str)]) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut manifests = Vec::new();
    for (layout, arch) in images {
        for blob in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            std::fs::copy(blob.path(), blobs.join(blob.file_name())).unwrap();
        }
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
        let mut entry = index["manifests"][0].clone();
        entry.as_object_mut().unwrap().remove("annotations");
        entry["platform"] = serde_json::json!({"os": "linux", "architecture": arch});
        manifests.push(entry);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    })
    .to_string();
    let digest = staticpack::digest::Digest::of_bytes(index.as_bytes());
    std::fs::write(blobs.join(digest.hex()), &index).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(),
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }],
    });
    std::fs::write(dir.join("index.json"), top.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    format!("oci:{}:multi", dir.display())
}

#[test]
fn a_two_platform_index_gives_the_asked_platform_and_names_the_ones_it_has() {
    use common::registry::{Auth, RegistryServer};
    let tmp = tempfile::tempdir().unwrap();
    need("musl-gcc", "musl-tools");
    need(
        "aarch64-linux-gnu-gcc",
        "gcc-aarch64-linux-gnu (bash .ci/setup)",
    );
    need("qemu-aarch64-static", "qemu-user-static (bash .ci/setup)");
    let arm_specs = "/usr/lib/aarch64-linux-musl/musl-gcc.specs";
    assert!(
        Path::new(arm_specs).is_file(),
        "musl for arm64 is required: dpkg --add-architecture arm64 && apt-get install musl-dev:arm64 (or bash .ci/setup)"
    );
    let hello = |arch: &str| {
        format!("#include <stdio.h>\nint main(void) {{ puts(\"hello {arch}\"); return 0; }}\n")
    };
    let amd_app = compile_c("musl-gcc", &["-static"], &hello("amd64"), tmp.path(), "amd");
    let arm_app = compile_c(
        "aarch64-linux-gnu-gcc",
        &["-specs", arm_specs, "-static"],
        &hello("arm64"),
        tmp.path(),
        "arm",
    );
    let mut layouts = Vec::new();
    for (name, app, arch) in [("amd", &amd_app, "amd64"), ("arm", &arm_app, "arm64")] {
        let dir = tmp.path().join(format!("img-{name}"));
        std::fs::create_dir(&dir).unwrap();
        umoci_image(
            &dir,
            &[("/app", app.to_str().unwrap())],
            &[
                "--config.entrypoint=/app",
                &format!("--architecture={arch}"),
            ],
        );
        layouts.push(dir.join("layout"));
    }
    let both = index_layout(
        &tmp.path().join("both"),
        &[(&layouts[0], "amd64"), (&layouts[1], "arm64")],
    );
    let arm_only = index_layout(&tmp.path().join("arm-only"), &[(&layouts[1], "arm64")]);

    // The layout itself: --platform picks the manifest.
    let run = staticpack(tmp.path(), &["verify", "--platform", "linux/arm64", &both]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(", linux/arm64)") && run.stdout.contains("/app: static"),
        "{}",
        run.stdout
    );

    // The same index in a registry, as skopeo copies it (--all: every platform).
    let registry = RegistryServer::start(Auth::Anonymous);
    let host = registry.host();
    for (from, repo) in [(&both, "multi"), (&arm_only, "armonly")] {
        tool(
            Command::new("skopeo")
                .args(["copy", "-q", "--all", "--dest-tls-verify=false", from])
                .arg(format!("docker://{host}/{repo}:v1")),
        );
    }
    let multi = format!("docker://{host}/multi:v1");
    let run = staticpack_as(tmp.path(), &["verify", &multi], &host, None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(", linux/amd64)")
            && run
                .stdout
                .contains(": linux/amd64 of linux/amd64, linux/arm64\n"),
        "the host's platform by default: {}",
        run.stdout
    );
    let run = staticpack_as(
        tmp.path(),
        &["verify", "--json", "--platform", "linux/arm64", &multi],
        &host,
        None,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let image: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(image["platform"], "linux/arm64");
    assert_eq!(
        image["index"]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    let entry: serde_json::Value =
        serde_json::from_str(run.stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(entry["facts"]["machine"], "aarch64", "{entry}");

    // And run: the arm64 entrypoint under qemu, the amd64 one natively.
    let run = staticpack_as(
        tmp.path(),
        &["run", "--platform", "linux/arm64", &multi],
        &host,
        None,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "hello arm64\n");
    let run = staticpack_as(tmp.path(), &["run", &multi], &host, None);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "hello amd64\n");

    // A platform the index lacks: the ones it has are named, and --platform suggested.
    let arm_only = format!("docker://{host}/armonly:v1");
    let run = staticpack_as(tmp.path(), &["verify", &arm_only], &host, None);
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "has no manifest for linux/amd64 (it has linux/arm64); pick one with --platform"
        ),
        "{}",
        run.stderr
    );
    let run = staticpack_as(
        tmp.path(),
        &["verify", "--platform", "linux/arm64", &arm_only],
        &host,
        None,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}
