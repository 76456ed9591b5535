//! Rust: one `cargo build --locked --offline` of a copy of the source, for the musl target
//! (the default) or the gnu target with `+crt-static`, in the build jail with no network.
//!
//! Dependencies come from the source's `vendor/` folder when it has one; otherwise from one
//! `cargo fetch --locked` into the shared cache's cargo home, the only step that may reach the
//! network (cargo checks every crate against Cargo.lock's checksums, so what it downloads
//! cannot change the output). A rebuild finds everything there and downloads nothing.
//!
//! Reproducible: the copy, the cargo home, the build folder and the toolchain are remapped
//! (`--remap-path-prefix`) to fixed names, so two builds in two folders make the same bytes.
//! The toolchain's own `rustc` and `cargo` are run (not rustup's proxies, which need the
//! caller's home): the jail sees the toolchain folder read-only.

use super::process;
use super::{Artifact, BuildContext, BuildError};
use crate::fsio::IoContext;
use crate::recipe::{BuildSpec, LibcChoice, LinkMode, RustBuild};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The names host paths are remapped to inside the binary.
const REMAP_SOURCE: &str = "/src";
const REMAP_CARGO_HOME: &str = "/cargo";
const REMAP_BUILD: &str = "/build";
const REMAP_TOOLCHAIN: &str = "/rust-toolchain";

/// The Rust toolchain the default `rustc` on PATH belongs to.
#[derive(Clone, Debug)]
pub(crate) struct Toolchain {
    /// `rustc --print sysroot`.
    pub sysroot: PathBuf,
    pub rustc: PathBuf,
    pub cargo: PathBuf,
}

impl Toolchain {
    /// Finds it through `rustc --print sysroot` (asked from `cwd`, so that no
    /// rust-toolchain.toml in the source picks, and downloads, another one).
    pub(crate) fn find(cwd: &Path) -> Result<Self, BuildError> {
        let proxy = super::require(
            "rustc",
            "lang = \"rust\" builds with the Rust toolchain",
            "rustc cargo (or rustup: https://rustup.rs)",
        )?;
        let mut cmd = Command::new(&proxy);
        cmd.args(["--print", "sysroot"]).current_dir(cwd);
        let sysroot = PathBuf::from(process::run(cmd)?.trim());
        let rustc = sysroot.join("bin/rustc");
        if !rustc.is_file() {
            return Err(BuildError::Unsupported(format!(
                "rustc --print sysroot said {}, which holds no bin/rustc",
                sysroot.display()
            )));
        }
        // rustup's toolchains carry their cargo; a distribution's is on PATH.
        let cargo = Some(sysroot.join("bin/cargo"))
            .filter(|c| c.is_file())
            .or_else(|| process::find_program("cargo"))
            .ok_or_else(|| BuildError::ToolMissing {
                tool: "cargo".into(),
                why: "lang = \"rust\" builds with cargo".into(),
                install: "apt-get install cargo (or rustup component add cargo)".into(),
            })?;
        Ok(Toolchain {
            sysroot,
            rustc,
            cargo,
        })
    }

    /// Whether the standard library for `target` is installed.
    fn has_target(&self, target: &str) -> bool {
        self.sysroot
            .join("lib/rustlib")
            .join(target)
            .join("lib")
            .is_dir()
    }

    /// `rustc -vV`, one line per field, and `cargo -V`: what goes into the cache key and the
    /// provenance.
    pub(crate) fn versions(&self) -> BTreeMap<String, String> {
        let ask = |program: &Path, arg: &str| {
            Command::new(program)
                .arg(arg)
                .stdin(std::process::Stdio::null())
                .output()
                .ok()
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().lines().collect::<Vec<_>>().join("; "))
                .unwrap_or_else(|| "unknown version".into())
        };
        BTreeMap::from([
            ("rustc".to_owned(), ask(&self.rustc, "-vV")),
            ("cargo".to_owned(), ask(&self.cargo, "-V")),
        ])
    }
}

/// `cargo build` of the recipe's package for the libc's target, statically linked.
pub(super) fn build(
    spec: &BuildSpec,
    rb: &RustBuild,
    ctx: &BuildContext,
    report: &mut dyn FnMut(super::Step),
) -> Result<Artifact, BuildError> {
    let tc = Toolchain::find(Path::new("/"))?;
    let target = RustBuild::target(spec.libc, &spec.platform);
    if !tc.has_target(&target) {
        return Err(BuildError::ToolMissing {
            tool: format!("the Rust standard library for {target}"),
            why: format!("libc = \"{}\" builds for {target}", spec.libc),
            install: format!("rustup target add {target}"),
        });
    }
    if spec.link == LinkMode::StaticPie && !makes_static_pie(&target) {
        return Err(BuildError::Unsupported(format!(
            "link = \"static-pie\": Rust's {target} target makes no static-pie (its target spec lacks \
             static-position-independent-executables, so rustc links crt1.o with -no-pie and the binary \
             is ET_EXEC). Fix: link = \"static\" for {}",
            spec.platform
        )));
    }
    // Another CPU links with the cross gcc (Rust's musl targets bring their own crt and libc).
    let cross_linker = if spec.platform.is_host() {
        None
    } else {
        let gcc = super::require(
            &spec.platform.gcc(),
            &format!("{target} links with the cross C compiler"),
            &spec.platform.gcc_package(),
        )?;
        Some((linker_variable(&target), gcc))
    };
    if spec.libc == LibcChoice::Glibc {
        super::require(
            "gcc",
            "the gnu target links with the C compiler and glibc's static libraries",
            "gcc libc6-dev",
        )?;
    }
    // A copy, so that nothing cargo or a build script writes lands in the recipe's folder.
    let copy = ctx.build_dir.join("rust-src");
    super::commands::copy_tree(&spec.source, &copy)?;
    let vendored = copy.join("vendor").is_dir();
    // The build's own cargo home: cargo unpacks the crates' sources into it, where build
    // scripts (someone else's code) may write — never into another build's. Downloads go to
    // the shared cache's cargo home, written only by `cargo fetch` and read-only to builds.
    let cargo_home = ctx.build_dir.join("cargo-home");
    std::fs::create_dir_all(&cargo_home).at("creating the cargo home", &cargo_home)?;
    let downloads = match &ctx.cache {
        Some(cache) if !vendored => cache.cargo_home(),
        _ => cargo_home.clone(),
    };
    std::fs::create_dir_all(downloads.join("registry"))
        .at("creating the cargo home", &downloads)?;
    // The jail also sees the toolchain (read-only).
    let mut ctx = ctx.clone();
    if let Some(jail) = &mut ctx.jail {
        jail.inputs.push(tc.sysroot.clone());
        if let Some(cargo_dir) = tc.cargo.parent() {
            jail.inputs.push(cargo_dir.to_path_buf());
        }
    }
    let paths = Paths {
        build_dir: ctx.build_dir.clone(),
        copy,
        cargo_home,
        downloads,
        sysroot: tc.sysroot.clone(),
    };
    let mut commands = Vec::new();
    let mut vendor_config = Vec::new();
    if vendored {
        vendor_config = vec![
            "--config".to_owned(),
            "source.crates-io.replace-with=\"vendored-sources\"".to_owned(),
            "--config".to_owned(),
            format!(
                "source.vendored-sources.directory={:?}",
                paths.copy.join("vendor").display().to_string()
            ),
        ];
    } else {
        commands.extend(fetch(&tc, &paths, &target, &ctx)?);
        let bad = unverified_crates(&paths.copy.join("Cargo.lock"), &paths.downloads)?;
        if !bad.is_empty() {
            // Never used: removed, reported and downloaded again (cargo checks the new ones).
            for (entry, reason) in &bad {
                let _ = std::fs::remove_file(entry);
                report(super::Step::CacheRejected {
                    entry: entry.clone(),
                    reason: reason.clone(),
                });
            }
            fetch(&tc, &paths, &target, &ctx)?;
            if let Some((entry, reason)) =
                unverified_crates(&paths.copy.join("Cargo.lock"), &paths.downloads)?
                    .into_iter()
                    .next()
            {
                return Err(BuildError::Unsupported(format!(
                    "the downloaded crate {} does not match Cargo.lock ({reason}) even after downloading it again",
                    entry.display()
                )));
            }
        }
        link_downloads(&paths)?;
        if let Some(jail) = &mut ctx.jail {
            jail.inputs.push(paths.downloads.join("registry"));
        }
    }

    let mut cmd = cargo(&tc, &paths, &ctx);
    cmd.env("CARGO_TARGET_DIR", ctx.build_dir.join("target"))
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            rustflags(spec.link, rb.strip, &paths).join("\x1f"),
        )
        .env("CARGO_INCREMENTAL", "0");
    if let Some((variable, gcc)) = &cross_linker {
        cmd.env(variable, gcc);
    }
    cmd.args(build_args(rb, &target));
    cmd.args(&vendor_config);
    commands.push(process::render(&cmd));
    let environment = process::environment(&cmd)
        .into_iter()
        .map(|(k, v)| (k, paths.stable(&v)))
        .collect();
    let commands = commands.iter().map(|c| paths.stable(c)).collect();
    let out = process::run_step(cmd, &ctx).map_err(without_json)?;
    let built = executable(&out, rb)?;
    let linked = linked_packages(&out, &ctx.build_dir.join("target").join(&target));
    let binary = super::output_path(&ctx, &spec.output)?;
    super::copy(&built, &binary)?;
    let rustc = tc.versions().remove("rustc").unwrap_or_default();
    let release = rustc
        .split("; ")
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("unknown");
    Ok(Artifact {
        binary,
        toolchain: format!(
            "rustc {release} ({target}{})",
            match spec.libc {
                LibcChoice::Glibc => ", +crt-static",
                LibcChoice::Musl | LibcChoice::None => "",
            }
        ),
        commands,
        environment,
        installed: None,
        linked_packages: Some(linked),
    })
}

/// The host folders a build uses, each remapped to a fixed name in the binary.
struct Paths {
    build_dir: PathBuf,
    copy: PathBuf,
    /// The build's own `CARGO_HOME`.
    cargo_home: PathBuf,
    /// Where `cargo fetch` downloads (the shared cache's cargo home, or `cargo_home`).
    downloads: PathBuf,
    sysroot: PathBuf,
}

/// The downloaded index and `.crate` files, seen from the build's own cargo home (read-only
/// in the jail); cargo unpacks the sources into the build's `registry/src`.
fn link_downloads(paths: &Paths) -> Result<(), BuildError> {
    if paths.downloads == paths.cargo_home {
        return Ok(());
    }
    let registry = paths.cargo_home.join("registry");
    std::fs::create_dir_all(&registry).at("creating", &registry)?;
    for part in ["index", "cache"] {
        let shared = paths.downloads.join("registry").join(part);
        std::fs::create_dir_all(&shared).at("creating", &shared)?;
        let link = registry.join(part);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&shared, &link).at("creating the link", &link)?;
        }
    }
    Ok(())
}

/// The `.crate` files under `<downloads>/registry/cache` that do not hash to Cargo.lock's
/// checksum for their package, with why: staticpack's own check of every download before a
/// build uses it (cargo checks a crate when it downloads it, not when it finds it cached).
fn unverified_crates(lock: &Path, downloads: &Path) -> Result<Vec<(PathBuf, String)>, BuildError> {
    let text = std::fs::read_to_string(lock).at("reading", lock)?;
    let expected = lock_checksums(&text);
    let cache = downloads.join("registry").join("cache");
    let mut bad = Vec::new();
    let Ok(indexes) = std::fs::read_dir(&cache) else {
        return Ok(bad);
    };
    for index in indexes.flatten() {
        for (file, checksum) in &expected {
            let path = index.path().join(file);
            let Ok(mut f) = std::fs::File::open(&path) else {
                continue;
            };
            let actual = crate::digest::Digest::of_reader(&mut f).at("reading", &path)?;
            if actual.hex() != checksum {
                bad.push((
                    path,
                    format!("sha256 {} where Cargo.lock says {checksum}", actual.hex()),
                ));
            }
        }
    }
    Ok(bad)
}

/// `name-version.crate` → sha256 of every registry package in a Cargo.lock.
fn lock_checksums(text: &str) -> Vec<(String, String)> {
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(packages) = doc.get("package").and_then(|p| p.as_array()) else {
        return Vec::new();
    };
    packages
        .iter()
        .filter_map(|p| {
            let field = |k: &str| p.get(k).and_then(|v| v.as_str());
            field("source")?.starts_with("registry+").then_some(())?;
            Some((
                format!("{}-{}.crate", field("name")?, field("version")?),
                field("checksum")?.to_owned(),
            ))
        })
        .collect()
}

impl Paths {
    /// `text` with the toolchain and the cargo home (often in $HOME) named, for the report and
    /// the provenance; the pipeline names the build folder.
    fn stable(&self, text: &str) -> String {
        text.replace(&self.sysroot.display().to_string(), "<rust-toolchain>")
            .replace(&self.cargo_home.display().to_string(), "<cargo-home>")
            .replace(&self.downloads.display().to_string(), "<cargo-home>")
    }
}

/// A hermetic cargo command run from the copy, with the toolchain's rustc.
fn cargo(tc: &Toolchain, paths: &Paths, ctx: &BuildContext) -> Command {
    let mut cmd = process::hermetic(&tc.cargo, &ctx.build_dir, ctx.epoch);
    cmd.current_dir(&paths.copy)
        .env("CARGO_HOME", &paths.cargo_home)
        .env("RUSTC", &tc.rustc)
        .env("CARGO_TERM_COLOR", "never")
        .env("CARGO_TERM_PROGRESS_WHEN", "never");
    // The toolchain's folder first, for rustc's helpers (rust-lld, build scripts' `rustc`),
    // when cargo (first already) is not from it.
    if let Some(bin) = tc.rustc.parent().filter(|b| Some(*b) != tc.cargo.parent()) {
        let path = cmd
            .get_envs()
            .find(|(k, _)| *k == "PATH")
            .and_then(|(_, v)| v.map(|v| v.to_os_string()))
            .unwrap_or_default();
        let mut dirs = vec![bin.to_path_buf()];
        dirs.extend(std::env::split_paths(&path));
        if let Ok(joined) = std::env::join_paths(dirs) {
            cmd.env("PATH", joined);
        }
    }
    cmd
}

/// The dependencies into the cargo home: nothing to do when a `--offline` check finds them all
/// there already; otherwise the one step with the network.
fn fetch(
    tc: &Toolchain,
    paths: &Paths,
    target: &str,
    ctx: &BuildContext,
) -> Result<Vec<String>, BuildError> {
    let host = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    // Build scripts and proc macros are built for the host: their crates are needed too.
    let mut args = vec!["fetch", "--locked", "--target", target];
    if target != host {
        args.extend(["--target", &host]);
    }
    // Into the downloads, which only this step may write.
    let mut ctx = ctx.clone();
    if let Some(jail) = &mut ctx.jail {
        if !paths.downloads.starts_with(&ctx.build_dir) {
            jail.writable.push(paths.downloads.clone());
        }
    }
    let ctx = &ctx;
    let fetching = |cmd: &mut Command| {
        cmd.env("CARGO_HOME", &paths.downloads);
    };
    let mut offline = cargo(tc, paths, ctx);
    fetching(&mut offline);
    offline.args(&args).arg("--offline");
    let mut online = cargo(tc, paths, ctx);
    fetching(&mut online);
    online.args(&args).env("CARGO_NET_RETRY", "2");
    // One recorded command whatever the cache held: the provenance (and the SLSA statement
    // made from it) must not depend on the cache's state, or a cold first build and its warm
    // --check-repro second build differ. The offline try is how it is run, not what it means.
    let line = process::render(&online);
    if process::run_step(offline, ctx).is_ok() {
        return Ok(vec![line]);
    }
    let mut networked = ctx.clone();
    if let Some(jail) = &mut networked.jail {
        jail.network = true;
    }
    process::run_step(online, &networked).map_err(|e| {
        BuildError::Unsupported(format!(
            "cargo fetch (the one step with network) failed: {e}\n  Fix: check the network (a rebuild then needs none: the crates stay in the cache's cargo home), or vendor the dependencies into the source (`cargo vendor`, a vendor/ folder)"
        ))
    })?;
    Ok(vec![line])
}

/// Whether rustc links a static-pie for the target with `+crt-static`: the one target built
/// here whose spec says no is aarch64-unknown-linux-musl (as of Rust 1.95).
fn makes_static_pie(target: &str) -> bool {
    target != "aarch64-unknown-linux-musl"
}

/// `CARGO_TARGET_<TRIPLE>_LINKER`: cargo's setting of one target's linker.
fn linker_variable(target: &str) -> String {
    format!(
        "CARGO_TARGET_{}_LINKER",
        target.to_ascii_uppercase().replace('-', "_")
    )
}

/// `CARGO_ENCODED_RUSTFLAGS` (for the target's crates only, not build scripts): the static
/// link asked for, the remapped paths, the strip.
fn rustflags(link: LinkMode, strip: bool, paths: &Paths) -> Vec<String> {
    let mut flags = vec!["-Ctarget-feature=+crt-static".to_owned()];
    // The targets' default relocation model is PIC: with crt-static that is a static-pie.
    if link == LinkMode::Static {
        flags.push("-Crelocation-model=static".to_owned());
    }
    if strip {
        flags.push("-Cstrip=symbols".to_owned());
    }
    // The last matching prefix wins: the folders inside the build folder come after it.
    for (from, to) in [
        (&paths.sysroot, REMAP_TOOLCHAIN),
        (&paths.build_dir, REMAP_BUILD),
        (&paths.cargo_home, REMAP_CARGO_HOME),
        (&paths.copy, REMAP_SOURCE),
    ] {
        flags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    flags
}

/// The `cargo build` arguments of a recipe (pure, so the flag logic is unit-tested).
fn build_args(rb: &RustBuild, target: &str) -> Vec<String> {
    let mut args = vec![
        "build".to_owned(),
        "--locked".to_owned(),
        "--offline".to_owned(),
        "--target".to_owned(),
        target.to_owned(),
        "--profile".to_owned(),
        rb.profile.clone(),
        "--message-format=json-render-diagnostics".to_owned(),
    ];
    if let Some(p) = &rb.package {
        args.extend(["-p".to_owned(), p.clone()]);
    }
    if let Some(b) = &rb.bin {
        args.extend(["--bin".to_owned(), b.clone()]);
    }
    if !rb.features.is_empty() {
        args.extend(["--features".to_owned(), rb.features.join(",")]);
    }
    if !rb.default_features {
        args.push("--no-default-features".to_owned());
    }
    args
}

/// A failed build's output without cargo's JSON messages: the rendered diagnostics say why.
fn without_json(e: BuildError) -> BuildError {
    match e {
        BuildError::Failed {
            program,
            command,
            status,
            output,
        } => BuildError::Failed {
            program,
            command,
            status,
            output: output
                .lines()
                .filter(|l| !l.trim_start_matches("  | ").starts_with('{'))
                .collect::<Vec<_>>()
                .join("\n"),
        },
        other => other,
    }
}

/// The packages whose libraries cargo compiled for the target (under `target_dir`, the
/// `target/<triple>` folder) and so linked into the binary: not the build scripts, proc macros
/// and their dependencies, which run on the host; not dev-dependencies or other platforms'
/// crates, which cargo never compiled.
fn linked_packages(output: &str, target_dir: &Path) -> Vec<(String, String)> {
    let mut linked = std::collections::BTreeSet::new();
    for line in output.lines().filter(|l| l.starts_with('{')) {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let kinds: Vec<&str> = msg["target"]["kind"]
            .as_array()
            .map(|k| k.iter().filter_map(|v| v.as_str()).collect())
            .unwrap_or_default();
        let is_library = kinds
            .iter()
            .any(|k| matches!(*k, "lib" | "rlib" | "staticlib"));
        let for_target = msg["filenames"].as_array().is_some_and(|files| {
            files
                .iter()
                .filter_map(|f| f.as_str())
                .any(|f| Path::new(f).starts_with(target_dir))
        });
        if !(is_library && for_target) {
            continue;
        }
        if let Some(id) = msg["package_id"].as_str().and_then(package_name_version) {
            linked.insert(id);
        }
    }
    linked.into_iter().collect()
}

/// A cargo package id's name and version, in both spellings cargo has used:
/// `registry+https://…#name@1.0.0` (or `path+file:///…/name#1.0.0`, the name left out when it
/// is the folder's) and the older `name 1.0.0 (registry+https://…)`.
fn package_name_version(id: &str) -> Option<(String, String)> {
    if let Some((url, fragment)) = id.rsplit_once('#') {
        return match fragment.rsplit_once('@') {
            Some((name, version)) => Some((name.to_owned(), version.to_owned())),
            None => {
                let path = url.split(['?']).next()?.trim_end_matches('/');
                let name = path.rsplit('/').next()?;
                Some((name.to_owned(), fragment.to_owned()))
            }
        };
    }
    let mut words = id.split_whitespace();
    match (words.next(), words.next()) {
        (Some(name), Some(version)) => Some((name.to_owned(), version.to_owned())),
        _ => None,
    }
}

/// The one executable cargo reported building (its JSON messages on stdout).
fn executable(output: &str, rb: &RustBuild) -> Result<PathBuf, BuildError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    for line in output.lines().filter(|l| l.starts_with('{')) {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let name = msg["target"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        found.push((name, PathBuf::from(exe)));
    }
    match found.as_slice() {
        [(_, exe)] => Ok(exe.clone()),
        [] => Err(BuildError::Unsupported(format!(
            "cargo built no executable{}; Fix: name the binary target with bin = \"…\" (and its package with package = \"…\")",
            rb.package
                .as_ref()
                .map(|p| format!(" for package {p:?}"))
                .unwrap_or_default()
        ))),
        many => Err(BuildError::Unsupported(format!(
            "cargo built {} executables ({}); Fix: choose one with bin = \"NAME\"",
            many.len(),
            many.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rb() -> RustBuild {
        RustBuild {
            package: None,
            bin: None,
            features: Vec::new(),
            default_features: true,
            profile: "release".into(),
            strip: false,
        }
    }

    #[test]
    fn the_cross_linker_is_set_for_its_target_only() {
        assert_eq!(
            linker_variable("aarch64-unknown-linux-musl"),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER"
        );
    }

    #[test]
    fn build_args_say_locked_offline_target_profile_and_the_recipes_choices() {
        let t = "x86_64-unknown-linux-musl";
        assert_eq!(
            build_args(&rb(), t),
            [
                "build",
                "--locked",
                "--offline",
                "--target",
                t,
                "--profile",
                "release",
                "--message-format=json-render-diagnostics"
            ]
        );
        let all = RustBuild {
            package: Some("tool".into()),
            bin: Some("t".into()),
            features: vec!["a".into(), "dep/b".into()],
            default_features: false,
            profile: "dist".into(),
            strip: true,
        };
        let a = build_args(&all, t).join(" ");
        assert!(
            a.ends_with("--profile dist --message-format=json-render-diagnostics -p tool --bin t --features a,dep/b --no-default-features"),
            "{a}"
        );
    }

    #[test]
    fn rustflags_link_strip_and_remap_the_innermost_folders_last() {
        let paths = Paths {
            build_dir: "/tmp/b".into(),
            copy: "/tmp/b/rust-src".into(),
            cargo_home: "/tmp/b/cargo-home".into(),
            downloads: "/home/u/.cache/staticpack/cargo".into(),
            sysroot: "/home/u/.rustup/toolchains/stable".into(),
        };
        let pie = rustflags(LinkMode::StaticPie, false, &paths);
        assert_eq!(pie[0], "-Ctarget-feature=+crt-static");
        assert!(!pie.iter().any(|f| f.contains("relocation-model")));
        let st = rustflags(LinkMode::Static, true, &paths);
        assert!(st.contains(&"-Crelocation-model=static".to_owned()));
        assert!(st.contains(&"-Cstrip=symbols".to_owned()));
        let remaps: Vec<&String> = st.iter().filter(|f| f.starts_with("--remap")).collect();
        assert_eq!(
            remaps.last().map(|s| s.as_str()),
            Some("--remap-path-prefix=/tmp/b/rust-src=/src")
        );
        let build = remaps.iter().position(|f| f.contains("/tmp/b=/build"));
        assert!(build < remaps.iter().position(|f| f.contains("rust-src")));
        // The build's own cargo home is inside the build folder: its map comes after.
        assert!(build < remaps.iter().position(|f| f.contains("cargo-home=/cargo")));
    }

    #[test]
    fn a_failed_build_shows_the_diagnostics_not_the_json() {
        let e = without_json(BuildError::Failed {
            program: "cargo".into(),
            command: "cargo build".into(),
            status: "exit status: 101".into(),
            output:
                "  | {\"reason\":\"compiler-artifact\"}\n  | error[E0425]: cannot find value `x`"
                    .into(),
        });
        let text = e.to_string();
        assert!(
            text.contains("error[E0425]") && !text.contains("reason"),
            "{text}"
        );
    }

    #[test]
    fn package_ids_in_both_spellings() {
        for (id, want) in [
            (
                "registry+https://github.com/rust-lang/crates.io-index#memchr@2.7.4",
                ("memchr", "2.7.4"),
            ),
            ("path+file:///src/hexyl#0.16.0", ("hexyl", "0.16.0")),
            ("path+file:///src/ws/cli#hexyl@0.16.0", ("hexyl", "0.16.0")),
            (
                "git+https://github.com/a/b?branch=main#c@0.1.0",
                ("c", "0.1.0"),
            ),
            (
                "anyhow 1.0.86 (registry+https://github.com/rust-lang/crates.io-index)",
                ("anyhow", "1.0.86"),
            ),
        ] {
            assert_eq!(
                package_name_version(id),
                Some((want.0.to_owned(), want.1.to_owned())),
                "{id}"
            );
        }
        assert_eq!(package_name_version(""), None);
    }

    #[test]
    fn linked_packages_are_the_target_libraries_only() {
        let msg = |id: &str, kind: &str, file: &str| {
            serde_json::json!({
                "reason": "compiler-artifact",
                "package_id": id,
                "target": {"kind": [kind], "name": "x"},
                "filenames": [file],
                "executable": null,
            })
            .to_string()
        };
        let reg = "registry+https://github.com/rust-lang/crates.io-index#";
        let out = [
            msg(
                &format!("{reg}memchr@2.7.4"),
                "lib",
                "/b/target/x86_64-unknown-linux-musl/release/deps/libmemchr.rlib",
            ),
            // A build dependency and a proc macro: compiled for the host.
            msg(
                &format!("{reg}cc@1.0.0"),
                "lib",
                "/b/target/release/deps/libcc.rlib",
            ),
            msg(
                &format!("{reg}serde_derive@1.0.0"),
                "proc-macro",
                "/b/target/release/deps/libserde_derive.so",
            ),
            // A build script of a linked crate.
            msg(
                &format!("{reg}libc@0.2.0"),
                "custom-build",
                "/b/target/release/build/libc-1/build-script-build",
            ),
            msg(
                &format!("{reg}libc@0.2.0"),
                "lib",
                "/b/target/x86_64-unknown-linux-musl/release/deps/liblibc.rlib",
            ),
            "not json".to_owned(),
            r#"{"reason":"build-finished","success":true}"#.to_owned(),
        ]
        .join("\n");
        assert_eq!(
            linked_packages(&out, Path::new("/b/target/x86_64-unknown-linux-musl")),
            vec![
                ("libc".to_owned(), "0.2.0".to_owned()),
                ("memchr".to_owned(), "2.7.4".to_owned()),
            ]
        );
    }

    #[test]
    fn the_executable_is_read_from_cargos_messages() {
        let lib = r#"{"reason":"compiler-artifact","target":{"name":"dep"},"executable":null}"#;
        let bin = |n: &str| {
            format!(
                r#"{{"reason":"compiler-artifact","target":{{"name":"{n}"}},"executable":"/t/{n}"}}"#
            )
        };
        let one = format!("   Compiling dep\n{lib}\n{}\n", bin("tool"));
        assert_eq!(executable(&one, &rb()).unwrap(), Path::new("/t/tool"));
        let e = executable(lib, &rb()).unwrap_err().to_string();
        assert!(e.contains("no executable"), "{e}");
        let two = format!("{}\n{}\n", bin("a"), bin("b"));
        let e = executable(&two, &rb()).unwrap_err().to_string();
        assert!(
            e.contains("2 executables (a, b)") && e.contains("bin ="),
            "{e}"
        );
    }
}
