//! Running toolchain processes hermetically: a cleared environment with only what the toolchain
//! needs, output captured and shown in full when the command fails.

use super::BuildError;
use crate::fsio::IoContext;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Finds an executable on the caller's PATH (the hermetic environment has its own PATH).
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A command with a cleared environment: PATH limited to the toolchain's folders and the system's,
/// C locale, UTC, SOURCE_DATE_EPOCH, HOME and TMPDIR inside the build folder.
pub(crate) fn hermetic(program: &Path, build_dir: &Path, epoch: u64) -> Command {
    let mut path_dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = program.parent() {
        path_dirs.push(dir.to_path_buf());
    }
    for d in ["/usr/local/bin", "/usr/bin", "/bin"] {
        if !path_dirs.iter().any(|p| p == Path::new(d)) {
            path_dirs.push(PathBuf::from(d));
        }
    }
    let path = std::env::join_paths(path_dirs).unwrap_or_else(|_| OsString::from("/usr/bin:/bin"));
    let tmp = build_dir.join("tmp");
    let _ = std::fs::create_dir_all(&tmp);
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("PATH", path)
        .env("LC_ALL", "C")
        .env("LANG", "C")
        .env("TZ", "UTC")
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("HOME", build_dir)
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null());
    cmd
}

/// The variables a command sets explicitly (all of them, for a hermetic command).
pub(crate) fn environment(cmd: &Command) -> std::collections::BTreeMap<String, String> {
    cmd.get_envs()
        .filter_map(|(k, v)| {
            Some((
                k.to_string_lossy().into_owned(),
                v?.to_string_lossy().into_owned(),
            ))
        })
        .collect()
}

/// Renders a command as a shell-like line for reports and errors.
pub(crate) fn render(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    parts.join(" ")
}

/// One shell word: quoted only when it needs it.
pub(crate) fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs a toolchain step: in the build's jail when it has one (only the build folder writable,
/// only declared inputs readable, no network), then as [`run`].
pub(crate) fn run_step(mut cmd: Command, ctx: &super::BuildContext) -> Result<String, BuildError> {
    if let Some(spec) = &ctx.jail {
        crate::run::jail(&mut cmd, spec).at("preparing the build jail in", &spec.build_dir)?;
    }
    run(cmd)
}

/// Runs a step like [`run_step`], its stdout and stderr appended to `log` (at `log_path`);
/// the exit status is the caller's to judge.
pub(crate) fn run_step_logged(
    mut cmd: Command,
    ctx: &super::BuildContext,
    log: &std::fs::File,
    log_path: &Path,
) -> Result<std::process::ExitStatus, BuildError> {
    if let Some(spec) = &ctx.jail {
        crate::run::jail(&mut cmd, spec).at("preparing the build jail in", &spec.build_dir)?;
    }
    cmd.stdout(log.try_clone().at("opening", log_path)?)
        .stderr(log.try_clone().at("opening", log_path)?);
    crate::run::die_with_parent(&mut cmd);
    Ok(cmd.status().at("starting", cmd.get_program())?)
}

/// Runs to completion; on a non-zero exit the error carries the command and its whole output.
pub(crate) fn run(mut cmd: Command) -> Result<String, BuildError> {
    let line = render(&cmd);
    let program = Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    crate::run::die_with_parent(&mut cmd);
    let out = cmd.output().at("starting", cmd.get_program())?;
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if out.status.success() {
        Ok(text)
    } else {
        Err(BuildError::Failed {
            program,
            command: line,
            status: out.status.to_string(),
            output: indent(&text),
        })
    }
}

fn indent(text: &str) -> String {
    let body: Vec<String> = text.lines().map(|l| format!("  | {l}")).collect();
    if body.is_empty() {
        "  (no output)".into()
    } else {
        body.join("\n")
    }
}

/// The first line of `PROGRAM --version`, or "unknown version".
pub(crate) fn version_line(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "unknown version".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_quotes_only_what_needs_it() {
        let mut c = Command::new("gcc");
        c.args(["-O2", "-DX=a b", "it's"]);
        assert_eq!(render(&c), r"gcc -O2 '-DX=a b' 'it'\''s'");
    }

    #[test]
    fn hermetic_env_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let env = find_program("env").expect("env");
        let out = run(hermetic(&env, dir.path(), 42)).unwrap();
        let mut keys: Vec<&str> = out.lines().filter_map(|l| l.split('=').next()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "HOME",
                "LANG",
                "LC_ALL",
                "PATH",
                "SOURCE_DATE_EPOCH",
                "TMPDIR",
                "TZ"
            ]
        );
        assert!(out.contains("SOURCE_DATE_EPOCH=42"));
    }

    #[test]
    fn failure_carries_command_and_output() {
        let dir = tempfile::tempdir().unwrap();
        let sh = find_program("sh").expect("sh");
        let mut c = hermetic(&sh, dir.path(), 0);
        c.args(["-c", "echo boom >&2; exit 3"]);
        let e = run(c).unwrap_err().to_string();
        assert!(e.contains("sh failed (exit status: 3)"), "{e}");
        assert!(e.contains("  | boom"), "{e}");
    }
}
