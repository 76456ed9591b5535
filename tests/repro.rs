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
        "sha256:1e70d980082b2d1ff62607dabe43dc6ce737dfd374bee7c28b819d9d45f63c6e",
    ),
    (
        "recipes/go-1-cgo-dlopen-cgoresolver/recipe.toml",
        "sha256:6e06dd999dbf4029cd09a1723246dec20e4cf7189472697513554968f2a080ea",
    ),
    (
        "recipes/go-2-cgo-plain-cgoresolver/glibc.toml",
        "sha256:c78950173e6dc9f60ce321d04e0acc6972a408aacaaf2d02ab25b470545dc126",
    ),
    (
        "recipes/go-2-cgo-plain-cgoresolver/recipe.toml",
        "sha256:675ed98b9ceceeb5ac2d90d8ba894dcecb0f573055d96e43afeb0216194cee3d",
    ),
    (
        "recipes/go-3-nocgo-cgoresolver/glibc.toml",
        "sha256:e1166593d8ecae25245d5ba87793ddb77b78d4ff107a644d4e81d16ab8e58825",
    ),
    (
        "recipes/go-3-nocgo-cgoresolver/recipe.toml",
        "sha256:321d369e66c0cb50476e53a347e26c7e8ebee67dfba14fa2375c29cf74c3ad43",
    ),
    (
        "recipes/go-4-cgo-dlopen-purego/glibc.toml",
        "sha256:6f382cd07236af6043c8e091f1f022fa3acec139d163ad0bf50fb8e3c081b488",
    ),
    (
        "recipes/go-4-cgo-dlopen-purego/recipe.toml",
        "sha256:c74581cd8776201e91a82e59ca437b5c6518e86fa6e9f45c2f3198eb5884b835",
    ),
    (
        "recipes/go-5-cgo-plain-purego/glibc.toml",
        "sha256:0f2e511a6d228bf0158d31889a25711d964328831b774fa1f70627a228383f3b",
    ),
    (
        "recipes/go-5-cgo-plain-purego/recipe.toml",
        "sha256:8cc475dc14c8bf1da609ef451b2538964f35ea5b8372443a369abb750811ab87",
    ),
    (
        "recipes/go-6-nocgo-purego/glibc.toml",
        "sha256:f7d1a05a47610e02f83e604979a666d925755d0a42c5946c29b17d6bc22fc089",
    ),
    (
        "recipes/go-6-nocgo-purego/recipe.toml",
        "sha256:890b4e91c41f9196f65e242be9d946d1046709ce7690bb16cba3d65661f6d4d9",
    ),
    (
        "recipes/go-fake-static/recipe.toml",
        "sha256:7c38f0b7352d3baed815d9fea1dc5bd3aadd67a9b694eefc139ddd481adb35cf",
    ),
    (
        "recipes/go-static-base/recipe.toml",
        "sha256:e22468f9fda20ed37591c684bb14d7e204e1230345c3df8af869e6bc48175061",
    ),
    (
        "recipes/go-static-base/scratch.toml",
        "sha256:15302c6c046a918b2fa19a95fa03525139a52d4b2f79781f39d977e41b0f1180",
    ),
    (
        "recipes/hello-c/recipe.toml",
        "sha256:fbf3567697f345db0acca4afd69d43cc2de02ab30c41356e2fdeb2493ca3234a",
    ),
    (
        "recipes/hello-c-static/recipe.toml",
        "sha256:c506e571c4b1425e50ffaad089b4997efc7d06bc4bd4cd2ead849bd985f1fb26",
    ),
    (
        "recipes/hello-rust/recipe.toml",
        "sha256:43d287b5e5879b4f56456e0638fbebc285551e9febc558d177c7e6c7e44140e4",
    ),
    (
        "recipes/refused-glibc-dynamic/recipe.toml",
        "sha256:46e5663d4e1bf42a557beff7287031448ae15280c3e5c5fdfe1a89d7d450b886",
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

/// The cache reuses an image only for a build that asks for the proof it passed: the inputs
/// digest leaves the proof out (the image is the same), the record beside it does not.
#[test]
fn the_cache_reuses_an_image_only_for_the_proof_it_passed() {
    need("runc", "runc");
    let work = tempfile::tempdir().unwrap();
    copy_tree(&recipe("hello-c"), &work.path().join("hello-c"));
    let unproven = staticpack(work.path(), &["build", "hello-c", "--no-run"]);
    let digest = printed_digest(unproven.ok());
    assert!(
        !unproven.stderr.contains("run     ok"),
        "{}",
        unproven.stderr
    );

    // Never run: a build that wants the proof builds and proves it, the same image.
    let proven = staticpack(work.path(), &["build", "hello-c"]);
    assert_eq!(printed_digest(proven.ok()), digest);
    assert!(
        proven
            .stderr
            .contains("was never run (built with --no-run)"),
        "{}",
        proven.stderr
    );
    assert!(
        proven.stderr.contains("run     ok (builtin"),
        "{}",
        proven.stderr
    );

    // Proven by the built-in sandbox: --runtime runc proves it again, under runc.
    let runc = staticpack(work.path(), &["build", "hello-c", "--runtime", "runc"]);
    assert_eq!(printed_digest(runc.ok()), digest);
    assert!(
        runc.stderr
            .contains("proven with --runtime builtin, not runc"),
        "{}",
        runc.stderr
    );
    assert!(runc.stderr.contains("run     ok (runc)"), "{}", runc.stderr);

    // The same proof again, and a build that wants none: both reuse it.
    for args in [
        &["build", "hello-c", "--runtime", "runc"][..],
        &["build", "hello-c", "--no-run"][..],
    ] {
        let again = staticpack(work.path(), args);
        assert_eq!(printed_digest(again.ok()), digest);
        assert!(
            again.stderr.contains("cached  inputs sha256:"),
            "{args:?}: {}",
            again.stderr
        );
    }
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
