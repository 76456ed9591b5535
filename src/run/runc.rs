//! The runc runtime: an OCI runtime bundle (`rootfs/` + `config.json`) in the run's temporary
//! directory, run with `runc run`, state kept in that directory too.

use super::diagnose::{enoent_hint, exec_candidates};
use super::output;
use super::{ProcessSpec, RawOutcome, RunError, SANDBOX_HOSTNAME};
use oci_spec::runtime::{
    LinuxDeviceCgroupBuilder, LinuxNamespace, LinuxNamespaceType, Process, RootBuilder, Spec,
    UserBuilder,
};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const INSTALL: &str = "install it: apt-get install runc";

/// How long `runc run` gets to exit after `runc kill` before it is killed itself.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The runc executable: PATH first, then the sbin directories a non-root PATH may lack
/// (Debian installs runc in /usr/sbin).
pub(crate) fn find_runc() -> Result<PathBuf, RunError> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join("runc"))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .ok_or_else(|| {
            RunError::Runc(format!(
                "runc is not installed (not found in PATH nor /usr/sbin): {INSTALL}"
            ))
        })
}

/// The runtime config: runc's own defaults (`runc spec`; `runc spec --rootless` when we are
/// not root) with our process, a read-only root, our hostname, a network namespace, and a
/// deny-all device cgroup (runc adds its standard allowed devices).
fn runtime_spec(spec: &ProcessSpec, read_only: bool) -> Result<Spec, RunError> {
    let oci = |e: oci_spec::OciSpecError| RunError::Runc(format!("building config.json: {e}"));
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let mut config = if euid == 0 {
        Spec::default()
    } else {
        Spec::rootless(euid, egid)
    };
    if euid != 0 && (spec.uid, spec.gid) != (0, 0) {
        // runc needs the container's root mapped, and without root we can map only one id.
        return Err(RunError::Runc(format!(
            "rootless runc can map only our own uid, as the container's root; the image's \
             user {}:{} would need subordinate ids: run as root, or use the builtin runtime",
            spec.uid, spec.gid
        )));
    }

    let mut process = Process::default();
    process.set_terminal(Some(false));
    process.set_args(Some(spec.argv.clone()));
    process.set_env(Some(spec.env.clone()));
    process.set_cwd(PathBuf::from(&spec.cwd));
    process.set_user(
        UserBuilder::default()
            .uid(spec.uid)
            .gid(spec.gid)
            .build()
            .map_err(oci)?,
    );
    config.set_process(Some(process));
    config.set_hostname(Some(SANDBOX_HOSTNAME.to_owned()));
    config.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(read_only)
            .build()
            .map_err(oci)?,
    ));

    if let Some(linux) = config.linux_mut() {
        let namespaces = linux.namespaces_mut().get_or_insert_with(Vec::new);
        if !namespaces
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network)
        {
            let mut net = LinuxNamespace::default();
            net.set_typ(LinuxNamespaceType::Network);
            namespaces.push(net);
        }
        if let Some(resources) = linux.resources_mut() {
            let deny_all = LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .map_err(oci)?;
            resources.set_devices(Some(vec![deny_all]));
        }
    }
    Ok(config)
}

/// A container id unique on this host (runc derives the cgroup name from it).
fn container_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "staticpack-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills and deletes the containers whose runc state is in the run folder `work` (left by a
/// staticpack that was killed while its container ran).
pub(crate) fn delete_leftovers(work: &Path) {
    let state = work.join("state");
    let (Ok(ids), Ok(runc)) = (std::fs::read_dir(&state), find_runc()) else {
        return;
    };
    for id in ids.flatten() {
        let _ = runc_cmd(&runc, &state)
            .arg("delete")
            .arg("--force")
            .arg(id.file_name())
            .stdin(Stdio::null())
            .output();
    }
}

fn runc_cmd(runc: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(runc);
    cmd.arg("--root").arg(state);
    cmd
}

/// Runs `spec` with runc; `work` holds `rootfs/` (already unpacked) and gets the rest.
pub(crate) fn run(
    runc: &Path,
    work: &Path,
    spec: &ProcessSpec,
    timeout: Duration,
    read_only: bool,
) -> Result<RawOutcome, RunError> {
    let config_path = work.join("config.json");
    let config = serde_json::to_vec_pretty(&runtime_spec(spec, read_only)?)
        .map_err(|e| RunError::Runc(format!("serializing config.json: {e}")))?;
    std::fs::write(&config_path, config).map_err(|e| RunError::io("writing", &config_path, e))?;
    let state = work.join("state");
    std::fs::create_dir(&state).map_err(|e| RunError::io("creating", &state, e))?;
    let log = work.join("runc.log");
    let id = container_id();

    let mut run = runc_cmd(runc, &state);
    // Killed with us; a container it leaves is deleted by the next run (`delete_leftovers`).
    super::die_with_parent(&mut run);
    let mut child = run
        .arg("--log")
        .arg(&log)
        .arg("--log-format")
        .arg("json")
        .arg("run")
        .arg("--bundle")
        .arg(work)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| RunError::Runc(format!("starting {}: {e} ({INSTALL})", runc.display())))?;
    let stdout = child.stdout.take().map(output::capture);
    let stderr = child.stderr.take().map(output::capture);

    let wait_until = |child: &mut std::process::Child, deadline: Instant| loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Some(status)),
            Ok(None) if Instant::now() >= deadline => return Ok(None),
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(RunError::Runc(format!("waiting for runc run: {e}"))),
        }
    };
    let mut timed_out = false;
    let status = match wait_until(&mut child, Instant::now() + timeout)? {
        Some(status) => status,
        None => {
            timed_out = true;
            // SIGKILL to the container's init kills its whole pid namespace.
            let _ = runc_cmd(runc, &state).args(["kill", &id, "KILL"]).output();
            match wait_until(&mut child, Instant::now() + KILL_GRACE)? {
                Some(status) => status,
                None => {
                    let _ = child.kill();
                    child
                        .wait()
                        .map_err(|e| RunError::Runc(format!("waiting for runc run: {e}")))?
                }
            }
        }
    };
    // Also removes the container (and its cgroup) if `runc run` could not.
    let _ = runc_cmd(runc, &state)
        .args(["delete", "--force", &id])
        .output();

    let stdout = stdout.map(output::join).unwrap_or_default();
    let stderr = stderr.map(output::join).unwrap_or_default();
    let errors = log_errors(&log);

    let mut outcome = RawOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
        exec_error: None,
        timed_out,
    };
    if timed_out {
        outcome.exit_code = None;
        outcome.signal = Some(nix::libc::SIGKILL);
        return Ok(outcome);
    }

    let rootfs = work.join("rootfs");
    let argv0 = spec.argv.first().map_or("", String::as_str);
    let candidates = exec_candidates(argv0, &spec.env);
    let hint = |msg: &str| {
        if msg.contains("no such file or directory") {
            enoent_hint(&rootfs, &spec.cwd, argv0, &candidates)
        } else {
            String::new()
        }
    };
    if let Some(msg) = errors
        .iter()
        .find(|m| m.contains("unable to start container process"))
    {
        // runc reported the failed start itself (the program was never exec'd).
        outcome.exec_error = Some(format!("{msg}{}", hint(msg)));
    } else if !errors.is_empty() && status.code() != Some(0) {
        return Err(RunError::Runc(errors.join("; ")));
    } else if status.code() == Some(1) {
        // runc 1.1 execs in `runc init` after the start is reported, and a failing execve is
        // printed there as Go's PathError: "exec /hello: no such file or directory".
        let text = String::from_utf8_lossy(&outcome.stderr.bytes);
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let is_exec_error = last
            .strip_prefix("exec ")
            .and_then(|rest| rest.split_once(": "))
            .is_some_and(|(path, _)| path == argv0 || candidates.iter().any(|c| c == path));
        if is_exec_error {
            outcome.exec_error = Some(format!("runc: {last}{}", hint(last)));
        }
    }
    Ok(outcome)
}

/// The error-level messages of runc's JSON log.
fn log_errors(log: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(log) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| matches!(v["level"].as_str(), Some("error" | "fatal" | "panic")))
        .filter_map(|v| v["msg"].as_str().map(str::to_owned))
        .collect()
}
