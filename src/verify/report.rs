//! Rendering of file reports: the text report for people and the JSON report for tools.
//!
//! The JSON schema is documented in docs/verify-json.md. It is built from the structs below,
//! not from `ElfFacts` directly, so internal changes cannot reshape it by accident; a change of
//! meaning or a removed field bumps [`SCHEMA_VERSION`], new fields do not.

use serde::Serialize;

use super::walk::{ErrorKind, FileReport, WalkStats};
use super::{
    ElfFacts, Finding, GoBuildInfo, Hardening, Libc, Linkage, Presence, Relro, Requirement,
    Severity, StackExec, summary,
};

pub const SCHEMA_VERSION: u32 = 1;

/// pass: analyzed, no error finding; fail: analyzed, an error finding under the requirement;
/// error: could not be analyzed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Error,
}

impl FileReport {
    pub fn status(&self) -> Status {
        match &self.result {
            Err(_) => Status::Error,
            Ok((_, findings)) if findings.iter().any(|f| f.severity == Severity::Error) => {
                Status::Fail
            }
            Ok(_) => Status::Pass,
        }
    }

    /// One line of JSON (no trailing newline).
    pub fn to_json(&self) -> String {
        let (facts, findings, verdict, error) = match &self.result {
            Ok((f, findings)) => (
                Some(JsonFacts::new(f)),
                findings.as_slice(),
                Some(summary(f)),
                None,
            ),
            Err(e) => (
                None,
                &[][..],
                None,
                Some(JsonError {
                    kind: e.kind,
                    message: &e.message,
                }),
            ),
        };
        let report = JsonReport {
            schema_version: SCHEMA_VERSION,
            path: self.path.to_string_lossy().into_owned(),
            status: self.status(),
            require: requirement_name(self.require),
            verdict,
            error,
            facts,
            findings,
        };
        // Serializing plain structs of strings, numbers and bools cannot fail; fall back to a
        // minimal object rather than panic should that ever change.
        serde_json::to_string(&report).unwrap_or_else(|e| {
            format!(
                "{{\"schema_version\":{SCHEMA_VERSION},\"status\":\"error\",\"error\":{{\"kind\":\"io\",\"message\":{}}}}}",
                serde_json::Value::String(format!("cannot render the report: {e}"))
            )
        })
    }

    /// The text report: the verdict line, the facts behind it, then each finding with why and
    /// the fix. Ends with a newline.
    pub fn to_text(&self) -> String {
        let path = self.path.display();
        match &self.result {
            Err(e) => format!("{path}: error: {}\n", e.message),
            Ok((f, findings)) => {
                let mut out = format!("{path}: {}\n", summary(f));
                for (label, value) in fact_lines(f) {
                    out.push_str(&format!("  {label:<10} {value}\n"));
                }
                for x in findings {
                    let label = match x.severity {
                        Severity::Error => "error",
                        Severity::Warning => "warning",
                    };
                    out.push_str(&format!(
                        "  {label}: {}\n    why: {}\n    fix: {}\n",
                        x.what, x.why, x.fix
                    ));
                }
                out
            }
        }
    }
}

pub fn requirement_name(r: Requirement) -> &'static str {
    match r {
        Requirement::Static => "static",
        Requirement::StaticPie => "static-pie",
        Requirement::Any => "any",
    }
}

/// Totals over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
}

impl Tally {
    pub fn add(&mut self, s: Status) {
        match s {
            Status::Pass => self.pass += 1,
            Status::Fail => self.fail += 1,
            Status::Error => self.error += 1,
        }
    }

    pub fn all_passed(&self) -> bool {
        self.fail == 0 && self.error == 0
    }
}

/// The closing line: "verify: 12 files: 10 pass, 1 fail, 1 error; skipped 3 non-ELF, 2 symlinks".
pub fn closing_line(t: &Tally, s: &WalkStats) -> String {
    let mut line = format!(
        "verify: {} file{}: {} pass, {} fail, {} error",
        s.reported,
        if s.reported == 1 { "" } else { "s" },
        t.pass,
        t.fail,
        t.error
    );
    if s.skipped() > 0 {
        let mut parts = Vec::new();
        for (n, what) in [
            (s.skipped_non_elf, "non-ELF"),
            (s.skipped_symlinks, "symlinks (not followed)"),
            (s.skipped_special, "special files"),
            (s.vanished, "deleted while walking"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        line.push_str(&format!("; skipped {}", parts.join(", ")));
    }
    line
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn kind(f: &ElfFacts) -> &'static str {
    if f.debug_only {
        "debug-only"
    } else if f.is_shared_library {
        "shared-library"
    } else {
        match f.elf_type.as_str() {
            "exec" | "dyn" => "executable",
            "rel" => "relocatable",
            "core" => "core",
            _ => "other",
        }
    }
}

/// Stack protector and FORTIFY are C-library checks: meaningless for a Go program without C.
fn presence(p: Presence, f: &ElfFacts) -> &'static str {
    match p {
        Presence::Yes => "yes",
        Presence::No if f.is_go && f.libc == Libc::None => "n/a (Go)",
        Presence::No => "no",
        Presence::Unknown => "unknown (no symbols)",
    }
}

fn fact_lines(f: &ElfFacts) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    let type_words = match (kind(f), f.elf_type.as_str()) {
        ("executable", "dyn") => "position-independent executable (ET_DYN)".to_string(),
        ("executable", _) => "executable (ET_EXEC)".to_string(),
        ("shared-library", _) => "shared library (ET_DYN)".to_string(),
        ("relocatable", _) => "relocatable object (ET_REL)".to_string(),
        ("core", _) => "core dump (ET_CORE)".to_string(),
        ("debug-only", t) => format!(
            "separate debug-info file (ET_{}: program headers, no code)",
            t.to_uppercase()
        ),
        (_, t) => format!("type {t}"),
    };
    lines.push((
        "elf:",
        format!(
            "{}-bit {}-endian {}, {type_words}, entry {:#x}{}",
            f.class,
            if f.big_endian { "big" } else { "little" },
            f.machine,
            f.entry,
            if f.os == "linux" {
                String::new()
            } else {
                format!(", for {}", super::classify::os_display(&f.os))
            }
        ),
    ));
    let mut link = vec![match (&f.interpreter, f.linkage) {
        _ if f.debug_only => {
            "none recorded (the code and dynamic section were split off)".to_string()
        }
        (Some(i), _) => format!("interpreter {i}"),
        (None, Linkage::StaticPie) => "no interpreter (relocates itself: static-pie)".to_string(),
        (None, _) => "no interpreter".to_string(),
    }];
    link.push(if f.needed.is_empty() {
        "no DT_NEEDED".to_string()
    } else {
        format!("needs {}", f.needed.join(", "))
    });
    if !f.rpath.is_empty() {
        link.push(format!("rpath {}", f.rpath.join(" ")));
    }
    if !f.runpath.is_empty() {
        link.push(format!("runpath {}", f.runpath.join(" ")));
    }
    if let Some(s) = &f.soname {
        link.push(format!("soname {s}"));
    }
    lines.push(("linking:", link.join("; ")));
    let libc = match f.libc {
        Libc::Musl => "musl",
        Libc::Glibc => "glibc",
        Libc::None => "none",
        Libc::Unknown => "unknown",
    };
    lines.push(("libc:", format!("{libc} ({})", f.libc_evidence.join("; "))));
    // The list is libc-independent; only glibc turns these calls into module loading.
    if f.libc == Libc::Glibc && !f.nss_hazards.is_empty() {
        lines.push((
            "nss:",
            format!(
                "calls {} (glibc serves these by loading libnss_*.so / gconv modules at run time)",
                f.nss_hazards.join(", ")
            ),
        ));
    }
    let h = &f.hardening;
    let fortify = match h.fortify {
        Presence::Yes => format!("yes ({} __*_chk)", h.fortified.len()),
        p => presence(p, f).to_string(),
    };
    lines.push((
        "hardening:",
        format!(
            "PIE {}, RELRO {}, NX stack {}, stack protector {}, FORTIFY {fortify}, TEXTREL {}",
            yes_no(h.pie),
            match h.relro {
                Relro::None => "none",
                Relro::Partial => "partial",
                Relro::Full => "full",
            },
            match h.stack {
                StackExec::NonExecutable => "yes",
                StackExec::Executable => "NO (executable stack)",
                StackExec::Default => "kernel default (no PT_GNU_STACK)",
            },
            presence(h.stack_protector, f),
            yes_no(h.textrel),
        ),
    ));
    lines.push((
        "symbols:",
        format!(
            "{}, {}, {}",
            if f.stripped {
                "stripped"
            } else {
                "not stripped"
            },
            if f.has_debug_info {
                "debug info"
            } else {
                "no debug info"
            },
            match &f.build_id {
                Some(id) => format!("build-id {id}"),
                None => "no build-id".to_string(),
            }
        ),
    ));
    if let Some(g) = &f.go {
        let mut parts = vec![g.go_version.clone()];
        if let Some(p) = &g.path {
            parts.push(format!("path {p}"));
        }
        for key in ["CGO_ENABLED", "-tags", "-buildmode", "-ldflags", "GOARCH"] {
            if let Some(v) = g.setting(key) {
                parts.push(format!("{key}={v}"));
            }
        }
        if !g.deps.is_empty() {
            parts.push(format!("{} dependencies", g.deps.len()));
        }
        lines.push(("go:", parts.join(", ")));
    } else if f.is_go {
        lines.push(("go:", "Go program without build info".to_string()));
    }
    if f.is_rust {
        lines.push(("rust:", "Rust code present".to_string()));
    }
    if !f.compilers.is_empty() {
        lines.push(("built by:", f.compilers.join("; ")));
    }
    lines
}

#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    path: String,
    status: Status,
    require: &'static str,
    verdict: Option<String>,
    error: Option<JsonError<'a>>,
    facts: Option<JsonFacts<'a>>,
    findings: &'a [Finding],
}

#[derive(Serialize)]
struct JsonError<'a> {
    kind: ErrorKind,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonFacts<'a> {
    os: &'a str,
    class: u8,
    endian: &'static str,
    machine: &'a str,
    oci_arch: Option<&'a str>,
    elf_type: &'a str,
    kind: &'static str,
    entry: u64,
    linkage: Linkage,
    interpreter: Option<&'a str>,
    needed: &'a [String],
    rpath: &'a [String],
    runpath: &'a [String],
    soname: Option<&'a str>,
    libc: Libc,
    libc_evidence: &'a [String],
    nss_hazards: &'a [String],
    hardening: &'a Hardening,
    stripped: bool,
    debug_info: bool,
    build_id: Option<&'a str>,
    go: bool,
    go_internal_link: bool,
    go_build_info: Option<&'a GoBuildInfo>,
    rust: bool,
    compilers: &'a [String],
}

impl<'a> JsonFacts<'a> {
    fn new(f: &'a ElfFacts) -> Self {
        JsonFacts {
            os: &f.os,
            class: f.class,
            endian: if f.big_endian { "big" } else { "little" },
            machine: &f.machine,
            oci_arch: f.oci_arch.as_deref(),
            elf_type: &f.elf_type,
            kind: kind(f),
            entry: f.entry,
            linkage: f.linkage,
            interpreter: f.interpreter.as_deref(),
            needed: &f.needed,
            rpath: &f.rpath,
            runpath: &f.runpath,
            soname: f.soname.as_deref(),
            libc: f.libc,
            libc_evidence: &f.libc_evidence,
            nss_hazards: &f.nss_hazards,
            hardening: &f.hardening,
            stripped: f.stripped,
            debug_info: f.has_debug_info,
            build_id: f.build_id.as_deref(),
            go: f.is_go,
            go_internal_link: f.go_internal_link,
            go_build_info: f.go.as_ref(),
            rust: f.is_rust,
            compilers: &f.compilers,
        }
    }
}
