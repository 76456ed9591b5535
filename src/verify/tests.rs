//! Real binaries built by the real toolchains (gcc, musl-gcc, go, rustc) into temp dirs, then
//! hostile variants of them. A missing tool fails the test with the install command.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use super::*;

const HELLO_C: &str = "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n";
const GETPWNAM_C: &str = "#include <stdio.h>\n#include <pwd.h>\n\
    int main(void){struct passwd*p=getpwnam(\"root\");printf(\"%d\\n\",p?(int)p->pw_uid:-1);return 0;}\n";

fn run(cmd: &mut Command, install: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; install it: {install}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `src` with `compiler args…` and returns the output binary's bytes.
fn cc(compiler: &str, args: &[&str], src: &str) -> Vec<u8> {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("out");
    crate::test_support::cc::compile_c(compiler, args, src, &out);
    std::fs::read(&out).unwrap()
}

/// The Go build cache is shared by all tests and runs (it is what makes cgo builds fast).
fn go_cache() -> PathBuf {
    std::env::temp_dir().join("staticpack-verify-test-gocache")
}

fn go_build(module: &str, src: &str, env: &[(&str, &str)], args: &[&str]) -> Vec<u8> {
    let dir = TempDir::new().unwrap();
    std::fs::write(
        dir.path().join("go.mod"),
        format!("module {module}\n\ngo 1.19\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("main.go"), src).unwrap();
    let out = dir.path().join("out");
    let mut cmd = Command::new("go");
    cmd.current_dir(dir.path())
        .env("GOCACHE", go_cache())
        .env("GOPATH", dir.path().join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GO111MODULE", "on")
        .env("GOTOOLCHAIN", "local")
        .arg("build")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(".");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(&mut cmd, "apt-get install golang-go");
    std::fs::read(&out).unwrap()
}

const HELLO_GO: &str = "package main\nimport \"fmt\"\nfunc main(){ fmt.Println(\"hi\") }\n";

/// NETUSER_GO built with the default environment (cgo on) and `args`.
fn go_netuser(args: &[&str]) -> Vec<u8> {
    go_build("example.com/netuser", NETUSER_GO, &[], args)
}

/// HELLO_GO built with cgo off and `args`.
fn go_hello(args: &[&str]) -> Vec<u8> {
    go_build("example.com/hello", HELLO_GO, &[("CGO_ENABLED", "0")], args)
}
const NETUSER_GO: &str = "package main\nimport (\"fmt\"; \"net\"; \"os/user\")\n\
    func main(){ u, _ := user.Current(); a, _ := net.LookupHost(\"localhost\"); fmt.Println(u, a) }\n";

fn facts(bytes: &[u8]) -> ElfFacts {
    analyze(bytes).unwrap_or_else(|e| panic!("analyze failed: {e}"))
}

fn errors(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|x| x.severity == Severity::Error).collect()
}

/// Checks that the finding's why holds every part of `why`, and its fix every part of `fix`.
fn explains(finding: &Finding, why: &[&str], fix: &[&str]) {
    for part in why {
        assert!(
            finding.why.contains(part),
            "{part:?} not in: {}",
            finding.why
        );
    }
    for part in fix {
        assert!(
            finding.fix.contains(part),
            "{part:?} not in: {}",
            finding.fix
        );
    }
}

/// The findings for `f` under `require`, checked to hold exactly one error.
fn one_error(f: &ElfFacts, require: Requirement) -> Vec<Finding> {
    let d = diagnose(f, require);
    assert_eq!(errors(&d).len(), 1, "{d:#?}");
    d
}

#[test]
fn gcc_dynamic_is_dynamic_glibc() {
    let f = facts(&cc("gcc", &[], HELLO_C));
    assert_eq!(f.linkage, Linkage::Dynamic);
    assert_eq!(f.libc, Libc::Glibc);
    assert_eq!(f.class, 64);
    assert!(!f.big_endian);
    assert_eq!(f.machine, "x86-64");
    assert_eq!(f.oci_arch.as_deref(), Some("amd64"));
    assert_eq!(f.elf_type, "dyn");
    assert!(f.is_executable() && !f.is_shared_library && !f.is_go);
    assert_eq!(
        f.interpreter.as_deref(),
        Some("/lib64/ld-linux-x86-64.so.2")
    );
    assert_eq!(f.needed, vec!["libc.so.6"]);
    assert!(!f.stripped);
    assert_eq!(f.build_id.as_ref().map(String::len), Some(40));
    assert_eq!(
        summary(&f),
        "dynamic (glibc, interpreter /lib64/ld-linux-x86-64.so.2, needs libc.so.6, x86-64)"
    );

    // Without a requirement the problem is still reported, with why and fix, as a warning.
    let any = diagnose(&f, Requirement::Any);
    assert!(errors(&any).is_empty(), "{any:#?}");
    assert_eq!(any[0].code, "dynamic", "{any:#?}");
    assert!(!any[0].what.contains("wanted"), "{}", any[0].what);
    explains(
        &any[0],
        &["no such file or directory"],
        &["musl-gcc -static"],
    );
    let d = one_error(&f, Requirement::Static);
    explains(
        &d[0],
        &["/lib64/ld-linux-x86-64.so.2", "no such file or directory"],
        &["musl-gcc -static"],
    );
}

#[test]
fn gcc_static_is_static_glibc_without_hazards() {
    let f = facts(&cc("gcc", &["-static"], HELLO_C));
    assert_eq!(f.linkage, Linkage::Static);
    assert_eq!(f.libc, Libc::Glibc);
    assert_eq!(f.elf_type, "exec");
    assert!(f.interpreter.is_none() && f.needed.is_empty());
    // glibc ≥ 2.34 links dlopen into every static binary; that alone is not a hazard.
    assert!(f.nss_hazards.is_empty(), "{:?}", f.nss_hazards);
    assert!(diagnose(&f, Requirement::Static).is_empty());
    assert_eq!(summary(&f), "static (glibc, x86-64)");

    let d = one_error(&f, Requirement::StaticPie);
    assert!(d[0].what.contains("not position independent"));
    assert!(d[0].fix.contains("static-pie"));

    // Stripped glibc is still recognized by the strings it always carries.
    let s = facts(&cc("gcc", &["-static", "-s"], HELLO_C));
    assert!(s.stripped);
    assert_eq!(s.libc, Libc::Glibc);
}

#[test]
fn gcc_static_getpwnam_warns_about_nss() {
    let f = facts(&cc("gcc", &["-static"], GETPWNAM_C));
    assert_eq!(f.linkage, Linkage::Static);
    assert_eq!(f.libc, Libc::Glibc);
    assert!(
        f.nss_hazards.contains(&"getpwnam".to_string()),
        "{:?}",
        f.nss_hazards
    );
    let mut sorted = f.nss_hazards.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, f.nss_hazards);

    let d = diagnose(&f, Requirement::Static);
    assert!(errors(&d).is_empty(), "{d:#?}");
    let w: Vec<_> = d
        .iter()
        .filter(|x| x.severity == Severity::Warning)
        .collect();
    assert_eq!(w.len(), 1);
    assert!(w[0].what.contains("getpwnam"));
    explains(w[0], &["libnss_"], &["musl"]);
}

#[test]
fn stripped_static_glibc_still_shows_its_nss_hazard() {
    // `strip = true` (or a stripped prebuilt) took the symbols; glibc's module loader left
    // the module names, which settle it both ways.
    let f = facts(&cc("gcc", &["-static", "-s"], GETPWNAM_C));
    assert!(f.stripped);
    assert_eq!(f.libc, Libc::Glibc);
    assert!(
        f.nss_hazards.iter().any(|h| h.starts_with("NSS modules")),
        "{:?}",
        f.nss_hazards
    );
    let d = diagnose(&f, Requirement::Static);
    assert!(d.iter().any(|x| x.code == NSS_HAZARD), "{d:#?}");
    let plain = facts(&cc("gcc", &["-static", "-s"], HELLO_C));
    assert!(plain.nss_hazards.is_empty(), "{:?}", plain.nss_hazards);
}

#[test]
fn musl_static_is_static_musl() {
    let f = facts(&cc("musl-gcc", &["-static"], HELLO_C));
    assert_eq!(f.linkage, Linkage::Static);
    assert_eq!(f.libc, Libc::Musl, "{:?}", f.libc_evidence);
    assert!(f.nss_hazards.is_empty());
    assert!(diagnose(&f, Requirement::Static).is_empty());
    assert_eq!(summary(&f), "static (musl, x86-64)");
    // Stripped, musl leaves no symbol or string, but its start file stays at the entry point.
    let s = facts(&cc("musl-gcc", &["-static", "-s"], HELLO_C));
    assert!(s.stripped);
    assert_eq!(s.linkage, Linkage::Static);
    assert_eq!(s.libc, Libc::Musl, "{:?}", s.libc_evidence);
    assert!(
        s.libc_evidence[0].contains("entry point is musl's _start"),
        "{:?}",
        s.libc_evidence
    );
    assert_eq!(summary(&s), "static (musl, x86-64)");
}

#[test]
fn debian_musl_gcc_static_pie_is_really_dynamic() {
    let f = facts(&cc("musl-gcc", &["-static-pie"], HELLO_C));
    assert_eq!(f.linkage, Linkage::Dynamic);
    assert_eq!(f.elf_type, "dyn");
    assert_eq!(f.interpreter.as_deref(), Some("/lib/ld-musl-x86_64.so.1"));
    assert_eq!(f.libc, Libc::Musl);
    let d = one_error(&f, Requirement::StaticPie);
    explains(
        &d[0],
        &["Debian's musl-gcc", "specs"],
        &["link = \"static-pie\""],
    );
}

#[test]
fn gcc_static_pie_is_static_pie() {
    let f = facts(&cc("gcc", &["-static-pie"], HELLO_C));
    assert_eq!(f.linkage, Linkage::StaticPie);
    assert_eq!(f.libc, Libc::Glibc);
    assert_eq!(f.elf_type, "dyn");
    assert!(f.is_executable());
    assert!(diagnose(&f, Requirement::StaticPie).is_empty());
    // A static-pie is acceptable where static is asked for.
    assert!(diagnose(&f, Requirement::Static).is_empty());
    assert_eq!(summary(&f), "static-pie (glibc, x86-64)");
}

#[test]
fn shared_library_and_object_are_not_executables() {
    let lib = facts(&cc(
        "gcc",
        &["-shared", "-fPIC", "-Wl,-soname,libhi.so.1"],
        "int hi(void){return 1;}\n",
    ));
    assert!(lib.is_shared_library && !lib.is_executable());
    assert_eq!(lib.soname.as_deref(), Some("libhi.so.1"));
    assert!(diagnose(&lib, Requirement::Any).is_empty());
    let d = diagnose(&lib, Requirement::Static);
    assert_eq!(d.len(), 1);
    assert!(d[0].what.contains("shared library (libhi.so.1)"));
    assert!(summary(&lib).starts_with("shared library ("));

    let obj = facts(&cc("gcc", &["-c"], HELLO_C));
    assert_eq!(obj.elf_type, "rel");
    assert!(!obj.is_executable());
    let d = one_error(&obj, Requirement::StaticPie);
    assert!(d[0].what.contains("relocatable object"));
}

#[test]
fn go_without_cgo_is_static_without_libc() {
    let f = facts(&go_hello(&["-trimpath"]));
    assert_eq!(f.linkage, Linkage::Static);
    assert_eq!(f.libc, Libc::None, "{f:#?}");
    assert!(f.is_go && !f.is_rust);
    let go = f.go.as_ref().expect("go build info");
    assert!(go.go_version.starts_with("go1."), "{}", go.go_version);
    assert_eq!(go.setting("CGO_ENABLED"), Some("0"));
    assert_eq!(go.cgo_enabled(), Some(false));
    assert_eq!(go.setting("-trimpath"), Some("true"));
    assert_eq!(go.setting("GOOS"), Some("linux"));
    assert_eq!(go.setting("GOARCH"), Some("amd64"));
    assert_eq!(go.path.as_deref(), Some("example.com/hello"));
    assert_eq!(
        go.main_module.as_ref().map(|m| m.path.as_str()),
        Some("example.com/hello")
    );
    assert!(diagnose(&f, Requirement::Static).is_empty());
    assert!(
        summary(&f).starts_with(&format!(
            "static (no libc, Go {}",
            go.go_version.trim_start_matches("go")
        )),
        "{}",
        summary(&f)
    );
}

#[test]
fn go_pie_internal_is_dynamic_without_libc_and_external_static_pie_is_static_pie() {
    let f = facts(&go_hello(&["-buildmode=pie"]));
    assert_eq!(f.linkage, Linkage::Dynamic);
    assert!(f.interpreter.is_some() && f.needed.is_empty());
    assert_eq!(f.libc, Libc::None, "{:?}", f.libc_evidence);
    let d = one_error(&f, Requirement::StaticPie);
    explains(&d[0], &["system loader"], &["-static-pie"]);

    let f = facts(&go_build(
        "example.com/hello",
        HELLO_GO,
        &[],
        &[
            "-buildmode=pie",
            "-ldflags",
            "-linkmode external -extldflags \"-static-pie\"",
        ],
    ));
    assert_eq!(f.linkage, Linkage::StaticPie);
    assert_eq!(f.libc, Libc::Glibc, "{:?}", f.libc_evidence);
    // (go 1.19 does not record -buildmode; newer toolchains do)
    assert!(f.go.as_ref().is_some_and(|g| g.external_linkmode()));
    assert!(diagnose(&f, Requirement::StaticPie).is_empty());
}

#[test]
fn go_cgo_default_build_is_dynamic_glibc() {
    let f = facts(&go_netuser(&[]));
    assert_eq!(f.linkage, Linkage::Dynamic);
    assert_eq!(f.libc, Libc::Glibc);
    assert!(f.is_go);
    assert_eq!(f.go.as_ref().and_then(GoBuildInfo::cgo_enabled), Some(true));
    assert!(f.needed.iter().any(|n| n == "libc.so.6"));
    assert!(
        f.nss_hazards.iter().any(|h| h == "getaddrinfo"),
        "{:?}",
        f.nss_hazards
    );
    let d = one_error(&f, Requirement::Static);
    assert!(!d[0].what.contains("fake static"));
    explains(&d[0], &[], &["CGO_ENABLED=0", "netgo,osusergo"]);
}

#[test]
fn go_extldflags_static_with_internal_linker_is_fake_static() {
    let f = facts(&go_netuser(&["-ldflags", "-extldflags \"-static\""]));
    assert_eq!(f.linkage, Linkage::Dynamic);
    let go = f.go.as_ref().expect("go build info");
    assert!(
        go.extldflags_static() && !go.external_linkmode(),
        "{:?}",
        go.settings
    );
    let d = one_error(&f, Requirement::Static);
    assert!(d[0].what.contains("fake static"), "{}", d[0].what);
    explains(
        &d[0],
        &["internal linker", "ignores -extldflags"],
        &["-linkmode external"],
    );
    // The diagnosis does not depend on the requirement: without one it is the same fake
    // static, as a warning.
    let any = diagnose(&f, Requirement::Any);
    assert!(errors(&any).is_empty(), "{any:#?}");
    let fake = any
        .iter()
        .find(|x| x.code == "dynamic")
        .expect("a dynamic finding");
    assert_eq!(fake.severity, Severity::Warning);
    assert!(fake.what.contains("fake static"), "{}", fake.what);
    explains(fake, &["ignores -extldflags"], &["-linkmode external"]);
}

#[test]
fn go_external_static_glibc_warns_about_nss() {
    let f = facts(&go_netuser(&[
        "-ldflags",
        "-linkmode external -extldflags \"-static\"",
    ]));
    assert_eq!(f.linkage, Linkage::Static);
    assert_eq!(f.libc, Libc::Glibc, "{:?}", f.libc_evidence);
    assert!(f.is_go);
    assert!(f.go.as_ref().is_some_and(|g| g.external_linkmode()));
    for h in ["getaddrinfo", "getpwuid_r", "getgrouplist"] {
        assert!(
            f.nss_hazards.iter().any(|x| x == h),
            "{h} in {:?}",
            f.nss_hazards
        );
    }
    let d = diagnose(&f, Requirement::Static);
    assert!(errors(&d).is_empty(), "{d:#?}");
    // The NSS hazard, and glibc's IDN code that getaddrinfo brings along.
    let codes: Vec<_> = d.iter().map(|x| x.code).collect();
    assert_eq!(codes, [NSS_HAZARD, IDN_HAZARD]);
    assert!(d[0].fix.contains("-tags netgo,osusergo"));
}

#[test]
fn rust_binaries_are_recognized() {
    // This test binary itself: Rust, dynamically linked against glibc.
    let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
    let f = facts(&me);
    assert!(f.is_rust && !f.is_go);
    assert_eq!(f.linkage, Linkage::Dynamic);
    assert_eq!(f.libc, Libc::Glibc);
    let d = diagnose(&f, Requirement::Static);
    explains(&d[0], &[], &["+crt-static", "x86_64-unknown-linux-musl"]);

    // crt-static on the gnu target: a glibc static-pie.
    let dir = TempDir::new().unwrap();
    let src = dir.path().join("main.rs");
    std::fs::write(&src, "fn main() { println!(\"hi\"); }\n").unwrap();
    let out = dir.path().join("out");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    run(
        Command::new(rustc)
            .args(["-C", "target-feature=+crt-static", "-C", "opt-level=0"])
            .arg(&src)
            .arg("-o")
            .arg(&out),
        "rustup (https://rustup.rs)",
    );
    let f = facts(&std::fs::read(&out).unwrap());
    assert!(f.is_rust);
    assert_eq!(f.linkage, Linkage::StaticPie);
    assert_eq!(f.libc, Libc::Glibc);
}

#[test]
fn system_ls_parses() {
    let f = facts(&std::fs::read("/bin/ls").unwrap());
    assert!(f.is_executable());
    assert_eq!(f.linkage, Linkage::Dynamic);
    assert_eq!(f.libc, Libc::Glibc);
    assert!(f.stripped);
}

#[test]
fn non_elf_input_is_not_elf() {
    for input in [
        &b""[..],
        b"\x7fEL",
        b"#!/bin/sh\necho hi\n",
        b"MZ\x90\x00",
        &[0u8; 4096],
    ] {
        match analyze(input) {
            Err(VerifyError::NotElf(_)) => {}
            other => panic!("{input:?}: {other:?}"),
        }
    }
    let err = analyze(b"#!/bin/sh\n").unwrap_err().to_string();
    assert!(err.contains("script"), "{err}");
    // ELF magic with a bad class or a header cut short is malformed, not "not ELF".
    assert!(matches!(
        analyze(b"\x7fELF\x07\x01\x01"),
        Err(VerifyError::Malformed(_))
    ));
    assert!(matches!(
        analyze(b"\x7fELF\x02\x01\x01"),
        Err(VerifyError::Malformed(_))
    ));
}

/// A header-only ELF (no segments, no sections) for the given class/endianness/machine/type.
fn tiny_elf(is_64: bool, big: bool, machine: u16, etype: u16) -> Vec<u8> {
    let mut b = vec![
        0x7f,
        b'E',
        b'L',
        b'F',
        if is_64 { 2 } else { 1 },
        if big { 2 } else { 1 },
        1,
    ];
    b.resize(16, 0);
    let half = |v: u16| {
        if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    b.extend(half(etype));
    b.extend(half(machine));
    b.extend(if big {
        1u32.to_be_bytes()
    } else {
        1u32.to_le_bytes()
    });
    b.resize(if is_64 { 64 } else { 52 }, 0);
    let ehsize = b.len() as u16;
    let at = if is_64 { 52 } else { 40 };
    b[at..at + 2].copy_from_slice(&half(ehsize));
    b
}

#[test]
fn machines_and_classes_from_headers() {
    let cases = [
        (true, false, 62, "x86-64", Some("amd64")),
        (true, false, 183, "aarch64", Some("arm64")),
        (false, false, 40, "arm", Some("arm")),
        (true, false, 243, "riscv64", Some("riscv64")),
        (false, false, 3, "386", Some("386")),
        (true, true, 22, "s390x", Some("s390x")),
        (true, false, 21, "ppc64le", Some("ppc64le")),
        (true, true, 21, "ppc64", Some("ppc64")),
        (true, false, 9999, "unknown(9999)", None),
    ];
    for (is_64, big, m, name, arch) in cases {
        let f = facts(&tiny_elf(is_64, big, m, 2));
        assert_eq!(f.machine, name);
        assert_eq!(f.oci_arch.as_deref(), arch);
        assert_eq!(f.class, if is_64 { 64 } else { 32 });
        assert_eq!(f.big_endian, big);
        assert_eq!(f.linkage, Linkage::Static);
        assert_eq!(f.libc, Libc::Unknown);
    }
    assert_eq!(facts(&tiny_elf(true, false, 62, 4)).elf_type, "core");
    assert_eq!(
        facts(&tiny_elf(true, false, 62, 77)).elf_type,
        "unknown(77)"
    );
}

fn small_static() -> Vec<u8> {
    cc("musl-gcc", &["-static"], HELLO_C)
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let full = small_static();
    assert!(analyze(&full).is_ok());
    let mut ok = 0;
    for n in 0..full.len() {
        if unguarded(&full[..n]).is_ok() {
            ok += 1;
        }
    }
    // Section headers sit at the end: any cut loses them and is reported as malformed.
    assert_eq!(ok, 0, "{ok} truncated prefixes were accepted");
}

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn flip_bits(base: &[u8], seed: u64, rounds: usize, region: std::ops::Range<usize>) {
    let mut rng = XorShift(seed);
    let mut buf = base.to_vec();
    for _ in 0..rounds {
        buf.copy_from_slice(base);
        for _ in 0..1 + rng.below(4) {
            let i = region.start + rng.below(region.len());
            buf[i] ^= 1 << rng.below(8);
        }
        let _ = unguarded(&buf);
    }
}

/// The analysis without analyze()'s catch_unwind: the hostile-input tests must pass on the
/// bounds checks alone, the panic guard being only a last line of defence.
fn unguarded(bytes: &[u8]) -> Result<ElfFacts, VerifyError> {
    facts::analyze(bytes, &|n| facts::contains(bytes, n))
}

#[test]
fn bit_flips_never_panic() {
    let st = small_static();
    flip_bits(&st, 0x9e37_79b9_7f4a_7c15, 2000, 0..st.len());
    // The headers and tables are where parsers go wrong: hit the ELF and program headers hard.
    flip_bits(&st, 0x0123_4567_89ab_cdef, 1000, 0..st.len().min(512));
    let dy = cc("gcc", &[], HELLO_C);
    flip_bits(&dy, 0xdead_beef_cafe_f00d, 2000, 0..dy.len());
    let hdr_end = dy.len().min(0x1000);
    flip_bits(&dy, 42, 1000, 0..hdr_end);
}

/// (offset, width) of the ELF64 header fields e_phoff, e_shoff, e_phentsize, e_phnum,
/// e_shentsize, e_shnum, e_shstrndx.
const ELF64_HEADER_FIELDS: [(usize, usize); 7] = [
    (32, 8),
    (40, 8),
    (54, 2),
    (56, 2),
    (58, 2),
    (60, 2),
    (62, 2),
];
/// The same fields in an ELF32 header.
const ELF32_HEADER_FIELDS: [(usize, usize); 7] = [
    (28, 4),
    (32, 4),
    (42, 2),
    (44, 2),
    (46, 2),
    (48, 2),
    (50, 2),
];

/// Writes `v` at `at` as a little-endian integer of `width` bytes.
fn poke(b: &mut [u8], at: usize, width: usize, v: u64) {
    b[at..at + width].copy_from_slice(&v.to_le_bytes()[..width]);
}

#[test]
fn hostile_header_fields_are_rejected() {
    let base = cc("gcc", &[], HELLO_C);
    let values = [
        0u64,
        1,
        0x7fff,
        0xffff,
        u32::MAX as u64,
        u64::MAX,
        u64::MAX / 2,
    ];
    for (at, width) in ELF64_HEADER_FIELDS {
        for v in values {
            let mut b = base.clone();
            poke(&mut b, at, width, v);
            let _ = unguarded(&b);
        }
    }
    // Every program header field of every segment, and sh_offset/sh_size/sh_link/sh_entsize of
    // every section, set to hostile values.
    let phoff = u64::from_le_bytes(base[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(base[56..58].try_into().unwrap()) as usize;
    let shoff = u64::from_le_bytes(base[40..48].try_into().unwrap()) as usize;
    let shnum = u16::from_le_bytes(base[60..62].try_into().unwrap()) as usize;
    for i in 0..phnum {
        for (f, w) in [(0, 4), (8, 8), (16, 8), (32, 8), (40, 8), (48, 8)] {
            for v in values {
                let mut b = base.clone();
                poke(&mut b, phoff + i * 56 + f, w, v);
                let _ = unguarded(&b);
            }
        }
    }
    for i in 0..shnum {
        for (f, w) in [(4, 4), (24, 8), (32, 8), (40, 4), (56, 8)] {
            for v in values {
                let mut b = base.clone();
                poke(&mut b, shoff + i * 64 + f, w, v);
                let _ = unguarded(&b);
            }
        }
    }
    let mut b = base.clone();
    poke(&mut b, 56, 2, 0xffff);
    assert!(matches!(analyze(&b), Err(VerifyError::Malformed(_))));
}

#[test]
fn stacked_overlapping_tables_stay_linear() {
    // 60000 section headers, alternately a symbol table and a note area, each covering the
    // whole file: a parser visiting every table would do billions of steps.
    let n = 60_000usize;
    let mut b = tiny_elf(true, false, 62, 2);
    let shoff = b.len();
    let size = (64 + n * 64) as u64;
    poke(&mut b, 40, 8, shoff as u64); // e_shoff
    poke(&mut b, 58, 2, 64); // e_shentsize
    poke(&mut b, 60, 2, n as u64); // e_shnum
    for i in 0..n {
        let mut sh = [0u8; 64];
        let kind: u32 = if i % 2 == 0 { 2 } else { 7 }; // SHT_SYMTAB, SHT_NOTE
        sh[4..8].copy_from_slice(&kind.to_le_bytes());
        sh[32..40].copy_from_slice(&(size / 24 * 24).to_le_bytes()); // sh_size (offset 0)
        sh[56..64].copy_from_slice(&24u64.to_le_bytes()); // sh_entsize
        b.extend_from_slice(&sh);
    }
    let started = std::time::Instant::now();
    let f = unguarded(&b).expect("parses");
    assert!(!f.stripped);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn go_buildinfo_flips_never_panic() {
    let bin = go_hello(&["-ldflags", "-s -w"]);
    let f = facts(&bin);
    assert!(f.is_go && f.stripped);
    assert_eq!(f.libc, Libc::None, "{:?}", f.libc_evidence);
    let at = (0..bin.len())
        .step_by(16)
        .find(|&i| bin[i..].starts_with(gobuildinfo::MAGIC))
        .expect("build info magic");
    flip_bits(&bin, 7, 300, at..(at + 512).min(bin.len()));
}

#[test]
fn findings_serialize() {
    let f = facts(&cc("musl-gcc", &["-static-pie"], HELLO_C));
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["linkage"], "dynamic");
    assert_eq!(json["libc"], "musl");
    let d = serde_json::to_value(diagnose(&f, Requirement::Static)).unwrap();
    assert_eq!(d[0]["severity"], "error");
}

/// Long fuzz run: `STATICPACK_FUZZ_ROUNDS=1000000 cargo test --release --lib stress -- --ignored`.
#[test]
#[ignore]
fn stress_bit_flips() {
    let rounds = std::env::var("STATICPACK_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let seed = std::env::var("STATICPACK_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for (i, bin) in [
        small_static(),
        cc("gcc", &[], HELLO_C),
        cc("musl-gcc", &["-static-pie"], HELLO_C),
        cc("gcc", &["-shared", "-fPIC"], "int hi(void){return 1;}\n"),
    ]
    .iter()
    .enumerate()
    {
        flip_bits(bin, seed + i as u64, rounds, 0..bin.len());
        flip_bits(bin, seed + 100 + i as u64, rounds, 0..bin.len().min(4096));
    }
}

// ---- Hardening, RPATH/RUNPATH, .comment ------------------------------------------------------

const HARDENED_C: &str = "#include <stdio.h>\n#include <string.h>\n\
    int main(int c, char **v){char b[64]; strcpy(b, v[0]); printf(\"%s %d\\n\", b, c); return 0;}\n";

#[test]
fn hardening_of_a_fully_hardened_gcc_binary() {
    let f = facts(&cc(
        "gcc",
        &[
            "-O2",
            "-fPIE",
            "-pie",
            "-fstack-protector-all",
            "-D_FORTIFY_SOURCE=2",
            "-Wl,-z,relro,-z,now",
        ],
        HARDENED_C,
    ));
    let h = &f.hardening;
    assert!(h.pie && h.bind_now && !h.textrel, "{h:?}");
    assert_eq!(h.relro, Relro::Full);
    assert_eq!(h.stack, StackExec::NonExecutable);
    assert_eq!(h.stack_protector, Presence::Yes);
    assert_eq!(h.fortify, Presence::Yes);
    assert!(
        h.fortified
            .iter()
            .any(|s| s == "__printf_chk" || s == "__strcpy_chk"),
        "{:?}",
        h.fortified
    );
    assert!(
        f.compilers.iter().any(|c| c.starts_with("GCC:")),
        "{:?}",
        f.compilers
    );
    // Nothing to warn about but its linkage.
    let d = diagnose(&f, Requirement::Any);
    let codes: Vec<_> = d.iter().map(|x| x.code).collect();
    assert_eq!(codes, vec!["dynamic"], "{d:#?}");
    assert!(errors(&d).is_empty());
}

#[test]
fn hardening_of_an_unhardened_gcc_binary_and_its_warnings() {
    let f = facts(&cc(
        "gcc",
        &[
            "-O0",
            "-no-pie",
            "-fno-stack-protector",
            "-U_FORTIFY_SOURCE",
            "-Wl,-z,norelro,-z,lazy",
            "-Wl,-z,execstack",
        ],
        HARDENED_C,
    ));
    let h = &f.hardening;
    assert!(!h.pie && !h.bind_now, "{h:?}");
    assert_eq!(f.elf_type, "exec");
    assert_eq!(h.relro, Relro::None);
    assert_eq!(h.stack, StackExec::Executable);
    assert_eq!(h.stack_protector, Presence::No);
    assert_eq!(h.fortify, Presence::No);
    let d = diagnose(&f, Requirement::Any);
    let codes: Vec<_> = d.iter().map(|x| x.code).collect();
    assert_eq!(codes, vec!["dynamic", "exec-stack", "no-relro"], "{d:#?}");
    assert!(d.iter().all(|x| x.severity == Severity::Warning));
    assert!(d[1].fix.contains("noexecstack"), "{}", d[1].fix);
    assert!(d[2].fix.contains("-z,relro"), "{}", d[2].fix);
    // Partial RELRO: PT_GNU_RELRO without immediate binding.
    let p = facts(&cc("gcc", &["-Wl,-z,relro,-z,lazy"], HELLO_C));
    assert_eq!(p.hardening.relro, Relro::Partial);
    assert!(!p.hardening.bind_now);
}

#[test]
fn rpath_and_runpath_are_read() {
    let r = facts(&cc(
        "gcc",
        &["-Wl,--disable-new-dtags,-rpath,/opt/a:/opt/b"],
        HELLO_C,
    ));
    assert_eq!(r.rpath, vec!["/opt/a:/opt/b"]);
    assert!(r.runpath.is_empty());
    let n = facts(&cc(
        "gcc",
        &["-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib"],
        HELLO_C,
    ));
    assert_eq!(n.runpath, vec!["$ORIGIN/../lib"]);
    assert!(n.rpath.is_empty());
}

#[test]
fn text_relocations_are_found_and_explained() {
    // An absolute address in .text of a PIE: the loader must patch code.
    let dir = TempDir::new().unwrap();
    let s = dir.path().join("tr.s");
    std::fs::write(
        &s,
        ".text\n.globl main\nmain: xor %eax,%eax\n ret\nptr: .quad main\n\
         .section .note.GNU-stack,\"\",@progbits\n",
    )
    .unwrap();
    let out = dir.path().join("tr");
    run(
        Command::new("gcc")
            .args(["-pie", "-Wl,-z,notext"])
            .arg(&s)
            .arg("-o")
            .arg(&out),
        "apt-get install gcc",
    );
    let f = facts(&std::fs::read(&out).unwrap());
    assert!(f.hardening.textrel);
    let d = diagnose(&f, Requirement::Any);
    assert!(d.iter().any(|x| x.code == "textrel"), "{d:#?}");
}

#[test]
fn stripped_static_hardening_is_unknown_not_no() {
    let f = facts(&cc("musl-gcc", &["-static", "-s"], HELLO_C));
    assert_eq!(f.hardening.stack_protector, Presence::Unknown);
    assert_eq!(f.hardening.fortify, Presence::Unknown);
    assert!(!f.hardening.pie);
    // A static ET_EXEC without RELRO is not warned about: nothing is bound at run time.
    assert!(diagnose(&f, Requirement::Static).is_empty());
}

#[test]
fn go_static_has_no_hardening_warnings() {
    let f = facts(&go_hello(&["-trimpath"]));
    assert_eq!(f.hardening.stack, StackExec::NonExecutable);
    assert!(diagnose(&f, Requirement::Static).is_empty());
    // What the text report shows as "stack protector n/a (Go)".
    assert_eq!(f.hardening.stack_protector, Presence::No);
    assert!(f.is_go && f.libc == Libc::None);
}

// ---- 32-bit and big-endian binaries from Go's cross compiler --------------------------------

/// (GOARCH, class, big-endian, machine, OCI arch)
const CROSS: &[(&str, u8, bool, &str, &str)] = &[
    ("386", 32, false, "386", "386"),
    ("arm", 32, false, "arm", "arm"),
    ("mips", 32, true, "mips", "mips"),
    ("s390x", 64, true, "s390x", "s390x"),
    ("arm64", 64, false, "aarch64", "arm64"),
    ("riscv64", 64, false, "riscv64", "riscv64"),
    ("ppc64le", 64, false, "ppc64le", "ppc64le"),
];

fn go_cross(goarch: &str) -> Vec<u8> {
    go_build(
        "example.com/hello",
        HELLO_GO,
        &[("CGO_ENABLED", "0"), ("GOARCH", goarch), ("GOOS", "linux")],
        &["-trimpath"],
    )
}

#[test]
fn cross_compiled_go_binaries_32_bit_and_big_endian() {
    for &(goarch, class, big, machine, oci) in CROSS {
        let f = facts(&go_cross(goarch));
        assert_eq!(f.class, class, "{goarch}");
        assert_eq!(f.big_endian, big, "{goarch}");
        assert_eq!(f.machine, machine, "{goarch}");
        assert_eq!(f.oci_arch.as_deref(), Some(oci), "{goarch}");
        assert_eq!(f.linkage, Linkage::Static, "{goarch}");
        assert_eq!(f.libc, Libc::None, "{goarch}: {:?}", f.libc_evidence);
        let go =
            f.go.as_ref()
                .unwrap_or_else(|| panic!("{goarch}: no build info"));
        assert_eq!(go.setting("GOARCH"), Some(goarch));
        assert_eq!(go.path.as_deref(), Some("example.com/hello"));
        assert!(f.is_go && !f.is_rust && !f.stripped, "{goarch}");
    }
}

// ---- Truncated and mutated copies of real binaries -----------------------------------------

/// Everything the library does with a file's bytes: facts, diagnosis under every requirement,
/// the summary and the JSON report (the text is the CLI's). Returns how long it took.
fn exercise(bytes: &[u8]) -> std::time::Duration {
    let started = std::time::Instant::now();
    if let Ok(f) = unguarded(bytes) {
        let _ = summary(&f);
        for require in [
            Requirement::Static,
            Requirement::StaticPie,
            Requirement::Any,
        ] {
            let findings = diagnose(&f, require);
            let r = FileReport {
                path: "x".into(),
                require,
                result: Ok((f.clone(), findings)),
            };
            let json = r.to_json();
            assert!(
                serde_json::from_str::<serde_json::Value>(&json).is_ok(),
                "{json}"
            );
        }
    }
    started.elapsed()
}

/// Cut points worth trying: every segment and section boundary (±1), the header, and a spread
/// of evenly spaced points.
fn cut_points(bytes: &[u8]) -> Vec<usize> {
    let mut cuts: Vec<usize> = (0..=256.min(bytes.len())).collect();
    if let Ok(elf) = goblin::elf::Elf::parse(bytes) {
        for p in &elf.program_headers {
            for at in [p.p_offset, p.p_offset + p.p_filesz] {
                cuts.extend([at.saturating_sub(1), at, at + 1].map(|v| v as usize));
            }
        }
        for s in &elf.section_headers {
            for at in [s.sh_offset, s.sh_offset + s.sh_size] {
                cuts.extend([at.saturating_sub(1), at, at + 1].map(|v| v as usize));
            }
        }
        let shoff = elf.header.e_shoff as usize;
        cuts.extend(shoff.saturating_sub(64)..(shoff + 128).min(bytes.len()));
    }
    cuts.extend((0..400).map(|i| bytes.len() * i / 400));
    cuts.retain(|&c| c < bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

/// Runs every cut point and `rounds` mutations; returns how many inputs were tried.
fn mutate_real_binary(name: &str, bytes: &[u8], seed: u64, rounds: usize) -> usize {
    let mut slowest = std::time::Duration::ZERO;
    let mut accepted = 0;
    let cuts = cut_points(bytes);
    for &n in &cuts {
        slowest = slowest.max(exercise(&bytes[..n]));
        accepted += usize::from(unguarded(&bytes[..n]).is_ok());
    }
    let mut rng = XorShift(seed);
    let mut buf = bytes.to_vec();
    let header_zone = bytes.len().min(4096);
    let shoff = goblin::elf::Elf::parse_header(bytes)
        .map(|h| h.e_shoff as usize)
        .unwrap_or(0)
        .min(bytes.len().saturating_sub(1));
    for round in 0..rounds {
        buf.copy_from_slice(bytes);
        // Thirds: anywhere, the headers, the section header table.
        let zone = match round % 3 {
            0 => 0..bytes.len(),
            1 => 0..header_zone,
            _ => shoff..bytes.len(),
        };
        for _ in 0..1 + rng.below(6) {
            let i = zone.start + rng.below(zone.len().max(1));
            match rng.below(3) {
                0 => buf[i] ^= 1 << rng.below(8),
                1 => buf[i] = 0xff,
                _ => buf[i] = rng.next() as u8,
            }
        }
        slowest = slowest.max(exercise(&buf));
    }
    assert!(
        slowest < std::time::Duration::from_secs(5),
        "{name}: one input took {slowest:?}"
    );
    // Every cut loses a table the file points at: none may be taken for a whole file.
    assert_eq!(accepted, 0, "{name}: a truncated copy was accepted");
    cuts.len() + rounds
}

#[test]
fn truncated_and_mutated_real_binaries_never_panic() {
    let mut inputs: Vec<(String, Vec<u8>)> = vec![
        ("gcc dynamic".into(), cc("gcc", &[], HELLO_C)),
        (
            "gcc static-pie".into(),
            cc("gcc", &["-static-pie"], HELLO_C),
        ),
        ("musl static".into(), small_static()),
        (
            "shared library".into(),
            cc("gcc", &["-shared", "-fPIC"], "int hi(void){return 1;}\n"),
        ),
        ("object file".into(), cc("gcc", &["-c"], HELLO_C)),
    ];
    for p in ["/bin/ls", "/usr/bin/readelf"] {
        inputs.push((p.into(), std::fs::read(p).unwrap()));
    }
    for &(goarch, ..) in CROSS
        .iter()
        .filter(|c| ["386", "mips", "s390x"].contains(&c.0))
    {
        inputs.push((format!("go {goarch}"), go_cross(goarch)));
    }
    let mut tried = 0;
    for (i, (name, bytes)) in inputs.iter().enumerate() {
        assert!(unguarded(bytes).is_ok(), "{name} itself must parse");
        tried += mutate_real_binary(name, bytes, 0x5eed + i as u64, 1500);
    }
    println!(
        "{tried} truncated or mutated copies of {} binaries",
        inputs.len()
    );
}

/// Writes `v` at `at` as an integer of `width` bytes in the file's byte order.
fn poke_endian(b: &mut [u8], at: usize, width: usize, v: u64, big: bool) {
    let bytes = if big {
        v.to_be_bytes()[8 - width..].to_vec()
    } else {
        v.to_le_bytes()[..width].to_vec()
    };
    b[at..at + width].copy_from_slice(&bytes);
}

#[test]
fn hostile_header_fields_in_32_bit_and_big_endian_files() {
    let values = [0u64, 1, 0x7fff, 0xffff, u32::MAX as u64, u64::MAX];
    for goarch in ["386", "mips", "s390x"] {
        let base = go_cross(goarch);
        let big = base[5] == 2;
        let fields = if base[4] == 1 {
            &ELF32_HEADER_FIELDS
        } else {
            &ELF64_HEADER_FIELDS
        };
        for &(at, width) in fields {
            for v in values {
                let mut b = base.clone();
                let v = if width < 8 {
                    v & ((1u64 << (width * 8)) - 1)
                } else {
                    v
                };
                poke_endian(&mut b, at, width, v, big);
                exercise(&b);
            }
        }
        // Every field of every program header and section header, to the same values.
        let h = goblin::elf::Elf::parse_header(&base).unwrap();
        let (phsz, shsz) = (h.e_phentsize as usize, h.e_shentsize as usize);
        let word = if base[4] == 1 { 4 } else { 8 };
        for i in 0..h.e_phnum as usize {
            for off in (0..phsz).step_by(4) {
                for v in [0u64, u32::MAX as u64] {
                    let mut b = base.clone();
                    poke_endian(&mut b, h.e_phoff as usize + i * phsz + off, 4, v, big);
                    exercise(&b);
                }
            }
        }
        for i in 0..h.e_shnum as usize {
            for off in (0..shsz).step_by(word) {
                for v in [0u64, u32::MAX as u64, 1] {
                    let mut b = base.clone();
                    poke_endian(&mut b, h.e_shoff as usize + i * shsz + off, 4, v, big);
                    exercise(&b);
                }
            }
        }
    }
}

#[test]
fn absurd_counts_and_offsets_are_clear_errors() {
    // e_shnum = 0 defers the count to section 0's sh_size: make it 2^40.
    let mut b = tiny_elf(true, false, 62, 2);
    poke(&mut b, 40, 8, 64); // e_shoff
    poke(&mut b, 58, 2, 64); // e_shentsize
    let mut sh0 = [0u8; 64];
    sh0[32..40].copy_from_slice(&(1u64 << 40).to_le_bytes());
    b.extend_from_slice(&sh0);
    let e = unguarded(&b).expect_err("2^40 sections cannot fit");
    assert!(matches!(e, VerifyError::Malformed(_)), "{e}");

    // 65535 program headers in a 64-byte file.
    let mut b = tiny_elf(false, true, 8, 2);
    poke_endian(&mut b, 28, 4, 52, true); // e_phoff
    poke_endian(&mut b, 42, 2, 32, true); // e_phentsize
    poke_endian(&mut b, 44, 2, 0xffff, true); // e_phnum
    let e = unguarded(&b).expect_err("cannot fit");
    assert!(e.to_string().contains("runs past the end"), "{e}");

    // A PT_DYNAMIC claiming 2^62 bytes.
    let mut b = tiny_elf(true, false, 62, 3);
    poke(&mut b, 32, 8, 64); // e_phoff
    poke(&mut b, 54, 2, 56); // e_phentsize
    poke(&mut b, 56, 2, 1); // e_phnum
    let mut ph = [0u8; 56];
    ph[0..4].copy_from_slice(&2u32.to_le_bytes()); // PT_DYNAMIC
    ph[8..16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
    ph[32..40].copy_from_slice(&(1u64 << 62).to_le_bytes()); // p_filesz
    b.extend_from_slice(&ph);
    let e = unguarded(&b).expect_err("cannot fit");
    assert!(
        e.to_string().contains("PT_DYNAMIC") || e.to_string().contains("runs past"),
        "{e}"
    );
}

// ---- Go's debug/elf test files: foreign systems, many architectures, debug-only files ------

fn go_elf_testdata() -> PathBuf {
    let out = Command::new("go")
        .args(["env", "GOROOT"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run go: {e}; install it: apt-get install golang-go"));
    let root = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dir = PathBuf::from(root).join("src/debug/elf/testdata");
    assert!(
        dir.is_dir(),
        "{} missing: apt-get install golang-go (it ships the Go sources)",
        dir.display()
    );
    dir
}

#[test]
fn foreign_systems_architectures_and_debug_only_files() {
    let dir = go_elf_testdata();
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();

    let bsd = facts(&read("gcc-386-freebsd-exec"));
    assert_eq!(bsd.os, "freebsd");
    assert_eq!(bsd.libc, Libc::Unknown, "{:?}", bsd.libc_evidence);
    assert!(
        summary(&bsd).starts_with("dynamic (FreeBSD, libc unknown"),
        "{}",
        summary(&bsd)
    );
    let d = diagnose(&bsd, Requirement::Static);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].code, "foreign-os");
    assert!(
        diagnose(&bsd, Requirement::Any)
            .iter()
            .all(|x| x.severity != Severity::Error)
    );

    let linux = facts(&read("gcc-amd64-linux-exec"));
    assert_eq!(linux.os, "linux");
    assert_eq!(linux.libc, Libc::Glibc);

    // objcopy --only-keep-debug output: program headers of a PIE, no code, PT_INTERP empty.
    let dbg = facts(&read("go-relocation-test-gcc930-ranges-no-rela-x86-64"));
    assert!(dbg.debug_only && !dbg.is_executable());
    assert!(dbg.interpreter.is_none());
    assert!(summary(&dbg).starts_with("debug-info file ("));
    let d = diagnose(&dbg, Requirement::Static);
    assert_eq!(d[0].code, "not-executable");
    assert!(d[0].what.contains("debug-info"), "{}", d[0].what);

    for (file, machine, class, big) in [
        ("go-relocation-test-gcc5-ppc.obj", "ppc", 32, true),
        ("go-relocation-test-gcc620-sparc64.obj", "sparc64", 64, true),
        ("go-relocation-test-gcc540-mips.obj", "mips", 32, true),
        ("go-relocation-test-gcc492-mips64.obj", "mips64", 64, true),
        ("go-relocation-test-gcc492-mipsle.obj", "mipsel", 32, false),
        ("go-relocation-test-gcc531-s390x.obj", "s390x", 64, true),
        ("go-relocation-test-gcc492-arm.obj", "arm", 32, false),
        (
            "go-relocation-test-gcc720-riscv64.obj",
            "riscv64",
            64,
            false,
        ),
        (
            "go-relocation-test-gcc482-ppc64le.obj",
            "ppc64le",
            64,
            false,
        ),
        ("compressed-32.obj", "386", 32, false),
    ] {
        let f = facts(&read(file));
        assert_eq!(
            (
                f.machine.as_str(),
                f.class,
                f.big_endian,
                f.elf_type.as_str()
            ),
            (machine, class, big, "rel"),
            "{file}"
        );
    }
}

#[test]
fn mutated_foreign_and_big_endian_objects_never_panic() {
    let dir = go_elf_testdata();
    let (mut n, mut tried) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        if !bytes.starts_with(b"\x7fELF") {
            continue;
        }
        n += 1;
        tried += mutate_real_binary(&path.display().to_string(), &bytes, n, 600);
    }
    println!("{tried} truncated or mutated copies of {n} files");
    assert!(n >= 20, "only {n} ELF files in {}", dir.display());
}

#[test]
fn rust_facts_give_the_rustc_version_and_a_musl_loader_gets_the_rust_fix() {
    let dir = TempDir::new().unwrap();
    let src = dir.path().join("main.rs");
    std::fs::write(&src, "fn main() { println!(\"hi\"); }\n").unwrap();
    let out = dir.path().join("out");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    run(
        Command::new(&rustc)
            .args(["--target", "x86_64-unknown-linux-musl", "-C", "opt-level=0"])
            .arg(&src)
            .arg("-o")
            .arg(&out),
        "rustup target add x86_64-unknown-linux-musl",
    );
    let f = facts(&std::fs::read(&out).unwrap());
    assert_eq!((f.linkage, f.libc), (Linkage::StaticPie, Libc::Musl));
    let info = f.rust.expect("Rust facts");
    let version = Command::new(&rustc).arg("-V").output().unwrap().stdout;
    let version = String::from_utf8(version).unwrap();
    assert_eq!(
        info.rustc.as_deref(),
        version.trim().strip_prefix("rustc "),
        "the version in .comment is the compiler's"
    );
    assert_eq!(info.crates, None, "built without cargo auditable");

    // A program that needs ld-musl (here musl-gcc's dynamic default), seen as Rust's: the fix
    // names -crt-static, which is how Rust's musl target gets there.
    let mut f = facts(&cc("musl-gcc", &[], HELLO_C));
    assert!(f.interpreter.as_deref().unwrap().contains("ld-musl"));
    f.is_rust = true;
    let d = diagnose(&f, Requirement::Static);
    let e = errors(&d)[0];
    assert_eq!(e.code, "dynamic");
    assert!(
        e.what.contains("Rust program for musl linked dynamically"),
        "{}",
        e.what
    );
    explains(
        e,
        &["ld-musl"],
        &[
            "-crt-static",
            "+crt-static --target x86_64-unknown-linux-musl",
        ],
    );
}

const ICONV_C: &str = "#include <iconv.h>\n#include <stdio.h>\n\
    int main(void){iconv_t c=iconv_open(\"EBCDIC-US\",\"UTF-8\");printf(\"%d\\n\",c==(iconv_t)-1);return 0;}\n";
const CANCEL_C: &str = "#include <pthread.h>\n#include <stdio.h>\n#include <unistd.h>\n\
    static void*f(void*a){for(;;)pause();return a;}\n\
    int main(void){pthread_t t;pthread_create(&t,0,f,0);pthread_cancel(t);pthread_join(t,0);puts(\"ok\");return 0;}\n";
const IDN_C: &str = "#define _GNU_SOURCE\n#include <netdb.h>\n#include <stdio.h>\n\
    int main(void){struct addrinfo h={0},*r;h.ai_flags=AI_IDN;printf(\"%d\\n\",getaddrinfo(\"b\\xc3\\xbccher.example\",0,&h,&r));return 0;}\n";
const DLOPEN_C: &str = "#include <dlfcn.h>\n#include <stdio.h>\n\
    int main(void){void*h=dlopen(\"libz.so.1\",RTLD_NOW);printf(\"%d\\n\",h!=0);return 0;}\n";

fn load_kinds(f: &ElfFacts) -> Vec<LoadKind> {
    f.load_hazards.iter().map(|h| h.kind).collect()
}

fn finding<'a>(d: &'a [Finding], code: &str) -> Option<&'a Finding> {
    d.iter().find(|x| x.code == code)
}

#[test]
fn static_glibc_iconv_is_a_gconv_hazard_of_its_own() {
    let f = facts(&cc("gcc", &["-static"], ICONV_C));
    assert_eq!((f.linkage, f.libc), (Linkage::Static, Libc::Glibc));
    assert_eq!(load_kinds(&f), [LoadKind::Gconv]);
    assert_eq!(f.load_hazards[0].evidence, ["iconv_open"]);
    // Not an NSS hazard any more: it has its own finding, a warning even under a requirement.
    // (`nss_hazards` still lists it, as JSON schema 1 says; the NSS functions do not.)
    assert_eq!(f.nss_hazards, ["iconv_open"]);
    assert!(f.nss_functions().is_empty());
    let d = apply_nss_rule(
        diagnose(&f, Requirement::Static),
        Requirement::Static,
        false,
        "",
    );
    assert!(errors(&d).is_empty(), "{d:#?}");
    let g = finding(&d, GCONV_HAZARD).expect("a gconv-hazard finding");
    assert_eq!(g.severity, Severity::Warning);
    explains(g, &["gconv-modules", "EINVAL", "UTF-8"], &["musl"]);
    // Every static stdio program carries glibc's gconv loader; only iconv_open is the hazard.
    let plain = facts(&cc("gcc", &["-static"], HELLO_C));
    assert!(plain.load_hazards.is_empty(), "{:?}", plain.load_hazards);
}

#[test]
fn pthread_cancel_loads_libgcc_s_from_a_shared_glibc_only() {
    let dynamic = facts(&cc("gcc", &["-pthread"], CANCEL_C));
    assert_eq!(dynamic.linkage, Linkage::Dynamic);
    assert_eq!(load_kinds(&dynamic), [LoadKind::LibgccS]);
    let d = diagnose(&dynamic, Requirement::Any);
    let l = finding(&d, LIBGCC_S_HAZARD).expect("a libgcc-s-hazard finding");
    assert_eq!(l.severity, Severity::Warning);
    assert!(l.what.contains("pthread_cancel"), "{}", l.what);
    explains(
        l,
        &["libgcc_s.so.1 must be installed for pthread_cancel to work"],
        &["libgcc_s.so.1", "static"],
    );
    // Linked statically, glibc's cancellation uses libgcc_eh's unwinder, linked in (the
    // program runs in an empty root): no hazard.
    let stat = facts(&cc("gcc", &["-static", "-pthread"], CANCEL_C));
    assert_eq!(stat.linkage, Linkage::Static);
    assert!(stat.load_hazards.is_empty(), "{:?}", stat.load_hazards);
    assert!(diagnose(&stat, Requirement::Static).is_empty());
}

#[test]
fn static_glibc_getaddrinfo_carries_the_libidn2_loader() {
    let f = facts(&cc("gcc", &["-static"], IDN_C));
    assert_eq!(load_kinds(&f), [LoadKind::Idn2]);
    assert!(
        f.load_hazards[0]
            .evidence
            .iter()
            .any(|e| e == "__idna_to_dns_encoding"),
        "{:?}",
        f.load_hazards
    );
    let d = diagnose(&f, Requirement::Any);
    assert!(finding(&d, NSS_HAZARD).is_some(), "{d:#?}");
    let i = finding(&d, IDN_HAZARD).expect("an idn-hazard finding");
    assert_eq!(i.severity, Severity::Warning);
    explains(i, &["AI_IDN", "EAI_IDN_ENCODE"], &["punycode"]);
    // Stripped, the library name glibc's IDNA code passes to dlopen still tells it.
    let s = facts(&cc("gcc", &["-static", "-s"], IDN_C));
    assert!(s.stripped);
    assert_eq!(load_kinds(&s), [LoadKind::Idn2]);
    assert_eq!(s.load_hazards[0].evidence, ["libidn2.so"]);
    let plain = facts(&cc("gcc", &["-static", "-s"], HELLO_C));
    assert!(plain.load_hazards.is_empty(), "{:?}", plain.load_hazards);
}

#[test]
fn an_imported_dlopen_is_a_dlopen_hazard() {
    let f = facts(&cc("gcc", &[], DLOPEN_C));
    assert_eq!((f.linkage, f.libc), (Linkage::Dynamic, Libc::Glibc));
    assert_eq!(load_kinds(&f), [LoadKind::Dlopen]);
    assert_eq!(f.load_hazards[0].evidence, ["dlopen"]);
    assert_eq!(f.nss_hazards, ["dlopen"]);
    let d = diagnose(&f, Requirement::Any);
    let h = finding(&d, DLOPEN_HAZARD).expect("a dlopen-hazard finding");
    assert_eq!(h.severity, Severity::Warning);
    explains(h, &["DT_NEEDED"], &["ltrace -e dlopen"]);
    // glibc ≥ 2.34 defines dlopen in every static binary, calling it or not: a static glibc
    // dlopen cannot be told from the symbols, and is not guessed.
    let stat = facts(&cc("gcc", &["-static"], DLOPEN_C));
    assert!(stat.load_hazards.is_empty(), "{:?}", stat.load_hazards);
}
