//! Issue 16: image sources read by `verify IMAGE` / `run IMAGE`, over images made by the real
//! tools (umoci, skopeo).

use staticpack::image::source::ImageSource;
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
