//! A Go `package` that is one file (`package = "prog.go"`, built as `go build prog.go`): a
//! `//go:build ignore` program beside the module's own main package, as Go's own generators
//! and many repositories' tools are written.

mod common;

use common::*;

const MAIN: &str =
    "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"the module's main\") }\n";
const PROG: &str = "//go:build ignore\n\n// A tool that `go build` of the folder leaves out.\npackage main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"the ignore-tagged program\") }\n";

fn recipe_text(package: &str) -> String {
    format!(
        "name = \"prog\"\n[build]\nlang = \"go\"\nsource = \"src\"\npackage = \"{package}\"\noutput = \"/prog\"\n\
         [test]\nexpect_stdout = \"the ignore-tagged program\"\n"
    )
}

#[test]
fn a_go_build_ignore_program_is_built_from_its_file() {
    need("go", "golang-go");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("go.mod"), "module example.com/prog\n\ngo 1.19\n").unwrap();
    std::fs::write(src.join("main.go"), MAIN).unwrap();
    std::fs::write(src.join("prog.go"), PROG).unwrap();
    let recipe_file = work.path().join("recipe.toml");
    std::fs::write(&recipe_file, recipe_text("prog.go")).unwrap();
    let run = staticpack(work.path(), &["build", recipe_file.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("run     ok") && run.stderr.contains("stdout as expected"),
        "{}",
        run.stderr
    );

    // A file that is not there is refused by name, before any build.
    std::fs::write(&recipe_file, recipe_text("tool.go")).unwrap();
    let run = staticpack(work.path(), &["build", recipe_file.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("`build.package`: \"./tool.go\" is not a .go file inside"),
        "{}",
        run.stderr
    );
}
