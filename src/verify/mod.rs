//! ELF facts (goblin, a pure function over bytes) → classification → diagnosis.

use serde::Serialize;

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
    pub linkage: Linkage,
    pub libc: Libc,
    /// Symbols that make a static glibc binary load shared objects at run time.
    pub nss_hazards: Vec<String>,
    pub is_go: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
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

pub fn analyze(_bytes: &[u8]) -> Result<ElfFacts, VerifyError> {
    unimplemented!("verify helper")
}

pub fn diagnose(_facts: &ElfFacts, _require: Requirement) -> Vec<Finding> {
    unimplemented!("verify helper")
}

pub fn summary(_facts: &ElfFacts) -> String {
    unimplemented!("verify helper")
}
