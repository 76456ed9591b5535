//! Issue 16: images as users build them with podman from a Containerfile `FROM scratch` — a
//! dynamic program alone, the same with its loader and libc copied in, a shell-form `CMD` —
//! saved with `podman save` as an OCI archive and as a docker archive, and judged by
//! `verify IMAGE` in both forms. Podman runs as root here with its storage (vfs) in a temp
//! dir and no network: `FROM scratch` pulls nothing.

mod common;

use common::{Run, need, staticpack};
use std::path::Path;
use std::process::Command;

/// The host's dynamic /bin/true, its loader and its libc, as `ldd` names them.
const TRUE_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
const TRUE_LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

/// `podman build` of `containerfile` over a context holding `files` (context name, host
/// file), then `podman save` in both formats; returns the oci-archive: and docker-archive:
/// references.
fn podman_image(
    work: &Path,
    name: &str,
    containerfile: &str,
    files: &[(&str, &str)],
) -> [String; 2] {
    let podman = need("podman", "podman");
    let context = work.join(name);
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Containerfile"), containerfile).unwrap();
    for (to, from) in files {
        std::fs::copy(from, context.join(to)).unwrap();
    }
    let storage = work.join("storage");
    let podman_cmd = |args: &[&str]| {
        let out = Command::new(&podman)
            .arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs", "--events-backend", "file"])
            .args(args)
            .output()
            .expect("running podman");
        assert!(
            out.status.success(),
            "podman {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let tag = format!("localhost/staticpack-test/{name}:1");
    podman_cmd(&[
        "build",
        "--network",
        "none",
        "--pull=never",
        "-t",
        &tag,
        context.to_str().unwrap(),
    ]);
    let oci = work.join(format!("{name}.oci.tar"));
    let docker = work.join(format!("{name}.docker.tar"));
    podman_cmd(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        &tag,
    ]);
    podman_cmd(&[
        "save",
        "--format",
        "docker-archive",
        "-o",
        docker.to_str().unwrap(),
        &tag,
    ]);
    [
        format!("oci-archive:{}", oci.display()),
        format!("docker-archive:{}", docker.display()),
    ]
}

fn verify_both(work: &Path, images: &[String; 2]) -> [Run; 2] {
    images
        .clone()
        .map(|image| staticpack(work, &["verify", &image]))
}

#[test]
fn a_dynamic_program_alone_from_podman_will_not_start_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let images = podman_image(
        tmp.path(),
        "alone",
        "FROM scratch\nCOPY true /app\nENTRYPOINT [\"/app\"]\n",
        &[("true", "/bin/true")],
    );
    for run in verify_both(tmp.path(), &images) {
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains("/app: dynamic")
                && run
                    .stdout
                    .contains(&format!("lacks {TRUE_LOADER} (needed by /app)"))
                && run.stdout.contains("no such file or directory"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn a_dynamic_program_with_its_loader_and_libc_from_podman_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let images = podman_image(
        tmp.path(),
        "with-libs",
        &format!(
            "FROM scratch\nCOPY true /app\nCOPY ld.so {TRUE_LOADER}\nCOPY libc.so.6 {TRUE_LIBC}\nENTRYPOINT [\"/app\"]\n"
        ),
        &[
            ("true", "/bin/true"),
            ("ld.so", TRUE_LOADER),
            ("libc.so.6", TRUE_LIBC),
        ],
    );
    for run in verify_both(tmp.path(), &images) {
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(
                "starts   yes: /app is dynamic, and the image has its interpreter and the 1 library it needs"
            ),
            "{}",
            run.stdout
        );
    }
    // The run proof agrees: the image's own libc, nothing from the host.
    let run = staticpack(tmp.path(), &["run", &images[1]]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn a_shell_form_cmd_from_podman_on_scratch_will_not_start() {
    let tmp = tempfile::tempdir().unwrap();
    need("musl-gcc", "musl-tools");
    let app = common::compile_c(
        "musl-gcc",
        &["-static"],
        "int main(void) { return 0; }\n",
        tmp.path(),
        "app",
    );
    let images = podman_image(
        tmp.path(),
        "shell-form",
        "FROM scratch\nCOPY app /app\nCMD /app\n",
        &[("app", app.to_str().unwrap())],
    );
    for run in verify_both(tmp.path(), &images) {
        assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(r#"command  ["/bin/sh","-c","/app"]"#)
                && run
                    .stdout
                    .contains("shell-form command (`/bin/sh -c …`) on an image without /bin/sh"),
            "{}",
            run.stdout
        );
    }
}
