//! Reproducibility as a checked guarantee: --check-repro on every recipe, a leak caught and
//! located, the input-digest cache, and golden digests.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// Every recipe file under recipes/, sorted.
fn all_recipes() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in std::fs::read_dir(repo_root().join("recipes")).unwrap() {
        let dir = dir.unwrap().path();
        for file in std::fs::read_dir(&dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().and_then(|e| e.to_str()) == Some("toml") {
                found.push(file);
            }
        }
    }
    found.sort();
    found
}

fn refused_on_purpose(recipe_file: &Path) -> bool {
    std::fs::read_to_string(recipe_file)
        .unwrap()
        .contains("# Refused on purpose")
}

/// The manifest digest of every recipe, for the toolchains of Debian 12 (gcc 12.2.0, musl 1.2.3,
/// Go 1.19.8, ca-certificates 20230311+deb12u1, tzdata 2025b-0+deb12u2). A change here is a change
/// of output bytes: say why in the commit message.
const GOLDEN: &[(&str, &str)] = &[];

#[test]
fn every_recipe_passes_check_repro_with_its_golden_digest() {
    need("go", "golang-go");
    let mut seen = Vec::new();
    for recipe_file in all_recipes() {
        let work = tempfile::tempdir().unwrap();
        let mut args = vec![
            "build",
            recipe_file.to_str().unwrap(),
            "--no-run",
            "--check-repro",
        ];
        if refused_on_purpose(&recipe_file) {
            // Packed anyway, so that their bytes are pinned and checked too.
            args.extend(["--allow-dynamic", "--allow-nss-hazards"]);
        }
        let run = staticpack(work.path(), &args);
        assert_eq!(run.code, 0, "{}:\n{}", recipe_file.display(), run.stderr);
        assert!(
            run.stderr.contains("repro   ok: both builds gave"),
            "{}",
            run.stderr
        );
        let key = recipe_file
            .strip_prefix(repo_root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        seen.push((key, printed_digest(&run)));
    }
    let listing: String = seen
        .iter()
        .map(|(k, d)| format!("    (\"{k}\", \"{d}\"),\n"))
        .collect();
    let golden: Vec<(String, String)> = GOLDEN
        .iter()
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect();
    assert_eq!(
        seen, golden,
        "golden digests differ; the current ones are:\n{listing}"
    );
}

#[test]
fn a_leaky_build_is_caught_with_file_offset_and_section() {
    let work = tempfile::tempdir().unwrap();
    let fixture = repo_root().join("tests/fixtures/leaky-c/recipe.toml");
    let run = staticpack(
        work.path(),
        &["build", fixture.to_str().unwrap(), "--check-repro"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NOT reproducible"), "{}", run.stderr);
    assert!(
        run.stderr.contains("file /hello, offset "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("in ELF section .note.gnu.build-id"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("first build:") && run.stderr.contains("second build:"),
        "{}",
        run.stderr
    );
}

#[test]
fn an_unchanged_recipe_rebuilds_nothing_and_a_change_rebuilds() {
    let work = tempfile::tempdir().unwrap();
    copy_tree(&recipe("hello-c"), &work.path().join("hello-c"));
    let first = staticpack(work.path(), &["build", "hello-c"]);
    let digest = printed_digest(first.ok());
    let index = work.path().join("out/hello-c/index.json");
    let before = std::fs::metadata(&index).unwrap().modified().unwrap();

    let second = staticpack(work.path(), &["build", "hello-c"]);
    assert_eq!(printed_digest(second.ok()), digest);
    assert!(
        second.stderr.contains("cached  inputs sha256:"),
        "{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("build   hello-c"),
        "nothing may be rebuilt: {}",
        second.stderr
    );
    assert_eq!(
        std::fs::metadata(&index).unwrap().modified().unwrap(),
        before,
        "nothing may be rewritten"
    );

    let forced = staticpack(work.path(), &["build", "hello-c", "--no-cache"]);
    assert_eq!(printed_digest(forced.ok()), digest);
    assert!(
        forced.stderr.contains("build   hello-c"),
        "{}",
        forced.stderr
    );

    // A changed input file rebuilds; so does a different epoch.
    let src = work.path().join("hello-c/src/hello.c");
    let text = std::fs::read_to_string(&src)
        .unwrap()
        .replace("hello from", "hi from");
    std::fs::write(&src, text).unwrap();
    let changed = staticpack(work.path(), &["build", "hello-c"]);
    assert_ne!(printed_digest(changed.ok()), digest);

    // The cache can be wiped at any time: it is the output itself.
    std::fs::remove_dir_all(work.path().join("out")).unwrap();
    staticpack(work.path(), &["build", "hello-c"]).ok();
}

#[test]
fn provenance_records_inputs_toolchain_and_commands_without_host_paths() {
    let work = tempfile::tempdir().unwrap();
    staticpack(work.path(), &["build", recipe("hello-c").to_str().unwrap()]).ok();
    let text = std::fs::read_to_string(work.path().join("out/hello-c/staticpack-provenance.json"))
        .unwrap();
    let p: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        p["inputs"]["files"]["recipe.toml"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        p["inputs"]["files"]["src/hello.c"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert!(
        p["inputs"]["toolchain"]["gcc"]
            .as_str()
            .unwrap()
            .contains("12."),
        "{text}"
    );
    assert!(p["inputs"]["toolchain"]["musl-dev"].is_string(), "{text}");
    assert!(
        p["commands"][0].as_str().unwrap().contains("-static-pie"),
        "{text}"
    );
    assert!(
        !text.contains("/tmp/"),
        "a host path leaked into the provenance:\n{text}"
    );
    assert!(
        !text.contains(repo_root().to_str().unwrap()),
        "the checkout path leaked:\n{text}"
    );
    let manifest = staticpack(work.path(), &["inspect", "out/hello-c"]);
    assert!(
        manifest
            .ok()
            .stdout
            .contains(p["inputs_digest"].as_str().unwrap()),
        "{}",
        manifest.stdout
    );
}
