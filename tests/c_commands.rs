//! C projects built by their own build system (`commands`), with the real binary, gcc, make and
//! musl: a Makefile project packed by `artifact` or by `install = true`, the jail around the
//! commands, the build log on failure, and `[[image.symlinks]]`.

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// `work/r` holding a copy of the Makefile fixture as `src` and a recipe whose `[build]`
/// continues with `build` and whose other sections are `rest`.
fn recipe(work: &Path, build: &str, rest: &str) -> PathBuf {
    need("make", "make");
    let dir = work.join("r");
    copy_tree(&repo_root().join("tests/fixtures/make-c"), &dir.join("src"));
    std::fs::write(
        dir.join("recipe.toml"),
        format!("name = \"made\"\n[build]\nlang = \"c\"\nsource = \"src\"\n{build}\n{rest}"),
    )
    .unwrap();
    dir
}

fn build(work: &Path, dir: &Path, extra: &[&str]) -> Run {
    let out = work.join("out/made");
    let mut args = vec![
        "build",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    staticpack(work, &args)
}

/// Every entry of every layer of the layout's image: (path, kind, link target).
fn layer_entries(layout: &Path) -> Vec<(String, char, String)> {
    let read_json = |p: PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    };
    let blob = |d: &serde_json::Value| {
        let d = d["digest"].as_str().unwrap().replace(':', "/");
        layout.join("blobs").join(d)
    };
    let index = read_json(layout.join("index.json"));
    let manifest = read_json(blob(&index["manifests"][0]));
    let mut out = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let gz = flate2::read::MultiGzDecoder::new(std::fs::File::open(blob(layer)).unwrap());
        for e in tar::Archive::new(gz).entries().unwrap() {
            let e = e.unwrap();
            let kind = match e.header().entry_type() {
                tar::EntryType::Directory => 'd',
                tar::EntryType::Symlink => 'l',
                _ => 'f',
            };
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((e.path().unwrap().to_string_lossy().into_owned(), kind, link));
        }
    }
    out
}

#[test]
fn a_makefile_project_builds_static_pie_and_runs() {
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "commands = [\"make -j$JOBS\"]\nartifact = \"hello\"",
        "[[image.symlinks]]\npath = \"/bin/hi\"\ntarget = \"../made\"\n\
         [test]\nargs = [\"x\"]\nexpect_stdout = \"hello from make, 2\\n\"\n",
    );
    let run = build(work.path(), &dir, &[]);
    run.ok();
    assert!(
        run.stderr.contains("command [1/1] make -j$JOBS"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("verify  static-pie"), "{}", run.stderr);
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    // The user's folder is never written: no objects beside the sources.
    assert!(!dir.join("src/main.o").exists() && !dir.join("src/hello").exists());
    let layout = work.path().join("out/made");
    let entries = layer_entries(&layout);
    assert!(
        entries.contains(&("bin/hi".into(), 'l', "../made".into())),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|(p, k, _)| p == "made" && *k == 'f'),
        "{entries:?}"
    );
    // Provenance records the command and the environment, host paths normalized.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("staticpack-provenance.json")).unwrap())
            .unwrap();
    let commands = record["commands"].to_string();
    assert!(commands.contains("make -j$JOBS"), "{commands}");
    let env = &record["environment"];
    assert_eq!(env["CC"], "<build>/toolchain/bin/cc", "{env}");
    assert_eq!(env["DESTDIR"], "<build>/destdir", "{env}");
    assert_eq!(
        env["PKG_CONFIG_LIBDIR"], "<build>/sysroot/lib/pkgconfig",
        "{env}"
    );
    assert_eq!(env["PREFIX"], "/usr");
    assert!(
        env["CFLAGS"]
            .as_str()
            .unwrap()
            .contains("-ffile-prefix-map=<build>/src=/src")
    );
    assert!(env["LDFLAGS"].as_str().unwrap().contains("-static-pie"));
}

#[test]
fn a_command_cannot_write_outside_the_build_folder() {
    let work = tempfile::tempdir().unwrap();
    let escape = work.path().join("r/src/escaped");
    let dir = recipe(
        work.path(),
        &format!(
            "commands = [\"make\", \"touch {}\"]\nartifact = \"hello\"",
            escape.display()
        ),
        "",
    );
    let run = build(work.path(), &dir, &["--no-run"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(!escape.exists(), "a command wrote into the recipe's folder");
    assert!(
        run.stderr.contains("command 2 of 2 failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failing_command_shows_the_end_of_the_log_and_keeps_it() {
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "commands = [\"seq 1 100\", \"echo the-real-reason >&2; exit 7\"]\nartifact = \"hello\"",
        "",
    );
    let run = build(work.path(), &dir, &["--no-run"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let e = &run.stderr;
    assert!(e.contains("command 2 of 2 failed (exit status: 7)"), "{e}");
    assert!(e.contains("  | the-real-reason"), "{e}");
    // The last 30 lines of the log: 100 is shown, 70 is not.
    assert!(e.contains("  | 100\n") && !e.contains("  | 70\n"), "{e}");
    let kept = work.path().join("out/.made.build.log");
    assert!(e.contains(&format!("whole log: {}", kept.display())), "{e}");
    let log = std::fs::read_to_string(&kept).unwrap();
    assert!(log.starts_with("$ seq 1 100\n1\n"), "{log}");
    assert!(log.contains("$ echo the-real-reason"), "{log}");
}

#[test]
fn install_true_packs_the_installed_tree() {
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "commands = [\"make -j$JOBS\", \"make install\"]\ninstall = true",
        "[image]\nentrypoint = [\"/usr/bin/hello\"]\n\
         [test]\nexpect_stdout = \"hello from make, 1\\n\"\n",
    );
    let run = build(work.path(), &dir, &[]);
    run.ok();
    assert!(
        run.stderr.contains("verify  /usr/bin/hello: static-pie")
            && run
                .stderr
                .contains("verify  /usr/bin/hello-too: static-pie"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    let entries = layer_entries(&work.path().join("out/made"));
    let files: Vec<&str> = entries
        .iter()
        .filter(|e| e.1 == 'f')
        .map(|e| e.0.as_str())
        .collect();
    assert_eq!(files, ["usr/bin/hello", "usr/bin/hello-too"], "{entries:?}");
}

/// `make install` runs `mkdir -p` and `cp`, whose modes follow the umask: the commands get a
/// fixed one, so --check-repro's second build (umask 077) packs the same tree.
#[test]
fn an_installed_tree_repeats_under_another_umask() {
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "commands = [\"make -j$JOBS\", \"make install\"]\ninstall = true",
        "[image]\nentrypoint = [\"/usr/bin/hello\"]\n\
         [test]\nexpect_stdout = \"hello from make, 1\\n\"\n",
    );
    let run = build(work.path(), &dir, &["--check-repro"]);
    run.ok();
    assert!(run.stderr.contains("repro   ok"), "{}", run.stderr);
}

#[test]
fn install_true_refuses_a_dynamic_elf_by_name() {
    let work = tempfile::tempdir().unwrap();
    let dir = recipe(
        work.path(),
        "commands = [\"make install-dynamic\"]\ninstall = true",
        "[image]\nentrypoint = [\"/usr/bin/hello\"]\n",
    );
    let run = build(work.path(), &dir, &["--no-run"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("verify refused /usr/bin/dynamic (installed under $DESTDIR)"),
        "{}",
        run.stderr
    );
    assert!(!work.path().join("out/made").exists());
}
