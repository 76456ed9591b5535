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

/// Runs a toolchain step: in the build's jail when it has one (see `run::JailSpec`), else as
/// [`run`]; on a non-zero exit the error carries the command and its whole output.
pub(crate) fn run_step(cmd: Command, ctx: &super::BuildContext) -> Result<String, BuildError> {
    let Some(spec) = &ctx.jail else {
        return run(cmd);
    };
    let stdout = tempfile::tempfile().at("creating a temporary file in", std::env::temp_dir())?;
    let stderr = tempfile::tempfile().at("creating a temporary file in", std::env::temp_dir())?;
    let end = jailed(&cmd, spec, &stdout, &stderr)?;
    spec.killed
        .fetch_add(u64::from(end.killed), std::sync::atomic::Ordering::Relaxed);
    let mut text = read_capped(stdout);
    text.push_str(&read_capped(stderr));
    if end.status.success() {
        Ok(text)
    } else {
        Err(BuildError::Failed {
            program: program_name(&cmd),
            command: render(&cmd),
            status: end.status.to_string(),
            output: indent(&text),
        })
    }
}

/// Runs a step like [`run_step`], its stdout and stderr appended to `log` (at `log_path`);
/// the exit status (and what the jail killed after it) is the caller's to judge.
pub(crate) fn run_step_logged(
    mut cmd: Command,
    ctx: &super::BuildContext,
    log: &std::fs::File,
    log_path: &Path,
) -> Result<crate::run::StepEnd, BuildError> {
    if let Some(spec) = &ctx.jail {
        return jailed(&cmd, spec, log, log);
    }
    cmd.stdout(log.try_clone().at("opening", log_path)?)
        .stderr(log.try_clone().at("opening", log_path)?);
    crate::run::die_with_parent(&mut cmd);
    let status = cmd.status().at("starting", cmd.get_program())?;
    Ok(crate::run::StepEnd {
        status,
        killed: 0,
        stopped: None,
    })
}

/// One step in the jail; a limit that stopped it is the build's error.
fn jailed(
    cmd: &Command,
    spec: &crate::run::JailSpec,
    stdout: &std::fs::File,
    stderr: &std::fs::File,
) -> Result<crate::run::StepEnd, BuildError> {
    let end = crate::run::run_jailed(cmd, spec, stdout, stderr)
        .map_err(|e| BuildError::Jail(e.to_string()))?;
    match end.stopped {
        Some(stopped) => Err(BuildError::Stopped {
            command: render(cmd),
            stopped,
        }),
        None => Ok(end),
    }
}

/// What a step printed, at most its last 16 MiB (a step's output is untrusted and unbounded).
fn read_capped(mut file: std::fs::File) -> String {
    use std::io::{Read, Seek, SeekFrom};
    const CAP: u64 = 16 << 20;
    let len = file.seek(SeekFrom::End(0)).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(CAP)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

fn program_name(cmd: &Command) -> String {
    Path::new(cmd.get_program())
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs to completion; on a non-zero exit the error carries the command and its whole output.
pub(crate) fn run(mut cmd: Command) -> Result<String, BuildError> {
    let line = render(&cmd);
    let program = program_name(&cmd);
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
