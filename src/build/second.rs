//! The second build of `--check-repro`: staticpack itself as a child process, in a varied
//! environment, so that anything the output picks up from its surroundings shows.

use crate::repro::{Difference, ReproError, compare_layouts};
use std::path::Path;

/// Folders of the second build (and its working folder) in TMPDIR start with this.
pub const REPRO_DIR_PREFIX: &str = "staticpack-repro-";

/// `--check-repro`: builds the recipe a second time in a child process under a varied
/// environment (see `run_second_build`) and compares it with the `first` layout, blob by blob.
/// Empty when the two are byte-identical.
pub fn check(second: &SecondBuild, first: &Path, tag: &str) -> Result<Vec<Difference>, ReproError> {
    let folder =
        crate::workdir::WorkDir::new(REPRO_DIR_PREFIX).map_err(|e| ReproError::SecondBuild {
            recipe: second.recipe.to_path_buf(),
            what: format!(
                "could not be set up: creating a folder in {}: {e}",
                std::env::temp_dir().display()
            ),
        })?;
    let out = folder.path().join("layout");
    run_second_build(&SecondBuild {
        out: &out,
        flags: second.flags.clone(),
        ..*second
    })?;
    compare_layouts(first, &out, tag)
}

/// How the second build of `--check-repro` differs from the first: another process, another
/// time, working folder, umask, time zone, locale, and noise in the environment.
pub struct SecondBuild<'a> {
    /// The staticpack executable to run.
    pub exe: &'a Path,
    pub recipe: &'a Path,
    pub out: &'a Path,
    pub epoch: u64,
    /// Extra flags the first build had that change the output (e.g. --allow-dynamic).
    pub flags: Vec<String>,
}

/// Runs the second build as a child process; its output is returned when it fails.
pub fn run_second_build(second: &SecondBuild) -> Result<(), ReproError> {
    // It is the second build that failed, not a read of the recipe: the error says so.
    let err = |what: String| ReproError::SecondBuild {
        recipe: second.recipe.to_path_buf(),
        what,
    };
    let setup = |e: std::io::Error| err(format!("could not be set up: {e}"));
    let recipe = std::path::absolute(second.recipe).map_err(setup)?;
    let out = std::path::absolute(second.out).map_err(setup)?;
    let elsewhere =
        crate::workdir::WorkDir::new(&format!("{REPRO_DIR_PREFIX}cwd-")).map_err(setup)?;
    // Different times: the second build starts at least a second after the first ended.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let noise = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    );
    // umask through the shell: no pre_exec hook (and no unsafe) in a multithreaded parent.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(second.exe)
        .arg("build")
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        // The run proof runs again unless the flags say --no-run: the verification statement
        // records it, so it is compared too.
        .arg("--no-cache")
        .args(&second.flags)
        .current_dir(elsewhere.path())
        .env("SOURCE_DATE_EPOCH", second.epoch.to_string())
        .env("TZ", "Pacific/Kiritimati")
        .env("LANG", "fr_FR.UTF-8")
        .env("LC_ALL", "fr_FR.UTF-8")
        .env("STATICPACK_REPRO_NOISE", noise)
        .env("CFLAGS", "-O0 -g3")
        .env("GOFLAGS", "-race")
        .stdin(std::process::Stdio::null());
    crate::run::die_with_parent(&mut cmd);
    let output = cmd
        .output()
        .map_err(|e| err(format!("could not start {}: {e}", second.exe.display())))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(err(format!(
            "failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second_build_error(exe: &Path) -> String {
        let out = tempfile::tempdir().unwrap();
        let second = SecondBuild {
            exe,
            recipe: Path::new("/r/recipe.toml"),
            out: &out.path().join("layout"),
            epoch: 0,
            flags: vec![],
        };
        run_second_build(&second).unwrap_err().to_string()
    }

    #[test]
    fn a_failed_second_build_is_called_that_not_a_read() {
        let failed = second_build_error(Path::new("/bin/false"));
        assert!(
            failed.starts_with("the second build of /r/recipe.toml failed (exit status: 1)"),
            "{failed}"
        );
        // Started through sh (for its umask): a missing program is sh's exit 127, its words.
        let missing = second_build_error(Path::new("/nonexistent/staticpack"));
        assert!(
            missing.starts_with("the second build of /r/recipe.toml failed (exit status: 127)")
                && missing.contains("/nonexistent/staticpack: not found"),
            "{missing}"
        );
    }
}
