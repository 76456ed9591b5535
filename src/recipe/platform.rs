//! The platform an image is built for: "linux/amd64" or "linux/arm64", and every name the
//! toolchains, the verifier and the runner know it by.

use std::fmt;

/// A CPU architecture staticpack builds for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    Amd64,
    Arm64,
}

/// An OCI platform: `os/architecture[/variant]`. Only linux is built.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub arch: Arch,
    /// OCI's variant ("v8" for arm64), when written.
    pub variant: Option<String>,
}

/// The platforms `--platform` and `[image] platforms` accept, for messages.
pub(crate) const KNOWN: &str = "linux/amd64, linux/arm64";

impl Platform {
    /// This machine's platform, or `None` on an architecture staticpack does not build for.
    pub fn host() -> Option<Self> {
        let arch = match std::env::consts::ARCH {
            "x86_64" => Arch::Amd64,
            "aarch64" => Arch::Arm64,
            _ => return None,
        };
        Some(Platform {
            os: "linux".into(),
            arch,
            variant: None,
        })
    }

    /// The host's platform where staticpack knows it; amd64 elsewhere (a build then says the
    /// toolchain is missing rather than guessing).
    pub fn host_or_default() -> Self {
        Self::host().unwrap_or(Platform {
            os: "linux".into(),
            arch: Arch::Amd64,
            variant: None,
        })
    }

    /// Whether binaries for it run here without emulation.
    pub fn is_host(&self) -> bool {
        Self::host().is_some_and(|h| h.arch == self.arch)
    }

    /// OCI's and Go's name: "amd64", "arm64".
    pub fn oci_arch(&self) -> &'static str {
        match self.arch {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// GOARCH.
    pub fn goarch(&self) -> &'static str {
        self.oci_arch()
    }

    /// Debian's architecture name (dpkg --add-architecture).
    pub fn debian_arch(&self) -> &'static str {
        self.oci_arch()
    }

    /// The kernel's and Rust's name: "x86_64", "aarch64".
    pub fn cpu(&self) -> &'static str {
        match self.arch {
            Arch::Amd64 => "x86_64",
            Arch::Arm64 => "aarch64",
        }
    }

    /// The GNU triplet of cross compilers and multiarch folders: "aarch64-linux-gnu".
    pub fn gnu_triplet(&self) -> String {
        format!("{}-linux-gnu", self.cpu())
    }

    /// The musl multiarch name: "aarch64-linux-musl".
    pub fn musl_triplet(&self) -> String {
        format!("{}-linux-musl", self.cpu())
    }

    /// Rust's target triple for a libc ("gnu" or "musl").
    pub fn rust_target(&self, env: &str) -> String {
        format!("{}-unknown-linux-{env}", self.cpu())
    }

    /// The ELF `e_machine` of its binaries.
    pub fn elf_machine(&self) -> u16 {
        match self.arch {
            Arch::Amd64 => goblin::elf::header::EM_X86_64,
            Arch::Arm64 => goblin::elf::header::EM_AARCH64,
        }
    }

    /// The qemu user-mode emulator that runs its binaries elsewhere (Debian's qemu-user-static).
    pub fn qemu(&self) -> String {
        format!("qemu-{}-static", self.cpu())
    }

    /// The C compiler for it: `gcc` natively, the cross gcc otherwise.
    pub fn gcc(&self) -> String {
        if self.is_host() {
            "gcc".into()
        } else {
            format!("{}-gcc", self.gnu_triplet())
        }
    }

    /// The Debian package holding [`Platform::gcc`].
    pub fn gcc_package(&self) -> String {
        if self.is_host() {
            "gcc".into()
        } else {
            format!("gcc-{}", self.gnu_triplet())
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.oci_arch())?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;

    /// "linux/amd64", "linux/arm64", "linux/arm64/v8"; "aarch64" and "x86_64" are accepted as
    /// the architecture too.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        if parts.next().is_some() || os != Some("linux") {
            return Err(format!(
                "{s:?} is not a platform staticpack builds for (known: {KNOWN})"
            ));
        }
        let arch = match arch {
            Some("amd64" | "x86_64") => Arch::Amd64,
            Some("arm64" | "aarch64") => Arch::Arm64,
            _ => {
                return Err(format!("{s:?}: unknown architecture (known: {KNOWN})"));
            }
        };
        let variant = match (arch, variant) {
            (_, None) => None,
            (Arch::Arm64, Some("v8")) => Some("v8".to_owned()),
            (_, Some(v)) => {
                return Err(format!(
                    "{s:?}: unknown variant {v:?} (known: {KNOWN}, linux/arm64/v8)"
                ));
            }
        };
        Ok(Platform {
            os: "linux".into(),
            arch,
            variant,
        })
    }
}

/// A comma-separated list, as `--platform` takes it: each known, none twice.
pub fn parse_list(s: &str) -> Result<Vec<Platform>, String> {
    let mut out: Vec<Platform> = Vec::new();
    for item in s.split(',').map(str::trim) {
        let p: Platform = item.parse()?;
        if out.iter().any(|q| q.arch == p.arch) {
            return Err(format!("{item:?} is listed twice"));
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_every_platform() {
        let p: Platform = "linux/arm64".parse().unwrap();
        assert_eq!(p.arch, Arch::Arm64);
        assert_eq!(p.to_string(), "linux/arm64");
        assert_eq!(p.goarch(), "arm64");
        assert_eq!(p.gnu_triplet(), "aarch64-linux-gnu");
        assert_eq!(p.rust_target("musl"), "aarch64-unknown-linux-musl");
        assert_eq!(p.elf_machine(), goblin::elf::header::EM_AARCH64);
        assert_eq!(p.qemu(), "qemu-aarch64-static");
        let a: Platform = "linux/x86_64".parse().unwrap();
        assert_eq!(a.to_string(), "linux/amd64");
        assert_eq!(a.elf_machine(), goblin::elf::header::EM_X86_64);
        assert_eq!(
            "linux/arm64/v8".parse::<Platform>().unwrap().to_string(),
            "linux/arm64/v8"
        );
    }

    #[test]
    fn refuses_what_it_cannot_build() {
        for bad in [
            "windows/amd64",
            "linux/riscv64",
            "linux",
            "linux/amd64/v3",
            "",
        ] {
            let e = bad.parse::<Platform>().unwrap_err();
            assert!(e.contains("linux/amd64, linux/arm64"), "{bad}: {e}");
        }
        assert!(
            parse_list("linux/arm64,linux/aarch64")
                .unwrap_err()
                .contains("twice")
        );
        assert_eq!(parse_list("linux/amd64, linux/arm64").unwrap().len(), 2);
    }

    #[test]
    fn the_host_is_native_and_the_other_is_not() {
        let host = Platform::host().expect("tests run on amd64 or arm64");
        assert!(host.is_host());
        assert_eq!(host.gcc(), "gcc");
        let other = Platform {
            arch: match host.arch {
                Arch::Amd64 => Arch::Arm64,
                Arch::Arm64 => Arch::Amd64,
            },
            ..host
        };
        assert!(!other.is_host());
        assert_eq!(other.gcc(), format!("{}-linux-gnu-gcc", other.cpu()));
    }
}
