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
