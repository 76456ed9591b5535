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
/// Go 1.19.8, ca-certificates 20230311+deb12u1, tzdata 2025b-0+deb12u2, netbase 6.4). A change
/// here is a change of output bytes: say why in the commit message.
const GOLDEN: &[(&str, &str)] = &[
    (
        "recipes/go-1-cgo-dlopen-cgoresolver/glibc.toml",
        "sha256:f2122ec93bf8f628d02bf9189117d81cfe581d0db8066d7ea873778a97af6150",
    ),
    (
        "recipes/go-1-cgo-dlopen-cgoresolver/recipe.toml",
        "sha256:68cd28ea53386c21459a3d97cfb2ea70b7c0daf08464dce5f8ffd5e82748ab5c",
    ),
    (
        "recipes/go-2-cgo-plain-cgoresolver/glibc.toml",
        "sha256:10cecd4b2387a0f391c7790fb64c41469db254172bfa95009a157e7b691b0678",
    ),
    (
        "recipes/go-2-cgo-plain-cgoresolver/recipe.toml",
        "sha256:1bdf55b508a98cee0ae9350336442c0660afe7d0494a1e9b812e48058600c103",
    ),
    (
        "recipes/go-3-nocgo-cgoresolver/glibc.toml",
        "sha256:b0b2b4db5e53eba838cd43ff000787fc7f529b821777681ae79539d448dc1d51",
    ),
    (
        "recipes/go-3-nocgo-cgoresolver/recipe.toml",
        "sha256:2b634be0615ff774c3d3289b4abccab6136603a4e6b42566b7387094dc722275",
    ),
    (
        "recipes/go-4-cgo-dlopen-purego/glibc.toml",
        "sha256:7347b27be7993ee705e87e943510d35a779a8242248d76d282b01127d6fe28b1",
    ),
    (
        "recipes/go-4-cgo-dlopen-purego/recipe.toml",
        "sha256:488f9c847ab6ae9061fcbdee8be8dbf0cc6373e2c4758d4f2d97f38e0f494f36",
    ),
    (
        "recipes/go-5-cgo-plain-purego/glibc.toml",
        "sha256:9a12e4f5bc7912cf457ac67659a1075877a62427e5428a68a66d1ab6a88a4e80",
    ),
    (
        "recipes/go-5-cgo-plain-purego/recipe.toml",
        "sha256:c3ae254c053e4ab6dec207913aea35a36717e2ef95a704c2a3591fc334fde07f",
    ),
    (
        "recipes/go-6-nocgo-purego/glibc.toml",
        "sha256:109ea15ce1dbad30d27c375de852100227063f38b8f487bf104243ba20e63865",
    ),
    (
        "recipes/go-6-nocgo-purego/recipe.toml",
        "sha256:ca88ba482c2dbc45477aec7c3f5f5f336ad311bf302a718576b34cf69c524c7b",
    ),
    (
        "recipes/go-fake-static/recipe.toml",
        "sha256:73db1731c64bc6e3dd6a8c12310d162ad1348e305050fe2f02be557b957fc805",
    ),
    (
        "recipes/go-static-base/recipe.toml",
        "sha256:bbf854316b2ff504394a93c7586b98735fc420aa76a2d44269d768c46bd94ac9",
    ),
    (
        "recipes/go-static-base/scratch.toml",
        "sha256:5fdc6ac47237a825b09406dee3852a667c6f15d309c2399a321a1477817b10f6",
    ),
    (
        "recipes/hello-c/recipe.toml",
        "sha256:81650c08f846980c44588301e5d44fe0bc5d337967f39e01a49a767370378b19",
    ),
    (
        "recipes/hello-c-static/recipe.toml",
        "sha256:c8fe770c691953d41e17436794cdc9f371fbddbec6278a1834eb9c13a9f7534f",
    ),
    (
        "recipes/hello-rust/recipe.toml",
        "sha256:16cd054c9dae431949dfa395ef6134639e3c8b980649ff75725e987911c4320c",
    ),
    (
        "recipes/refused-glibc-dynamic/recipe.toml",
        "sha256:71db4398cf331446e1ba6f9b6206f186f5e929f68ff596b8a3eaabbdd69604d0",
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
