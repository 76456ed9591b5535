//! The C examples in recipes/, built from real upstream release tarballs (pinned by sha256,
//! downloaded once per machine into staticpack's cache folder) with the real binary, gcc, musl
//! and each project's own build system: each must verify static-pie and pass its run proof in
//! an empty root; the quick ones also pass `--check-repro`, and the tools are exercised once
//! more on the host (they are static: they run anywhere).

mod common;

use common::*;
use std::path::{Path, PathBuf};

/// The manifest digest of each example, for Debian 12's toolchains (gcc 12.2.0, musl 1.2.3,
/// linux-libc-dev 6.1, make 4.3, autoconf 2.71, automake 1.16.5, libtool 2.4.7, cmake 3.25.1).
/// A change here is a change of output bytes: say why in the commit message. (tests/repro.rs
/// leaves these recipes to this file.)
const GOLDEN: &[(&str, &str)] = &[
    (
        "brotli",
        "sha256:6ff88ac4aa5df750cd54a29ea6a0423ed466e3e31b8ef3f99c98299a64e3d3b8",
    ),
    (
        "busybox",
        "sha256:eddefbe4ae95b3a9c0d36f37ab669c735568c800a2c035ba837166d4a7ddb831",
    ),
    (
        "jq",
        "sha256:755b0f59f8a7fa1838e11fbd50333521e1275c03834480ac7eb93cc62561d1af",
    ),
    (
        "oniguruma",
        "sha256:00df4f4114917f14989e21d1733cd47e5e20fbaf33ece6bd88a0d339d77d29b8",
    ),
    (
        "pigz",
        "sha256:19ee4440ea888d74d0364d648e527c7e6cbe84bc802778da9fe21fb0aa5b8f7d",
    ),
    (
        "zlib",
        "sha256:57446b9493da72d7f99c97cf66f0f57bad5d7f2ae8819901c5e34864c90d94a9",
    ),
];

/// Builds recipes/`name` into `work/out` (never into the repository) with `extra` arguments;
/// asserts it verified static-pie, its run proof passed and its digest is the golden one.
fn build_example(work: &Path, name: &str, extra: &[&str]) -> Run {
    need("make", "make");
    let out = work.join("out");
    let recipe = recipe(name);
    let mut args = vec![
        "build",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let run = staticpack(work, &args);
    run.ok();
    assert!(
        run.stderr.contains("static-pie (musl, x86-64)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("run     ok (builtin namespace sandbox): exit 0, stdout as expected"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("no libc or dynamic loader"),
        "{}",
        run.stderr
    );
    let digest = printed_digest(&run);
    let golden = GOLDEN.iter().find(|(n, _)| *n == name).map(|(_, d)| *d);
    assert_eq!(
        golden,
        Some(digest.as_str()),
        "recipes/{name}: the golden digest differs; the current one is (\"{name}\", \"{digest}\")"
    );
    if extra.contains(&"--check-repro") {
        assert!(
            run.stderr.contains("repro   ok: both builds gave"),
            "{}",
            run.stderr
        );
    }
    run
}

/// Every entry of the layout's layers, in order: (path, kind, link target, bytes).
fn layer_entries(layout: &Path) -> Vec<(String, char, String, Vec<u8>)> {
    use std::io::Read;
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
            let mut e = e.unwrap();
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
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            out.push((path, kind, link, bytes));
        }
    }
    out
}

/// The packed file at `path` (as in the layer, no leading slash) written to `dir` as an
/// executable; returns where.
fn unpack_binary(layout: &Path, path: &str, dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let entries = layer_entries(layout);
    let (_, _, _, bytes) = entries
        .iter()
        .find(|(p, k, _, _)| p == path && *k == 'f')
        .unwrap_or_else(|| panic!("no file {path} in the image"));
    let to = dir.join(Path::new(path).file_name().unwrap());
    std::fs::write(&to, bytes).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

/// `program args` with `input` on stdin; its stdout, after asserting it succeeded.
fn pipe(program: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Text that compresses well but not trivially.
fn sample_text() -> Vec<u8> {
    (0..4000)
        .map(|i| format!("line {i}: {}\n", i * 7919 % 1013))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn busybox_from_its_defconfig_runs_sh_with_its_applet_links() {
    let work = tempfile::tempdir().unwrap();
    build_example(work.path(), "busybox", &[]);
    let layout = work.path().join("out");
    let entries = layer_entries(&layout);
    for applet in ["sh", "echo", "wc"] {
        assert!(
            entries
                .iter()
                .any(|(p, k, t, _)| p == &format!("bin/{applet}") && *k == 'l' && t == "busybox"),
            "no /bin/{applet} -> busybox"
        );
    }
    // The binary is the static build from the defconfig with CONFIG_STATIC: its applets work
    // when called by another name, here on the host.
    let bin = tempfile::tempdir().unwrap();
    let busybox = unpack_binary(&layout, "bin/busybox", bin.path());
    let sh = bin.path().join("sh");
    std::os::unix::fs::symlink(&busybox, &sh).unwrap();
    let out = pipe(&sh, &["-c", "printf 'b\\na\\n' | sort | tr -d '\\n'"], b"");
    assert_eq!(out, b"ab");
}

#[test]
fn brotli_by_cmake_repeats_and_round_trips() {
    need("cmake", "cmake");
    let work = tempfile::tempdir().unwrap();
    build_example(work.path(), "brotli", &["--check-repro"]);
    let bin = tempfile::tempdir().unwrap();
    let brotli = unpack_binary(&work.path().join("out"), "usr/bin/brotli", bin.path());
    let text = sample_text();
    let packed = pipe(&brotli, &["-c", "-q", "9"], &text);
    assert!(packed.len() < text.len() / 4, "{} bytes", packed.len());
    assert_eq!(pipe(&brotli, &["-d", "-c"], &packed), text);
}

#[test]
fn zlib_installs_a_static_library_and_its_own_tool() {
    let work = tempfile::tempdir().unwrap();
    build_example(work.path(), "zlib", &["--check-repro"]);
    let entries = layer_entries(&work.path().join("out"));
    let names: Vec<&str> = entries.iter().map(|(p, _, _, _)| p.as_str()).collect();
    for want in [
        "usr/lib/libz.a",
        "usr/include/zlib.h",
        "usr/lib/pkgconfig/zlib.pc",
    ] {
        assert!(names.contains(&want), "{want} not installed: {names:?}");
    }
    assert!(
        !names.iter().any(|n| n.contains("libz.so")),
        "a shared libz was installed: {names:?}"
    );
    let bin = tempfile::tempdir().unwrap();
    let minigzip = unpack_binary(&work.path().join("out"), "usr/bin/minigzip", bin.path());
    let text = sample_text();
    let packed = pipe(&minigzip, &[], &text);
    assert_eq!(pipe(&minigzip, &["-d"], &packed), text);
}

#[test]
fn oniguruma_from_a_git_export_through_autoreconf() {
    need("autoreconf", "autoconf");
    need("libtoolize", "libtool");
    let work = tempfile::tempdir().unwrap();
    build_example(work.path(), "oniguruma", &["--check-repro"]);
    let entries = layer_entries(&work.path().join("out"));
    let names: Vec<&str> = entries.iter().map(|(p, _, _, _)| p.as_str()).collect();
    for want in [
        "usr/lib/libonig.a",
        "usr/include/oniguruma.h",
        "usr/lib/pkgconfig/oniguruma.pc",
    ] {
        assert!(names.contains(&want), "{want} not installed: {names:?}");
    }
}

#[test]
fn pigz_with_zlib_as_a_dependency_repeats_and_round_trips() {
    let work = tempfile::tempdir().unwrap();
    build_example(work.path(), "pigz", &["--check-repro"]);
    let layout = work.path().join("out");
    let bin = tempfile::tempdir().unwrap();
    let pigz = unpack_binary(&layout, "usr/bin/pigz", bin.path());
    let text = sample_text();
    let packed = pipe(&pigz, &["-c", "-p", "2"], &text);
    assert_eq!(&packed[..2], b"\x1f\x8b", "not gzip");
    assert_eq!(pipe(&pigz, &["-d", "-c"], &packed), text);
    // zlib is a build dependency: none of its files are in the image.
    let names: Vec<String> = layer_entries(&layout).into_iter().map(|e| e.0).collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("libz") || n.contains("zlib.h")),
        "{names:?}"
    );
}

#[test]
fn jq_by_autotools_with_oniguruma_as_a_dependency() {
    need("autoreconf", "autoconf");
    need("libtoolize", "libtool");
    let work = tempfile::tempdir().unwrap();
    build_example(work.path(), "jq", &[]);
    let layout = work.path().join("out");
    let bin = tempfile::tempdir().unwrap();
    let jq = unpack_binary(&layout, "usr/bin/jq", bin.path());
    assert_eq!(pipe(&jq, &["--version"], b""), b"jq-1.6\n");
    let out = pipe(
        &jq,
        &["-c", "[.[] | sub(\"(?<x>[a-z]+)\"; \"<\\(.x)>\")]"],
        b"[\"abc1\", \"x2y\"]",
    );
    assert_eq!(out, b"[\"<abc>1\",\"<x>2y\"]\n");
    let names: Vec<String> = layer_entries(&layout).into_iter().map(|e| e.0).collect();
    assert_eq!(
        names,
        ["usr/", "usr/bin/", "usr/bin/jq"],
        "only jq is packed"
    );
}
