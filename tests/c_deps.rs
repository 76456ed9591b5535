//! `[[build.deps]]`: static C dependencies built first with the real tools into the
//! dependent's sysroot. A diamond (app → blib, clib → alib) builds alib once; the app's Makefile
//! finds blib and clib only through pkg-config; dependencies are cached by their inputs digest,
//! which is part of the dependent's; a cycle is refused naming the chain.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// A copy of the diamond fixtures in `work/deps`; the app's recipe folder.
fn diamond(work: &Path) -> PathBuf {
    need("make", "make");
    need("pkg-config", "pkg-config");
    copy_tree(&repo_root().join("tests/fixtures/deps"), &work.join("deps"));
    work.join("deps/app")
}

fn build(work: &Path, app: &Path, out: &str, extra: &[&str]) -> Run {
    let out = work.join(out);
    let cache = work.join("cache");
    let mut args = vec![
        "build",
        app.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--cache-dir",
        cache.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    staticpack(work, &args)
}

fn provenance(work: &Path, out: &str) -> serde_json::Value {
    let path = work.join(out).join("staticpack-provenance.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn count(text: &str, line_start: &str) -> usize {
    text.lines().filter(|l| l.starts_with(line_start)).count()
}

#[test]
fn a_diamond_builds_the_shared_dependency_once_and_pkg_config_finds_them() {
    let work = tempfile::tempdir().unwrap();
    let app = diamond(work.path());
    let run = build(work.path(), &app, "out/app", &[]);
    run.ok();
    let err = &run.stderr;
    assert_eq!(count(err, "build   alib "), 1, "{err}");
    assert_eq!(count(err, "dep     alib "), 1, "{err}");
    for dep in ["alib", "blib", "clib"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("dep     {dep} sha256:")) && l.ends_with("(built)")),
            "{err}"
        );
    }
    // In order: alib before the two that need it, both before the app.
    let at = |s: &str| err.find(s).unwrap();
    assert!(at("dep     alib") < at("build   blib") && at("dep     clib") < at("build   app"));
    assert!(err.contains("verify  static-pie"), "{err}");
    // The image holds the app alone: no header or archive of a dependency.
    assert!(err.contains("the root held 1 file"), "{err}");
    let record = provenance(work.path(), "out/app");
    let deps = record["inputs"]["deps"].as_object().unwrap();
    assert_eq!(
        deps.keys().collect::<Vec<_>>(),
        ["blib", "clib"],
        "{record}"
    );
    assert!(record["environment"]["PKG_CONFIG_SYSROOT_DIR"] == "<build>/sysroot");
    // The shared cache holds each dependency's installed tree, by its digest.
    let stored: Vec<String> = std::fs::read_dir(work.path().join("cache/deps"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");
    let blib = deps["blib"].as_str().unwrap();
    let tree = work.path().join("cache/deps").join(blib);
    assert!(tree.join("include/blib.h").is_file() && tree.join("lib/libblib.a").is_file());
    assert!(tree.join("lib/pkgconfig/blib.pc").is_file());
    assert!(
        !tree.join("include/alib.h").exists(),
        "a tree holds its own files only"
    );

    // Another build of the same app reuses all three.
    let again = build(work.path(), &app, "out/app2", &[]);
    again.ok();
    assert_eq!(count(&again.stderr, "build   "), 1, "{}", again.stderr);
    for dep in ["alib", "blib", "clib"] {
        assert!(
            again
                .stderr
                .lines()
                .any(|l| l.starts_with(&format!("dep     {dep} ")) && l.ends_with("(cached)")),
            "{}",
            again.stderr
        );
    }
}

#[test]
fn a_change_in_a_dependency_changes_the_dependents_key_and_output() {
    let work = tempfile::tempdir().unwrap();
    let app = diamond(work.path());
    build(work.path(), &app, "out/app", &["--no-run"]).ok();
    let before = provenance(work.path(), "out/app");
    // The bottom of the diamond now returns 50: both sides and the app must follow.
    let a = work.path().join("deps/alib/src/a.c");
    let text = std::fs::read_to_string(&a).unwrap().replace("40", "50");
    std::fs::write(&a, text).unwrap();
    let recipe = app.join("recipe.toml");
    let text = std::fs::read_to_string(&recipe)
        .unwrap()
        .replace("b=41 c=42", "b=51 c=52");
    std::fs::write(&recipe, text).unwrap();
    let run = build(work.path(), &app, "out/app", &[]);
    run.ok();
    assert!(!run.stderr.contains("cached  inputs"), "{}", run.stderr);
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    let after = provenance(work.path(), "out/app");
    assert_ne!(before["inputs_digest"], after["inputs_digest"]);
    for dep in ["blib", "clib"] {
        assert_ne!(
            before["inputs"]["deps"][dep], after["inputs"]["deps"][dep],
            "{dep}'s digest did not follow alib's change"
        );
    }
}

#[test]
fn cold_builds_keep_no_dependency_in_the_cache_and_are_reproducible() {
    let work = tempfile::tempdir().unwrap();
    let app = diamond(work.path());
    // --check-repro builds the second image with --no-cache: its dependencies cold.
    let run = build(work.path(), &app, "out/app", &["--check-repro", "--no-run"]);
    run.ok();
    assert!(run.stderr.contains("repro   ok"), "{}", run.stderr);
    let cold = build(work.path(), &app, "out/cold", &["--no-cache", "--no-run"]);
    cold.ok();
    assert_eq!(count(&cold.stderr, "build   alib "), 1, "{}", cold.stderr);
    // Only the first (warm) build stored anything.
    assert_eq!(
        std::fs::read_dir(work.path().join("cache/deps"))
            .unwrap()
            .count(),
        3
    );
}

#[test]
fn a_dependency_cycle_is_refused_naming_the_chain() {
    let work = tempfile::tempdir().unwrap();
    for (me, other) in [("x", "y"), ("y", "x")] {
        let dir = work.path().join(me);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(dir.join("src/Makefile"), "all:\n").unwrap();
        std::fs::write(
            dir.join("recipe.toml"),
            format!(
                "name = \"{me}\"\nallow_outside = [\"../{other}\"]\n[build]\nlang = \"c\"\nsource = \"src\"\n\
                 system = \"make\"\ninstall = true\n[[build.deps]]\nrecipe = \"../{other}\"\n\
                 [image]\nentrypoint = [\"/usr/bin/{me}\"]\n"
            ),
        )
        .unwrap();
    }
    let run = staticpack(
        work.path(),
        &["build", work.path().join("x").to_str().unwrap(), "--no-run"],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let x = work.path().join("x/recipe.toml").canonicalize().unwrap();
    let y = work.path().join("y/recipe.toml").canonicalize().unwrap();
    let chain = format!("{} → {} → {}", x.display(), y.display(), x.display());
    assert!(
        run.stderr.contains("a dependency cycle: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(&chain), "{}", run.stderr);
    assert!(run.stderr.contains("`build.deps.recipe`"), "{}", run.stderr);
}
