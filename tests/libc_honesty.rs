//! The libc the recipe names is the libc in the binary (issue 28, item 8): a build step that
//! calls a compiler of its own (here the host's glibc gcc by absolute path, as a C++ project's
//! cmake did with the host's c++) while the recipe says `libc = "musl"` is refused, naming both,
//! and nothing is published.

mod common;

use common::*;

#[test]
fn a_glibc_binary_from_a_musl_recipe_is_refused_naming_both() {
    let gcc = need("gcc", "gcc");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("sneaky");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"sneaky\"\n[build]\nlang = \"c\"\nsource = \".\"\nlibc = \"musl\"\nlink = \"static\"\ncommands = [\"{} -static -o app main.c\"]\nartifact = \"app\"\n[image]\nbase = \"scratch\"\n",
            gcc.display()
        ),
    )
    .unwrap();
    let out = work.path().join("out");
    let run = staticpack(
        work.path(),
        &["build", "sneaky", "--out", out.to_str().unwrap()],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("libc = \"musl\", but the binary is linked against glibc"),
        "{}",
        run.stderr
    );
    assert!(!out.exists(), "nothing is published");
}
