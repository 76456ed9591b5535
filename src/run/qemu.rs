//! Foreign-architecture entrypoints: run under qemu's user-mode emulator, copied into the
//! root and exec'd with the entrypoint as its argument. binfmt_misc is never needed (nor
//! consulted): the kernel execs a host binary, qemu loads the foreign one itself. Debian's
//! qemu-user-static is static, so the root still holds no libc.

use super::{ProcessSpec, RunError};
use crate::recipe::Platform;
use std::path::{Path, PathBuf};

/// Where the emulator is placed inside the root (a name no image uses).
const DIR_IN_ROOT: &str = ".staticpack-emulator";

/// The emulator a run used, for the report: "qemu-aarch64".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulation {
    pub emulator: String,
    pub platform: String,
}

/// The platform an image config names, when it is one staticpack knows and not this host's.
pub(crate) fn foreign_platform(config: &oci_spec::image::ImageConfiguration) -> Option<Platform> {
    let name = format!("{}/{}", config.os(), config.architecture());
    let platform: Platform = name.parse().ok()?;
    (!platform.is_host()).then_some(platform)
}

/// Copies the platform's qemu into `rootfs` and rewrites `spec` to run the entrypoint under
/// it. The entrypoint is resolved in the root first (qemu takes a path, not a PATH name).
pub(crate) fn inject(
    platform: &Platform,
    rootfs: &Path,
    spec: &mut ProcessSpec,
) -> Result<Emulation, RunError> {
    let name = platform.qemu();
    let host = crate::build::process::find_program(&name).ok_or_else(|| {
        RunError::Emulator(format!(
            "the image is for {platform}, and this host runs {}: its entrypoint runs under {name}, which is not installed; install it with: apt-get install qemu-user-static",
            Platform::host_or_default()
        ))
    })?;
    let dir = rootfs.join(DIR_IN_ROOT);
    std::fs::create_dir_all(&dir).map_err(|e| RunError::io("creating", &dir, e))?;
    let inside = dir.join(&name);
    std::fs::copy(&host, &inside).map_err(|e| RunError::io("copying", &host, e))?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| RunError::io("setting the mode of", &inside, e))?;
    }
    let program = resolve_in_root(rootfs, &spec.argv[0], &spec.env);
    let mut argv = vec![format!("/{DIR_IN_ROOT}/{name}"), program];
    argv.extend(spec.argv.iter().skip(1).cloned());
    spec.argv = argv;
    Ok(Emulation {
        emulator: name.trim_end_matches("-static").to_owned(),
        platform: platform.to_string(),
    })
}

/// A program name looked up in the root's PATH (from the process environment), as execvp
/// would; a path (with '/') is kept.
fn resolve_in_root(rootfs: &Path, program: &str, env: &[String]) -> String {
    if program.contains('/') {
        return program.to_owned();
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(super::DEFAULT_PATH);
    path.split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| format!("{}/{program}", d.trim_end_matches('/')))
        .find(|candidate| {
            let host: PathBuf = rootfs.join(candidate.trim_start_matches('/'));
            // Not through a link out of the root: lstat of the final path only.
            std::fs::symlink_metadata(&host).is_ok_and(|m| m.is_file())
        })
        .unwrap_or_else(|| program.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_resolved_in_the_roots_path() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::write(d.path().join("usr/bin/hello"), "").unwrap();
        let env = vec!["PATH=/bin:/usr/bin".to_owned()];
        assert_eq!(resolve_in_root(d.path(), "hello", &env), "/usr/bin/hello");
        assert_eq!(resolve_in_root(d.path(), "/x/hello", &env), "/x/hello");
        assert_eq!(resolve_in_root(d.path(), "absent", &env), "absent");
    }
}
