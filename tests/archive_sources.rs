//! `build.source` as an archive: a C project packed into a tar.gz here, built from a file in
//! the recipe's folder and from a URL on 127.0.0.1 (downloaded once, then from the cache), and
//! the refusals: a wrong sha256, a path-traversal archive.

mod common;

use common::fake_http::{FakeServer, Reply, binary_response};
use common::*;
use staticpack::digest::Digest;
use std::io::Write as _;
use std::path::Path;

/// hello-c's source as `hello-1.0/hello.c` in a tar.gz.
fn hello_tarball() -> Vec<u8> {
    let source = std::fs::read(recipe("hello-c").join("src/hello.c")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(source.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    tar.append_data(&mut h, "hello-1.0/hello.c", source.as_slice())
        .unwrap();
    gzip(&tar.into_inner().unwrap())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A recipe folder in `dir` whose source is `source` (a TOML inline table).
fn recipe_with(dir: &Path, source: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"hello-archive\"\n[build]\nlang = \"c\"\nsource = {source}\noutput = \"/hello\"\n\
             [test]\nargs = [\"--selftest\"]\nexpect_stdout = \"ok: no libc in this root\"\n"
        ),
    )
    .unwrap();
}

fn build(cwd: &Path, cache: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["build", "recipe"];
    args.extend_from_slice(extra);
    staticpack_with(cwd, &args, &[("XDG_CACHE_HOME", cache.to_str().unwrap())])
}

#[test]
fn a_c_project_builds_from_a_local_archive() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tarball = hello_tarball();
    let sha = Digest::of_bytes(&tarball);
    let dir = work.path().join("recipe");
    recipe_with(
        &dir,
        &format!(
            "{{ archive = \"hello-1.0.tar.gz\", sha256 = \"{}\" }}",
            sha.hex()
        ),
    );
    std::fs::write(dir.join("hello-1.0.tar.gz"), &tarball).unwrap();
    let run = build(work.path(), cache.path(), &[]);
    run.ok();
    assert!(run.stderr.contains("verify  static-pie"), "{}", run.stderr);
    assert!(run.stderr.contains(&sha.to_string()), "{}", run.stderr);
    printed_digest(&run);
    // The provenance keys the build by the archive's digest.
    let record = std::fs::read_to_string(
        work.path()
            .join("out/hello-archive/staticpack-provenance.json"),
    )
    .unwrap();
    assert!(record.contains(&sha.to_string()), "{record}");
}

#[test]
fn a_url_is_downloaded_once_and_then_taken_from_the_cache() {
    let tarball = hello_tarball();
    let sha = Digest::of_bytes(&tarball);
    let served = tarball.clone();
    let server = FakeServer::start(move |_| Reply::Bytes(binary_response(&served)));
    let cache = tempfile::tempdir().unwrap();
    let source = format!(
        "{{ url = \"http://{}/hello-1.0.tar.gz\", sha256 = \"{}\" }}",
        server.host(),
        sha.hex()
    );
    // --check-repro: the second build (a child staticpack) reads the same cache.
    let first = tempfile::tempdir().unwrap();
    recipe_with(&first.path().join("recipe"), &source);
    let run = build(first.path(), cache.path(), &["--check-repro"]);
    run.ok();
    let digest = printed_digest(&run);
    assert_eq!(server.seen().len(), 1, "{:?}", server.seen());
    let cached = cache
        .path()
        .join("staticpack/sources/sha256")
        .join(sha.hex());
    assert_eq!(std::fs::read(&cached).unwrap(), tarball);

    // Another folder, so the layout cache does not answer: the source cache does.
    let second = tempfile::tempdir().unwrap();
    recipe_with(&second.path().join("recipe"), &source);
    let run = build(second.path(), cache.path(), &[]);
    run.ok();
    assert_eq!(printed_digest(&run), digest);
    assert_eq!(server.seen().len(), 1, "{:?}", server.seen());
}

#[test]
fn a_wrong_sha256_is_refused_showing_both_digests_and_nothing_is_built() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let tarball = hello_tarball();
    let pinned = Digest::of_bytes(b"another release");
    let dir = work.path().join("recipe");
    recipe_with(
        &dir,
        &format!(
            "{{ archive = \"hello-1.0.tar.gz\", sha256 = \"{}\" }}",
            pinned.hex()
        ),
    );
    std::fs::write(dir.join("hello-1.0.tar.gz"), &tarball).unwrap();
    let run = build(work.path(), cache.path(), &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains(&pinned.to_string()), "{}", run.stderr);
    assert!(
        run.stderr.contains(&Digest::of_bytes(&tarball).to_string()),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("verify "), "{}", run.stderr);
    assert!(!work.path().join("out/hello-archive").exists());
}

#[test]
fn a_path_traversal_archive_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // The tar crate's builder refuses `..`; a hostile archive is written by hand.
    let mut h = tar::Header::new_old();
    let name = b"hello-1.0/../../escaped.c";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    let mut tar = h.as_bytes().to_vec();
    tar.extend(b"int;");
    tar.resize(512 * 2, 0);
    tar.extend([0u8; 1024]);
    let tarball = gzip(&tar);
    let dir = work.path().join("recipe");
    recipe_with(
        &dir,
        &format!(
            "{{ archive = \"evil.tar.gz\", sha256 = \"{}\" }}",
            Digest::of_bytes(&tarball).hex()
        ),
    );
    std::fs::write(dir.join("evil.tar.gz"), &tarball).unwrap();
    let run = build(work.path(), cache.path(), &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("unsafe entry"), "{}", run.stderr);
    assert!(run.stderr.contains("'..'"), "{}", run.stderr);
    assert!(!work.path().join("out/hello-archive").exists());
    assert!(!std::env::temp_dir().join("escaped.c").exists());
}

#[test]
fn a_go_module_builds_from_a_tar_xz() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let from = recipe("go-6-nocgo-purego");
    let mut tar = tar::Builder::new(Vec::new());
    for name in ["go.mod", "main.go"] {
        let bytes = std::fs::read(from.join("src").join(name)).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, format!("app-1.0/{name}"), bytes.as_slice())
            .unwrap();
    }
    let mut xz = lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::default()).unwrap();
    xz.write_all(&tar.into_inner().unwrap()).unwrap();
    let tarball = xz.finish().unwrap();
    let dir = work.path().join("recipe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app-1.0.tar.xz"), &tarball).unwrap();
    let text = std::fs::read_to_string(from.join("recipe.toml"))
        .unwrap()
        .replace(
            "source = \"src\"",
            &format!(
                "source = {{ archive = \"app-1.0.tar.xz\", sha256 = \"{}\" }}",
                Digest::of_bytes(&tarball).hex()
            ),
        );
    assert!(text.contains("app-1.0.tar.xz"));
    std::fs::write(dir.join("recipe.toml"), text).unwrap();
    let run = build(work.path(), cache.path(), &[]);
    run.ok();
    assert!(run.stderr.contains("verify  static"), "{}", run.stderr);
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
}

/// A project whose build system finds its own files: no `*.c` at the archive's top is needed
/// when `commands` build it (busybox, jq and zlib keep theirs in subfolders or generate them).
#[test]
fn a_commands_build_needs_no_c_file_at_the_archive_top() {
    need("make", "make");
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let fixture = repo_root().join("tests/fixtures/make-c");
    for name in ["Makefile", "main.c", "greet.c", "greet.h"] {
        let bytes = std::fs::read(fixture.join(name)).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        tar.append_data(&mut h, format!("made-1.0/code/{name}"), bytes.as_slice())
            .unwrap();
    }
    let tarball = gzip(&tar.into_inner().unwrap());
    let dir = work.path().join("recipe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("made-1.0.tar.gz"), &tarball).unwrap();
    std::fs::write(
        dir.join("recipe.toml"),
        format!(
            "name = \"made\"\n[build]\nlang = \"c\"\n\
             source = {{ archive = \"made-1.0.tar.gz\", sha256 = \"{}\" }}\n\
             commands = [\"make -C code\"]\nartifact = \"code/hello\"\noutput = \"/hello\"\n\
             [test]\nargs = [\"x\"]\nexpect_stdout = \"hello from make, 2\\n\"\n",
            Digest::of_bytes(&tarball).hex()
        ),
    )
    .unwrap();
    let run = build(work.path(), cache.path(), &[]);
    run.ok();
    assert!(run.stderr.contains("verify  static-pie"), "{}", run.stderr);
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
}

/// hello-c's source beside `hello-1.0/zeros`, a GNU sparse entry declaring `logical` bytes:
/// a gzip of a few KiB that unpacks to GiBs.
fn hello_with_zeros(logical: u64) -> Vec<u8> {
    let source = std::fs::read(recipe("hello-c").join("src/hello.c")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(source.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    tar.append_data(&mut h, "hello-1.0/hello.c", source.as_slice())
        .unwrap();
    let mut tar = tar.into_inner().unwrap();
    tar.truncate(tar.len() - 1024); // the end-of-archive blocks go after the sparse entry
    tar.extend(sparse::gnu_sparse_entry("hello-1.0/zeros", logical));
    tar.extend([0u8; 1024]);
    gzip(&tar)
}

#[test]
fn a_small_archive_expanding_past_the_limits_is_refused_saying_which_and_how_to_raise_it() {
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = work.path().join("recipe");
    let source = |tarball: &[u8], extra: &str| {
        format!(
            "{{ archive = \"hello-1.0.tar.gz\", sha256 = \"{}\"{extra} }}",
            Digest::of_bytes(tarball).hex()
        )
    };

    // 3 GiB from a few KiB: under the absolute 8 GiB, past 100 times its size.
    let tarball = hello_with_zeros(3 << 30);
    assert!(tarball.len() < 16 << 10, "{}", tarball.len());
    recipe_with(&dir, &source(&tarball, ""));
    std::fs::write(dir.join("hello-1.0.tar.gz"), &tarball).unwrap();
    let started = std::time::Instant::now();
    let run = build(work.path(), cache.path(), &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    for part in [
        "hello-1.0.tar.gz unpacks to more than 1073741824 bytes",
        "\"hello-1.0/zeros\" declares 3221225472 bytes",
        "expansion limit",
        "100 times its size",
        "max_unpack_bytes",
        "build.source",
    ] {
        assert!(run.stderr.contains(part), "{part:?} in:\n{}", run.stderr);
    }
    assert!(!run.stderr.contains("verify "), "{}", run.stderr);
    assert!(!work.path().join("out/hello-archive").exists());
    eprintln!("ratio: {}", run.stderr.trim().replace('\n', " / "));

    // The recipe's own limit replaces both; past it, it is the one named.
    recipe_with(&dir, &source(&tarball, ", max_unpack_bytes = \"2G\""));
    let run = build(work.path(), cache.path(), &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    for part in [
        "unpacks to more than 2147483648 bytes",
        "build.source.max_unpack_bytes",
    ] {
        assert!(run.stderr.contains(part), "{part:?} in:\n{}", run.stderr);
    }
    assert!(!work.path().join("out/hello-archive").exists());
    eprintln!("recipe limit: {}", run.stderr.trim().replace('\n', " / "));

    // A value that is not a size names the field and the fix.
    recipe_with(&dir, &source(&tarball, ", max_unpack_bytes = \"lots\""));
    let run = build(work.path(), cache.path(), &[]);
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("build.source.max_unpack_bytes") && run.stderr.contains("16G"),
        "{}",
        run.stderr
    );
    eprintln!("bad field: {}", run.stderr.trim().replace('\n', " / "));
}
