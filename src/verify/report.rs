//! The JSON report for tools and the typed outcome (status, tally) behind it; the text for
//! people is rendered by the CLI.
//!
//! The JSON schema is documented in docs/verify-json.md. It is built from the structs below,
//! not from `ElfFacts` directly, so internal changes cannot reshape it by accident; a change of
//! meaning or a removed field bumps [`SCHEMA_VERSION`], new fields do not.

use serde::Serialize;

use super::walk::{ErrorKind, FileReport};
use super::{
    ElfFacts, Finding, GoBuildInfo, Hardening, Libc, Linkage, Requirement, Severity, summary,
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

impl ElfFacts {
    /// What the file is for, as the JSON report's `kind` says: "executable", "shared-library",
    /// "relocatable", "core", "debug-only" or "other".
    pub fn kind(&self) -> &'static str {
        if self.debug_only {
            "debug-only"
        } else if self.is_shared_library {
            "shared-library"
        } else {
            match self.elf_type.as_str() {
                "exec" | "dyn" => "executable",
                "rel" => "relocatable",
                "core" => "core",
                _ => "other",
            }
        }
    }
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
    load_hazards: &'a [super::LoadHazard],
    hardening: &'a Hardening,
    stripped: bool,
    debug_info: bool,
    build_id: Option<&'a str>,
    go: bool,
    go_internal_link: bool,
    go_build_info: Option<&'a GoBuildInfo>,
    rust: bool,
    rust_info: Option<&'a super::RustInfo>,
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
            kind: f.kind(),
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
            load_hazards: &f.load_hazards,
            hardening: &f.hardening,
            stripped: f.stripped,
            debug_info: f.has_debug_info,
            build_id: f.build_id.as_deref(),
            go: f.is_go,
            go_internal_link: f.go_internal_link,
            go_build_info: f.go.as_ref(),
            rust: f.is_rust,
            rust_info: f.rust.as_ref(),
            compilers: &f.compilers,
        }
    }
}
