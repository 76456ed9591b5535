//! The same proof through a real OCI runtime: a runtime bundle (rootfs + config.json generated
//! from the image config) run by `runc run`, with its own state folder, killed on timeout.

use super::{Outcome, ProcessSpec, RunError, Runtime};
use oci_spec::runtime::{ProcessBuilder, RootBuilder, Spec, UserBuilder};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OUTPUT_LIMIT: u64 = 1 << 20;

fn runc_program() -> Result<PathBuf, RunError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("runc"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            RunError::Runc("runc is not installed; install it with: apt-get install runc".into())
        })
}

/// The bundle's config.json: the image's process in the runtime's default namespaces and
/// mounts (runc's own defaults), read-only root, no terminal.
pub fn bundle_spec(spec: &ProcessSpec) -> Result<Spec, RunError> {
    let err = |e: oci_spec::OciSpecError| RunError::Runc(format!("building config.json: {e}"));
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let mut runtime = if euid == 0 {
        Spec::default()
    } else {
        Spec::rootless(euid, egid)
    };
    let user = UserBuilder::default()
        .uid(spec.uid)
        .gid(spec.gid)
        .build()
        .map_err(err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(spec.argv.clone())
        .env(spec.env.clone())
        .cwd(spec.cwd.clone())
        .no_new_privileges(true)
        .build()
        .map_err(err)?;
    runtime.set_process(Some(process));
    runtime.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(true)
            .build()
            .map_err(err)?,
    ));
    runtime.set_hostname(Some("staticpack".into()));
    Ok(runtime)
}

/// Runs the process in `rootfs` (moved into a bundle folder next to it) with runc.
pub fn run(bundle: &Path, spec: &ProcessSpec, timeout: Duration) -> Result<Outcome, RunError> {
    let runc = runc_program()?;
    let config = bundle_spec(spec)?;
    let config_path = bundle.join("config.json");
    config
        .save(&config_path)
        .map_err(|e| RunError::Runc(format!("writing {}: {e}", config_path.display())))?;
    let state = bundle.join("state");
    std::fs::create_dir_all(&state).map_err(|source| RunError::Io {
        action: "creating",
        path: state.clone(),
        source,
    })?;
    let id = format!(
        "staticpack-{}-{}",
        std::process::id(),
        bundle
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    );
    let id: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();

    let mut child = Command::new(&runc)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RunError::Runc(format!("starting {}: {e}", runc.display())))?;
    let out = child
        .stdout
        .take()
        .map(|s| std::thread::spawn(move || read_bounded(s)));
    let err = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || read_bounded(s)));

    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() >= deadline => {
                timed_out = true;
                let _ = Command::new(&runc)
                    .arg("--root")
                    .arg(&state)
                    .args(["kill", &id, "KILL"])
                    .output();
                let _ = child.kill();
                match child.wait() {
                    Ok(s) => break s,
                    Err(e) => return Err(RunError::Runc(format!("waiting for runc: {e}"))),
                }
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(RunError::Runc(format!("waiting for runc: {e}"))),
        }
    };
    let _ = Command::new(&runc)
        .arg("--root")
        .arg(&state)
        .args(["delete", "--force", &id])
        .output();
    let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let text = String::from_utf8_lossy(&stderr);
    // runc reports a failed exec of the entrypoint on its own stderr and exits non-zero.
    let exec_error = text
        .lines()
        .find(|l| {
            l.contains("unable to start container process")
                || l.contains("exec format error")
                || l.contains("no such file or directory")
        })
        .filter(|_| !status.success())
        .map(|l| format!("runc: {}", l.trim()));
    Ok(Outcome {
        runtime: Runtime::Runc,
        exit_code: if timed_out || exec_error.is_some() {
            None
        } else {
            status.code()
        },
        signal: if timed_out {
            Some(9)
        } else {
            std::os::unix::process::ExitStatusExt::signal(&status)
        },
        stdout,
        stderr,
        exec_error,
        rootfs_files: 0,
    })
}

fn read_bounded(r: impl Read) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut r = r;
    let _ = (&mut r).take(OUTPUT_LIMIT).read_to_end(&mut kept);
    // Drain the rest so the container never blocks on a full pipe.
    let _ = std::io::copy(&mut r, &mut std::io::sink());
    kept
}
