//! `system = "make" | "autotools" | "cmake" | "meson"`: each shortcut builds a small real
//! project of that kind with the real tools into a static-pie that runs in the empty-root proof;
//! the expanded commands are in the build log and the provenance; a bad combination is refused
//! naming the field.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// `work/r` holding a copy of `fixture` as `src` and a recipe with `build` in `[build]` and
/// `rest` after it.
fn recipe(work: &Path, fixture: &str, build: &str, rest: &str) -> PathBuf {
    let dir = work.join("r");
    copy_tree(
        &repo_root().join("tests/fixtures").join(fixture),
        &dir.join("src"),
    );
    std::fs::write(
        dir.join("recipe.toml"),
        format!("name = \"sys\"\n[build]\nlang = \"c\"\nsource = \"src\"\n{build}\n{rest}"),
    )
    .unwrap();
    dir
}

/// Builds into `work/out/sys`, checks that it verified static-pie and ran, and returns the
/// provenance's commands.
fn builds_and_runs(work: &Path, dir: &Path) -> Vec<String> {
    let out = work.join("out/sys");
    let run = staticpack(
        work,
        &[
            "build",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    run.ok();
    // "verify  static-pie …", or "verify  /usr/bin/x: static-pie …" for an installed tree.
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("verify  ") && l.contains("static-pie (musl")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("staticpack-provenance.json")).unwrap())
            .unwrap();
    record["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect()
}

fn has(commands: &[String], part: &str) {
    assert!(
        commands.iter().any(|c| c.contains(part)),
        "no command has {part:?}: {commands:#?}"
    );
}

#[test]
fn system_make_passes_the_toolchain_through_the_environment() {
    need("make", "make");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "make-c",
        "system = \"make\"\nmake_args = [\"hello\"]\nartifact = \"hello\"",
        "[test]\nargs = [\"x\"]\nexpect_stdout = \"hello from make, 2\\n\"\n",
    );
    let commands = builds_and_runs(work.path(), &dir);
    // Recorded as run: `sh -c 'umask 022<newline>make …'`.
    assert!(
        commands
            .last()
            .unwrap()
            .ends_with("\nmake -j\"$JOBS\" hello'"),
        "{commands:#?}"
    );
}

/// A Makefile's own `AR = ar rcu` and `CFLAGS = … $(MYCFLAGS)` stand: the toolchain is in the
/// environment, not on make's command line (where it would override both, as it did).
#[test]
fn system_make_keeps_the_makefiles_own_variables() {
    need("make", "make");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "make-own-vars",
        "system = \"make\"\nartifact = \"app\"",
        "[test]\nexpect_stdout = \"the Makefile's own variables, 3\\n\"\n",
    );
    let commands = builds_and_runs(work.path(), &dir);
    assert!(
        commands.last().unwrap().ends_with("\nmake -j\"$JOBS\"'"),
        "{commands:#?}"
    );
}

#[test]
fn system_autotools_generates_configure_and_installs() {
    need("autoreconf", "autoconf");
    need("automake", "automake");
    need("make", "make");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "systems/autotools",
        "system = \"autotools\"\nconfigure_args = [\"--disable-dependency-tracking\"]\ninstall = true",
        "[image]\nentrypoint = [\"/usr/bin/hello-auto\"]\n\
         [test]\nexpect_stdout = \"hello from autotools\\n\"\n",
    );
    let commands = builds_and_runs(work.path(), &dir);
    has(&commands, "autoreconf -fi");
    has(
        &commands,
        "./configure --prefix=/usr --disable-shared --enable-static --disable-dependency-tracking",
    );
    has(&commands, "make install DESTDIR=\"$DESTDIR\"");
    // configure was generated in the copy, not in the user's folder.
    assert!(
        !dir.join("src/configure").exists(),
        "the user's folder was written"
    );
}

#[test]
fn system_cmake_uses_the_toolchain_file_and_configure_args() {
    need("cmake", "cmake");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "systems/cmake",
        "system = \"cmake\"\nconfigure_args = [\"GREETING_LOUD=ON\"]\nartifact = \"_build/hello-cmake\"",
        "[test]\nexpect_stdout = \"HELLO FROM CMAKE\\n\"\n",
    );
    let commands = builds_and_runs(work.path(), &dir);
    has(
        &commands,
        "-DCMAKE_TOOLCHAIN_FILE=<build>/toolchain/staticpack.cmake",
    );
    has(&commands, "-DBUILD_SHARED_LIBS=OFF");
    has(&commands, "-DGREETING_LOUD=ON");
    has(&commands, "cmake --build _build");
}

#[test]
fn system_meson_builds_static_and_installs_with_destdir() {
    need("meson", "meson");
    need("ninja", "ninja-build");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "systems/meson",
        "system = \"meson\"\ninstall = true",
        "[image]\nentrypoint = [\"/usr/bin/hello-meson\"]\n\
         [test]\nexpect_stdout = \"hello from meson\\n\"\n",
    );
    let commands = builds_and_runs(work.path(), &dir);
    has(
        &commands,
        "--native-file <build>/toolchain/staticpack-native.ini",
    );
    has(&commands, "-Ddefault_library=static");
    has(
        &commands,
        "meson install -C _build --no-rebuild --destdir \"$DESTDIR\"",
    );
}

#[test]
fn a_failing_shortcut_shows_its_expanded_command_in_the_log() {
    need("cmake", "cmake");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "systems/cmake",
        "system = \"cmake\"\nmake_args = [\"no-such-target\"]\nartifact = \"_build/hello-cmake\"",
        "",
    );
    let out = work.path().join("out/sys");
    let run = staticpack(
        work.path(),
        &[
            "build",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("command 2 of 2 failed")
            && run.stderr.contains("--target no-such-target"),
        "{}",
        run.stderr
    );
    let log = std::fs::read_to_string(work.path().join("out/.sys.build.log")).unwrap();
    assert!(log.contains("$ cmake -S . -B _build"), "{log}");
    assert!(log.contains("$ cmake --build _build"), "{log}");
}

#[test]
fn system_with_commands_or_files_is_refused_naming_the_field() {
    let work = tempfile::tempdir().unwrap();
    for (extra, other) in [
        ("commands = [\"make\"]", "commands"),
        ("files = [\"main.c\"]", "files"),
    ] {
        let dir = recipe(
            work.path(),
            "make-c",
            &format!("system = \"make\"\n{extra}\nartifact = \"hello\""),
            "",
        );
        let run = staticpack(work.path(), &["build", dir.to_str().unwrap(), "--no-run"]);
        assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("`build.system`"), "{}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("`system` and `{other}` exclude each other")),
            "{}",
            run.stderr
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// The make fixture's files as `made-1.0/…` in a tar.gz.
fn make_tarball() -> Vec<u8> {
    use std::io::Write as _;
    let mut tar = tar::Builder::new(Vec::new());
    let dir = repo_root().join("tests/fixtures/make-c");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        let path = format!("made-1.0/{}", name.to_string_lossy());
        tar.append_data(&mut h, path, bytes.as_slice()).unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn a_shortcut_builds_from_an_archive_source() {
    need("make", "make");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("r");
    std::fs::create_dir_all(&dir).unwrap();
    let tarball = make_tarball();
    std::fs::write(dir.join("made-1.0.tar.gz"), &tarball).unwrap();
    let sha = staticpack::digest::Digest::of_bytes(&tarball);
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"sys\"\n[build]\nlang = \"c\"\n\
             source = {{ archive = \"made-1.0.tar.gz\", sha256 = \"{sha}\" }}\n\
             system = \"make\"\ninstall = true\n\
             [image]\nentrypoint = [\"/usr/bin/hello\"]\n\
             [test]\nexpect_stdout = \"hello from make, 1\\n\"\n"
        ),
    )
    .unwrap();
    // The unpacked archive is the build's own copy: built in place, not copied onto itself
    // (which would truncate every file).
    builds_and_runs(work.path(), &dir);
}

#[test]
fn an_installed_tree_is_the_same_whatever_the_callers_umask() {
    need("make", "make");
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "make-c",
        "system = \"make\"\ninstall = true",
        "[image]\nentrypoint = [\"/usr/bin/hello\"]\n",
    );
    let out = work.path().join("out/sys");
    // The second build runs with umask 077: `make install`'s mkdir -p and cp must not carry it.
    let run = staticpack(
        work.path(),
        &[
            "build",
            dir.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--check-repro",
            "--no-run",
        ],
    );
    run.ok();
    assert!(run.stderr.contains("repro   ok"), "{}", run.stderr);
}
