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

/// `strip = true` does not hide NSS hazards (issue 28, item 5): a static glibc program that
/// calls getpwnam, stripped, is still refused for its NSS modules, and `verify` says so of the
/// stripped file too.
#[test]
fn strip_does_not_hide_a_static_glibc_nss_hazard() {
    need("gcc", "gcc");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pw");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include <stdio.h>\n#include <pwd.h>\nint main(void){struct passwd*p=getpwnam(\"root\");printf(\"%d\\n\",p?(int)p->pw_uid:-1);return 0;}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        "name = \"pw\"\n[build]\nlang = \"c\"\nsource = \".\"\nlibc = \"glibc\"\nlink = \"static\"\nstrip = true\n[image]\nbase = \"scratch\"\n",
    )
    .unwrap();
    let run = staticpack(work.path(), &["build", "pw", "--out", "out"]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("NSS modules"), "{}", run.stderr);
    assert!(!work.path().join("out").exists());

    let gcc = need("gcc", "gcc");
    tool(
        &gcc,
        &["-static", "-s", "-o", "pw-bin", "pw/main.c"],
        work.path(),
    )
    .ok();
    let verify = staticpack(work.path(), &["verify", "pw-bin"]);
    assert!(
        verify.stdout.contains("NSS modules") || verify.stderr.contains("NSS modules"),
        "{}\n{}",
        verify.stdout,
        verify.stderr
    );
}
