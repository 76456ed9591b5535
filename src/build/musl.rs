//! Finding a musl installation and writing the specs file that makes `-static-pie` real.
//!
//! Debian's `musl-gcc.specs` always links `Scrt1.o` and passes `-dynamic-linker
//! /lib/ld-musl-x86_64.so.1`, so `musl-gcc -static-pie` silently yields a *dynamic* PIE that
//! fails in scratch with "no such file or directory". Our specs pick `rcrt1.o` and
//! `-static -pie --no-dynamic-linker -z text` for static-pie, `crt1.o` and `-static` for static.

use super::BuildError;
use super::process::find_program;
use crate::fsio::IoContext;
use crate::recipe::Platform;
use std::path::{Path, PathBuf};

/// A musl installation: the folder with crt*.o and libc.a, and the headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Musl {
    pub lib_dir: PathBuf,
    pub include_dir: PathBuf,
    /// The CPU it is for ("x86_64", "aarch64"): names the dynamic loader of non-static links.
    pub cpu: &'static str,
}

const REQUIRED_LIB_FILES: &[&str] = &["crt1.o", "rcrt1.o", "crti.o", "crtn.o", "libc.a"];

/// Where musl lives: next to the specs file the `musl-gcc` wrapper names, else the usual places
/// (Debian's multiarch folders, upstream's /usr/local/musl, Alpine-style /usr/lib/musl).
/// Another platform's musl is Debian's multiarch copy (`musl-dev:arm64`).
pub(crate) fn find(platform: &Platform) -> Result<Musl, BuildError> {
    if !platform.is_host() {
        return find_foreign(platform);
    }
    let mut tried = Vec::new();
    if let Some(wrapper) = find_program("musl-gcc") {
        if let Some(specs) = specs_path_from_wrapper(&wrapper) {
            if let Some(m) = from_specs_file(&specs, platform.cpu()) {
                return Ok(m);
            }
            tried.push(specs.display().to_string());
        }
    }
    let arch = std::env::consts::ARCH;
    let candidates = [
        (
            format!("/usr/lib/{arch}-linux-musl"),
            format!("/usr/include/{arch}-linux-musl"),
        ),
        (
            "/usr/local/musl/lib".into(),
            "/usr/local/musl/include".into(),
        ),
        ("/usr/lib/musl/lib".into(), "/usr/lib/musl/include".into()),
    ];
    for (lib, inc) in candidates {
        let m = Musl {
            lib_dir: lib.into(),
            include_dir: inc.into(),
            cpu: platform.cpu(),
        };
        if m.is_complete() {
            return Ok(m);
        }
        tried.push(m.lib_dir.display().to_string());
    }
    Err(BuildError::MuslMissing(format!(
        "looked in {}",
        tried.join(", ")
    )))
}

/// `/usr/lib/<cpu>-linux-musl` and `/usr/include/<cpu>-linux-musl`, as Debian's
/// `musl-dev:<arch>` installs them.
fn find_foreign(platform: &Platform) -> Result<Musl, BuildError> {
    let triplet = platform.musl_triplet();
    let m = Musl {
        lib_dir: PathBuf::from(format!("/usr/lib/{triplet}")),
        include_dir: PathBuf::from(format!("/usr/include/{triplet}")),
        cpu: platform.cpu(),
    };
    if m.is_complete() {
        return Ok(m);
    }
    Err(BuildError::ToolMissing {
        tool: format!("musl for {platform}"),
        why: format!(
            "a musl build for {platform} links {}/libc.a and its crt files",
            m.lib_dir.display()
        ),
        install: format!(
            "dpkg --add-architecture {arch} && apt-get update && apt-get install musl-dev:{arch} {gcc}",
            arch = platform.debian_arch(),
            gcc = platform.gcc_package()
        ),
    })
}

impl Musl {
    fn is_complete(&self) -> bool {
        REQUIRED_LIB_FILES
            .iter()
            .all(|f| self.lib_dir.join(f).is_file())
            && self.include_dir.join("stdio.h").is_file()
    }

    /// A gcc specs file that compiles against musl's headers and links musl statically,
    /// as a true static-pie when the driver gets `-static-pie`. `kernel` is a folder of the
    /// kernel's headers, searched after musl's ([`kernel_headers`]).
    pub(crate) fn specs(&self, kernel: Option<&Path>) -> String {
        let lib = self.lib_dir.display();
        let inc = self.include_dir.display();
        let after = kernel
            .map(|k| format!(" -idirafter {}", k.display()))
            .unwrap_or_default();
        format!(
            "%rename cpp_options old_cpp_options\n\n\
             *cpp_options:\n-nostdinc -isystem {inc} -isystem include%s{after} %(old_cpp_options)\n\n\
             *cc1:\n%(cc1_cpu) -nostdinc -isystem {inc} -isystem include%s{after}\n\n\
             *link_libgcc:\n-L{lib} -L .%s\n\n\
             *libgcc:\nlibgcc.a%s %:if-exists(libgcc_eh.a%s)\n\n\
             *startfile:\n%{{static-pie:{lib}/rcrt1.o;static:{lib}/crt1.o;:{lib}/Scrt1.o}} {lib}/crti.o \
             %{{static-pie:crtbeginS.o%s;static:crtbeginT.o%s;:crtbeginS.o%s}}\n\n\
             *endfile:\n%{{static-pie:crtendS.o%s;static:crtend.o%s;:crtendS.o%s}} {lib}/crtn.o\n\n\
             *link:\n%{{static-pie:-static -pie --no-dynamic-linker -z text;static:-static;:-dynamic-linker /lib/ld-musl-{arch}.so.1}} \
             -nostdlib %{{shared:-shared}} %{{rdynamic:-export-dynamic}}\n\n",
            arch = self.cpu,
        )
    }
}

/// Finds musl and writes staticpack's specs file into the build folder; returns its path and
/// the installation it names.
pub(crate) fn write_specs(
    build_dir: &Path,
    platform: &Platform,
) -> Result<(PathBuf, Musl), BuildError> {
    let m = find(platform)?;
    let kernel = kernel_headers(Path::new("/usr/include"), build_dir, platform)?;
    let specs = build_dir.join("musl.specs");
    std::fs::write(&specs, m.specs(kernel.as_deref())).at("writing", &specs)?;
    Ok((specs, m))
}

/// The kernel's own header folders (uapi): musl ships none, and programs that talk to the
/// kernel include them (busybox: `linux/kd.h`, `linux/fs.h`, …).
const KERNEL_HEADER_DIRS: &[&str] = &[
    "linux",
    "asm-generic",
    "mtd",
    "rdma",
    "misc",
    "sound",
    "video",
    "xen",
    "drm",
];

/// A folder `<build>/kernel-headers` of links to the kernel's header folders under `include`
/// (Debian's linux-libc-dev), `asm` from the multiarch folder where it lives there. Not
/// `include` itself: glibc's headers live there too, and a musl build must never find them.
/// `None` when the kernel's headers are not installed.
pub(crate) fn kernel_headers(
    include: &Path,
    build_dir: &Path,
    platform: &Platform,
) -> Result<Option<PathBuf>, BuildError> {
    if !include.join("linux/version.h").is_file() {
        return Ok(None);
    }
    let dir = build_dir.join("kernel-headers");
    std::fs::create_dir_all(&dir).at("creating", &dir)?;
    let triplet = platform.gnu_triplet();
    let multiarch = include.join(format!("{triplet}/asm"));
    // `include/asm` is the host's; another CPU's comes from its multiarch or cross folder
    // (linux-libc-dev:<arch>, linux-libc-dev-<arch>-cross), or not at all.
    let asm = if platform.is_host() {
        [multiarch, include.join("asm")]
            .into_iter()
            .find(|p| p.is_dir())
    } else {
        let cross = Path::new("/usr").join(&triplet).join("include/asm");
        [multiarch, cross].into_iter().find(|p| p.is_dir())
    };
    let links = KERNEL_HEADER_DIRS
        .iter()
        .map(|name| (name.to_string(), include.join(name)))
        .chain(asm.map(|p| ("asm".to_owned(), p)));
    for (name, target) in links {
        let link = dir.join(&name);
        if target.is_dir() && std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(&target, &link).at("creating the link", &link)?;
        }
    }
    Ok(Some(dir))
}

/// The `-specs "…"` argument inside a musl-gcc wrapper script.
fn specs_path_from_wrapper(wrapper: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(wrapper).ok()?;
    if meta.len() > 64 * 1024 {
        return None; // a binary, not the shell wrapper
    }
    let text = std::fs::read_to_string(wrapper).ok()?;
    let after = text.split("-specs").nth(1)?;
    let quoted = after.trim_start_matches(['=', ' ']).trim_start_matches('"');
    let path: String = quoted
        .chars()
        .take_while(|c| !matches!(c, '"' | ' ' | '\n'))
        .collect();
    (!path.is_empty()).then(|| PathBuf::from(path))
}

/// Reads the include folder from a musl-gcc specs file; the lib folder is the specs file's own.
fn from_specs_file(specs: &Path, cpu: &'static str) -> Option<Musl> {
    let text = std::fs::read_to_string(specs).ok()?;
    let include = text
        .split_whitespace()
        .skip_while(|w| *w != "-isystem")
        .nth(1)?;
    let m = Musl {
        lib_dir: specs.parent()?.to_path_buf(),
        include_dir: PathBuf::from(include),
        cpu,
    };
    m.is_complete().then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_parsing_handles_debian_and_upstream_forms() {
        let d = tempfile::tempdir().unwrap();
        let w = d.path().join("musl-gcc");
        std::fs::write(&w, "#!/bin/sh\nexec \"${REALGCC:-x86_64-linux-gnu-gcc}\" \"$@\" -specs \"/usr/lib/x86_64-linux-musl/musl-gcc.specs\"").unwrap();
        assert_eq!(
            specs_path_from_wrapper(&w),
            Some(PathBuf::from("/usr/lib/x86_64-linux-musl/musl-gcc.specs"))
        );
        std::fs::write(&w, "#!/bin/sh\nexec \"${REALGCC:-gcc}\" \"$@\" -specs \"/usr/local/musl/lib/musl-gcc.specs\"\n").unwrap();
        assert_eq!(
            specs_path_from_wrapper(&w),
            Some(PathBuf::from("/usr/local/musl/lib/musl-gcc.specs"))
        );
        std::fs::write(&w, "#!/bin/sh\nexec gcc \"$@\"\n").unwrap();
        assert_eq!(specs_path_from_wrapper(&w), None);
    }

    #[test]
    fn specs_choose_rcrt1_and_no_dynamic_linker_for_static_pie() {
        let m = Musl {
            lib_dir: "/m/lib".into(),
            include_dir: "/m/inc".into(),
            cpu: "aarch64",
        };
        let s = m.specs(Some(Path::new("/b/kernel-headers")));
        assert!(s.contains("-isystem include%s -idirafter /b/kernel-headers"));
        assert!(s.contains("%{static-pie:/m/lib/rcrt1.o;static:/m/lib/crt1.o;"));
        assert!(s.contains("%{static-pie:-static -pie --no-dynamic-linker -z text;"));
        assert!(s.contains("-isystem /m/inc"));
        assert!(s.contains("-dynamic-linker /lib/ld-musl-aarch64.so.1"));
    }

    /// Links to the kernel's folders only, never to `include` itself (glibc's headers).
    #[test]
    fn kernel_headers_are_linked_folder_by_folder() {
        let d = tempfile::tempdir().unwrap();
        let inc = d.path().join("include");
        let asm = inc.join(format!("{}-linux-gnu/asm", std::env::consts::ARCH));
        for sub in [inc.join("linux"), inc.join("mtd"), asm.clone()] {
            std::fs::create_dir_all(sub).unwrap();
        }
        std::fs::write(inc.join("linux/version.h"), "").unwrap();
        std::fs::write(inc.join("stdio.h"), "glibc's").unwrap();
        let build = d.path().join("build");
        let host = Platform::host_or_default();
        let dir = kernel_headers(&inc, &build, &host).unwrap().unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["asm", "linux", "mtd"]);
        assert_eq!(std::fs::read_link(dir.join("asm")).unwrap(), asm);
        // Without linux/version.h there are no kernel headers to offer.
        let bare = d.path().join("bare");
        std::fs::create_dir_all(&bare).unwrap();
        assert_eq!(kernel_headers(&bare, &build, &host).unwrap(), None);
    }

    /// With the real headers: a musl compile finds <linux/kd.h> and <asm/ioctl.h>.
    #[test]
    fn a_musl_compile_finds_the_kernel_headers() {
        let d = tempfile::tempdir().unwrap();
        let (specs, _) = write_specs(d.path(), &Platform::host_or_default()).unwrap();
        let src = d.path().join("k.c");
        std::fs::write(&src, "#include <linux/kd.h>\n#include <asm/ioctl.h>\n#include <stdio.h>\nint x = KDGKBMODE;\n").unwrap();
        let out = std::process::Command::new("gcc")
            .arg("-specs")
            .arg(&specs)
            .args(["-c", "-o"])
            .arg(d.path().join("k.o"))
            .arg(&src)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn finds_the_installed_musl() {
        let m = find(&Platform::host_or_default())
            .expect("musl-tools must be installed (apt-get install musl-tools)");
        assert!(m.lib_dir.join("rcrt1.o").is_file());
    }
}
