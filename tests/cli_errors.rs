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
