//! `verify IMAGE` and glibc's run-time loads: a dynamic glibc program that imports
//! pthread_cancel, in an image with its loader and libc.so.6 (what DT_NEEDED names), gets the
//! `libgcc-s-hazard` warning (glibc dlopens libgcc_s.so.1 to unwind and aborts without it);
//! the same image with libgcc_s.so.1 added does not.

mod common;

use std::path::Path;
use std::process::Command;

use common::{compile_c, need, staticpack};

const CANCEL_C: &str = "#include <pthread.h>\n#include <stdio.h>\n#include <unistd.h>\n\
    static void*f(void*a){for(;;)pause();return a;}\n\
    int main(void){pthread_t t;pthread_create(&t,0,f,0);pthread_cancel(t);pthread_join(t,0);puts(\"ok\");return 0;}\n";

const LOADER: &str = "/lib64/ld-linux-x86-64.so.2";
const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";
const LIBGCC_S: &str = "/lib/x86_64-linux-gnu/libgcc_s.so.1";

fn tool(cmd: &mut Command) {
    let out = cmd.output().expect("running the tool");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// umoci's empty image with `files` (in-image path, host file) and entrypoint /app.
fn image(dir: &Path, files: &[(&str, &Path)]) -> String {
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
    for (path, from) in files {
        let dest = bundle.join("rootfs").join(path.trim_start_matches('/'));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from, &dest).unwrap();
    }
    tool(
        Command::new("umoci")
            .args(["repack", "--image", &image])
            .arg(&bundle),
    );
    tool(Command::new("umoci").args(["config", "--image", &image, "--config.entrypoint=/app"]));
    format!("oci:{image}")
}

fn app_codes(dir: &Path, image: &str) -> Vec<String> {
    let run = staticpack(dir, &["verify", "--json", image]);
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["path"] == "/app")
        .flat_map(|v| {
            v["findings"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["code"].as_str().map(String::from))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn libgcc_s_hazard_is_told_unless_the_image_has_libgcc_s() {
    need("gcc", "gcc");
    need("umoci", "umoci");
    let tmp = tempfile::tempdir().unwrap();
    let app = compile_c("gcc", &["-pthread"], CANCEL_C, tmp.path(), "app");
    let base: Vec<(&str, &Path)> = vec![
        ("/app", &app),
        (LOADER, Path::new(LOADER)),
        (LIBC, Path::new(LIBC)),
    ];
    let without = tmp.path().join("without");
    let codes = app_codes(tmp.path(), &image(&without, &base));
    assert!(codes.iter().any(|c| c == "libgcc-s-hazard"), "{codes:?}");

    let mut with_it = base.clone();
    with_it.push((LIBGCC_S, Path::new(LIBGCC_S)));
    let with = tmp.path().join("with");
    let codes = app_codes(tmp.path(), &image(&with, &with_it));
    assert!(codes.iter().any(|c| c == "dynamic"), "{codes:?}");
    assert!(!codes.iter().any(|c| c == "libgcc-s-hazard"), "{codes:?}");
}
