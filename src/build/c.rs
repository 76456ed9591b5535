//! C with musl (our specs, so static-pie is real) or with the host's glibc gcc.

use super::process::{self, find_program};
use super::{Artifact, BuildContext, BuildError, Toolchain, musl};
use crate::recipe::{BuildSpec, LibcChoice, LinkMode};
use std::path::Path;

pub struct CToolchain;

impl Toolchain for CToolchain {
    fn build(&self, spec: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError> {
        let gcc = find_program("gcc").ok_or_else(|| BuildError::ToolMissing {
            tool: "gcc".into(),
            why: "lang = \"c\" compiles with gcc".into(),
            install: "apt-get install gcc".into(),
        })?;
        let version = process::version_line(&gcc);
        let binary = ctx.build_dir.join("out").join(binary_name(&spec.output));
        create_dir(binary.parent().unwrap_or(&ctx.build_dir))?;

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
            .args(&spec.cflags)
            .arg("-o")
            .arg(&binary)
            .args(&spec.files)
            .args(&spec.ldflags);
        if spec.strip {
            cmd.arg("-s");
        }
        let line = process::render(&cmd);
        let environment = process::environment(&cmd);
        process::run(cmd)?;
        Ok(Artifact {
            binary,
            toolchain,
            commands: vec![line],
            environment,
        })
    }
}

fn binary_name(output: &str) -> &str {
    output
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("app")
}

fn prefix_map(from: &Path, to: &str) -> String {
    format!("-ffile-prefix-map={}={to}", from.display())
}

fn create_dir(dir: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dir).map_err(|source| BuildError::Io {
        action: "creating",
        path: dir.to_path_buf(),
        source,
    })
}
