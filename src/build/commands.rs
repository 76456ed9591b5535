//! C with the project's own build system: `commands` run with `sh -c` in a copy of the source,
//! in the build jail, with staticpack's musl (or glibc) compiler in `CC` and a hermetic
//! environment; every command's output goes to `<build>/build.log`.

use super::process;
use super::{Artifact, BuildContext, BuildError, Step, musl};
use crate::fsio::IoContext;
use crate::recipe::{BuildSpec, CBuild, Commands, LibcChoice, LinkMode};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Lines of the log a failed command shows.
pub(crate) const LOG_TAIL_LINES: usize = 30;

pub(super) fn build(
    spec: &BuildSpec,
    c: &CBuild,
    cmds: &Commands,
    ctx: &BuildContext,
    report: &mut dyn FnMut(Step),
) -> Result<Artifact, BuildError> {
    let gcc = super::c_compiler(&spec.platform)?;
    let sh = super::require("sh", "build commands run with sh -c", "dash")?;
    let build = &ctx.build_dir;
    // A stale log from an earlier failure must not be mistaken for this build's.
    if let Some(keep) = &ctx.keep_log {
        let _ = std::fs::remove_file(keep);
    }
    // The user's folder is never written: the commands run in a copy (what the cache key saw).
    let tree = build.join("src");
    // An unpacked archive already is a private copy there (copying it onto itself would
    // truncate every file).
    if spec.source != tree {
        copy_tree(&spec.source, &tree)?;
    }
    let (toolchain, mut cc_args) = compiler_args(spec, &gcc, build, &tree, ctx.epoch)?;
    let sysroot = build.join("sysroot");
    if !spec.deps.is_empty() {
        // The dependencies' headers and archives, ahead of nothing but the compiler's own.
        cc_args.extend(sysroot_flags(&sysroot));
    }
    let bin = build.join("toolchain/bin");
    std::fs::create_dir_all(&bin).at("creating", &bin)?;
    // A wrapper, not `CC="gcc -specs …"`: libtool, cmake and Makefiles that call `gcc` by name
    // all get the same flags, and Makefiles that set CFLAGS themselves keep -fPIE and the maps.
    let mut wrapper = wrapper_script(&gcc, &cc_args, link_mode_flags(spec.link));
    if spec.libc == LibcChoice::Musl {
        // gcc would list the host's library folders, which the musl specs never link from;
        // build systems that search them themselves (meson's find_library) must not find a
        // host library there.
        let mut dirs = vec![gcc_lib_dir(&gcc), musl::find(&spec.platform)?.lib_dir];
        if !spec.deps.is_empty() {
            dirs.push(sysroot.join("lib"));
        }
        wrapper = with_search_dirs(&wrapper, &gcc, &cc_args, &dirs);
    }
    for name in ["cc", "gcc"] {
        write_executable(&bin.join(name), &wrapper)?;
    }
    if !spec.platform.is_host() {
        // Makefiles that call the cross compiler by name (CROSS_COMPILE=…-) get the wrapper too.
        let cross = format!("{}-gcc", spec.platform.gnu_triplet());
        write_executable(&bin.join(cross), &wrapper)?;
    }
    let pkgconfig = build.join("sysroot/lib/pkgconfig");
    std::fs::create_dir_all(&pkgconfig).at("creating", &pkgconfig)?;
    let destdir = build.join("destdir");
    std::fs::create_dir_all(&destdir).at("creating", &destdir)?;
    let mut env = environment(spec, c, &bin, build, &tree, &pkgconfig, &destdir);
    if !spec.platform.is_host() {
        // A recipe's own `./configure` (not system = "autotools", which passes --host) must
        // know it cross-compiles too, or it tries to run what it built: autoconf's site file.
        let site = build.join("toolchain/config.site");
        std::fs::write(&site, config_site(&spec.platform)).at("writing", &site)?;
        env.insert("CONFIG_SITE".into(), site.display().to_string());
    }
    if !spec.deps.is_empty() {
        // .pc files say prefix=/usr; the sysroot maps /usr onto itself (usr -> .).
        env.insert(
            "PKG_CONFIG_SYSROOT_DIR".into(),
            sysroot.display().to_string(),
        );
    }
    // A `system` stands for its usual commands, written out now and run like the recipe's own.
    let lines = match &cmds.system {
        Some(system) => super::systems::expand(
            system,
            &super::systems::Setup {
                tree: &tree,
                toolchain: &build.join("toolchain"),
                sysroot: &build.join("sysroot"),
                env: &env,
                install: cmds.artifact.is_none(),
                platform: &spec.platform,
            },
        )?,
        None => cmds.lines.clone(),
    };
    let toolchain = match &cmds.system {
        Some(s) => toolchain.replace(
            "the project's build commands",
            &format!("system = \"{}\"", s.system),
        ),
        None => toolchain,
    };

    let log_path = build.join("build.log");
    let mut log = std::fs::File::create(&log_path).at("creating", &log_path)?;
    let total = lines.len();
    let mut rendered = Vec::new();
    let mut environment = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let index = i + 1;
        let mut cmd = process::hermetic(&sh, build, ctx.epoch);
        // A fixed umask: what `make install` creates (mkdir -p, cp) gets the same modes
        // whatever the caller's umask (--check-repro builds a second time under 077). Through
        // the shell: no pre_exec hook (and no unsafe) in a multithreaded parent.
        cmd.envs(&env)
            .arg("-c")
            .arg(format!("umask 022\n{line}"))
            .current_dir(&tree);
        rendered.push(process::render(&cmd));
        if environment.is_empty() {
            environment = process::environment(&cmd);
        }
        writeln!(log, "$ {line}").at("writing", &log_path)?;
        report(Step::Started {
            index,
            total,
            command: line,
        });
        let started = Instant::now();
        let end = process::run_step_logged(cmd, ctx, &log, &log_path)?;
        let status = end.status;
        if end.killed > 0 {
            writeln!(
                log,
                "staticpack: command {index} left {} running: killed",
                processes(end.killed)
            )
            .at("writing", &log_path)?;
            report(Step::LeftRunning {
                index,
                total,
                killed: end.killed,
            });
        }
        report(Step::Finished {
            index,
            total,
            elapsed: started.elapsed(),
        });
        if !status.success() {
            drop(log);
            let log = keep_log(&log_path, ctx);
            return Err(BuildError::CommandFailed {
                index,
                total,
                command: line.clone(),
                status: status.to_string(),
                excerpt: format!(
                    "{}  last lines of the build log:\n{}",
                    error_lines(&log_path, ERROR_LINES),
                    tail(&log_path, LOG_TAIL_LINES)
                ),
                log,
            });
        }
    }
    let (binary, installed) = match &cmds.artifact {
        Some(rel) => (built_artifact(&tree, rel, build)?, None),
        None => (installed_entry(&destdir)?, Some(destdir)),
    };
    if c.strip && installed.is_none() {
        let strip = super::require(
            &binutil(spec, "strip"),
            "strip = true strips the artifact",
            &binutils_package(spec),
        )?;
        let mut cmd = process::hermetic(&strip, build, ctx.epoch);
        cmd.arg("--strip-all").arg(&binary);
        rendered.push(process::render(&cmd));
        process::run_step(cmd, ctx)?;
    }
    Ok(Artifact {
        binary,
        toolchain,
        commands: rendered,
        environment,
        installed,
        linked_packages: None,
    })
}

/// "1 process", "3 processes".
pub(crate) fn processes(n: u32) -> String {
    if n == 1 {
        "1 process".into()
    } else {
        format!("{n} processes")
    }
}

/// The driver flags every compile and link gets, and the toolchain line.
fn compiler_args(
    spec: &BuildSpec,
    gcc: &Path,
    build: &Path,
    tree: &Path,
    epoch: u64,
) -> Result<(String, Vec<String>), BuildError> {
    let version = process::version_line(gcc);
    let mut args = Vec::new();
    let toolchain = match spec.libc {
        LibcChoice::Musl => {
            let (specs, m) = musl::write_specs(build, &spec.platform)?;
            args.push("-specs".to_owned());
            args.push(specs.display().to_string());
            format!("{version} + musl ({})", m.lib_dir.display())
        }
        LibcChoice::Glibc => format!("{version} + glibc"),
        LibcChoice::None => {
            return Err(BuildError::Unsupported(
                "C needs a libc: musl or glibc".into(),
            ));
        }
    };
    args.extend(
        link_flags(spec.link)
            .iter()
            .filter(|f| !link_mode_flags(spec.link).contains(f))
            .map(|s| (*s).to_owned()),
    );
    args.extend(prefix_maps(build, tree));
    args.extend(super::timestamp_macro(epoch));
    Ok((format!("{toolchain}, the project's build commands"), args))
}

/// `-I` and `-L` for the dependencies' sysroot.
pub(super) fn sysroot_flags(sysroot: &Path) -> [String; 2] {
    [
        format!("-I{}", sysroot.join("include").display()),
        format!("-L{}", sysroot.join("lib").display()),
    ]
}

fn link_flags(link: LinkMode) -> &'static [&'static str] {
    match link {
        // Link-only flags are ignored by gcc when it only compiles (-c, -E).
        LinkMode::StaticPie => &["-fPIE", "-static-pie"],
        LinkMode::Static => &["-static"],
        LinkMode::Dynamic => &[],
    }
}

/// The flags that choose how the final link is made: not given to a relocatable link (`-r`),
/// which ld refuses to combine with `-pie` (busybox and kbuild projects link `built-in.o` with
/// `$(CC) -nostdlib -r`).
fn link_mode_flags(link: LinkMode) -> &'static [&'static str] {
    match link {
        LinkMode::StaticPie => &["-static-pie"],
        LinkMode::Static => &["-static"],
        LinkMode::Dynamic => &[],
    }
}

/// No host path may reach the binary: the copy and the build folder get fixed names. gcc tries
/// the last map first, and the copy is inside the build folder: its map comes last.
fn prefix_maps(build: &Path, tree: &Path) -> Vec<String> {
    vec![
        format!("-ffile-prefix-map={}=/build", build.display()),
        format!("-ffile-prefix-map={}=/src", tree.display()),
    ]
}

fn wrapper_script(gcc: &Path, args: &[String], link_mode: &[&str]) -> String {
    let quote = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let base: Vec<String> = std::iter::once(gcc.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| quote(&a))
        .collect();
    let base = base.join(" ");
    let mode: Vec<String> = link_mode.iter().map(|a| quote(a)).collect();
    let mode = mode.join(" ");
    // A relocatable link: no link mode (also none from the project's LDFLAGS), and -no-pie,
    // since Debian's gcc passes -pie to ld by default and `-Wl,-r` hides the -r from gcc.
    format!(
        "#!/bin/sh\n\
         for a in \"$@\"; do case \"$a\" in -r|-Wl,-r|-Wl,--relocatable)\n\
         \x20 for b in \"$@\"; do shift; case \"$b\" in -static-pie|-static|-pie) ;; *) set -- \"$@\" \"$b\";; esac; done\n\
         \x20 exec {base} -no-pie \"$@\";;\n\
         esac; done\n\
         exec {base} {mode} \"$@\"\n"
    )
}

/// The folder of gcc's own libgcc.a (part of the C toolchain).
fn gcc_lib_dir(gcc: &Path) -> PathBuf {
    let out = std::process::Command::new(gcc)
        .arg("-print-libgcc-file-name")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    Path::new(out.trim())
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `wrapper`, answering `-print-search-dirs` (or `--…`) with `dirs` as its `libraries:` line.
fn with_search_dirs(wrapper: &str, gcc: &Path, args: &[String], dirs: &[PathBuf]) -> String {
    let q = |a: &str| format!("'{}'", a.replace('\'', r"'\''"));
    let call: Vec<String> = std::iter::once(gcc.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| q(&a))
        .collect();
    let list: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let body = wrapper.strip_prefix("#!/bin/sh\n").unwrap_or(wrapper);
    format!(
        "#!/bin/sh\nfor a in \"$@\"; do\n  case \"$a\" in\n  -print-search-dirs | --print-search-dirs)\n    {} \"$@\" | sed {}\n    exit\n    ;;\n  esac\ndone\n{body}",
        call.join(" "),
        q(&format!(
            "s|^libraries: =.*|libraries: ={}|",
            list.join(":")
        ))
    )
}

fn write_executable(path: &Path, text: &str) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).at("writing", path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).at("chmod", path)?;
    Ok(())
}

/// The variables the commands see on top of the hermetic base.
fn environment(
    spec: &BuildSpec,
    c: &CBuild,
    bin: &Path,
    build: &Path,
    tree: &Path,
    pkgconfig: &Path,
    destdir: &Path,
) -> BTreeMap<String, String> {
    let cc = bin.join("cc").display().to_string();
    let tool = |name: &str| {
        let name = binutil(spec, name);
        process::find_program(&name)
            .map(|p| p.display().to_string())
            .unwrap_or(name)
    };
    let mut cflags = vec!["-O2".to_owned()];
    if spec.link == LinkMode::StaticPie {
        cflags.push("-fPIE".to_owned());
    }
    cflags.extend(prefix_maps(build, tree));
    cflags.extend(c.cflags.iter().cloned());
    let mut ldflags: Vec<String> = link_flags(spec.link)
        .iter()
        .filter(|f| !f.starts_with("-f"))
        .map(|s| (*s).to_owned())
        .collect();
    ldflags.extend(c.ldflags.iter().cloned());
    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let pkg = pkgconfig.display().to_string();
    BTreeMap::from([
        (
            "PATH".into(),
            format!("{}:/usr/local/bin:/usr/bin:/bin", bin.display()),
        ),
        ("CC".into(), cc.clone()),
        ("CPP".into(), format!("{cc} -E")),
        ("AR".into(), tool("ar")),
        ("RANLIB".into(), tool("ranlib")),
        ("STRIP".into(), tool("strip")),
        ("NM".into(), tool("nm")),
        ("LD".into(), tool("ld")),
        ("CFLAGS".into(), cflags.join(" ")),
        ("LDFLAGS".into(), ldflags.join(" ")),
        // Only the recipe's dependencies (none yet): never the host's .pc files.
        ("PKG_CONFIG_PATH".into(), pkg.clone()),
        ("PKG_CONFIG_LIBDIR".into(), pkg),
        ("JOBS".into(), jobs.to_string()),
        ("PREFIX".into(), "/usr".into()),
        ("DESTDIR".into(), destdir.display().to_string()),
    ])
}

/// Autoconf's site file for a cross build: the host it is for when `--host` was not given
/// (read before AC_CANONICAL_HOST, after the options), and never running test programs.
fn config_site(platform: &crate::recipe::Platform) -> String {
    let triplet = platform.gnu_triplet();
    format!(
        "# Written by staticpack: a cross build for {platform}.\n\
         if test -z \"$host_alias\"; then host_alias={triplet}; ac_tool_prefix={triplet}-; fi\n\
         cross_compiling=yes\n"
    )
}

/// A binutils program for the spec's platform: the host's, or the cross one
/// (`aarch64-linux-gnu-strip`): the host's strip and nm do not read another CPU's objects.
fn binutil(spec: &BuildSpec, name: &str) -> String {
    if spec.platform.is_host() {
        name.to_owned()
    } else {
        format!("{}-{name}", spec.platform.gnu_triplet())
    }
}

fn binutils_package(spec: &BuildSpec) -> String {
    if spec.platform.is_host() {
        "binutils".to_owned()
    } else {
        format!("binutils-{}", spec.platform.gnu_triplet())
    }
}

/// Copies `from` into the new folder `to`: symlinks as symlinks, modes kept, the folders the
/// cache key skips (`.git`, `out`, `target`) left out.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).at("creating", to)?;
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .at("reading", from)?
        .collect::<Result<_, _>>()
        .at("reading", from)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let kind = e.file_type().at("reading", &src)?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&src).at("reading the link", &src)?;
            std::os::unix::fs::symlink(&target, &dst).at("creating the link", &dst)?;
        } else if kind.is_dir() {
            if matches!(e.file_name().to_str(), Some(".git" | "out" | "target")) {
                continue;
            }
            copy_tree(&src, &dst)?;
            let mode = e.metadata().at("reading", &src)?.permissions().mode();
            // Write permission for ourselves, or the commands could not build in it.
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(mode | 0o700))
                .at("chmod", &dst)?;
        } else if kind.is_file() {
            // std::fs::copy keeps the mode bits.
            std::fs::copy(&src, &dst).at("copying", &src)?;
        }
        // Sockets, fifos and devices have no place in a source tree: not copied.
    }
    Ok(())
}

/// The artifact in the copy: a regular file (through symlinks) inside the build folder.
fn built_artifact(tree: &Path, rel: &str, build: &Path) -> Result<PathBuf, BuildError> {
    let path = tree.join(rel);
    let real = path.canonicalize().ok().filter(|p| p.is_file());
    let inside = build.canonicalize().ok();
    match (real, inside) {
        (Some(real), Some(build)) if real.starts_with(&build) => Ok(real),
        (Some(real), _) => Err(BuildError::Unsupported(format!(
            "artifact {rel:?} resolves to {}, outside the build folder",
            real.display()
        ))),
        _ => Err(BuildError::Unsupported(format!(
            "the commands succeeded but made no file {rel:?} in the build tree (artifact is relative to build.source)"
        ))),
    }
}

/// With install = true: the binary slot holds nothing built on its own; the tree must not be
/// empty.
fn installed_entry(destdir: &Path) -> Result<PathBuf, BuildError> {
    let empty = std::fs::read_dir(destdir)
        .at("reading", destdir)?
        .next()
        .is_none();
    if empty {
        return Err(BuildError::Unsupported(
            "install = true, but the commands installed nothing under $DESTDIR (run `make install` or pass DESTDIR to it)".into(),
        ));
    }
    Ok(destdir.to_path_buf())
}

/// Copies the log where it outlives the build folder; the path to show.
fn keep_log(log: &Path, ctx: &BuildContext) -> PathBuf {
    match &ctx.keep_log {
        Some(keep) => {
            let copied = keep
                .parent()
                .map(|p| std::fs::create_dir_all(p).is_ok())
                .unwrap_or(true)
                && std::fs::copy(log, keep).is_ok();
            if copied {
                keep.clone()
            } else {
                log.to_path_buf()
            }
        }
        None => log.to_path_buf(),
    }
}

/// The last `n` lines of a file, each indented for the error.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(n);
    let body: Vec<String> = lines[start..].iter().map(|l| quoted(l)).collect();
    if body.is_empty() {
        "  (no output)".into()
    } else {
        body.join("\n")
    }
}

/// At most this many of the lines that carry a build's error are shown before the tail.
const ERROR_LINES: usize = 8;
/// A log line longer than this (a compiler's command line) is cut in the error.
const LINE_CAP: usize = 400;

fn quoted(line: &str) -> String {
    match line.char_indices().nth(LINE_CAP) {
        Some((at, _)) => format!("  | {}…", &line[..at]),
        None => format!("  | {line}"),
    }
}

/// Whether a log line is one a build system or compiler writes when something fails.
fn carries_an_error(line: &str) -> bool {
    const MARKERS: &[&str] = &[
        "error:",
        "Error ",
        "Error:",
        "ERROR:",
        "*** ",
        "undefined reference",
        "configure: error",
        "command not found",
        "No such file or directory",
    ];
    MARKERS.iter().any(|m| line.contains(m))
}

/// The first `max` lines of the log that carry its error, under a heading (the real error is
/// often far above the tail, behind pages of compiler command lines); empty when none does.
pub(crate) fn error_lines(path: &Path, max: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let mut found: Vec<String> = Vec::new();
    for line in text.lines().filter(|l| carries_an_error(l)) {
        let line = quoted(line.trim_end());
        if !found.contains(&line) {
            found.push(line);
        }
        if found.len() == max {
            break;
        }
    }
    if found.is_empty() {
        String::new()
    } else {
        format!("  the lines that say what failed:\n{}\n", found.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_keeps_symlinks_and_modes_and_skips_out() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("s");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::create_dir_all(src.join("out")).unwrap();
        std::fs::write(src.join("configure"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.join("configure"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::os::unix::fs::symlink("../configure", src.join("sub/link")).unwrap();
        let to = d.path().join("c");
        copy_tree(&src, &to).unwrap();
        let mode = std::fs::metadata(to.join("configure"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o751);
        assert_eq!(
            std::fs::read_link(to.join("sub/link")).unwrap(),
            Path::new("../configure")
        );
        assert!(!to.join("out").exists());
    }

    #[test]
    fn the_error_comes_first_however_much_follows_it() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let mut text = String::from("checking for gcc... yes\n");
        text.push_str("main.c:3:5: error: 'x' undeclared (first use in this function)\n");
        text.push_str("make[1]: *** [Makefile:12: main.o] Error 1\n");
        for i in 0..200 {
            text.push_str(&format!("cc -O2 -c file{i}.c {}\n", "-DLONG ".repeat(100)));
        }
        std::fs::write(&p, &text).unwrap();
        let errors = error_lines(&p, ERROR_LINES);
        assert!(
            errors.starts_with("  the lines that say what failed:\n"),
            "{errors}"
        );
        assert!(
            errors.contains("  | main.c:3:5: error: 'x' undeclared"),
            "{errors}"
        );
        assert!(
            errors.contains("  | make[1]: *** [Makefile:12: main.o] Error 1"),
            "{errors}"
        );
        assert!(!errors.contains("checking for gcc"), "{errors}");
        // The tail's long command lines are cut, so the error stays on the first screen.
        assert!(
            tail(&p, LOG_TAIL_LINES)
                .lines()
                .all(|l| l.chars().count() <= LINE_CAP + 5)
        );
        std::fs::write(&p, "all fine\n").unwrap();
        assert_eq!(error_lines(&p, ERROR_LINES), "");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let t = tail(&p, 30);
        assert!(t.starts_with("  | line 11\n"), "{t}");
        assert!(t.ends_with("  | line 40"), "{t}");
        assert_eq!(tail(&d.path().join("none"), 30), "  (no output)");
    }

    #[test]
    fn the_wrapper_names_only_the_given_library_folders() {
        let gcc = process::find_program("gcc").expect("gcc (apt-get install gcc)");
        let d = tempfile::tempdir().unwrap();
        let dirs = [PathBuf::from("/opt/musl/lib"), d.path().join("sysroot/lib")];
        let script = with_search_dirs(&wrapper_script(&gcc, &[], &[]), &gcc, &[], &dirs);
        let path = d.path().join("cc");
        write_executable(&path, &script).unwrap();
        for flag in ["-print-search-dirs", "--print-search-dirs"] {
            let out = std::process::Command::new(&path)
                .arg(flag)
                .output()
                .unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            let libraries = text.lines().find(|l| l.starts_with("libraries:")).unwrap();
            assert_eq!(
                libraries,
                format!("libraries: =/opt/musl/lib:{}", dirs[1].display()),
                "{flag}"
            );
            assert!(text.contains("programs: ="), "{text}");
        }
    }

    #[test]
    fn the_wrapper_quotes_its_flags() {
        let w = wrapper_script(
            Path::new("/usr/bin/gcc"),
            &["-specs".into(), "/b it's".into()],
            &["-static-pie"],
        );
        assert!(
            w.ends_with("exec '/usr/bin/gcc' '-specs' '/b it'\\''s' '-static-pie' \"$@\"\n"),
            "{w}"
        );
        assert!(
            w.contains("exec '/usr/bin/gcc' '-specs' '/b it'\\''s' -no-pie \"$@\";;"),
            "{w}"
        );
    }

    /// kbuild's partial link (`$(CC) -nostdlib -Wl,-r`) must not get -static-pie, and the final
    /// link of its output still must: run with the real gcc and musl.
    #[test]
    fn a_relocatable_link_through_the_wrapper_works_and_the_final_link_is_static_pie() {
        let Ok(gcc) = crate::build::require("gcc", "test", "gcc") else {
            panic!("gcc must be installed (apt-get install gcc)");
        };
        let d = tempfile::tempdir().unwrap();
        let (specs, _) =
            musl::write_specs(d.path(), &crate::recipe::Platform::host_or_default()).unwrap();
        let cc = d.path().join("cc");
        let args = vec!["-specs".into(), specs.display().to_string(), "-fPIE".into()];
        write_executable(&cc, &wrapper_script(&gcc, &args, &["-static-pie"])).unwrap();
        std::fs::write(d.path().join("a.c"), "int two(void) { return 2; }\n").unwrap();
        std::fs::write(
            d.path().join("m.c"),
            "int two(void);\nint main(void) { return two() == 2 ? 7 : 1; }\n",
        )
        .unwrap();
        let sh = |line: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(line)
                .current_dir(d.path())
                .status()
                .unwrap()
        };
        assert!(sh("./cc -c a.c && ./cc -c m.c").success());
        // Both spellings, and with the project's own LDFLAGS holding -static-pie.
        assert!(sh("./cc -nostdlib -static-pie -r -o part.o a.o").success());
        assert!(sh("./cc -nostdlib -Wl,-r -o built-in.o part.o m.o").success());
        assert!(sh("./cc -o prog built-in.o").success());
        let bytes = std::fs::read(d.path().join("prog")).unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        assert!(elf.interpreter.is_none(), "no ELF interpreter");
        assert_eq!(elf.header.e_type, goblin::elf::header::ET_DYN, "a PIE");
        assert_eq!(sh("./prog").code(), Some(7));
    }
}
