//! The one NSS rule, relaxed in the recipe: a static glibc binary that calls getpwuid is
//! refused by `build` unless `[build] allow_nss_hazards = true` says why, and then the report
//! prints the reason and the provenance records it.

mod common;

use common::*;

const PROGRAM: &str = r#"#include <pwd.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) {
        struct passwd *pw = getpwuid(getuid());
        puts(pw ? pw->pw_name : "unknown user");
        return 0;
    }
    puts("ok");
    return 0;
}
"#;

fn recipe_text(extra: &str) -> String {
    format!(
        "name = \"whoami-glibc\"\n[build]\nlang = \"c\"\nsource = \"src\"\nlibc = \"glibc\"\nlink = \"static\"\noutput = \"/whoami\"\n{extra}\
         [test]\nexpect_stdout = \"ok\"\n"
    )
}

#[test]
fn the_recipe_allows_nss_hazards_only_with_a_reason_that_the_report_prints() {
    need("gcc", "gcc");
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("src")).unwrap();
    std::fs::write(work.path().join("src/whoami.c"), PROGRAM).unwrap();
    let file = work.path().join("recipe.toml");
    let build = |text: String| {
        std::fs::write(&file, text).unwrap();
        staticpack(work.path(), &["build", file.to_str().unwrap()])
    };

    let run = build(recipe_text(""));
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("getpwuid")
            && run
                .stderr
                .contains("allow_nss_hazards = true with a reason"),
        "{}",
        run.stderr
    );

    let run = build(recipe_text("allow_nss_hazards = true\n"));
    assert_ne!(run.code, 0);
    assert!(
        run.stderr
            .contains("`build.reason`: allow_nss_hazards = true needs a `reason`"),
        "{}",
        run.stderr
    );

    let reason = "the image only runs the self-test, which looks up no user";
    let run = build(recipe_text(&format!(
        "allow_nss_hazards = true\nreason = \"{reason}\"\n"
    )));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "nss     allowed by the recipe (allow_nss_hazards): getpwuid, getpwuid_r; reason: {reason}"
        )),
        "{}",
        run.stderr
    );
    let provenance: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            work.path()
                .join("out/whoami-glibc/staticpack-provenance.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        provenance["inputs"]["options"]["allow_nss_hazards"],
        format!("recipe: {reason}"),
        "{provenance}"
    );
}
