//! How the CLI reports an error: the message says the action and the path, each cause comes
//! once, on its own "caused by:" line.

mod common;

use common::*;

#[test]
fn a_cause_is_printed_once() {
    let work = tempfile::tempdir().unwrap();
    let recipe = recipe("hello-c");
    let run = staticpack(
        work.path(),
        &[
            "build",
            recipe.to_str().unwrap(),
            "--out",
            "/etc/passwd/x",
            "--no-run",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    let cause = "File exists (os error 17)";
    assert_eq!(
        run.stderr.matches(cause).count(),
        1,
        "the cause must appear exactly once:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("caused by: creating /etc/passwd\n"),
        "the message names the action and the path, without the cause:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&format!("caused by: {cause}")),
        "{}",
        run.stderr
    );
    // No line repeats another's text.
    let lines: Vec<&str> = run.stderr.lines().map(str::trim).collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(rest) = l.strip_prefix("caused by: ") {
            for other in &lines[..i] {
                assert!(!other.ends_with(&format!(": {rest}")), "{}", run.stderr);
            }
        }
    }
}

#[test]
fn a_source_date_epoch_no_image_can_carry_is_refused_before_anything_is_written() {
    let work = tempfile::tempdir().unwrap();
    let recipe = recipe("hello-c");
    let out = work.path().join("out");
    for bad in ["99999999999999", "yesterday"] {
        let run = staticpack_with(
            work.path(),
            &[
                "build",
                recipe.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[("SOURCE_DATE_EPOCH", bad)],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains(&format!(
                "SOURCE_DATE_EPOCH=\"{bad}\" is not a time an image can carry"
            )),
            "{}",
            run.stderr
        );
        assert!(!out.exists(), "nothing may be written");
    }
}

#[test]
fn a_recipe_input_outside_its_folder_is_refused_unless_allowed() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("r");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/main.c"), "int main(void){return 0;}\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("passwd")).unwrap();
    let text = "name = \"leak\"\n[build]\nlang = \"c\"\nsource = \"src\"\n[[image.files]]\nsrc = \"passwd\"\ndst = \"/etc/leaked\"\n";
    std::fs::write(dir.join("recipe.toml"), text).unwrap();
    let out = work.path().join("out");
    let run = staticpack(
        work.path(),
        &[
            "build",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--no-run",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("`image.files.src`")
            && run
                .stderr
                .contains("resolves to /etc/passwd, outside the recipe's folder"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}
