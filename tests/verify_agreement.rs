//! Agreement check: `staticpack verify --json` against binutils' `readelf` and pax-utils'
//! `scanelf` over every ELF file in /usr/bin and /usr/lib/x86_64-linux-gnu.
//!
//! Compared with both tools: ELF type, PT_INTERP, the DT_NEEDED list (in order), immediate
//! binding. Compared with readelf alone: DT_RPATH, DT_RUNPATH, DT_SONAME, PT_GNU_RELRO,
//! PT_GNU_STACK's X flag, TEXTREL. The set of files is checked too: every regular file with the
//! ELF magic (found by `find -type f`, symlinks not followed) must be reported, and nothing else.
//! The verdict (static / static-pie / dynamic, `facts.linkage`) is compared with the one readelf
//! gives (no PT_INTERP and no DT_NEEDED: ET_EXEC static, ET_DYN with DF_1_PIE static-pie; else
//! dynamic) over every program, the system's and static ones compiled here (musl and glibc,
//! static and static-pie, Go without cgo) and the repo's own outputs (recipes/hello-c and
//! hello-c-static built by staticpack, their layers unpacked); a wrong "static" verdict fails
//! the test.
//! Agreement must be 100%; the figures are printed (`cargo test --test verify_agreement --
//! --nocapture`). `STATICPACK_AGREEMENT_TREES=/a:/b` checks other trees the same way.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::need;
use serde_json::Value;

const TREES: &[&str] = &["/usr/bin", "/usr/lib/x86_64-linux-gnu"];

fn trees() -> Vec<String> {
    match std::env::var("STATICPACK_AGREEMENT_TREES") {
        Ok(v) if !v.is_empty() => v.split(':').map(String::from).collect(),
        _ => TREES.iter().map(|s| s.to_string()).collect(),
    }
}

/// The facts compared for one file, as strings so that both sides print the same way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Seen {
    elf_type: String,
    interpreter: String,
    needed: Vec<String>,
    bind_now: bool,
    rpath: Vec<String>,
    runpath: Vec<String>,
    soname: String,
    relro: bool,
    exec_stack: Option<bool>,
    textrel: bool,
    /// DF_1_PIE (readelf's side only).
    pie_flag: bool,
    /// static / static-pie / dynamic: ours as `verify --json` says (`facts.linkage`), readelf's
    /// derived from type, PT_INTERP, DT_NEEDED and DF_1_PIE by [`readelf_verdict`].
    verdict: String,
}

fn is_elf(path: &Path) -> bool {
    let mut head = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|_| &head == b"\x7fELF")
        .unwrap_or(false)
}

fn elf_files_by_find(trees: &[String]) -> BTreeSet<String> {
    let out = Command::new("find")
        .arg("-P")
        .args(trees)
        .args(["-type", "f"])
        .output()
        .expect("running find");
    String::from_utf8(out.stdout)
        .expect("UTF-8 paths")
        .lines()
        .filter(|p| is_elf(Path::new(p)))
        .map(String::from)
        .collect()
}

fn ours(trees: &[String]) -> BTreeMap<String, Seen> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_staticpack"));
    cmd.args(["verify", "--json"]).args(trees);
    let out = common::run_with_timeout(cmd, common::RUN_TIMEOUT);
    let mut map = BTreeMap::new();
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["schema_version"], 1);
        let path = v["path"].as_str().expect("path").to_string();
        let f = &v["facts"];
        assert!(f.is_object(), "{path}: no facts: {}", v["error"]["message"]);
        let strs = |x: &Value| -> Vec<String> {
            x.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let h = &f["hardening"];
        let seen = Seen {
            elf_type: match f["elf_type"].as_str().unwrap_or("") {
                "exec" => "EXEC",
                "dyn" => "DYN",
                "rel" => "REL",
                "core" => "CORE",
                "none" => "NONE",
                other => other,
            }
            .to_string(),
            interpreter: f["interpreter"].as_str().unwrap_or("").to_string(),
            needed: strs(&f["needed"]),
            bind_now: h["bind_now"].as_bool().unwrap_or(false),
            rpath: strs(&f["rpath"]),
            runpath: strs(&f["runpath"]),
            soname: f["soname"].as_str().unwrap_or("").to_string(),
            relro: h["relro"] != "none",
            exec_stack: match h["stack"].as_str() {
                Some("executable") => Some(true),
                Some("non-executable") => Some(false),
                _ => None,
            },
            textrel: h["textrel"].as_bool().unwrap_or(false),
            pie_flag: false,
            verdict: f["linkage"].as_str().unwrap_or("").to_string(),
        };
        map.insert(path, seen);
    }
    map
}

/// The text between `[` and the last `]` on a readelf line.
fn bracketed(line: &str) -> String {
    let start = line.find('[').map_or(0, |i| i + 1);
    let end = line.rfind(']').unwrap_or(line.len());
    line.get(start..end).unwrap_or("").to_string()
}

fn readelf(files: &[&String]) -> BTreeMap<String, Seen> {
    let mut map = BTreeMap::new();
    for chunk in files.chunks(400) {
        let out = Command::new("readelf")
            .args(["-h", "-l", "-d", "-W"])
            .args(chunk.iter().map(|s| s.as_str()))
            .env("LC_ALL", "C")
            .output()
            .expect("running readelf");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut current: Option<(String, Seen)> = None;
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("File: ") {
                if let Some((k, v)) = current.take() {
                    map.insert(k, v);
                }
                current = Some((p.to_string(), Seen::default()));
                continue;
            }
            let Some((_, s)) = current.as_mut() else {
                continue;
            };
            let t = line.trim_start();
            if let Some(rest) = t.strip_prefix("Type:") {
                s.elf_type = rest.split_whitespace().next().unwrap_or("").to_string();
            } else if t.starts_with("[Requesting program interpreter:") {
                s.interpreter = t
                    .trim_start_matches("[Requesting program interpreter:")
                    .trim()
                    .trim_end_matches(']')
                    .to_string();
            } else if t.contains("(NEEDED)") {
                s.needed.push(bracketed(t));
            } else if t.contains("(RPATH)") {
                s.rpath.push(bracketed(t));
            } else if t.contains("(RUNPATH)") {
                s.runpath.push(bracketed(t));
            } else if t.contains("(SONAME)") {
                s.soname = bracketed(t);
            } else if t.contains("(BIND_NOW)") {
                s.bind_now = true;
            } else if t.contains("(TEXTREL)") {
                s.textrel = true;
            } else if t.contains("(FLAGS)") {
                s.bind_now |= t.contains("BIND_NOW");
                s.textrel |= t.contains("TEXTREL");
            } else if t.contains("(FLAGS_1)") {
                s.bind_now |= t.split_whitespace().any(|w| w == "NOW");
                s.pie_flag |= t.split_whitespace().any(|w| w == "PIE");
            } else if t.starts_with("GNU_RELRO ") {
                s.relro = true;
            } else if t.starts_with("GNU_STACK ") {
                // Type Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align: the flags are what
                // lies between the sixth field and the last.
                let fields: Vec<&str> = t.split_whitespace().collect();
                let flags = fields.get(6..fields.len().saturating_sub(1)).unwrap_or(&[]);
                s.exec_stack = Some(flags.iter().any(|f| f.contains('E')));
            }
        }
        if let Some((k, v)) = current.take() {
            map.insert(k, v);
        }
    }
    for s in map.values_mut() {
        s.verdict = readelf_verdict(s).to_string();
    }
    map
}

/// The verdict readelf's facts give: nothing for a loader to do (no PT_INTERP, no DT_NEEDED)
/// and ET_EXEC is static; the same as a position-independent executable (ET_DYN with DF_1_PIE)
/// is static-pie; anything else is dynamic.
fn readelf_verdict(s: &Seen) -> &'static str {
    let alone = s.interpreter.is_empty() && s.needed.is_empty();
    match s.elf_type.as_str() {
        "EXEC" if alone => "static",
        "DYN" if alone && s.pie_flag => "static-pie",
        _ => "dynamic",
    }
}

/// Whether readelf sees a program (what a verdict is about): ET_EXEC, a PIE, or anything with
/// an interpreter. Libraries and objects have a linkage but no verdict that means anything.
fn is_program(s: &Seen) -> bool {
    s.elf_type == "EXEC" || s.pie_flag || !s.interpreter.is_empty()
}

/// Static programs of every kind verify must call static, in `dir`: musl and glibc, static and
/// static-pie (musl's static-pie linked as staticpack's specs link it: rcrt1.o, `-static-pie`,
/// no dynamic linker), what Debian's musl-gcc makes of `-static-pie` (a dynamic PIE, the trap
/// verify must not call static), and a Go build without cgo.
fn static_programs(dir: &Path) {
    need("gcc", "gcc");
    need("musl-gcc", "musl-tools");
    need("go", "golang-go");
    let c = dir.join("hello.c");
    std::fs::write(
        &c,
        "#include <stdio.h>\nint main(void){puts(\"hi\");return 0;}\n",
    )
    .expect("writing hello.c");
    let run = |cmd: &mut Command| {
        let out = cmd.output().expect("running a compiler");
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let out = |name: &str| dir.join("bin").join(name);
    std::fs::create_dir_all(dir.join("bin")).expect("bin folder");
    run(Command::new("musl-gcc")
        .args(["-static", "-O1", "-o"])
        .arg(out("musl-static"))
        .arg(&c));
    run(Command::new("musl-gcc")
        .args(["-static-pie", "-O1", "-o"])
        .arg(out("musl-gcc-static-pie-is-dynamic"))
        .arg(&c));
    run(Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(out("glibc-static"))
        .arg(&c));
    run(Command::new("gcc")
        .args(["-static-pie", "-O1", "-o"])
        .arg(out("glibc-static-pie"))
        .arg(&c));
    run(Command::new("gcc")
        .args(["-O1", "-o"])
        .arg(out("glibc-dynamic"))
        .arg(&c));
    // musl static-pie the way staticpack's musl specs link it (src/build/musl.rs).
    let musl = Path::new("/usr/lib/x86_64-linux-musl");
    let gcc_file = |name: &str| {
        let o = Command::new("gcc")
            .arg(format!("-print-file-name={name}"))
            .output()
            .expect("gcc -print-file-name");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    let obj = dir.join("hello.o");
    run(Command::new("musl-gcc")
        .args(["-fPIE", "-O1", "-c", "-o"])
        .arg(&obj)
        .arg(&c));
    run(Command::new("gcc")
        .args(["-static-pie", "-nostdlib"])
        .arg(musl.join("rcrt1.o"))
        .arg(musl.join("crti.o"))
        .arg(gcc_file("crtbeginS.o"))
        .arg(&obj)
        .arg("-L")
        .arg(musl)
        .args(["-lc", &gcc_file("libgcc.a"), &gcc_file("crtendS.o")])
        .arg(musl.join("crtn.o"))
        .arg("-o")
        .arg(out("musl-static-pie")));
    std::fs::write(dir.join("go.mod"), "module hello\n\ngo 1.19\n").expect("go.mod");
    std::fs::write(
        dir.join("main.go"),
        "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }\n",
    )
    .expect("main.go");
    run(Command::new("go")
        .args(["build", "-trimpath", "-o"])
        .arg(out("go-nocgo"))
        .arg(".")
        .current_dir(dir)
        .env("CGO_ENABLED", "0"));
    // The repo's own outputs: recipes built by staticpack, their image's files unpacked.
    for recipe in ["hello-c", "hello-c-static"] {
        let layout = dir.join("layouts").join(recipe);
        let built = common::staticpack(
            dir,
            &[
                "build",
                &common::recipe(recipe).display().to_string(),
                "--out",
                &layout.display().to_string(),
            ],
        );
        built.ok();
        let read = |p: PathBuf| -> Value {
            serde_json::from_slice(&std::fs::read(&p).expect("reading the layout"))
                .expect("layout JSON")
        };
        let blob = |digest: &Value| {
            let d = digest.as_str().expect("a digest");
            layout
                .join("blobs/sha256")
                .join(d.trim_start_matches("sha256:"))
        };
        let index = read(layout.join("index.json"));
        let manifest = read(blob(&index["manifests"][0]["digest"]));
        let rootfs = out(&format!("staticpack-{recipe}"));
        std::fs::create_dir_all(&rootfs).expect("rootfs folder");
        for layer in manifest["layers"].as_array().expect("layers") {
            run(Command::new("tar")
                .arg("-xzf")
                .arg(blob(&layer["digest"]))
                .arg("-C")
                .arg(&rootfs));
        }
    }
}

fn scanelf(files: &[&String]) -> BTreeMap<String, Seen> {
    let list = tempfile::NamedTempFile::new().expect("temp file");
    let names: String = files.iter().map(|f| format!("{f}\n")).collect();
    std::fs::write(list.path(), names).expect("writing the file list");
    let out = Command::new("scanelf")
        .args(["-B", "-F", "%F\t%o\t%i\t%n\t%b", "-f"])
        .arg(list.path())
        .output()
        .expect("running scanelf");
    let mut map = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('\t');
        let (Some(path), Some(ty), interp, needed, bind) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            continue;
        };
        map.insert(
            path.to_string(),
            Seen {
                elf_type: ty.trim_start_matches("ET_").to_string(),
                interpreter: interp.unwrap_or("").to_string(),
                needed: needed
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                bind_now: bind.is_some_and(|b| b.trim() == "NOW"),
                ..Seen::default()
            },
        );
    }
    map
}

type Field = (&'static str, fn(&Seen) -> String);

fn compare(
    tool: &str,
    ours: &BTreeMap<String, Seen>,
    theirs: &BTreeMap<String, Seen>,
    fields: &[Field],
) -> (usize, Vec<String>) {
    let mut bad = Vec::new();
    let mut agreed = 0;
    for (path, a) in ours {
        let Some(b) = theirs.get(path) else {
            bad.push(format!("{tool} printed nothing for {path}"));
            continue;
        };
        let mut all = true;
        for (name, get) in fields {
            let (x, y) = (get(a), get(b));
            if x != y {
                all = false;
                bad.push(format!("{path}: {name}: staticpack {x:?}, {tool} {y:?}"));
            }
        }
        agreed += usize::from(all);
    }
    (agreed, bad)
}

#[test]
fn verify_agrees_with_readelf_and_scanelf_on_every_system_elf() {
    need("readelf", "binutils");
    need("scanelf", "pax-utils");
    let started = Instant::now();
    let built = tempfile::tempdir().expect("temp dir");
    static_programs(built.path());
    let built_bin = built.path().join("bin").display().to_string();
    let mut trees = trees();
    trees.push(built_bin.clone());
    let expected = elf_files_by_find(&trees);
    let ours = ours(&trees);
    let reported: BTreeSet<String> = ours.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&reported).take(20).collect();
    let extra: Vec<_> = reported.difference(&expected).take(20).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "file sets differ: not reported {missing:?}; reported but not ELF files {extra:?}"
    );
    let files: Vec<&String> = ours.keys().collect();

    let both: &[Field] = &[
        ("type", |s| s.elf_type.clone()),
        ("interpreter", |s| s.interpreter.clone()),
        ("needed", |s| s.needed.join(",")),
        ("bind_now", |s| s.bind_now.to_string()),
    ];
    let readelf_only: &[Field] = &[
        ("rpath", |s| s.rpath.join(";")),
        ("runpath", |s| s.runpath.join(";")),
        ("soname", |s| s.soname.clone()),
        ("relro", |s| s.relro.to_string()),
        ("exec_stack", |s| format!("{:?}", s.exec_stack)),
        ("textrel", |s| s.textrel.to_string()),
    ];
    let all: Vec<Field> = both.iter().chain(readelf_only).copied().collect();
    let re = readelf(&files);
    let (re_ok, re_bad) = compare("readelf", &ours, &re, &all);
    // How many files carry each fact, so that agreement on empty values is not all there is.
    let count = |p: fn(&Seen) -> bool| re.values().filter(|s| p(s)).count();
    println!(
        "readelf saw: {} with an interpreter, {} with DT_NEEDED, {} with a soname, {} with \
         RPATH, {} with RUNPATH, {} bind-now, {} with RELRO, {} with PT_GNU_STACK ({} executable), \
         {} TEXTREL; types {:?}",
        count(|s| !s.interpreter.is_empty()),
        count(|s| !s.needed.is_empty()),
        count(|s| !s.soname.is_empty()),
        count(|s| !s.rpath.is_empty()),
        count(|s| !s.runpath.is_empty()),
        count(|s| s.bind_now),
        count(|s| s.relro),
        count(|s| s.exec_stack.is_some()),
        count(|s| s.exec_stack == Some(true)),
        count(|s| s.textrel),
        re.values()
            .fold(BTreeMap::<&str, usize>::new(), |mut m, s| {
                *m.entry(s.elf_type.as_str()).or_default() += 1;
                m
            }),
    );
    let (se_ok, se_bad) = compare("scanelf", &ours, &scanelf(&files), both);

    let n = files.len();
    println!(
        "agreement over {n} ELF files in {}: readelf {re_ok}/{n} (type, interpreter, needed, \
         bind_now, rpath, runpath, soname, relro, exec_stack, textrel), scanelf {se_ok}/{n} \
         (type, interpreter, needed, bind_now), {:.1} s",
        trees.join(" and "),
        started.elapsed().as_secs_f64()
    );
    if std::env::var_os("STATICPACK_AGREEMENT_TREES").is_none() {
        assert!(
            n > 100,
            "only {n} ELF files found: is this a Debian/Ubuntu x86-64 system?"
        );
    }
    let bad: Vec<_> = re_bad.iter().chain(&se_bad).take(30).collect();
    assert!(bad.is_empty(), "disagreements:\n{bad:#?}");

    // The verdict, over the programs (libraries and objects have none).
    let mut by_verdict = BTreeMap::<&str, usize>::new();
    let (mut programs, mut agreed) = (0, 0);
    let mut wrong_static = Vec::new();
    let mut other = Vec::new();
    for (path, theirs) in re.iter().filter(|(_, s)| is_program(s)) {
        let Some(mine) = ours.get(path) else { continue };
        programs += 1;
        *by_verdict.entry(readelf_verdict(theirs)).or_default() += 1;
        if mine.verdict == theirs.verdict {
            agreed += 1;
        } else if mine.verdict != "dynamic" && theirs.verdict == "dynamic" {
            wrong_static.push(format!(
                "{path}: staticpack {}, readelf {}",
                mine.verdict, theirs.verdict
            ));
        } else {
            other.push(format!(
                "{path}: staticpack {}, readelf {}",
                mine.verdict, theirs.verdict
            ));
        }
    }
    let built_verdicts: BTreeMap<String, String> = ours
        .iter()
        .filter(|(p, _)| p.starts_with(&built_bin))
        .map(|(p, s)| {
            (
                p.trim_start_matches(&built_bin)
                    .trim_start_matches('/')
                    .to_string(),
                s.verdict.clone(),
            )
        })
        .collect();
    println!(
        "verdict agreement over {programs} programs (readelf: {by_verdict:?}): {agreed}/{programs} \
         agree, {} wrong \"static\" verdicts, {} other disagreements; built here: \
         {built_verdicts:?}",
        wrong_static.len(),
        other.len()
    );
    let expect = [
        ("musl-static", "static"),
        ("musl-static-pie", "static-pie"),
        ("musl-gcc-static-pie-is-dynamic", "dynamic"),
        ("glibc-static", "static"),
        ("glibc-static-pie", "static-pie"),
        ("glibc-dynamic", "dynamic"),
        ("go-nocgo", "static"),
        ("staticpack-hello-c/hello", "static-pie"),
        ("staticpack-hello-c-static/hello", "static"),
    ];
    for (name, verdict) in expect {
        assert_eq!(
            built_verdicts.get(name).map(String::as_str),
            Some(verdict),
            "{name}: {built_verdicts:?}"
        );
    }
    assert!(
        wrong_static.is_empty(),
        "wrong \"static\" verdicts:\n{wrong_static:#?}"
    );
    let other: Vec<_> = other.iter().take(30).collect();
    assert!(other.is_empty(), "verdict disagreements:\n{other:#?}");
}
