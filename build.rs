//! Embeds the base images shipped in images/ so that the staticpack binary stands alone.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let images = root.join("images");
    println!("cargo:rerun-if-changed=images");
    let mut files = Vec::new();
    let mut links = Vec::new();
    collect(&images, &mut files, &mut links);
    files.sort();
    links.sort();
    let mut out = String::from(
        "/// (path relative to images/, contents)\npub(super) static EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f
            .strip_prefix(&images)
            .expect("under images/")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            f.display().to_string()
        )
        .expect("string write");
    }
    out.push_str("];\n/// (path relative to images/, symlink target)\npub(super) static EMBEDDED_LINKS: &[(&str, &str)] = &[\n");
    for (link, target) in &links {
        let rel = link
            .strip_prefix(&images)
            .expect("under images/")
            .to_string_lossy()
            .replace('\\', "/");
        writeln!(out, "    ({rel:?}, {target:?}),").expect("string write");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("embedded_images.rs");
    std::fs::write(dest, out).expect("writing embedded_images.rs");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>, links: &mut Vec<(PathBuf, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect(&p, files, links),
            Ok(t) if t.is_file() => files.push(p),
            Ok(t) if t.is_symlink() => {
                let target = std::fs::read_link(&p).expect("reading a symlink under images/");
                links.push((p, target.to_string_lossy().into_owned()));
            }
            _ => {}
        }
    }
}
