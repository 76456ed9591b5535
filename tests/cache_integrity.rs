//! Caches that cannot lie (issue 27): an entry of the shared cache that does not hold what
//! was stored — a C object swapped for another, a dependency's tree edited, a `.crate` file
//! replaced — is never used: the build says which entry failed its check, rebuilds (or
//! downloads) it, and the image keeps its digest. And a build step cannot write anything
//! another build reads: a crate's `build.rs` that rewrites crate sources in `$CARGO_HOME` spoils
//! nothing for an unrelated recipe built after it.

mod common;

use common::*;
use std::path::{Path, PathBuf};

fn files_named(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            found.extend(files_named(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn build(work: &Path, recipe: &Path, out: &str, cache: &Path) -> Run {
    staticpack_with(
        work,
        &[
            "build",
            recipe.to_str().unwrap(),
            "--out",
            work.join(out).to_str().unwrap(),
        ],
        &[("STATICPACK_CACHE", cache.to_str().unwrap())],
    )
}

#[test]
fn a_swapped_object_in_the_cache_is_refused_and_compiled_again() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let dir = work.path().join("multi-c");
    copy_tree(&repo_root().join("tests/fixtures/multi-c"), &dir);
    let first = build(work.path(), &dir, "one", &cache);
    first.ok();
    let objects = files_named(&cache.join("objects"), ".o");
    assert!(objects.len() >= 2, "{objects:?}");
    // One object replaced by another (valid) object: what an attacker with the cache would do.
    std::fs::copy(&objects[1], &objects[0]).unwrap();
    let second = build(work.path(), &dir, "two", &cache);
    second.ok();
    assert!(
        second.stderr.contains(&format!(
            "the cache entry {} failed its check",
            objects[0].display()
        )),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains("1 compiled"),
        "only the refused entry is compiled: {}",
        second.stderr
    );
    assert_eq!(printed_digest(&first), printed_digest(&second));
    // Stored again as it should be: the third build reuses everything.
    let third = build(work.path(), &dir, "three", &cache);
    third.ok();
    assert!(
        !third.stderr.contains("failed its check"),
        "{}",
        third.stderr
    );
    assert!(third.stderr.contains(" 0 compiled"), "{}", third.stderr);
}

#[test]
fn an_edited_dependency_tree_in_the_cache_is_refused_and_built_again() {
    need("make", "make");
    need("pkg-config", "pkg-config");
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    copy_tree(
        &repo_root().join("tests/fixtures/deps"),
        &work.path().join("deps"),
    );
    let app = work.path().join("deps/app");
    let first = build(work.path(), &app, "one", &cache);
    first.ok();
    let archives = files_named(&cache.join("deps"), "libalib.a");
    assert_eq!(archives.len(), 1, "{archives:?}");
    std::fs::write(&archives[0], b"!<arch>\n").unwrap();
    let second = build(work.path(), &app, "two", &cache);
    second.ok();
    assert!(
        second.stderr.contains("failed its check") && second.stderr.contains("build   alib "),
        "{}",
        second.stderr
    );
    assert_eq!(printed_digest(&first), printed_digest(&second));
}

/// A Rust recipe `name` depending on itoa 1.0.11, with `main.rs` and an optional `build.rs`;
/// Cargo.lock made by cargo itself (the one network step of this test besides the fetch).
fn itoa_recipe(work: &Path, name: &str, main: &str, build_rs: Option<&str>) -> PathBuf {
    let dir = work.join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"=1.0.11\"\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), main).unwrap();
    if let Some(script) = build_rs {
        std::fs::write(dir.join("build.rs"), script).unwrap();
    }
    let cargo = need("cargo", "cargo (rustup)");
    tool(&cargo, &["generate-lockfile"], &dir).ok();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"{name}\"\n[build]\nlang = \"rust\"\nsource = \".\"\n[image]\nbase = \"scratch\"\n[test]\nexpect_stdout = \"42\\n\"\n"
        ),
    )
    .unwrap();
    dir
}

const VICTIM: &str = "fn main() { println!(\"{}\", itoa::Buffer::new().format(42u32)); }\n";

/// Rewrites every unpacked itoa it can find under `$CARGO_HOME` (and the shared cache's, through
/// the links cargo's home has) so that any later build of it fails.
const POISON: &str = r#"
use std::path::Path;
fn poison(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() { poison(&p); continue; }
        let s = p.to_string_lossy().to_string();
        if s.contains("itoa-1.0.11") && s.ends_with("src/lib.rs") {
            let _ = std::fs::OpenOptions::new().append(true).open(&p)
                .and_then(|mut f| std::io::Write::write_all(&mut f, b"\ncompile_error!(\"poisoned\");\n"));
        }
        if s.contains("itoa-1.0.11.crate") {
            let _ = std::fs::write(&p, b"poisoned");
        }
    }
}
fn main() {
    let home = std::env::var("CARGO_HOME").unwrap_or_default();
    poison(Path::new(&home));
    if let Ok(real) = std::fs::canonicalize(Path::new(&home).join("registry/cache")) {
        poison(&real);
        if let Some(registry) = real.parent() { poison(registry); }
    }
}
"#;

#[test]
fn a_build_script_cannot_poison_crates_for_another_recipe() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let victim = itoa_recipe(work.path(), "victim", VICTIM, None);
    let before = build(work.path(), &victim, "before", &cache);
    before.ok();
    let attacker = itoa_recipe(work.path(), "attacker", VICTIM, Some(POISON));
    // The attacker's own build may fail (it poisoned its own copy): that is its business.
    let _ = build(work.path(), &attacker, "attacker-out", &cache);
    let after = staticpack_with(
        work.path(),
        &[
            "build",
            victim.to_str().unwrap(),
            "--out",
            work.path().join("after").to_str().unwrap(),
            "--no-cache",
        ],
        &[("STATICPACK_CACHE", cache.to_str().unwrap())],
    );
    after.ok();
    assert_eq!(printed_digest(&before), printed_digest(&after));
}

#[test]
fn a_replaced_crate_file_in_the_cache_is_refused_and_downloaded_again() {
    let work = tempfile::tempdir().unwrap();
    let cache = work.path().join("cache");
    let victim = itoa_recipe(work.path(), "victim", VICTIM, None);
    let before = build(work.path(), &victim, "before", &cache);
    before.ok();
    let crates = files_named(&cache.join("cargo/registry/cache"), "itoa-1.0.11.crate");
    assert_eq!(crates.len(), 1, "{crates:?}");
    std::fs::write(&crates[0], b"not the crate").unwrap();
    let after = staticpack_with(
        work.path(),
        &[
            "build",
            victim.to_str().unwrap(),
            "--out",
            work.path().join("after").to_str().unwrap(),
            "--no-cache",
        ],
        &[("STATICPACK_CACHE", cache.to_str().unwrap())],
    );
    after.ok();
    assert!(
        after.stderr.contains(&format!(
            "the cache entry {} failed its check",
            crates[0].display()
        )),
        "{}",
        after.stderr
    );
    assert_eq!(printed_digest(&before), printed_digest(&after));
}
