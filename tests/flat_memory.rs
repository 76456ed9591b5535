//! Flat memory: a 400 MiB prebuilt static binary (a real musl program with real binaries
//! appended as its payload) is built into an image by the real staticpack binary, verified
//! static and run in the proof, while staticpack's peak RSS stays under 64 MiB: verify maps the
//! file and scans it in windows, the binary is hashed streaming, the layer streams from disk.

mod common;

use common::*;
use std::io::Read;

const SIZE: u64 = 400 << 20;
const LIMIT_KIB: i64 = 64 << 10;

#[test]
fn a_400_mib_prebuilt_is_built_and_verified_in_under_64_mib_of_memory() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("big");
    std::fs::create_dir_all(&dir).unwrap();
    let small = compile_c(
        "musl-gcc",
        &["-static", "-O2"],
        "#include <stdio.h>\nint main(void){puts(\"big\");return 0;}\n",
        &dir,
        "small",
    );
    // The payload: real binaries (staticpack's own and the program), concatenated to 400 MiB;
    // bytes past the last segment, so the kernel maps none of them and the program still runs.
    // Streamed: this process's own peak counts too (a child spawned by vfork+exec inherits
    // the parent's high-water mark into RUSAGE_CHILDREN), so it never holds a file whole.
    let mut big = std::fs::File::create(dir.join("big")).unwrap();
    std::io::copy(&mut std::fs::File::open(&small).unwrap(), &mut big).unwrap();
    while big.metadata().unwrap().len() < SIZE {
        let left = SIZE - big.metadata().unwrap().len();
        let me = std::fs::File::open(env!("CARGO_BIN_EXE_staticpack")).unwrap();
        std::io::copy(&mut me.take(left), &mut big).unwrap();
    }
    drop(big);
    std::fs::write(
        dir.join("recipe.toml"),
        "name = \"big\"\n[build]\nlang = \"prebuilt\"\nlibc = \"musl\"\nlink = \"static\"\noutput = \"/big\"\nsource = \"big\"\n[test]\nexpect_stdout = \"big\"\n",
    )
    .unwrap();
    let cache = work.path().join("cache");
    let run = staticpack(
        work.path(),
        &[
            "--cache-dir",
            cache.to_str().unwrap(),
            "build",
            dir.to_str().unwrap(),
            "--out",
            "big-oci",
        ],
    );
    // The largest resident set of any child waited for so far: staticpack and what it ran
    // (the compiler above is a few MiB).
    let peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss();
    run.ok();
    assert!(
        run.stdout.contains("static") || run.stderr.contains("static"),
        "verify did not report the binary static:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    eprintln!("peak RSS building a 400 MiB prebuilt: {} KiB", peak_kib);
    assert!(
        peak_kib < LIMIT_KIB,
        "peak RSS {peak_kib} KiB, over the {LIMIT_KIB} KiB limit"
    );
    // verify of the file and of the image it went into map the binary too. RUSAGE_CHILDREN is
    // the largest of all children so far, so it can only grow: measured again after both.
    let file = staticpack(work.path(), &["verify", dir.join("big").to_str().unwrap()]);
    file.ok();
    let image = staticpack(work.path(), &["verify", "oci:big-oci"]);
    image.ok();
    let peak_kib = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .unwrap()
        .max_rss();
    eprintln!("peak RSS after verify PATH and verify IMAGE: {peak_kib} KiB");
    assert!(
        peak_kib < LIMIT_KIB,
        "peak RSS {peak_kib} KiB after verify, over the {LIMIT_KIB} KiB limit"
    );
    // The image holds the whole binary: the layer is not a truncated copy.
    let layout = work.path().join("big-oci");
    assert!(layout.join("index.json").is_file());
    let blobs: u64 = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(blobs > 50 << 20, "the layout's blobs total {blobs} bytes");
}
