//! lang = "rust" with the real toolchain: hello-rust (no dependencies) reproducible and free of
//! host paths, hexyl from crates.io for musl then glibc, the second build offline from the
//! shared cargo home, and the refusals (no Cargo.lock, nothing cached and no network).

mod common;

use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};

fn verdict(run: &Run) -> String {
    run.stderr
        .lines()
        .find(|l| l.starts_with("verify  "))
        .unwrap_or_default()
        .to_owned()
}

/// The file at `path` (no leading '/') in one of the layout's layers.
fn file_in_layout(layout: &Path, path: &str) -> Vec<u8> {
    let blobs = layout.join("blobs/sha256");
    for blob in std::fs::read_dir(&blobs).unwrap().flatten() {
        let bytes = std::fs::read(blob.path()).unwrap();
        let mut tar = tar::Archive::new(flate2::read::MultiGzDecoder::new(&bytes[..]));
        let Ok(entries) = tar.entries() else { continue };
        for mut e in entries.flatten() {
            if e.path().ok().as_deref() == Some(Path::new(path)) {
                let mut out = Vec::new();
                e.read_to_end(&mut out).unwrap();
                return out;
            }
        }
    }
    panic!("no {path} in any layer of {}", layout.display());
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// No folder of this machine in the binary: the build folder, $HOME, the cache, the repository.
fn assert_no_host_paths(binary: &[u8], extra: &[&Path]) {
    let build_dirs = std::env::temp_dir().join("staticpack-build-");
    let home = std::env::var("HOME").unwrap();
    let mut needles = vec![
        build_dirs.display().to_string(),
        format!("{home}/"),
        repo_root().display().to_string(),
    ];
    needles.extend(extra.iter().map(|p| p.display().to_string()));
    for n in needles {
        assert!(
            !contains(binary, &n),
            "the binary holds the host path {n:?}"
        );
    }
    assert!(
        contains(binary, "/src/")
            || contains(binary, "/cargo/")
            || contains(binary, "/rust-toolchain/"),
        "the remapped paths are there instead"
    );
}

fn verify_json(dir: &Path, binary: &[u8], require: &str) -> serde_json::Value {
    let file = dir.join("binary");
    std::fs::write(&file, binary).unwrap();
    let run = staticpack(
        dir,
        &[
            "verify",
            "--json",
            "--require",
            require,
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    serde_json::from_str(run.stdout.trim()).unwrap()
}

#[test]
fn hello_rust_is_a_reproducible_musl_static_pie_with_no_host_paths() {
    need("cargo", "rustup");
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = [("STATICPACK_CACHE", cache.path().to_str().unwrap())];
    let recipe_file = recipe("hello-rust").join("recipe.toml");
    let run = staticpack_with(
        work.path(),
        &["build", recipe_file.to_str().unwrap(), "--check-repro"],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        verdict(&run).starts_with("verify  static-pie (musl, Rust"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("repro   ok: both builds gave"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    let binary = file_in_layout(&work.path().join("out/hello-rust"), "hello");
    assert_no_host_paths(&binary, &[cache.path()]);
    // strip = true is -C strip=symbols: no symbol table, but rustc's .comment stays.
    let v = verify_json(work.path(), &binary, "static-pie");
    assert_eq!(v["facts"]["stripped"], true, "{v}");
    let rustc = v["facts"]["rust_info"]["rustc"]
        .as_str()
        .unwrap_or_default();
    assert!(rustc.starts_with("1."), "{v}");

    // link = "static" is a fixed-address static binary, and verify says so.
    let copy = work.path().join("static");
    copy_tree(&recipe("hello-rust"), &copy);
    let text = std::fs::read_to_string(copy.join("recipe.toml")).unwrap();
    std::fs::write(
        copy.join("recipe.toml"),
        text.replace("link   = \"static-pie\"", "link   = \"static\""),
    )
    .unwrap();
    let run = staticpack_with(
        work.path(),
        &[
            "build",
            copy.join("recipe.toml").to_str().unwrap(),
            "--out",
            "st",
        ],
        &env,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        verdict(&run).starts_with("verify  static (musl, Rust"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_missing_cargo_lock_is_refused_with_the_fix() {
    let work = tempfile::tempdir().unwrap();
    let copy = work.path().join("hello-rust");
    copy_tree(&recipe("hello-rust"), &copy);
    std::fs::remove_file(copy.join("src/Cargo.lock")).unwrap();
    let run = staticpack(
        work.path(),
        &["build", copy.join("recipe.toml").to_str().unwrap()],
    );
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("`build.source`: no Cargo.lock in")
            && run.stderr.contains("cargo generate-lockfile"),
        "{}",
        run.stderr
    );
}

/// Cargo's settings in the shared cargo home: every request through a proxy that does not
/// answer, so any download fails at once.
fn cut_the_network(cargo_home: &Path) -> PathBuf {
    std::fs::create_dir_all(cargo_home).unwrap();
    let config = cargo_home.join("config.toml");
    std::fs::write(
        &config,
        "[http]\nproxy = \"http://127.0.0.1:9\"\ntimeout = 5\n[net]\nretry = 0\n",
    )
    .unwrap();
    config
}

#[test]
fn hexyl_builds_for_musl_then_for_glibc_offline_from_the_shared_cargo_home() {
    need("cargo", "rustup");
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let env = [("STATICPACK_CACHE", cache.path().to_str().unwrap())];
    let build = |name: &str| {
        let file = recipe(name).join("recipe.toml");
        staticpack_with(work.path(), &["build", file.to_str().unwrap()], &env)
    };

    // Cold: one cargo fetch fills the cache's cargo home.
    let run = build("hexyl");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Golden: tests/repro.rs leaves the hexyl recipes to this test.
    assert_eq!(
        printed_digest(&run),
        "sha256:ba439847d19bc3bd4ac4df86c2c972c4c89ba20bd6ffda55712d3a8880ce1b1e"
    );
    assert!(
        verdict(&run).starts_with("verify  static-pie (musl, Rust"),
        "{}",
        run.stderr
    );
    let crates = cache.path().join("cargo/registry/cache");
    let downloaded = std::fs::read_dir(&crates)
        .unwrap()
        .flatten()
        .flat_map(|index| std::fs::read_dir(index.path()).unwrap().flatten())
        .count();
    assert!(
        downloaded >= 30,
        "{downloaded} crates in {}",
        crates.display()
    );
    let musl = file_in_layout(&work.path().join("out/hexyl"), "usr/bin/hexyl");
    assert_no_host_paths(&musl, &[cache.path()]);
    // The SBOM lists the crates cargo compiled into the binary, not all of Cargo.lock: no
    // proc macro (host-only), no Windows-only crate, no dev-dependency.
    let cdx = attached_document(
        &work.path().join("out/hexyl"),
        "application/vnd.cyclonedx+json",
    );
    let purls: Vec<&str> = (cdx["components"].as_array().unwrap().iter())
        .filter_map(|c| c["purl"].as_str())
        .collect();
    for linked in [
        "pkg:cargo/clap@",
        "pkg:cargo/clap_builder@",
        "pkg:cargo/owo-colors@",
    ] {
        assert!(
            purls.iter().any(|p| p.starts_with(linked)),
            "{linked}: {purls:?}"
        );
    }
    for absent in [
        "clap_derive",
        "thiserror-impl",
        "windows-sys",
        "assert_cmd",
        "proc-macro2",
    ] {
        let purl = format!("pkg:cargo/{absent}@");
        assert!(
            !purls.iter().any(|p| p.starts_with(&purl)),
            "{absent}: {purls:?}"
        );
    }

    // The network gone, the glibc build still works: nothing is downloaded again.
    cut_the_network(&cache.path().join("cargo"));
    let run = build("hexyl-glibc");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        printed_digest(&run),
        "sha256:28ca24c39bc45e381d7433c12a900230eec5625d8330fea0419ff42f786370f5"
    );
    assert!(
        verdict(&run).starts_with("verify  static-pie (glibc, Rust"),
        "{}",
        run.stderr
    );
    let glibc = file_in_layout(&work.path().join("out/hexyl-glibc"), "usr/bin/hexyl");
    assert_no_host_paths(&glibc, &[cache.path()]);
    // Not stripped, so verify reads the symbols: no NSS function, and the rustc version.
    let v = verify_json(work.path(), &glibc, "static-pie");
    assert_eq!(v["facts"]["stripped"], false, "{v}");
    assert_eq!(v["facts"]["nss_hazards"], serde_json::json!([]), "{v}");
    assert!(v["facts"]["rust_info"]["rustc"].is_string(), "{v}");

    // The same cut with an empty cache: the fetch fails, and says so — the rebuild above
    // really came from the cache.
    let empty = tempfile::tempdir().unwrap();
    cut_the_network(&empty.path().join("cargo"));
    let file = recipe("hexyl").join("recipe.toml");
    let run = staticpack_with(
        work.path(),
        &["build", file.to_str().unwrap(), "--out", "cold"],
        &[("STATICPACK_CACHE", empty.path().to_str().unwrap())],
    );
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cargo fetch (the one step with network) failed")
            && run.stderr.contains("127.0.0.1 port 9")
            && run.stderr.contains("cargo vendor"),
        "{}",
        run.stderr
    );
}

/// What the provenance records does not depend on the cache's state: on a cold cache the first
/// build downloads (cargo fetch) and --check-repro's second build finds the crates there
/// (the offline try), and both record the same command, so their statements are the same.
#[test]
fn a_cold_cache_records_the_same_fetch_as_a_warm_one() {
    need("cargo", "rustup");
    let work = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let dir = work.path().join("tinydep");
    let files = [
        (
            "recipe.toml",
            "name = \"tinydep\"\n[build]\nlang = \"rust\"\nsource = \"src\"\nlibc = \"musl\"\n\
             link = \"static-pie\"\noutput = \"/app\"\n[image]\nbase = \"scratch\"\n\
             entrypoint = [\"/app\"]\n[test]\nexpect_stdout = \"unix\"\n",
        ),
        (
            "src/Cargo.toml",
            "[package]\nname = \"tinydep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             [dependencies]\ncfg-if = \"=1.0.5\"\n",
        ),
        (
            "src/Cargo.lock",
            "version = 3\n\n[[package]]\nname = \"cfg-if\"\nversion = \"1.0.5\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
             checksum = \"4e7648175b45a9a48536d676f68d918270699102aa8dab5496df06904c914600\"\n\n\
             [[package]]\nname = \"tinydep\"\nversion = \"0.1.0\"\ndependencies = [\n \"cfg-if\",\n]\n",
        ),
        (
            "src/src/main.rs",
            "cfg_if::cfg_if! {\n    if #[cfg(unix)] { const WORD: &str = \"unix\"; } else { const WORD: &str = \"other\"; }\n}\n\
             fn main() {\n    println!(\"{WORD}\");\n}\n",
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let run = staticpack_with(
        work.path(),
        &["build", dir.to_str().unwrap(), "--check-repro"],
        &[("STATICPACK_CACHE", cache.path().to_str().unwrap())],
    );
    run.ok();
    assert!(run.stderr.contains("repro   ok"), "{}", run.stderr);
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(work.path().join("out/tinydep/staticpack-provenance.json")).unwrap(),
    )
    .unwrap();
    let fetch: Vec<&str> = (record["commands"].as_array().unwrap().iter())
        .filter_map(|c| c.as_str())
        .filter(|c| c.contains(" fetch "))
        .collect();
    assert_eq!(fetch.len(), 1, "{record}");
    assert!(
        fetch[0].contains("fetch --locked") && !fetch[0].contains("--offline"),
        "{record}"
    );
}

#[test]
fn a_vendor_folder_is_used_without_a_fetch() {
    need("cargo", "rustup");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let tiny = src.join("vendor/tiny");
    std::fs::create_dir_all(src.join("src")).unwrap();
    std::fs::create_dir_all(tiny.join("src")).unwrap();
    // A crates.io dependency as `cargo vendor` leaves it: the lock's checksum is the package's
    // in .cargo-checksum.json.
    let sum = "5f1d0e3f0c1a9b8e7d6c5b4a392817161514131211100f0e0d0c0b0a09080706";
    std::fs::write(
        src.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n[dependencies]\ntiny = \"0.1\"\n",
    )
    .unwrap();
    std::fs::write(
        src.join("src/main.rs"),
        "fn main() { println!(\"{}\", tiny::word()); }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("Cargo.lock"),
        format!(
            "version = 4\n\n[[package]]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = [\"tiny\"]\n\n\
             [[package]]\nname = \"tiny\"\nversion = \"0.1.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{sum}\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        tiny.join("Cargo.toml"),
        "[package]\nname = \"tiny\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    std::fs::write(
        tiny.join("src/lib.rs"),
        "pub fn word() -> &'static str { \"vendored\" }\n",
    )
    .unwrap();
    std::fs::write(
        tiny.join(".cargo-checksum.json"),
        format!("{{\"files\":{{}},\"package\":\"{sum}\"}}"),
    )
    .unwrap();
    let file = work.path().join("recipe.toml");
    std::fs::write(
        &file,
        "name = \"vendored\"\n[build]\nlang = \"rust\"\nsource = \"src\"\n[test]\nexpect_stdout = \"vendored\"\n",
    )
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let run = staticpack_with(
        work.path(),
        &["build", file.to_str().unwrap()],
        &[("STATICPACK_CACHE", cache.path().to_str().unwrap())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("run     ok"), "{}", run.stderr);
    let provenance =
        std::fs::read_to_string(work.path().join("out/vendored/staticpack-provenance.json"))
            .unwrap();
    assert!(!provenance.contains("cargo fetch"), "{provenance}");
    assert!(provenance.contains("vendored-sources"), "{provenance}");
    assert!(
        !cache.path().join("cargo/registry").exists(),
        "nothing was downloaded into the shared cargo home"
    );
}
