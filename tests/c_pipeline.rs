//! The C pipeline end to end, with the real binary, musl, gcc, skopeo, umoci, oci-image-tool
//! and runc.

mod common;

use common::*;
use std::path::Path;

fn build(cwd: &Path, recipe: &Path, extra: &[&str]) -> Run {
    let recipe = recipe.to_str().unwrap();
    let mut args = vec!["build", recipe];
    args.extend_from_slice(extra);
    staticpack(cwd, &args)
}

#[test]
fn hello_c_builds_verifies_packs_and_runs_with_no_libc() {
    let work = tempfile::tempdir().unwrap();
    let run = build(work.path(), &recipe("hello-c"), &[]);
    run.ok();
    let digest = printed_digest(&run);
    assert!(
        run.stdout.trim_end().ends_with("written to out/hello-c"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("verify  static-pie"), "{}", run.stderr);
    assert!(
        run.stderr.contains("no libc or dynamic loader"),
        "{}",
        run.stderr
    );

    let layout = work.path().join("out/hello-c");
    let layout_s = layout.to_str().unwrap();

    // skopeo reads the layout and agrees on the digest.
    let skopeo = need("skopeo", "skopeo");
    let inspect = tool(
        &skopeo,
        &["inspect", &format!("oci:{layout_s}:latest")],
        work.path(),
    );
    inspect.ok();
    let json: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert_eq!(json["Digest"], digest);
    assert_eq!(json["Architecture"], "amd64");
    assert_eq!(json["Os"], "linux");

    // oci-image-tool validates the layout against the spec's schemas.
    let oit = need("oci-image-tool", "oci-image-tool");
    tool(
        &oit,
        &[
            "validate",
            "--type",
            "image",
            "--ref",
            "name=latest",
            layout_s,
        ],
        work.path(),
    )
    .ok();

    // umoci unpacks it, and `file` says what the binary inside is.
    let umoci = need("umoci", "umoci");
    let bundle = work.path().join("bundle");
    tool(
        &umoci,
        &[
            "unpack",
            "--rootless",
            "--image",
            &format!("{layout_s}:latest"),
            bundle.to_str().unwrap(),
        ],
        work.path(),
    )
    .ok();
    let file = need("file", "file");
    let described = tool(
        &file,
        &[bundle.join("rootfs/hello").to_str().unwrap()],
        work.path(),
    );
    assert!(
        described.stdout.contains("static-pie linked"),
        "{}",
        described.stdout
    );
    let rootfs: Vec<String> = std::fs::read_dir(bundle.join("rootfs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        rootfs,
        vec!["hello"],
        "the image holds the binary and nothing else"
    );

    // The stages work on their own too: run and inspect the layout.
    let ran = staticpack(work.path(), &["run", "out/hello-c:latest"]);
    ran.ok();
    assert_eq!(ran.stdout, "hello from a static binary\n");
    let shown = staticpack(work.path(), &["inspect", "out/hello-c"]);
    shown.ok();
    assert!(shown.stdout.contains(&digest), "{}", shown.stdout);
}

#[test]
fn static_variant_is_a_classic_static_executable() {
    let work = tempfile::tempdir().unwrap();
    let run = build(work.path(), &recipe("hello-c-static"), &[]);
    run.ok();
    assert!(
        run.stderr.contains("verify  static (musl"),
        "{}",
        run.stderr
    );
}

#[test]
fn two_builds_in_different_folders_give_the_same_digest() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    copy_tree(&recipe("hello-c"), &a.path().join("somewhere/hello-c"));
    copy_tree(
        &recipe("hello-c"),
        &b.path().join("elsewhere/deeper/hello-c"),
    );
    let first = build(a.path(), Path::new("somewhere/hello-c"), &["--out", "x"]);
    let second = build(
        b.path(),
        Path::new("elsewhere/deeper/hello-c/recipe.toml"),
        &["--out", "y/z"],
    );
    assert_eq!(printed_digest(first.ok()), printed_digest(second.ok()));
}

#[test]
fn runc_runs_the_proof_too() {
    need("runc", "runc");
    let work = tempfile::tempdir().unwrap();
    let run = build(work.path(), &recipe("hello-c"), &["--runtime", "runc"]);
    run.ok();
    assert!(run.stderr.contains("run     ok (runc)"), "{}", run.stderr);
}

#[test]
fn dynamic_glibc_binary_is_refused_with_the_reason_and_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let run = build(work.path(), &recipe("refused-glibc-dynamic"), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("verify refused the binary: it is dynamic"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("fix:"), "{}", run.stderr);
    assert!(!work.path().join("out/refused-glibc-dynamic").exists());
    assert_eq!(
        only_entries(&work.path().join("out"), &[]),
        Vec::<String>::new()
    );
}

#[test]
fn dynamic_binary_fails_the_run_proof_with_the_real_error() {
    for runtime in ["builtin", "runc"] {
        let work = tempfile::tempdir().unwrap();
        let run = build(
            work.path(),
            &recipe("refused-glibc-dynamic"),
            &["--allow-dynamic", "--runtime", runtime],
        );
        assert_eq!(run.code, 1, "{runtime}: {}", run.stderr);
        assert!(
            run.stderr.contains("the run proof failed"),
            "{runtime}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("No such file or directory")
                || run.stderr.contains("no such file or directory"),
            "{runtime}: {}",
            run.stderr
        );
        assert!(
            !work.path().join("out/refused-glibc-dynamic").exists(),
            "{runtime}: a failed proof publishes nothing"
        );
        assert_eq!(
            only_entries(&work.path().join("out"), &[]),
            Vec::<String>::new(),
            "{runtime}: no staging left"
        );
    }
}

fn bad_recipe(dir: &Path, recipe_text: &str, source: Option<&str>) -> Run {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("src/main.c"),
        source.unwrap_or("int main(void) { return 0; }\n"),
    )
    .unwrap();
    std::fs::write(dir.join("recipe.toml"), recipe_text).unwrap();
    staticpack(dir, &["build", "recipe.toml"])
}

#[test]
fn bad_recipes_give_clear_errors_and_leave_nothing_behind() {
    let good = "name = \"bad\"\n[build]\nlang = \"c\"\nsource = \"src\"\n";
    let cases: &[(&str, String, Option<&str>, &str)] = &[
        (
            "unknown field",
            good.replace("source", "sorce"),
            None,
            "recipe.toml:4:1: `build.sorce`: unknown field `sorce`",
        ),
        (
            "missing source",
            good.replace("\"src\"", "\"nope\""),
            None,
            "recipe.toml:4:10: `build.source`:",
        ),
        (
            "wrong type",
            good.replace("\"src\"", "42"),
            None,
            "recipe.toml:4:10: `build.source`:",
        ),
        (
            "compiler error",
            good.to_owned(),
            Some("int main(void) { return nope; }\n"),
            "gcc failed",
        ),
    ];
    for (what, text, source, expected) in cases {
        let dir = tempfile::tempdir().unwrap();
        let run = bad_recipe(dir.path(), text, *source);
        assert_eq!(run.code, 1, "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{what}: expected {expected:?} in:\n{}",
            run.stderr
        );
        assert!(
            !dir.path().join("out").exists(),
            "{what}: an output folder was left behind"
        );
    }
    // The compiler's own words are shown.
    let dir = tempfile::tempdir().unwrap();
    let run = bad_recipe(dir.path(), good, Some("int main(void) { return nope; }\n"));
    assert!(run.stderr.contains("'nope' undeclared"), "{}", run.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let work = tempfile::tempdir().unwrap();
    assert_eq!(staticpack(work.path(), &["build"]).code, 2);
    assert_eq!(staticpack(work.path(), &["frobnicate"]).code, 2);
    assert_eq!(
        staticpack(work.path(), &["build", "x", "--runtime", "docker"]).code,
        2
    );
}

#[test]
fn verify_says_dynamic_why_and_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let run = staticpack(work.path(), &["verify", "--require", "static", "/bin/ls"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("/bin/ls: dynamic"), "{}", run.stdout);
    assert!(run.stdout.contains("fix:"), "{}", run.stdout);
    assert_eq!(staticpack(work.path(), &["verify", "/bin/ls"]).code, 0);
}
