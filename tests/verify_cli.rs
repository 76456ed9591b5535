//! `staticpack verify` from the outside: exit codes, directory walks (symlinks, loops, FIFOs,
//! non-ELF files), per-file errors, and the documented JSON schema (docs/verify-json.md).

mod common;

use common::{Run, compile_c, run_with_timeout};

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

/// Runs `staticpack verify ARGS…`, failing the test if it does not end within 60 s (a FIFO or
/// a symlink loop must never make it hang).
fn verify(args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_staticpack"));
    cmd.arg("verify").args(args);
    run_with_timeout(cmd, Duration::from_secs(60))
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn gcc(dir: &Path, name: &str, args: &[&str]) -> String {
    let hello = "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n";
    let out = compile_c("gcc", args, hello, dir, name);
    out.to_str().unwrap().to_string()
}

/// Every key of the documented schema, in order.
const TOP_KEYS: &[&str] = &[
    "schema_version",
    "path",
    "status",
    "require",
    "verdict",
    "error",
    "facts",
    "findings",
];
const FACT_KEYS: &[&str] = &[
    "os",
    "class",
    "endian",
    "machine",
    "oci_arch",
    "elf_type",
    "kind",
    "entry",
    "linkage",
    "interpreter",
    "needed",
    "rpath",
    "runpath",
    "soname",
    "libc",
    "libc_evidence",
    "nss_hazards",
    "load_hazards",
    "hardening",
    "stripped",
    "debug_info",
    "build_id",
    "go",
    "go_internal_link",
    "go_build_info",
    "rust",
    "rust_info",
    "compilers",
];
const HARDENING_KEYS: &[&str] = &[
    "pie",
    "relro",
    "bind_now",
    "stack",
    "stack_protector",
    "fortify",
    "fortified",
    "textrel",
];

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn sorted(k: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = k.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn json_report_follows_the_documented_schema() {
    let dir = tempfile::tempdir().unwrap();
    let bin = gcc(dir.path(), "dyn", &["-Wl,-z,relro,-z,now"]);
    let out = verify(&["--json", "--require", "static", &bin]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v = &json_lines(&out.stdout)[0];
    // serde_json's map is sorted, so compare as sets; the order is checked on the raw line.
    assert_eq!(keys(v), sorted(TOP_KEYS));
    assert_eq!(keys(&v["facts"]), sorted(FACT_KEYS));
    assert_eq!(keys(&v["facts"]["hardening"]), sorted(HARDENING_KEYS));
    let raw = out.stdout.lines().next().unwrap();
    let positions: Vec<usize> = TOP_KEYS
        .iter()
        .map(|k| raw.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");

    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["path"], bin.as_str());
    assert_eq!(v["status"], "fail");
    assert_eq!(v["require"], "static");
    assert!(v["verdict"].as_str().unwrap().starts_with("dynamic (glibc"));
    assert!(v["error"].is_null());
    let f = &v["facts"];
    assert_eq!(f["class"], 64);
    assert_eq!(f["endian"], "little");
    assert_eq!(f["machine"], "x86-64");
    assert_eq!(f["kind"], "executable");
    assert_eq!(f["linkage"], "dynamic");
    assert_eq!(f["libc"], "glibc");
    assert_eq!(f["needed"][0], "libc.so.6");
    assert_eq!(f["hardening"]["relro"], "full");
    assert_eq!(f["hardening"]["stack"], "non-executable");
    assert_eq!(f["hardening"]["pie"], true);
    let finding = &v["findings"][0];
    assert_eq!(finding["code"], "dynamic");
    assert_eq!(finding["severity"], "error");
    for k in ["what", "why", "fix"] {
        assert!(!finding[k].as_str().unwrap().is_empty());
    }
    assert_eq!(verify(&["--json", &bin]).code, 0);
}

#[test]
fn text_report_gives_the_verdict_and_the_facts_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let bin = gcc(dir.path(), "st", &["-static"]);
    let out = verify(&["--require", "static-pie", &bin]);
    assert_eq!(out.code, 1);
    let first = out.stdout.lines().next().unwrap();
    assert_eq!(first, format!("{bin}: static (glibc, x86-64)"));
    for label in [
        "elf:",
        "linking:",
        "libc:",
        "hardening:",
        "symbols:",
        "error:",
        "why:",
        "fix:",
    ] {
        assert!(
            out.stdout.contains(label),
            "{label} missing:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("static-pie"), "{}", out.stdout);
    assert_eq!(verify(&["--require", "static", &bin]).code, 0);
}

#[test]
fn default_output_on_a_dynamic_binary_gives_the_problem_why_and_fix_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let bin = gcc(dir.path(), "dyn", &[]);
    let out = verify(&[&bin]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("{bin}: dynamic (glibc")),
        "{first}"
    );
    let problem = out
        .stdout
        .lines()
        .position(|l| l.trim_start().starts_with("warning: dynamically linked"))
        .unwrap_or_else(|| panic!("no problem line:\n{}", out.stdout));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[problem + 1].trim_start().starts_with("why: ")
            && lines[problem + 1].contains("/lib64/ld-linux-x86-64.so.2"),
        "{}",
        out.stdout
    );
    assert!(
        lines[problem + 2].trim_start().starts_with("fix: ")
            && lines[problem + 2].contains("musl-gcc -static"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("wanted static"), "{}", out.stdout);
    // The same diagnosis under a requirement, as an error, and the exit status follows it.
    let strict = verify(&["--require", "static", &bin]);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stdout.contains("error: dynamically linked"),
        "{}",
        strict.stdout
    );
    // And in the JSON, a warning without --require.
    let v = &json_lines(&verify(&["--json", &bin]).stdout)[0];
    assert_eq!(v["status"], "pass");
    assert_eq!(v["findings"][0]["code"], "dynamic");
    assert_eq!(v["findings"][0]["severity"], "warning");
}

#[test]
fn directories_are_walked_without_following_symlinks_or_hanging() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    std::fs::create_dir(root.join("empty")).unwrap();
    let a = gcc(&root, "a", &[]);
    let b = gcc(&root.join("sub/deeper"), "b", &["-static"]);
    std::fs::write(root.join("notes.txt"), "not a program\n").unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::write(root.join("empty-file"), "").unwrap();
    symlink(&a, root.join("link-to-a")).unwrap();
    symlink("/usr/bin", root.join("link-out-of-tree")).unwrap();
    symlink(&root, root.join("sub/loop-to-root")).unwrap();
    symlink("self", root.join("self")).unwrap();
    nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();

    let out = verify(&["--json", root.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let reports = json_lines(&out.stdout);
    let paths: Vec<&str> = reports
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    // Name order, depth first; each ELF once; nothing through a symlink.
    assert_eq!(paths, vec![a.as_str(), b.as_str()], "{}", out.stdout);
    assert!(
        out.stderr
            .contains("2 files: 2 pass, 0 fail, 0 error; skipped 3 non-ELF, 4 symlinks (not followed), 1 special files"),
        "{}",
        out.stderr
    );

    // Text mode: same files, same closing line.
    let text = verify(&[root.to_str().unwrap()]);
    assert_eq!(text.code, 0);
    assert_eq!(
        text.stdout.lines().filter(|l| !l.starts_with(' ')).count(),
        2,
        "{}",
        text.stdout
    );

    // A directory with no ELF file is an error (a CI gate pointed at the wrong folder).
    let empty = verify(&["--json", root.join("empty").to_str().unwrap()]);
    assert_eq!(empty.code, 1);
    assert_eq!(
        json_lines(&empty.stdout)[0]["error"]["kind"],
        "no-elf-found"
    );
}

#[test]
fn named_files_that_are_not_elf_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, "hello\n").unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let missing = dir.path().join("missing");
    let bin = gcc(dir.path(), "ok", &[]);
    let link = dir.path().join("link");
    symlink(&bin, &link).unwrap();

    let args = [&txt, &script, &fifo, &missing, &link].map(|p| p.to_str().unwrap().to_string());
    let mut argv: Vec<&str> = vec!["--json"];
    argv.extend(args.iter().map(String::as_str));
    let out = verify(&argv);
    assert_eq!(out.code, 1);
    let r = json_lines(&out.stdout);
    let kinds: Vec<&str> = r
        .iter()
        .map(|x| x["error"]["kind"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(kinds, vec!["not-elf", "not-elf", "not-regular", "io", "-"]);
    assert!(
        r[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("script")
    );
    assert!(r[2]["error"]["message"].as_str().unwrap().contains("FIFO"));
    // A symlink named on the command line is followed.
    assert_eq!(r[4]["status"], "pass");
    assert!(
        r.iter()
            .take(4)
            .all(|x| x["status"] == "error" && x["facts"].is_null())
    );

    // Text mode: errors go to stderr, one line each, with the path.
    let t = verify(&[txt.to_str().unwrap()]);
    assert_eq!(t.code, 1);
    assert!(t.stderr.contains("not an ELF file"), "{}", t.stderr);
}

#[test]
fn truncated_and_corrupt_files_are_per_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bin = gcc(dir.path(), "full", &[]);
    let bytes = std::fs::read(&bin).unwrap();
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let flipped = dir.path().join("flipped");
    let mut b = bytes.clone();
    b[4] = 9; // EI_CLASS
    std::fs::write(&flipped, &b).unwrap();
    let out = verify(&[
        "--json",
        cut.to_str().unwrap(),
        flipped.to_str().unwrap(),
        &bin,
    ]);
    assert_eq!(out.code, 1);
    let r = json_lines(&out.stdout);
    assert_eq!(r.len(), 3);
    assert_eq!(r[0]["error"]["kind"], "malformed");
    assert!(
        r[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("truncated?")
    );
    assert_eq!(r[1]["error"]["kind"], "malformed");
    assert!(
        r[1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("class 9")
    );
    assert_eq!(r[2]["status"], "pass");
    assert!(
        out.stderr.contains("3 files: 1 pass, 0 fail, 2 error"),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(verify(&[]).code, 2);
    assert_eq!(verify(&["--require", "dynamic", "/bin/ls"]).code, 2);
    assert_eq!(verify(&["--frobnicate", "/bin/ls"]).code, 2);
}

#[test]
fn one_nss_rule_for_verify_and_build_a_static_glibc_getpwuid_binary_fails_a_static_requirement() {
    let dir = tempfile::tempdir().unwrap();
    let source = "#include <pwd.h>\n#include <stdio.h>\n#include <unistd.h>\n\
        int main(void){struct passwd p,*r;char b[1024];\
        getpwuid_r(getuid(),&p,b,sizeof b,&r);puts(r?p.pw_name:\"?\");return 0;}\n";
    let bin = compile_c("gcc", &["-static-pie", "-fPIE"], source, dir.path(), "pw");
    let bin = bin.to_str().unwrap();
    for require in ["static-pie", "static"] {
        let run = verify(&["--require", require, bin]);
        assert_eq!(
            run.code, 1,
            "--require {require}:\n{}{}",
            run.stdout, run.stderr
        );
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(
            text.contains("getpwuid_r") && text.contains("--allow-nss-hazards"),
            "{text}"
        );
        let run = verify(&["--require", require, "--allow-nss-hazards", bin]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    }
    // Without a requirement the hazard is reported, and the exit status stays 0.
    let run = verify(&[bin]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("getpwuid_r"), "{}", run.stdout);
}
