//! `verify IMAGE`: will this image's entrypoint start? Works on an image already unpacked into
//! a private root (the caller's temp dir): the entrypoint is resolved the way a runtime does
//! (`Entrypoint` + `Cmd`, the config's `PATH`, symlinks followed inside the root only), and a
//! dynamic entrypoint's interpreter and needed libraries are looked for in the image — present,
//! it starts (say so); missing, that is the `exec /app: no such file or directory`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::walk::{FileReport, verify_paths};
use super::{Linkage, Requirement};
use crate::run::diagnose::{exec_candidates, first_present};
use crate::run::unpack::{Walk, resolve_in_root};

/// What a runtime gets from the image config.
#[derive(Clone, Debug, Default)]
pub struct ImageCommand {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
}

/// The interpreter or a library a dynamic program needs, and where the image has it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Needed {
    /// As the ELF names it (PT_INTERP's path, or DT_NEEDED's file name).
    pub name: String,
    /// Who needs it (the entrypoint, or a library it loads).
    pub by: String,
    /// The in-image path it was found at.
    pub found: Option<String>,
}

/// Why the entrypoint will or will not start.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Start {
    /// Neither Entrypoint nor Cmd: a runtime has nothing to run.
    NoCommand,
    /// `/bin/sh -c …` (a shell-form CMD or ENTRYPOINT) on an image without that shell.
    ShellMissing { shell: String },
    /// argv[0] is not in the image (at the path, or in any PATH directory).
    NotFound {
        program: String,
        searched: Vec<String>,
    },
    /// Found; `needs` lists a dynamic program's interpreter and libraries.
    Found {
        program: String,
        path: String,
        static_elf: bool,
        needs: Vec<Needed>,
    },
    /// Found, not an ELF: a script (`#!`) or data.
    NotElf { program: String, path: String },
}

impl Start {
    /// True when a runtime can exec the entrypoint: an ELF with nothing missing.
    pub fn starts(&self) -> bool {
        match self {
            Start::Found { needs, .. } => needs.iter().all(|n| n.found.is_some()),
            _ => false,
        }
    }

    /// The plain words for the report.
    pub fn explain(&self) -> String {
        match self {
            Start::NoCommand => "no Entrypoint and no Cmd in the config: a runtime has nothing to run. Fix: set entrypoint in the image".into(),
            Start::ShellMissing { shell } => format!(
                "a shell-form command (`{shell} -c …`) on an image without {shell}: the runtime fails with `exec {shell}: no such file or directory`. Fix: the exec form, ENTRYPOINT [\"/app\"] (or a base that has a shell)"
            ),
            Start::NotFound { program, searched } => format!(
                "{program} is not in the image (looked for {}): the runtime fails with `exec {program}: no such file or directory`. Fix: copy the program to that path, or name the path it has",
                searched.join(", ")
            ),
            Start::NotElf { program, path } => format!(
                "{program} ({path}) is not an ELF program: a script needs its `#!` interpreter in the image, data does not run"
            ),
            Start::Found {
                path,
                static_elf: true,
                ..
            } => format!("{path} needs no interpreter and no library: it starts with nothing else in the image"),
            Start::Found { path, needs, .. } => {
                let missing: Vec<&Needed> = needs.iter().filter(|n| n.found.is_none()).collect();
                if missing.is_empty() {
                    let libraries = needs.len().saturating_sub(1);
                    format!(
                        "{path} is dynamic, and the image has its interpreter and the {libraries} librar{} it needs: it starts (the image carries its own libc)",
                        if libraries == 1 { "y" } else { "ies" }
                    )
                } else {
                    let list: Vec<String> = missing
                        .iter()
                        .map(|n| format!("{} (needed by {})", n.name, n.by))
                        .collect();
                    format!(
                        "{path} is dynamic and the image lacks {}: the kernel reports a missing interpreter as `exec {path}: no such file or directory`, a missing library fails at load time. Fix: build it static (see the fix above), or add what is missing to the image",
                        list.join(", ")
                    )
                }
            }
        }
    }
}

/// Where a dynamic loader looks for libraries when the program sets no RUNPATH (glibc's and
/// musl's defaults, with Debian's multiarch folders).
const LIBRARY_DIRS: &[&str] = &[
    "/lib",
    "/usr/lib",
    "/lib64",
    "/usr/lib64",
    "/usr/local/lib",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
];

/// Libraries followed transitively at most: a real program needs tens.
const MAX_LIBRARIES: usize = 512;

/// The argv a runtime would exec: Entrypoint then Cmd.
pub fn argv(command: &ImageCommand) -> Vec<String> {
    command
        .entrypoint
        .iter()
        .chain(&command.cmd)
        .cloned()
        .collect()
}

/// Resolves and judges the entrypoint of the image unpacked at `root`. `analyze` is verify's
/// analysis of one host file (so that the caller's rules, e.g. `--platform`, apply).
pub fn start(
    root: &Path,
    command: &ImageCommand,
    analyze: &mut dyn FnMut(&Path) -> Option<FileReport>,
) -> (Start, Option<FileReport>) {
    let argv = argv(command);
    let Some(program) = argv.first() else {
        return (Start::NoCommand, None);
    };
    let cwd = command.working_dir.as_deref().unwrap_or("/");
    let candidates = exec_candidates(program, &command.env);
    let Some((path, host)) = first_present(root, cwd, &candidates) else {
        if argv.get(1).map(String::as_str) == Some("-c") && program.ends_with("sh") {
            return (
                Start::ShellMissing {
                    shell: program.clone(),
                },
                None,
            );
        }
        return (
            Start::NotFound {
                program: program.clone(),
                searched: candidates,
            },
            None,
        );
    };
    let Some(report) = analyze(&host) else {
        return (
            Start::NotElf {
                program: program.clone(),
                path,
            },
            None,
        );
    };
    let Ok((facts, _)) = &report.result else {
        return (
            Start::NotElf {
                program: program.clone(),
                path,
            },
            Some(report),
        );
    };
    let static_elf = facts.linkage != Linkage::Dynamic;
    let needs = if static_elf {
        Vec::new()
    } else {
        needs(root, &path, facts.interpreter.as_deref(), &facts.needed)
    };
    (
        Start::Found {
            program: program.clone(),
            path,
            static_elf,
            needs,
        },
        Some(report),
    )
}

/// The interpreter and the libraries (transitively) a dynamic program at in-image `path`
/// needs, each with where the image has it.
fn needs(root: &Path, path: &str, interpreter: Option<&str>, needed: &[String]) -> Vec<Needed> {
    let mut out = Vec::new();
    if let Some(interp) = interpreter {
        out.push(Needed {
            name: interp.to_owned(),
            by: path.to_owned(),
            found: file_in_root(root, interp).map(|_| interp.to_owned()),
        });
    }
    let mut seen = BTreeSet::new();
    // libc names the loader among its DT_NEEDED: already counted as the interpreter.
    if let Some(name) = interpreter.and_then(|i| i.rsplit('/').next()) {
        seen.insert(name.to_owned());
    }
    let mut queue: Vec<(String, String)> = needed
        .iter()
        .map(|n| (n.clone(), path.to_owned()))
        .collect();
    queue.reverse();
    while let Some((name, by)) = queue.pop() {
        if !seen.insert(name.clone()) || seen.len() > MAX_LIBRARIES {
            continue;
        }
        let found = find_library(root, &name);
        if let Some((in_image, host)) = &found {
            // A library's own needs, read from its dynamic section (headers only).
            if let Ok(bytes) = std::fs::read(host) {
                if let Ok(facts) = super::analyze(&bytes) {
                    for n in facts.needed.iter().rev() {
                        queue.push((n.clone(), in_image.clone()));
                    }
                }
            }
        }
        out.push(Needed {
            name,
            by,
            found: found.map(|(p, _)| p),
        });
    }
    out
}

/// A DT_NEEDED name in the loader's default folders (a name with '/' is a path).
fn find_library(root: &Path, name: &str) -> Option<(String, PathBuf)> {
    let candidates: Vec<String> = if name.contains('/') {
        vec![name.to_owned()]
    } else {
        LIBRARY_DIRS.iter().map(|d| format!("{d}/{name}")).collect()
    };
    candidates
        .into_iter()
        .find_map(|c| file_in_root(root, &c).map(|p| (c, p)))
}

/// The host path of the regular file at in-image `path`, symlinks followed inside `root`.
pub(crate) fn file_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    resolve_in_root(root, Path::new(path), Walk::Lookup)
        .ok()
        .flatten()
        .filter(|p| p.is_file())
}

/// [`file_in_root`] for a folder: where `path` is in the image when it is a folder there.
pub(crate) fn dir_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    resolve_in_root(root, Path::new(path), Walk::Lookup)
        .ok()
        .flatten()
        .filter(|p| p.is_dir())
}

/// Drops the load hazards the image answers: `libgcc-s-hazard` when libgcc_s.so.1, and
/// `idn-hazard` when libidn2.so.0, is in the loader's default folders (gconv modules and what a
/// program dlopens cannot be told from the image, so those stay).
pub fn drop_answered_loads(root: &Path, findings: &mut Vec<super::Finding>) {
    let answered = |code: &str| match code {
        super::LIBGCC_S_HAZARD => find_library(root, "libgcc_s.so.1").is_some(),
        super::IDN_HAZARD => find_library(root, "libidn2.so.0").is_some(),
        _ => false,
    };
    findings.retain(|f| !answered(f.code));
}

/// Every ELF file in the image root, with its path as the image names it.
pub fn every_elf(root: &Path, require: Requirement, emit: &mut dyn FnMut(FileReport)) {
    verify_paths(&[root.to_path_buf()], require, &mut |mut r| {
        // An image without any ELF is not an error here: the entrypoint says what is wrong.
        if matches!(&r.result, Err(e) if e.kind == super::ErrorKind::NoElfFound) {
            return;
        }
        r.path = in_image_path(root, &r.path);
        emit(r);
    });
}

/// `/tmp/x/usr/bin/app` → `/usr/bin/app`.
pub fn in_image_path(root: &Path, host: &Path) -> PathBuf {
    match host.strip_prefix(root) {
        Ok(rel) => Path::new("/").join(rel),
        Err(_) => host.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn command(entrypoint: &[&str], cmd: &[&str]) -> ImageCommand {
        ImageCommand {
            entrypoint: entrypoint.iter().map(|s| s.to_string()).collect(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/usr/bin:/bin".into()],
            working_dir: None,
        }
    }

    fn no_analysis(_: &Path) -> Option<FileReport> {
        None
    }

    #[test]
    fn nothing_to_run_a_missing_program_and_a_missing_shell() {
        let root = tempfile::tempdir().unwrap();
        let (s, _) = start(root.path(), &command(&[], &[]), &mut no_analysis);
        assert!(matches!(s, Start::NoCommand), "{s:?}");
        let (s, _) = start(root.path(), &command(&["app"], &[]), &mut no_analysis);
        match &s {
            Start::NotFound { searched, .. } => {
                assert_eq!(searched, &["/usr/bin/app", "/bin/app"])
            }
            other => panic!("{other:?}"),
        }
        assert!(
            s.explain().contains("no such file or directory"),
            "{}",
            s.explain()
        );
        let (s, _) = start(
            root.path(),
            &command(&[], &["/bin/sh", "-c", "/app --serve"]),
            &mut no_analysis,
        );
        assert!(
            matches!(&s, Start::ShellMissing { shell } if shell == "/bin/sh"),
            "{s:?}"
        );
        assert!(!s.starts());
    }

    #[test]
    fn a_link_out_of_the_root_is_followed_inside_it() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        std::fs::write(root.path().join("usr/bin/real"), b"#!/bin/sh\n").unwrap();
        // Absolute target: inside the image it is /usr/bin/real, not the host's.
        symlink("/usr/bin/real", root.path().join("usr/bin/app")).unwrap();
        let (s, _) = start(root.path(), &command(&["app"], &[]), &mut no_analysis);
        assert!(
            matches!(&s, Start::NotElf { path, .. } if path == "/usr/bin/app"),
            "{s:?}"
        );
    }

    #[test]
    fn an_image_with_libgcc_s_answers_the_libgcc_s_hazard() {
        let root = tempfile::tempdir().unwrap();
        let finding = |code| crate::verify::Finding {
            code,
            severity: crate::verify::Severity::Warning,
            what: String::new(),
            why: String::new(),
            fix: String::new(),
        };
        let all = || {
            vec![
                finding(crate::verify::LIBGCC_S_HAZARD),
                finding(crate::verify::IDN_HAZARD),
                finding(crate::verify::GCONV_HAZARD),
            ]
        };
        let codes = |f: &[crate::verify::Finding]| f.iter().map(|f| f.code).collect::<Vec<_>>();
        let mut none = all();
        drop_answered_loads(root.path(), &mut none);
        assert_eq!(codes(&none), codes(&all()));
        std::fs::create_dir_all(root.path().join("usr/lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(
            root.path().join("usr/lib/x86_64-linux-gnu/libgcc_s.so.1"),
            b"x",
        )
        .unwrap();
        let mut some = all();
        drop_answered_loads(root.path(), &mut some);
        assert_eq!(
            codes(&some),
            [crate::verify::IDN_HAZARD, crate::verify::GCONV_HAZARD]
        );
    }

    #[test]
    fn libraries_are_found_in_the_default_folders_or_reported_missing() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("lib64")).unwrap();
        std::fs::create_dir_all(root.path().join("lib/x86_64-linux-gnu")).unwrap();
        std::fs::write(root.path().join("lib/x86_64-linux-gnu/ld.so"), b"x").unwrap();
        symlink(
            "/lib/x86_64-linux-gnu/ld.so",
            root.path().join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        std::fs::write(root.path().join("lib/x86_64-linux-gnu/libc.so.6"), b"x").unwrap();
        let n = needs(
            root.path(),
            "/app",
            Some("/lib64/ld-linux-x86-64.so.2"),
            &["libc.so.6".into(), "libz.so.1".into()],
        );
        let found: Vec<Option<&str>> = n.iter().map(|n| n.found.as_deref()).collect();
        assert_eq!(
            found,
            [
                Some("/lib64/ld-linux-x86-64.so.2"),
                Some("/lib/x86_64-linux-gnu/libc.so.6"),
                None
            ]
        );
        let s = Start::Found {
            program: "/app".into(),
            path: "/app".into(),
            static_elf: false,
            needs: n,
        };
        assert!(!s.starts());
        assert!(
            s.explain().contains("libz.so.1 (needed by /app)"),
            "{}",
            s.explain()
        );
    }
}
