//! ELF facts (goblin, a pure function over bytes) → classification → diagnosis.
//!
//! - [`analyze`] reads an ELF file's bytes into [`ElfFacts`]: no file I/O, no processes, and no
//!   panic on hostile input (every offset and count is checked against the input).
//! - [`diagnose`] turns facts and a [`Requirement`] into plain-words [`Finding`]s with the fix.
//! - [`summary`] is the one-line verdict.
//! - [`verify_paths`] walks files and directories into [`FileReport`]s: typed values (facts,
//!   findings with code, severity, what, why and fix) that the CLI renders as text, and the JSON
//!   report ([`FileReport::to_json`], schema in docs/verify-json.md).

use serde::Serialize;

mod classify;
mod diagnose;
mod facts;
mod gobuildinfo;
pub mod image;
pub mod mapped;
pub mod needs;
mod report;
mod rustinfo;
mod walk;

pub use classify::os_display;
pub use diagnose::{DLOPEN_HAZARD, GCONV_HAZARD, IDN_HAZARD, LIBGCC_S_HAZARD, diagnose, summary};
pub use gobuildinfo::{GoBuildInfo, GoModule};
pub use report::{SCHEMA_VERSION, Status, Tally, requirement_name};
pub use rustinfo::{RustCrate, RustInfo};
pub use walk::{ErrorKind, FileError, FileReport, MAX_FILE_SIZE, WalkStats, verify_paths};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("not an ELF file: {0}")]
    NotElf(String),
    #[error("malformed ELF: {0}")]
    Malformed(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    Dynamic,
    Static,
    StaticPie,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Libc {
    Musl,
    Glibc,
    None,
    Unknown,
}

#[derive(Clone, Debug, Serialize)]
pub struct ElfFacts {
    pub class: u8,
    pub big_endian: bool,
    /// "x86-64", "aarch64", …
    pub machine: String,
    /// OCI architecture for the image config ("amd64", "arm64", …), when known.
    pub oci_arch: Option<String>,
    /// "exec", "dyn", "rel", "core", …
    pub elf_type: String,
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// Dynamic: PT_INTERP or DT_NEEDED. StaticPie: ET_DYN needing neither. Static: the rest.
    /// Meaningful for executables only (see [`ElfFacts::is_executable`]).
    pub linkage: Linkage,
    pub libc: Libc,
    /// Symbols that make a static glibc binary load shared objects at run time: the NSS
    /// functions ([`ElfFacts::nss_functions`]) and, as in JSON schema 1, `iconv_open` and an
    /// imported `dlopen` (which [`ElfFacts::load_hazards`] details, with their own findings).
    pub nss_hazards: Vec<String>,
    /// The other shared objects glibc loads behind the program's back (gconv modules,
    /// libgcc_s, libidn2) or that the program loads itself (dlopen), with the evidence for each.
    pub load_hazards: Vec<LoadHazard>,
    pub is_go: bool,
    /// ET_DYN that is a library (DT_SONAME or no entry point, and no DF_1_PIE), not a program.
    pub is_shared_library: bool,
    /// Rust code detected (std/core symbols, rustc paths).
    pub is_rust: bool,
    /// For Rust code: the rustc version and, with cargo auditable data, the crates.
    pub rust: Option<RustInfo>,
    /// DT_SONAME.
    pub soname: Option<String>,
    /// e_entry.
    pub entry: u64,
    /// Why `libc` was decided, in plain words ("needs libc.so.6 (glibc)", …).
    pub libc_evidence: Vec<String>,
    /// The Go build information (`go version -m`), when the binary carries it.
    pub go: Option<GoBuildInfo>,
    /// No .symtab.
    pub stripped: bool,
    /// A .debug_info section is present.
    pub has_debug_info: bool,
    /// NT_GNU_BUILD_ID, hex.
    pub build_id: Option<String>,
    /// A Go program linked by Go's own (internal) linker: no C toolchain's start files or
    /// `.comment`. That linker ignores -extldflags.
    pub go_internal_link: bool,
    /// DT_RPATH entries, as written (colon-separated lists are not split).
    pub rpath: Vec<String>,
    /// DT_RUNPATH entries, as written.
    pub runpath: Vec<String>,
    pub hardening: Hardening,
    /// Compiler and linker identifications from `.comment` ("GCC: (Debian 14.2.0-19) 14.2.0").
    pub compilers: Vec<String>,
    /// The operating system the file is for: "linux" (EI_OSABI SYSV/GNU and no other system's
    /// ABI note), "freebsd", "openbsd", "netbsd", "solaris", …, or "unknown(N)".
    pub os: String,
    /// A separate debug-info file (objcopy --only-keep-debug): program headers but no code.
    pub debug_only: bool,
}

/// A shared object loaded at run time that neither PT_INTERP nor DT_NEEDED names, so that
/// neither a scratch image nor one assembled from the DT_NEEDED closure has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LoadKind {
    /// iconv_open: glibc's gconv modules (`gconv-modules`, `*.so` under its gconv folder).
    Gconv,
    /// pthread_cancel / pthread_exit imported from a shared glibc: it dlopens libgcc_s.so.1 to
    /// unwind the thread (a static glibc links libgcc_eh's unwinder in instead).
    LibgccS,
    /// glibc's IDNA code, linked with getaddrinfo / getnameinfo: with AI_IDN / NI_IDN it dlopens
    /// libidn2.so.0.
    Idn2,
    /// dlopen / dlmopen imported: the program loads libraries by name itself.
    Dlopen,
}

/// One [`LoadKind`] found in a file and what showed it (symbol names, or a string).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoadHazard {
    pub kind: LoadKind,
    pub evidence: Vec<String>,
}

/// RELRO as the ELF requests it: `Partial` with PT_GNU_RELRO, `Full` when all binding is also
/// immediate (DT_BIND_NOW, DF_BIND_NOW or DF_1_NOW), so no GOT entry stays writable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relro {
    None,
    Partial,
    Full,
}

/// The stack's permissions from PT_GNU_STACK. `Default`: there is none, and the kernel decides
/// (executable on 32-bit x86 and older kernels; non-executable for x86-64 programs since 5.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StackExec {
    NonExecutable,
    Executable,
    Default,
}

/// `Unknown`: the file has no symbol table to tell (a stripped static binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    Yes,
    No,
    Unknown,
}

/// Exploit mitigations, read from program headers, the dynamic array and symbol names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hardening {
    /// A position-independent executable (ET_DYN that is not a shared library).
    pub pie: bool,
    pub relro: Relro,
    /// DT_BIND_NOW / DF_BIND_NOW / DF_1_NOW.
    pub bind_now: bool,
    pub stack: StackExec,
    /// `__stack_chk_fail` is imported (dynamic) or present (static: possibly from libc's own
    /// code, which is built with it on most distributions).
    pub stack_protector: Presence,
    /// Some `__*_chk` function (_FORTIFY_SOURCE) is imported (dynamic) or present (static).
    pub fortify: Presence,
    /// The `__*_chk` functions seen, sorted (at most 64).
    pub fortified: Vec<String>,
    /// DT_TEXTREL or DF_TEXTREL: the loader must write to code pages.
    pub textrel: bool,
}

impl ElfFacts {
    /// The NSS functions among [`ElfFacts::nss_hazards`] (what the `nss-hazard` finding is
    /// about): all but iconv_open and dlopen.
    pub fn nss_functions(&self) -> Vec<&str> {
        self.nss_hazards
            .iter()
            .map(String::as_str)
            .filter(|h| !classify::LEGACY_NSS_LIST.contains(h))
            .collect()
    }

    /// A program the kernel can exec: ET_EXEC, or ET_DYN that is not a shared library (and not
    /// a debug-info file split from a program).
    pub fn is_executable(&self) -> bool {
        !self.debug_only
            && (self.elf_type == "exec" || (self.elf_type == "dyn" && !self.is_shared_library))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// No run-time loader or library needed. A static-pie satisfies this too: it is a static
    /// binary that also relocates itself to a random address.
    Static,
    StaticPie,
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// Stable identifier for tools and policies, e.g. "dynamic", "nss-hazard".
    pub code: &'static str,
    pub severity: Severity,
    /// One line: what is wrong.
    pub what: String,
    /// Plain words: why it matters at run time.
    pub why: String,
    /// The concrete flag or setting that fixes it.
    pub fix: String,
}

/// [`analyze`] without its panic guard, for the fuzz target: a panic there must surface as a
/// crash, not be turned into an error.
#[doc(hidden)]
/// The code of the finding for a static glibc binary that loads NSS or gconv modules at run
/// time (`getpwnam`, `getaddrinfo`, `iconv_open`, dlopen).
pub const NSS_HAZARD: &str = "nss-hazard";

/// The one NSS rule, for `build` and `verify` alike: under a static requirement an NSS hazard
/// is an error (the binary does not run with no libc present: it dlopens the host glibc's
/// libnss_*.so), unless the user allowed it; `how_to_allow` is added to its fix.
pub fn apply_nss_rule(
    findings: Vec<Finding>,
    require: Requirement,
    allowed: bool,
    how_to_allow: &str,
) -> Vec<Finding> {
    if allowed || require == Requirement::Any {
        return findings;
    }
    findings
        .into_iter()
        .map(|mut f| {
            if f.code == NSS_HAZARD && f.severity != Severity::Error {
                f.severity = Severity::Error;
                f.fix = format!("{} ({how_to_allow})", f.fix);
            }
            f
        })
        .collect()
}

pub fn analyze_unguarded(bytes: &[u8]) -> Result<ElfFacts, VerifyError> {
    facts::analyze(bytes, &|n| facts::contains(bytes, n))
}

/// Reads the facts of the ELF file mapped in `map`, its literal scans windowed so the file is
/// never resident whole.
pub fn analyze_mapped(map: &mapped::Mapped) -> Result<ElfFacts, VerifyError> {
    guarded(|| facts::analyze(map.bytes(), &|n| map.contains(n)))
}

/// Reads the facts of an ELF file from its bytes.
pub fn analyze(bytes: &[u8]) -> Result<ElfFacts, VerifyError> {
    guarded(|| facts::analyze(bytes, &|n| facts::contains(bytes, n)))
}

fn guarded(
    analyze: impl FnOnce() -> Result<ElfFacts, VerifyError>,
) -> Result<ElfFacts, VerifyError> {
    // facts::analyze checks bounds before goblin reads anything; catching a panic is only the
    // last line of defence against a goblin bug on input nobody foresaw.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(analyze)).unwrap_or_else(|p| {
        let msg = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        Err(VerifyError::Malformed(format!(
            "the ELF parser gave up ({msg})"
        )))
    })
}

#[cfg(test)]
mod tests;

/// The code of the finding for a binary built for another CPU than the platform it is packed
/// for.
pub const WRONG_PLATFORM: &str = "wrong-platform";

/// An error finding when the ELF's machine is not `platform`'s (`oci_arch`, e.g. "arm64"): the
/// kernel refuses to exec it there ("exec format error").
/// The code of the finding for a binary linked against another C library than the recipe named.
pub const LIBC_MISMATCH: &str = "libc-mismatch";

/// A binary whose C library contradicts the one the build asked for (`musl` or `glibc`): the
/// report, the SBOM and the run proof would all describe another program than the one packed.
pub fn check_libc(facts: &ElfFacts, asked: Libc) -> Option<Finding> {
    let (asked_name, found_name) = match (asked, facts.libc) {
        (Libc::Musl, Libc::Glibc) => ("musl", "glibc"),
        (Libc::Glibc, Libc::Musl) => ("glibc", "musl"),
        _ => return None,
    };
    Some(Finding {
        code: LIBC_MISMATCH,
        severity: Severity::Error,
        what: format!(
            "the recipe builds with libc = \"{asked_name}\", but the binary is linked against {found_name}"
        ),
        why: format!(
            "a build step used a compiler of its own instead of the one staticpack gave it (CC, CXX, the cmake toolchain file): the {found_name} in the binary is not what the recipe, the SBOM and the provenance name"
        ),
        fix: format!(
            "build with the compiler staticpack provides ($CC / cc on PATH; for C++ a {asked_name} C++ compiler), or set libc = \"{found_name}\" if {found_name} is what you want"
        ),
    })
}

pub fn check_platform(facts: &ElfFacts, oci_arch: &str, platform: &str) -> Option<Finding> {
    if facts.oci_arch.as_deref() == Some(oci_arch) {
        return None;
    }
    Some(Finding {
        code: WRONG_PLATFORM,
        severity: Severity::Error,
        what: format!(
            "the binary is for {} ({}), not for {platform}",
            facts.machine,
            facts.oci_arch.as_deref().unwrap_or("no OCI architecture")
        ),
        why: format!(
            "a {platform} kernel refuses to run it: \"exec format error\" at the first start"
        ),
        fix: format!(
            "build or name the binary for {platform} (for prebuilt: the source of that platform), or pack it for its own platform with --platform linux/{}",
            facts.oci_arch.as_deref().unwrap_or("<its architecture>")
        ),
    })
}
