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
    let folder = crate::workdir::WorkDir::new(REPRO_DIR_PREFIX).map_err(|e| ReproError::Read {
        path: std::env::temp_dir(),
        reason: format!("creating a folder for the second build: {e}"),
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
    let err = |reason: String| ReproError::Read {
        path: second.recipe.to_path_buf(),
        reason,
    };
    let recipe = std::path::absolute(second.recipe).map_err(|e| err(e.to_string()))?;
    let out = std::path::absolute(second.out).map_err(|e| err(e.to_string()))?;
    let elsewhere = crate::workdir::WorkDir::new(&format!("{REPRO_DIR_PREFIX}cwd-"))
        .map_err(|e| err(e.to_string()))?;
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
        .map_err(|e| err(format!("starting {}: {e}", second.exe.display())))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(err(format!(
            "the second build failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        )))
    }
}
