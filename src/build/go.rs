//! Go: cgo off (Go's own static linking) or on (external linking against musl or glibc with
//! `-extldflags -static[-pie]`), always `-trimpath` and `-buildid=`, no network, caches in the
//! build folder.
//!
//! The folklore this fixes: `-extldflags "-static"` alone is ignored when Go links internally,
//! which it does whenever only the standard library uses cgo; so a static link with cgo on forces
//! `-linkmode external`.

use super::process;
use super::{Artifact, BuildContext, BuildError, musl};
use crate::recipe::{BuildSpec, GoBuild, LibcChoice, LinkMode};

/// `go build` of `gob.package` with the flags the recipe's cgo × libc × link call for.
pub(super) fn build(
    spec: &BuildSpec,
    gob: &GoBuild,
    ctx: &BuildContext,
) -> Result<Artifact, BuildError> {
    let go = super::require(
        "go",
        "lang = \"go\" builds with the Go toolchain",
        "golang-go",
    )?;
    let version = go_version(&go, ctx, spec);
    let binary = super::output_path(ctx, &spec.output)?;

    let mut cmd = process::hermetic(&go, &ctx.build_dir, ctx.epoch);
    go_env(&mut cmd, ctx, spec);
    cmd.current_dir(&spec.source);
    // Forcing the external linker when nothing imports runtime/cgo gives a binary that dies
    // at start (SIGTRAP: no TLS set-up). Go links such a program statically by itself.
    let uses_cgo = gob.cgo && imports_runtime_cgo(&go, spec, gob, ctx)?;
    if gob.cgo && !uses_cgo && spec.link == LinkMode::StaticPie {
        return Err(BuildError::Unsupported(format!(
            "cgo = true, but nothing in {} uses cgo (with tags {:?} the standard library does not either), \
                 and Go {} cannot make a static-pie without runtime/cgo: the external linker's result would crash at start. \
                 Fix: link = \"static\" (Go then links it statically itself, no libc), or call C code through cgo",
            gob.package,
            gob.tags,
            version.trim_start_matches("go "),
        )));
    }
    let effective = GoBuild {
        cgo: uses_cgo,
        ..gob.clone()
    };
    let external = needs_external_linker(spec.link, effective.cgo);
    let mut toolchain = version.clone();
    if effective.cgo || external {
        // The cross gcc for another CPU: cgo compiles and links with it, as gcc natively.
        let gcc = spec.platform.gcc();
        let cc = match spec.libc {
            LibcChoice::Musl => {
                let (specs, m) = musl::write_specs(&ctx.build_dir, &spec.platform)?;
                toolchain.push_str(&format!(" + musl ({})", m.lib_dir.display()));
                format!("{gcc} -specs {}", specs.display())
            }
            LibcChoice::Glibc if spec.platform.is_host() => {
                toolchain.push_str(" + glibc");
                gcc
            }
            LibcChoice::Glibc => {
                return Err(BuildError::Unsupported(format!(
                    "cgo with glibc for {} is not built: staticpack cross-links Go with musl only. \
                     Fix: libc = \"musl\", or cgo = false",
                    spec.platform
                )));
            }
            LibcChoice::None => {
                return Err(BuildError::Unsupported(
                    "cgo and external linking need a libc".into(),
                ));
            }
        };
        super::require(
            &spec.platform.gcc(),
            "cgo and external linking use the C compiler",
            &spec.platform.gcc_package(),
        )?;
        cmd.env("CC", cc);
    }
    // A cgo = true recipe whose program does not use cgo is built with cgo off: same program,
    // no libc linked, and no way for the external linker to produce a crashing binary.
    cmd.env("CGO_ENABLED", if effective.cgo { "1" } else { "0" });
    if effective.cgo != gob.cgo {
        toolchain.push_str(" (cgo requested but unused: no libc linked)");
    }
    cmd.args(build_args(spec, &effective, &binary.to_string_lossy()));
    super::run_one(cmd, binary, toolchain, ctx)
}

/// Whether the package's dependency graph (with the recipe's tags, cgo on) holds runtime/cgo.
fn imports_runtime_cgo(
    go: &std::path::Path,
    spec: &BuildSpec,
    gob: &GoBuild,
    ctx: &BuildContext,
) -> Result<bool, BuildError> {
    let mut cmd = process::hermetic(go, &ctx.build_dir, ctx.epoch);
    go_env(&mut cmd, ctx, spec);
    cmd.current_dir(&spec.source).env("CGO_ENABLED", "1");
    cmd.args(["list", "-deps", "-f", "{{.ImportPath}}"]);
    cmd.arg(if spec.source.join("vendor").is_dir() {
        "-mod=vendor"
    } else {
        "-mod=mod"
    });
    if !gob.tags.is_empty() {
        cmd.arg(format!("-tags={}", gob.tags.join(",")));
    }
    cmd.arg(&gob.package);
    let out = process::run_step(cmd, ctx)?;
    Ok(out.lines().any(|l| l.trim() == "runtime/cgo"))
}

/// No network, no toolchain download, GOPATH inside the build folder. The build cache is the
/// recipe's own in the shared folder when builds may reuse it: go keys it by content (and
/// -trimpath keeps its path out of the binary), so it changes how long a build takes, never
/// what it makes — as long as nothing else writes it, hence one per trust domain.
fn go_env(cmd: &mut std::process::Command, ctx: &BuildContext, spec: &BuildSpec) {
    let gocache = ctx
        .cache
        .as_ref()
        .and_then(|c| c.go_build(&super::trust_domain(spec)))
        .unwrap_or_else(|| ctx.build_dir.join("gocache"));
    cmd.env("GOCACHE", gocache)
        .env("GOPATH", ctx.build_dir.join("gopath"))
        .env("GOMODCACHE", ctx.build_dir.join("gopath/pkg/mod"))
        .env("GOENV", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("GO111MODULE", "on")
        .env("GOOS", "linux")
        .env("GOARCH", spec.platform.goarch());
}

/// `go version`'s words, e.g. "go1.19.8 linux/amd64".
fn go_version(go: &std::path::Path, ctx: &BuildContext, spec: &BuildSpec) -> String {
    let mut cmd = process::hermetic(go, &ctx.build_dir, ctx.epoch);
    go_env(&mut cmd, ctx, spec);
    cmd.arg("version");
    process::run_step(cmd, ctx)
        .ok()
        .and_then(|out| {
            out.trim()
                .strip_prefix("go version ")
                .map(|v| format!("go {v}"))
        })
        .unwrap_or_else(|| "go (unknown version)".into())
}

/// A static link with C code, and any static-pie, need the system linker: Go's internal linker
/// ignores -extldflags and makes PIEs that need an interpreter.
fn needs_external_linker(link: LinkMode, cgo: bool) -> bool {
    match link {
        LinkMode::StaticPie => true,
        LinkMode::Static => cgo,
        LinkMode::Dynamic => false,
    }
}

/// The `go build` arguments for a spec (pure, so the flag logic is unit-tested).
pub(super) fn build_args(spec: &BuildSpec, gob: &GoBuild, output: &str) -> Vec<String> {
    let mut ldflags = vec!["-buildid=".to_owned()];
    if gob.strip {
        ldflags.extend(["-s".to_owned(), "-w".to_owned()]);
    }
    if needs_external_linker(spec.link, gob.cgo) {
        let extld = if spec.link == LinkMode::StaticPie {
            "-static-pie"
        } else {
            "-static"
        };
        ldflags.extend([
            "-linkmode=external".to_owned(),
            format!("-extldflags={extld}"),
        ]);
    }
    ldflags.extend(gob.ldflags.iter().cloned());
    let mut args = vec![
        "build".to_owned(),
        "-trimpath".to_owned(),
        "-buildvcs=false".to_owned(),
    ];
    if std::path::Path::new(&spec.source).join("vendor").is_dir() {
        args.push("-mod=vendor".to_owned());
    } else {
        args.push("-mod=mod".to_owned());
    }
    if spec.link == LinkMode::StaticPie {
        args.push("-buildmode=pie".to_owned());
    }
    if !gob.tags.is_empty() {
        args.push(format!("-tags={}", gob.tags.join(",")));
    }
    args.push(format!("-ldflags={}", ldflags.join(" ")));
    args.extend(["-o".to_owned(), output.to_owned(), gob.package.clone()]);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `build_args` of a Go spec.
    fn args(cgo: bool, link: LinkMode, tags: &[&str], ldflags: &[&str]) -> Vec<String> {
        let spec = BuildSpec {
            source: "/nonexistent".into(),
            archive: None,
            output: "/app".into(),
            timeout_seconds: 60,
            libc: if cgo {
                LibcChoice::Musl
            } else {
                LibcChoice::None
            },
            link,
            lang: crate::recipe::LangSpec::Prebuilt,
            deps: Vec::new(),
            platform: crate::recipe::Platform::host_or_default(),
            platforms: vec![crate::recipe::Platform::host_or_default()],
            per_platform: Vec::new(),
        };
        let gob = GoBuild {
            package: ".".into(),
            cgo,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ldflags: ldflags.iter().map(|f| f.to_string()).collect(),
            strip: false,
        };
        build_args(&spec, &gob, "/o")
    }

    #[test]
    fn cgo_off_static_uses_gos_own_linker() {
        let a = args(false, LinkMode::Static, &[], &[]);
        assert_eq!(
            a,
            [
                "build",
                "-trimpath",
                "-buildvcs=false",
                "-mod=mod",
                "-ldflags=-buildid=",
                "-o",
                "/o",
                "."
            ]
        );
    }

    #[test]
    fn cgo_on_static_forces_the_external_linker() {
        let a = args(true, LinkMode::Static, &["netgo", "osusergo"], &[]);
        assert!(a.contains(&"-tags=netgo,osusergo".to_owned()));
        assert!(
            a.contains(&"-ldflags=-buildid= -linkmode=external -extldflags=-static".to_owned()),
            "{a:?}"
        );
    }

    #[test]
    fn static_pie_is_pie_with_external_static_pie_link() {
        let a = args(true, LinkMode::StaticPie, &[], &[]);
        assert!(a.contains(&"-buildmode=pie".to_owned()));
        assert!(
            a.contains(&"-ldflags=-buildid= -linkmode=external -extldflags=-static-pie".to_owned()),
            "{a:?}"
        );
    }

    #[test]
    fn dynamic_is_plain_go_build() {
        let a = args(true, LinkMode::Dynamic, &[], &["-extldflags=-static"]);
        assert!(
            a.contains(&"-ldflags=-buildid= -extldflags=-static".to_owned()),
            "{a:?}"
        );
        assert!(!a.iter().any(|x| x.contains("linkmode")));
    }
}
