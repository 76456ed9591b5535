//! `system = "make" | "autotools" | "cmake" | "meson"`: the commands a user would otherwise
//! type for that build system, written out here and then run like `commands` (same jail, log,
//! progress, artifact or install handling). cmake and meson also get a file naming staticpack's
//! compiler wrapper, since they do not trust `CC` alone.

use super::process::quote;
use super::{BuildError, process};
use crate::fsio::IoContext;
use crate::recipe::{BuildSystem, Platform, SystemBuild};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where cmake and meson build, inside the copy of the source (`artifact = "_build/app"`).
pub(crate) const OUT_OF_TREE: &str = "_build";

/// What the expansion needs of the commands build: its folders and the tool variables.
pub(super) struct Setup<'a> {
    /// The copy of the source the commands run in.
    pub tree: &'a Path,
    /// `<build>/toolchain`: where the cmake toolchain file and the meson native file go.
    pub toolchain: &'a Path,
    /// `<build>/sysroot`: the dependencies' headers and libraries.
    pub sysroot: &'a Path,
    /// The commands' environment (CC, AR, RANLIB, STRIP, NM, …).
    pub env: &'a BTreeMap<String, String>,
    /// `install = true`: the install step runs too.
    pub install: bool,
    /// What the build is for: another CPU makes it a cross build (`--host`, cmake's system
    /// processor, a meson cross file).
    pub platform: &'a Platform,
}

/// The programs a system's commands call, for the cache key: their versions decide the output.
pub(crate) fn tools(system: BuildSystem) -> &'static [&'static str] {
    match system {
        BuildSystem::Make => &["make"],
        BuildSystem::Autotools => &["make", "autoconf", "automake", "libtoolize", "pkg-config"],
        BuildSystem::Cmake => &["cmake", "ninja", "make", "pkg-config"],
        BuildSystem::Meson => &["meson", "ninja", "pkg-config"],
    }
}

/// The command lines for `s`, each run with `sh -c` in the copy; files cmake or meson read are
/// written into `setup.toolchain` first.
pub(super) fn expand(s: &SystemBuild, setup: &Setup) -> Result<Vec<String>, BuildError> {
    let args =
        |list: &[String]| -> String { list.iter().map(|a| format!(" {}", quote(a))).collect() };
    let vars: Vec<String> = s
        .make_args
        .iter()
        .filter(|a| is_variable(a))
        .cloned()
        .collect();
    Ok(match s.system {
        BuildSystem::Make => {
            need("make", "system = \"make\" runs make", "make")?;
            // The toolchain comes from the environment (CC, AR, CFLAGS, LDFLAGS…; the wrapper
            // is `cc` and `gcc` on PATH and adds what static-pie and reproducibility need), so
            // a Makefile's own assignments stand, as distributions' build helpers leave them:
            // on the command line `AR=ar` would beat `AR = ar rcu` (and ar take the archive
            // for its operation), `CFLAGS=…` a `CFLAGS = … $(MYCFLAGS)` that carries defines.
            // The recipe's make_args stay explicit, its own choice.
            let mut lines = vec![format!("make -j\"$JOBS\"{}", args(&s.make_args))];
            if setup.install {
                lines.push(format!(
                    "make install DESTDIR=\"$DESTDIR\" PREFIX=/usr prefix=/usr{}",
                    args(&vars)
                ));
            }
            lines
        }
        BuildSystem::Autotools => {
            need("make", "system = \"autotools\" runs make", "make")?;
            let mut lines = Vec::new();
            // A release tarball ships configure; only a bare checkout needs it generated.
            if !setup.tree.join("configure").exists() {
                need(
                    "autoreconf",
                    "the source has no configure script: autoreconf -fi makes it",
                    "autoconf automake libtool",
                )?;
                lines.push("autoreconf -fi".to_owned());
            }
            // Cross: configure must not try to run what it compiles; CC is the wrapper already.
            let cross = match Platform::host() {
                Some(host) if !setup.platform.is_host() => format!(
                    " --build={} --host={}",
                    host.gnu_triplet(),
                    setup.platform.gnu_triplet()
                ),
                _ => String::new(),
            };
            lines.push(format!(
                "./configure --prefix=/usr --disable-shared --enable-static{cross}{}",
                args(&s.configure_args)
            ));
            lines.push(format!("make -j\"$JOBS\"{}", args(&s.make_args)));
            if setup.install {
                lines.push(format!("make install DESTDIR=\"$DESTDIR\"{}", args(&vars)));
            }
            lines
        }
        BuildSystem::Cmake => {
            need("cmake", "system = \"cmake\" runs cmake", "cmake")?;
            let file = setup.toolchain.join("staticpack.cmake");
            write(&file, &cmake_toolchain(setup))?;
            let generator = if process::find_program("ninja").is_some() {
                "Ninja"
            } else {
                need(
                    "make",
                    "cmake without ninja generates Makefiles",
                    "ninja-build",
                )?;
                "'Unix Makefiles'"
            };
            // configure_args are cache entries: `-DX=Y` as written, `X=Y` gets its `-D`.
            let defines: Vec<String> = s
                .configure_args
                .iter()
                .map(|a| {
                    if a.starts_with('-') {
                        a.clone()
                    } else {
                        format!("-D{a}")
                    }
                })
                .collect();
            let mut lines = vec![format!(
                "cmake -S . -B {OUT_OF_TREE} -G {generator} -DCMAKE_TOOLCHAIN_FILE={} \
                 -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
                 -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_INSTALL_LIBDIR=lib{}",
                quote(&file.display().to_string()),
                args(&defines)
            )];
            let targets = if s.make_args.is_empty() {
                String::new()
            } else {
                format!(" --target{}", args(&s.make_args))
            };
            lines.push(format!(
                "cmake --build {OUT_OF_TREE} --parallel \"$JOBS\"{targets}"
            ));
            if setup.install {
                // cmake --install reads DESTDIR from the environment.
                lines.push(format!("cmake --install {OUT_OF_TREE}"));
            }
            lines
        }
        BuildSystem::Meson => {
            need("meson", "system = \"meson\" runs meson", "meson")?;
            need("ninja", "meson builds with ninja", "ninja-build")?;
            // meson's CMake dependency method would search the host: it gets the toolchain
            // file that confines find_* to the sysroot too.
            let cmake = setup.toolchain.join("staticpack.cmake");
            write(&cmake, &cmake_toolchain(setup))?;
            // For another CPU the same file is a cross file, with the host machine it is for.
            let (file, kind) = if setup.platform.is_host() {
                (setup.toolchain.join("staticpack-native.ini"), "native")
            } else {
                (setup.toolchain.join("staticpack-cross.ini"), "cross")
            };
            write(&file, &meson_native(setup, &cmake))?;
            let mut lines = vec![format!(
                "meson setup {OUT_OF_TREE} --{kind}-file {} --prefix=/usr --libdir=lib \
                 -Ddefault_library=static -Dprefer_static=true --buildtype=release \
                 --wrap-mode=nodownload{}",
                quote(&file.display().to_string()),
                args(&s.configure_args)
            )];
            lines.push(format!(
                "meson compile -C {OUT_OF_TREE} -j \"$JOBS\"{}",
                args(&s.make_args)
            ));
            if setup.install {
                lines.push(format!(
                    "meson install -C {OUT_OF_TREE} --no-rebuild --destdir \"$DESTDIR\""
                ));
            }
            lines
        }
    })
}

/// `VAR=value` rather than a target.
fn is_variable(arg: &str) -> bool {
    arg.split_once('=')
        .is_some_and(|(name, _)| !name.is_empty() && !name.contains('/'))
}

fn need(program: &str, why: &str, package: &str) -> Result<PathBuf, BuildError> {
    super::require(program, why, package)
}

fn write(path: &Path, text: &str) -> Result<(), BuildError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).at("creating", dir)?;
    }
    std::fs::write(path, text).at("writing", path)?;
    Ok(())
}

fn var<'a>(setup: &'a Setup, name: &'a str) -> &'a str {
    setup.env.get(name).map(String::as_str).unwrap_or(name)
}

/// Names the wrapper and binutils, and confines find_library/find_path/find_package to the
/// dependencies' sysroot: a host library must never be picked up.
fn cmake_toolchain(setup: &Setup) -> String {
    let q = |s: &str| {
        format!(
            "\"{}\"",
            s.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
        )
    };
    let mut t =
        String::from("# Written by staticpack: its compiler wrapper and the recipe's sysroot.\n");
    if !setup.platform.is_host() {
        // A cross build: cmake then neither runs test programs nor takes the host's settings.
        t.push_str(&format!(
            "set(CMAKE_SYSTEM_NAME Linux)\nset(CMAKE_SYSTEM_PROCESSOR {})\n",
            setup.platform.cpu()
        ));
    }
    for (key, name) in [
        ("CMAKE_C_COMPILER", "CC"),
        ("CMAKE_AR", "AR"),
        ("CMAKE_RANLIB", "RANLIB"),
        ("CMAKE_STRIP", "STRIP"),
        ("CMAKE_NM", "NM"),
    ] {
        t.push_str(&format!("set({key} {})\n", q(var(setup, name))));
    }
    t.push_str(&format!(
        "set(CMAKE_FIND_ROOT_PATH {})\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)\n\
         set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)\n\
         set(CMAKE_POSITION_INDEPENDENT_CODE ON)\n",
        q(&setup.sysroot.display().to_string())
    ));
    t
}

/// The wrapper and binutils for meson (it probes compilers itself otherwise), and the cmake
/// toolchain file for its CMake dependency lookups.
fn meson_native(setup: &Setup, cmake_toolchain: &Path) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
    let mut t =
        String::from("# Written by staticpack: its compiler wrapper and binutils.\n[binaries]\n");
    for (key, name) in [("c", "CC"), ("ar", "AR"), ("strip", "STRIP"), ("nm", "NM")] {
        t.push_str(&format!("{key} = {}\n", q(var(setup, name))));
    }
    if let Some(pc) = process::find_program("pkg-config") {
        t.push_str(&format!("pkg-config = {}\n", q(&pc.display().to_string())));
    }
    t.push_str(&format!(
        "[properties]\ncmake_toolchain_file = {}\n",
        q(&cmake_toolchain.display().to_string())
    ));
    if !setup.platform.is_host() {
        let cpu = setup.platform.cpu();
        t.push_str(&format!(
            "[host_machine]\nsystem = 'linux'\ncpu_family = '{cpu}'\ncpu = '{cpu}'\nendian = 'little'\n"
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expanded(
        system: BuildSystem,
        configure: &[&str],
        make: &[&str],
        install: bool,
    ) -> Vec<String> {
        let d = tempfile::tempdir().unwrap();
        let env = BTreeMap::from([("CC".to_owned(), "/b/toolchain/bin/cc".to_owned())]);
        let setup = Setup {
            tree: d.path(),
            toolchain: &d.path().join("toolchain"),
            sysroot: &d.path().join("sysroot"),
            env: &env,
            install,
            platform: &Platform::host_or_default(),
        };
        let s = SystemBuild {
            system,
            configure_args: configure.iter().map(|s| s.to_string()).collect(),
            make_args: make.iter().map(|s| s.to_string()).collect(),
        };
        expand(&s, &setup).unwrap()
    }

    #[test]
    fn make_leaves_the_tools_to_the_environment_and_installs_with_the_variables_only() {
        let l = expanded(BuildSystem::Make, &[], &["pigz", "OPT=a b"], true);
        assert_eq!(l[0], "make -j\"$JOBS\" pigz 'OPT=a b'");
        assert_eq!(
            l[1],
            "make install DESTDIR=\"$DESTDIR\" PREFIX=/usr prefix=/usr 'OPT=a b'"
        );
    }

    #[test]
    fn autotools_generates_configure_only_when_missing() {
        let l = expanded(BuildSystem::Autotools, &["--disable-docs"], &[], false);
        assert_eq!(
            l,
            [
                "autoreconf -fi",
                "./configure --prefix=/usr --disable-shared --enable-static --disable-docs",
                "make -j\"$JOBS\""
            ]
        );
    }

    #[test]
    fn cmake_gets_a_toolchain_file_and_d_arguments() {
        let l = expanded(BuildSystem::Cmake, &["WITH_X=OFF", "-DY=1"], &["app"], true);
        assert!(l[0].contains("-DCMAKE_TOOLCHAIN_FILE="), "{}", l[0]);
        assert!(l[0].contains("-DBUILD_SHARED_LIBS=OFF -DCMAKE_INSTALL_PREFIX=/usr"));
        assert!(l[0].ends_with(" -DWITH_X=OFF -DY=1"), "{}", l[0]);
        assert_eq!(
            l[1],
            "cmake --build _build --parallel \"$JOBS\" --target app"
        );
        assert_eq!(l[2], "cmake --install _build");
    }

    #[test]
    fn the_cmake_toolchain_names_the_wrapper_and_confines_find() {
        let env = BTreeMap::from([("CC".to_owned(), "/b/x\"y/cc".to_owned())]);
        let t = cmake_toolchain(&Setup {
            tree: Path::new("/t"),
            toolchain: Path::new("/b/toolchain"),
            sysroot: Path::new("/b/sysroot"),
            env: &env,
            install: false,
            platform: &Platform::host_or_default(),
        });
        assert!(!t.contains("CMAKE_SYSTEM_PROCESSOR"), "{t}");
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let cross = cmake_toolchain(&Setup {
            tree: Path::new("/t"),
            toolchain: Path::new("/b/toolchain"),
            sysroot: Path::new("/b/sysroot"),
            env: &env,
            install: false,
            platform: &arm64,
        });
        if !arm64.is_host() {
            assert!(
                cross.contains("set(CMAKE_SYSTEM_NAME Linux)\nset(CMAKE_SYSTEM_PROCESSOR aarch64)"),
                "{cross}"
            );
        }
        assert!(t.contains("set(CMAKE_C_COMPILER \"/b/x\\\"y/cc\")"), "{t}");
        assert!(
            t.contains("set(CMAKE_FIND_ROOT_PATH \"/b/sysroot\")"),
            "{t}"
        );
        assert!(t.contains("CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY"), "{t}");
    }
}
