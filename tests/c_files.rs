//! File-list C builds as real projects lay them out (globs, exclude, include folders, defines),
//! with the real binary, gcc and musl: each file compiled on its own, and its object reused
//! from the shared cache while what decides its bytes is unchanged.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

struct Project {
    work: tempfile::TempDir,
    cache: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        let work = tempfile::tempdir().unwrap();
        copy_tree(
            &repo_root().join("tests/fixtures/multi-c"),
            &work.path().join("multi-c"),
        );
        Project {
            work,
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn build(&self, out: &str, extra: &[&str]) -> Run {
        let mut args = vec!["build", "multi-c", "--out", out];
        args.extend_from_slice(extra);
        staticpack_with(
            self.work.path(),
            &args,
            &[("STATICPACK_CACHE", self.cache.path().to_str().unwrap())],
        )
    }

    fn edit(&self, file: &str, append: &str) {
        let path = self.work.path().join("multi-c/src").join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(append);
        std::fs::write(path, text).unwrap();
    }
}

fn compile_line(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.starts_with("compile "))
        .unwrap_or_else(|| panic!("no compile line:\n{}", run.stderr))
        .to_owned()
}

#[test]
fn globs_exclude_include_dirs_and_defines_build_a_program_that_runs() {
    let p = Project::new();
    let run = p.build("out/a", &[]);
    run.ok();
    // Four files: *.c, lib/**/*.c (two folders deep), tools/*.c without tools/broken.c, which
    // holds an #error.
    assert_eq!(
        compile_line(&run),
        "compile 4 files: 4 compiled, 0 reused from the cache"
    );
    assert!(
        run.stderr.contains("run     ok"),
        "the run proof (stdout \"calc: 42 84\" from the defines) did not pass:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("verify  static-pie (musl"),
        "{}",
        run.stderr
    );
}

#[test]
fn touching_one_file_recompiles_that_file_and_a_header_recompiles_its_includers() {
    let p = Project::new();
    let first = p.build("out/a", &[]);
    let first_digest = printed_digest(first.ok());

    // Unchanged: every object comes from the cache, and the image is the same.
    let again = p.build("out/b", &[]);
    assert_eq!(
        compile_line(&again),
        "compile 4 files: 0 compiled, 4 reused from the cache"
    );
    assert_eq!(printed_digest(again.ok()), first_digest);

    p.edit("lib/add.c", "int add_three(int a) { return a + 3; }\n");
    let touched = p.build("out/c", &[]);
    assert_eq!(
        compile_line(&touched),
        "compile 4 files: 1 compiled, 3 reused from the cache"
    );
    let touched_digest = printed_digest(touched.ok());
    assert_ne!(touched_digest, first_digest);

    // calc.h is included by main.c, add.c and twice.c, not by tools/version.c.
    p.edit("include/calc.h", "int add_three(int a);\n");
    let header = p.build("out/d", &[]);
    assert_eq!(
        compile_line(&header),
        "compile 4 files: 3 compiled, 1 reused from the cache"
    );
    let header_digest = printed_digest(header.ok());

    // Cold (no cache at all): the same bytes as the build that reused objects.
    let cold = p.build("out/e", &["--no-cache"]);
    assert_eq!(
        compile_line(&cold),
        "compile 4 files: 4 compiled, 0 reused from the cache"
    );
    assert_eq!(printed_digest(cold.ok()), header_digest);

    // --check-repro: its first build reuses objects, its second compiles all of them cold.
    let repro = p.build("out/f", &["--check-repro"]);
    repro.ok();
    assert!(repro.stderr.contains("repro   ok"), "{}", repro.stderr);
}

#[test]
fn a_define_changes_the_objects_key() {
    let p = Project::new();
    p.build("out/a", &[]).ok();
    let recipe = p.work.path().join("multi-c/recipe.toml");
    let text = std::fs::read_to_string(&recipe).unwrap();
    std::fs::write(&recipe, text.replace("CALC_BASE=40", "CALC_BASE=41")).unwrap();
    // Flags are part of every object's key: no stale object may be reused. (The program
    // would now print 43 86, so the run proof is left out.)
    let run = p.build("out/b", &["--no-run"]);
    assert_eq!(
        compile_line(run.ok()),
        "compile 4 files: 4 compiled, 0 reused from the cache"
    );
}

/// A program that prints every macro that could carry the build's time or place.
const STAMP_C: &str = r#"#include <stdio.h>
int main(void) {
    printf("%s|%s %s|%s\n", __TIMESTAMP__, __DATE__, __TIME__, __FILE__);
    return 0;
}
"#;

fn stamp_recipe(dir: &Path, build: &str, expect: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/stamp.c"), STAMP_C).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"stamp\"\nepoch = 1700000000\n[build]\nlang = \"c\"\nsource = \"src\"\n{build}\n\
             [test]\nexpect_stdout = {expect:?}\n"
        ),
    )
    .unwrap();
}

#[test]
fn file_date_and_timestamp_macros_carry_neither_the_build_time_nor_a_host_path() {
    let work = tempfile::tempdir().unwrap();
    let epoch_words = "Tue Nov 14 22:13:20 2023|Nov 14 2023 22:13:20";
    let cases = [
        ("files", "", format!("{epoch_words}|stamp.c")),
        // An absolute path in the command: the prefix map turns the copy into /src.
        (
            "commands",
            "commands = [\"$CC $CFLAGS -o stamp \\\"$PWD/stamp.c\\\" $LDFLAGS\"]\nartifact = \"stamp\"",
            format!("{epoch_words}|/src/stamp.c"),
        ),
    ];
    for (kind, build, expect) in cases {
        let mut digests = Vec::new();
        for (folder, mtime) in [("one", "2001-01-01"), ("two/deeper", "2011-11-11")] {
            let dir = work.path().join(kind).join(folder);
            stamp_recipe(&dir, build, &expect);
            // __TIMESTAMP__ is the file's mtime unless staticpack defines it: two checkouts
            // made at different times.
            let touch = Command::new("touch")
                .args(["-d", mtime])
                .arg(dir.join("src/stamp.c"))
                .status()
                .unwrap();
            assert!(touch.success());
            let run = staticpack(
                work.path(),
                &[
                    "build",
                    dir.to_str().unwrap(),
                    "--out",
                    dir.join("out").to_str().unwrap(),
                ],
            );
            assert!(run.stderr.contains("run     ok"), "{kind}: {}", run.stderr);
            digests.push(printed_digest(run.ok()));
        }
        assert_eq!(digests[0], digests[1], "{kind}: the two checkouts differ");
    }
}
