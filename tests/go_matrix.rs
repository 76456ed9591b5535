//! The six cgo × resolver scenarios, built with the real Go toolchain, verified, and proven in
//! the no-libc sandbox; the glibc variants refused or built as the matrix says; fake static.

mod common;

use common::*;
use std::path::Path;

const SCENARIOS: [&str; 6] = [
    "go-1-cgo-dlopen-cgoresolver",
    "go-2-cgo-plain-cgoresolver",
    "go-3-nocgo-cgoresolver",
    "go-4-cgo-dlopen-purego",
    "go-5-cgo-plain-purego",
    "go-6-nocgo-purego",
];

fn build(cwd: &Path, recipe_file: &Path) -> Run {
    need("go", "golang-go");
    staticpack(cwd, &["build", recipe_file.to_str().unwrap()])
}

fn verdict_line(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.starts_with("verify  "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn musl_recipes_build_verify_and_run_with_no_libc() {
    for (i, name) in SCENARIOS.iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let run = build(work.path(), &recipe(name).join("recipe.toml"));
        assert_eq!(run.code, 0, "{name}:\n{}", run.stderr);
        let verdict = verdict_line(&run);
        if i < 5 {
            assert!(
                verdict.starts_with("verify  static-pie (musl"),
                "{name}: {verdict}"
            );
        } else {
            assert!(
                verdict.starts_with("verify  static (no libc"),
                "{name}: {verdict}"
            );
        }
        assert!(
            run.stderr
                .contains("run     ok (builtin namespace sandbox)"),
            "{name}: {}",
            run.stderr
        );
        printed_digest(&run);
    }
}

#[test]
fn glibc_variants_are_refused_or_built_as_the_matrix_says() {
    for (i, name) in SCENARIOS.iter().enumerate() {
        let work = tempfile::tempdir().unwrap();
        let run = build(work.path(), &recipe(name).join("glibc.toml"));
        match i {
            // NSS reached from C or from the standard library's cgo resolver: refused.
            0..=3 => {
                assert_eq!(run.code, 1, "{name}: {}", run.stderr);
                assert!(
                    run.stderr
                        .contains("verify refused the binary: it is static (glibc"),
                    "{name}: {}",
                    run.stderr
                );
                assert!(run.stderr.contains("getaddrinfo"), "{name}: {}", run.stderr);
                assert!(
                    run.stderr.contains("musl"),
                    "{name}: the fix names musl: {}",
                    run.stderr
                );
                assert!(
                    !work
                        .path()
                        .join("out")
                        .join(format!("{name}-glibc"))
                        .exists()
                );
            }
            // cgo code without NSS: a static glibc binary with nothing to load at run time.
            4 => {
                assert_eq!(run.code, 0, "{name}: {}", run.stderr);
                assert!(
                    verdict_line(&run).starts_with("verify  static (glibc"),
                    "{name}: {}",
                    run.stderr
                );
            }
            // Nothing uses cgo: Go links it itself and no libc is in the binary.
            _ => {
                assert_eq!(run.code, 0, "{name}: {}", run.stderr);
                assert!(
                    verdict_line(&run).starts_with("verify  static (no libc"),
                    "{name}: {}",
                    run.stderr
                );
                assert!(
                    run.stderr.contains("cgo requested but unused"),
                    "{name}: {}",
                    run.stderr
                );
            }
        }
    }
}

#[test]
fn fake_static_is_diagnosed_with_linkmode_external_as_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let run = build(work.path(), &recipe("go-fake-static").join("recipe.toml"));
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("verify refused the binary: it is dynamic"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("-linkmode external"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ignores -extldflags") || run.stderr.contains("ignores"),
        "{}",
        run.stderr
    );
}

#[test]
fn plain_go_build_with_default_cgo_is_dynamic_and_verify_says_why() {
    let go = need("go", "golang-go");
    let work = tempfile::tempdir().unwrap();
    let src = recipe("go-3-nocgo-cgoresolver").join("src");
    let bin = work.path().join("app");
    let out = std::process::Command::new(go)
        .args(["build", "-o", bin.to_str().unwrap(), "."])
        .current_dir(&src)
        .env("GOCACHE", work.path().join("cache"))
        .env("GOPATH", work.path().join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("CGO_ENABLED", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = staticpack(
        work.path(),
        &["verify", "--require", "static", bin.to_str().unwrap()],
    );
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains(": dynamic"), "{}", run.stdout);
    assert!(run.stdout.contains("why:"), "{}", run.stdout);
    assert!(
        run.stdout.contains("CGO_ENABLED=0") || run.stdout.contains("netgo"),
        "{}",
        run.stdout
    );
}

#[test]
fn two_builds_of_a_go_recipe_give_the_same_digest_cold_or_with_the_shared_cache() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let cache_env = [("STATICPACK_CACHE", cache.path().to_str().unwrap())];
    let name = "go-1-cgo-dlopen-cgoresolver";
    copy_tree(&recipe(name), &a.path().join("one").join(name));
    copy_tree(&recipe(name), &b.path().join("two/levels").join(name));
    let one = Path::new("one").join(name).join("recipe.toml");
    // Cold: the shared cache is empty, and this build fills it.
    let first = staticpack_with(a.path(), &["build", one.to_str().unwrap()], &cache_env);
    let go_cache = cache.path().join("go-build");
    assert!(
        files_in(&go_cache) > 100,
        "{} stayed empty",
        go_cache.display()
    );
    // From another folder (another trust domain: a Go cache of its own), the image is the same.
    let two = Path::new("two/levels").join(name).join("recipe.toml");
    let second = staticpack_with(b.path(), &["build", two.to_str().unwrap()], &cache_env);
    assert_eq!(printed_digest(first.ok()), printed_digest(second.ok()));
    // --no-cache builds with a cold cache of its own and leaves the shared one alone.
    let before = files_in(&go_cache);
    let third = staticpack_with(
        b.path(),
        &[
            "build",
            two.to_str().unwrap(),
            "--no-cache",
            "--out",
            "cold",
        ],
        &cache_env,
    );
    assert_eq!(printed_digest(second.ok()), printed_digest(third.ok()));
    assert_eq!(before, files_in(&go_cache));
}

fn files_in(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => files_in(&e.path()),
            _ => 1,
        })
        .sum()
}
