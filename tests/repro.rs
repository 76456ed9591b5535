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
            if file.extension().and_then(|e| e.to_str()) == Some("toml") && !upstream_example(&file)
            {
                found.push(file);
            }
        }
    }
    found.sort();
    found
}

/// The examples built from upstream sources (C tarballs, crates.io) are built, proven and
/// pinned to their golden digests by tests/c_examples.rs and tests/rust_builds.rs (the quick
/// ones checked with --check-repro there): building them here as well would double the
/// suite's longest builds.
fn upstream_example(recipe_file: &Path) -> bool {
    let text = std::fs::read_to_string(recipe_file).unwrap();
    text.contains("# Checked by tests/c_examples.rs")
        || text.contains("# Checked by tests/rust_builds.rs")
}

fn refused_on_purpose(recipe_file: &Path) -> bool {
    std::fs::read_to_string(recipe_file)
        .unwrap()
        .contains("# Refused on purpose")
}

/// The manifest digest of every recipe, for the toolchains of Debian 12 (gcc 12.2.0, musl 1.2.3,
/// Go 1.19.8, ca-certificates 20230311+deb12u1, tzdata 2025b-0+deb12u2). A change here is a change
/// of output bytes: say why in the commit message.
const GOLDEN: &[(&str, &str)] = &[
    (
        "recipes/go-1-cgo-dlopen-cgoresolver/glibc.toml",
        "sha256:bb5b1b3daa387148960b7f74bf0b750c8d4a3d31ad33e338712fb8524daabc26",
    ),
    (
        "recipes/go-1-cgo-dlopen-cgoresolver/recipe.toml",
        "sha256:3b288689f9fa08a7adb3a0840b17e43cc7e9fdddf3ddea3ae054adc53f1a4acc",
    ),
    (
        "recipes/go-2-cgo-plain-cgoresolver/glibc.toml",
        "sha256:28fea15bd0bebd32fcaf0fa0cb08a6eb64ad2aa8c0033039ed2b95b1fc208113",
    ),
    (
        "recipes/go-2-cgo-plain-cgoresolver/recipe.toml",
        "sha256:6ee4196fd89d8f59e71ca6fe4d933aead4ebbf817fed587c86f61e1febeb632d",
    ),
    (
        "recipes/go-3-nocgo-cgoresolver/glibc.toml",
        "sha256:f7b198b779839ee11626cc024b694df841f765c6145fbd65f86532be379a3893",
    ),
    (
        "recipes/go-3-nocgo-cgoresolver/recipe.toml",
        "sha256:0130d2d1ce078900cccbb684d35f0dd40a27eea036078251dd92b90e1d75fc51",
    ),
    (
        "recipes/go-4-cgo-dlopen-purego/glibc.toml",
        "sha256:9ad728d2e78d6aacff15122385a3f86c9fa19f20a656192587e382204acdf0a4",
    ),
    (
        "recipes/go-4-cgo-dlopen-purego/recipe.toml",
        "sha256:26c8ebb1c1664dbf16a7dc5d3b44853ccf6726f2c2504f947da357c48fa05d8f",
    ),
    (
        "recipes/go-5-cgo-plain-purego/glibc.toml",
        "sha256:e24b35dc6b6e591aba436a2378a310085d693ad8d660b84241b8a09d5f447bf9",
    ),
    (
        "recipes/go-5-cgo-plain-purego/recipe.toml",
        "sha256:580062a371332d394ea1b67b3d1e5f4fd0c36003cfc0766c0000d13ced382aaf",
    ),
    (
        "recipes/go-6-nocgo-purego/glibc.toml",
        "sha256:410b09c081f1e71db4fad6c20c3ea633dd7230f4bb683c402a3907e8702888ae",
    ),
    (
        "recipes/go-6-nocgo-purego/recipe.toml",
        "sha256:70f165d158436dc5df6cbecbb897b6e7dfc1051c38182c3f5a7f2db43aae24fa",
    ),
    (
        "recipes/go-fake-static/recipe.toml",
        "sha256:b7ca45bd9789d255e6bd9e91b17f800405470b5cf2e25c09552705b876a4dbbd",
    ),
    (
        "recipes/go-static-base/recipe.toml",
        "sha256:8ce63c0fd0534e5eb85a8ee57ce4ea47c653cf62377bdf64cf6542c0243c49a7",
    ),
    (
        "recipes/go-static-base/scratch.toml",
        "sha256:0198d9e169dbde2ff409918bad77c092042558849646789f3bb82a14d2c98901",
    ),
    (
        "recipes/hello-c/recipe.toml",
        "sha256:d7cd95c43c29c94c8156f9b8a7aeec6cec8ad7ad1bb37a4dbfa3f900aff33348",
    ),
    (
        "recipes/hello-c-static/recipe.toml",
        "sha256:a493d9aba199cbe1fbf4e436adb1975100ac4b9431160ea085164e7400171f4d",
    ),
    (
        "recipes/hello-rust/recipe.toml",
        "sha256:b7b6c6ea83ab43ee5d996b53e693a1e06868c5971b875ae4e4bdeccb8122a297",
    ),
    (
        "recipes/refused-glibc-dynamic/recipe.toml",
        "sha256:26903395a655b23c64d3d93530638b33f37e882f9a9ee73770fb327ecaf99f8f",
    ),
];

/// Builds a recipe with --check-repro; returns (recipe path in the repo, manifest digest).
fn check_repro(recipe_file: &Path) -> (String, String) {
    let work = tempfile::tempdir().unwrap();
    let mut args = vec![
        "build",
        recipe_file.to_str().unwrap(),
        "--no-run",
        "--check-repro",
    ];
    if refused_on_purpose(recipe_file) {
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
    (key, printed_digest(&run))
}

#[test]
fn every_recipe_passes_check_repro_with_its_golden_digest() {
    need("go", "golang-go");
    // Two builds at a time: the machine has two cores, and each build is mostly one process.
    let recipes = all_recipes();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(recipe_file) = recipes.get(i) else {
                        break;
                    };
                    let outcome = check_repro(recipe_file);
                    results.lock().unwrap().push(outcome);
                }
            });
        }
    });
    let mut seen: Vec<(String, String)> = results.into_inner().unwrap();
    seen.sort();
    let listing: String = seen
        .iter()
        .map(|(k, d)| format!("    (\"{k}\", \"{d}\"),\n"))
        .collect();
    let mut golden: Vec<(String, String)> = GOLDEN
        .iter()
        .map(|(k, d)| (k.to_string(), d.to_string()))
        .collect();
    golden.sort();
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
    // One compile per file, then the link.
    let commands = p["commands"].as_array().unwrap();
    assert!(
        p["inputs"]["toolchain"]["linux-libc-dev"].is_string(),
        "{text}"
    );
    assert!(
        commands[0]
            .as_str()
            .unwrap()
            .contains("-fPIE -O2 -c hello.c"),
        "{text}"
    );
    assert!(
        commands
            .last()
            .unwrap()
            .as_str()
            .unwrap()
            .contains("-static-pie"),
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
