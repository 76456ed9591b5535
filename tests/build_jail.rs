//! Toolchain steps run jailed: a compiler flag cannot write outside the build folder, and a
//! source file cannot pull in a host file the recipe did not declare.

mod common;

use common::*;
use std::path::Path;

/// A C recipe in `work/r` whose main.c is `source`, with `cflags`.
fn c_recipe(work: &Path, source: &str, cflags: &str) -> std::path::PathBuf {
    let dir = work.join("r");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.c"), source).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!("name = \"jailed\"\n[build]\nlang = \"c\"\nsource = \"src\"\ncflags = {cflags}\n"),
    )
    .unwrap();
    dir
}

fn build(work: &Path, dir: &Path) -> Run {
    staticpack(
        work,
        &[
            "build",
            dir.to_str().unwrap(),
            "--out",
            work.join("out").to_str().unwrap(),
            "--no-run",
        ],
    )
}

#[test]
fn a_linker_flag_cannot_write_outside_the_build_folder() {
    let work = tempfile::tempdir().unwrap();
    let leak = work.path().join("leak.map");
    let dir = c_recipe(
        work.path(),
        "int main(void){return 0;}\n",
        &format!("[\"-Wl,-Map={}\"]", leak.display()),
    );
    let run = build(work.path(), &dir);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("leak.map"), "{}", run.stderr);
    assert!(
        !leak.exists(),
        "the map file was written outside the build folder"
    );
    assert!(!work.path().join("out").exists());
}

#[test]
fn an_undeclared_host_file_fails_the_build() {
    let work = tempfile::tempdir().unwrap();
    let secret = work.path().join("secret.h");
    std::fs::write(&secret, "#define KEY 42\n").unwrap();
    let source = format!(
        "#include \"{}\"\nint main(void){{return KEY;}}\n",
        secret.display()
    );
    let dir = c_recipe(work.path(), &source, "[]");
    let run = build(work.path(), &dir);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("secret.h") && run.stderr.contains("No such file"),
        "{}",
        run.stderr
    );
    // Declared, the same file is an input like any other.
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"jailed\"\nallow_outside = [\"{}\"]\n[build]\nlang = \"c\"\nsource = \"src\"\n",
            secret.display()
        ),
    )
    .unwrap();
    build(work.path(), &dir).ok();
}
