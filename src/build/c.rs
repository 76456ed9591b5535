//! C with musl (our specs, so static-pie is real) or with the host's glibc gcc.

use super::process;
use super::{Artifact, BuildContext, BuildError, musl};
use crate::recipe::{BuildSpec, CBuild, LibcChoice, LinkMode};
use std::path::Path;

/// Compiles and links `c.files` in one gcc call.
pub(super) fn build(
    spec: &BuildSpec,
    c: &CBuild,
    ctx: &BuildContext,
) -> Result<Artifact, BuildError> {
    let gcc = super::require("gcc", "lang = \"c\" compiles with gcc", "gcc")?;
    let version = process::version_line(&gcc);
    let binary = super::output_path(ctx, &spec.output)?;

    let mut cmd = process::hermetic(&gcc, &ctx.build_dir, ctx.epoch);
    cmd.current_dir(&spec.source);
    let toolchain = match spec.libc {
        LibcChoice::Musl => {
            let (specs, m) = musl::write_specs(&ctx.build_dir)?;
            cmd.arg("-specs").arg(&specs);
            format!("{version} + musl ({})", m.lib_dir.display())
        }
        LibcChoice::Glibc => format!("{version} + glibc"),
        LibcChoice::None => {
            return Err(BuildError::Unsupported(
                "C needs a libc: musl or glibc".into(),
            ));
        }
    };
    match spec.link {
        LinkMode::StaticPie => cmd.args(["-static-pie", "-fPIE"]),
        LinkMode::Static => cmd.arg("-static"),
        LinkMode::Dynamic => &mut cmd,
    };
    // No host path may reach the binary: the source and build folders get fixed names.
    cmd.arg(prefix_map(&spec.source, "/src"))
        .arg(prefix_map(&ctx.build_dir, "/build"))
        .arg("-O2")
        .args(if spec.deps.is_empty() {
            Vec::new()
        } else {
            super::commands::sysroot_flags(&ctx.build_dir.join("sysroot")).to_vec()
        })
        .args(&c.cflags)
        .arg("-o")
        .arg(&binary)
        .args(&c.files)
        .args(&c.ldflags);
    if c.strip {
        cmd.arg("-s");
    }
    super::run_one(cmd, binary, toolchain, ctx)
}

fn prefix_map(from: &Path, to: &str) -> String {
    format!("-ffile-prefix-map={}={to}", from.display())
}
