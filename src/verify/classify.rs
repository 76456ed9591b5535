//! Classification: raw ELF evidence → machine, type, linkage and libc. Pure functions.

use goblin::elf::header;

use super::{Libc, Linkage, LoadKind};

/// Human machine name and OCI architecture (GOARCH spelling, as the image spec uses).
pub(super) fn machine(e_machine: u16, is_64: bool, big_endian: bool) -> (String, Option<String>) {
    let (name, arch) = match (e_machine, is_64, big_endian) {
        (header::EM_X86_64, _, _) => ("x86-64", Some("amd64")),
        (header::EM_AARCH64, _, false) => ("aarch64", Some("arm64")),
        (header::EM_AARCH64, _, true) => ("aarch64_be", None),
        (header::EM_ARM, _, false) => ("arm", Some("arm")),
        (header::EM_ARM, _, true) => ("armeb", None),
        (header::EM_RISCV, true, _) => ("riscv64", Some("riscv64")),
        (header::EM_RISCV, false, _) => ("riscv32", None),
        (header::EM_386, _, _) => ("386", Some("386")),
        (header::EM_S390, true, _) => ("s390x", Some("s390x")),
        (header::EM_S390, false, _) => ("s390", None),
        (header::EM_PPC64, _, false) => ("ppc64le", Some("ppc64le")),
        (header::EM_PPC64, _, true) => ("ppc64", Some("ppc64")),
        (header::EM_MIPS, true, false) => ("mips64el", Some("mips64le")),
        (header::EM_MIPS, true, true) => ("mips64", Some("mips64")),
        (header::EM_MIPS, false, false) => ("mipsel", Some("mipsle")),
        (header::EM_MIPS, false, true) => ("mips", Some("mips")),
        (header::EM_LOONGARCH, true, _) => ("loongarch64", Some("loong64")),
        (header::EM_PPC, _, _) => ("ppc", None),
        (header::EM_SPARC, _, _) => ("sparc", None),
        (header::EM_SPARCV9, _, _) => ("sparc64", None),
        (header::EM_IA_64, _, _) => ("ia64", None),
        (header::EM_68K, _, _) => ("m68k", None),
        (header::EM_SH, _, _) => ("sh", None),
        (header::EM_PARISC, _, _) => ("parisc", None),
        (header::EM_BPF, _, _) => ("bpf", None),
        (m, _, _) => return (format!("unknown({m})"), None),
    };
    (name.to_string(), arch.map(String::from))
}

/// The operating system an ELF file is for. Linux programs say SYSV (0) or GNU (3) in
/// EI_OSABI and carry no other system's ABI note; FreeBSD sets EI_OSABI, OpenBSD and NetBSD
/// leave it SYSV but add an ident note. "linux" is therefore also what a bare-metal ELF says.
pub(super) fn os(os_abi: u8, note: Option<&'static str>) -> String {
    if let Some(n) = note {
        return n.to_string();
    }
    match os_abi {
        // 64 and 97: ARM's EABI and old ARM ABI markers, used by Linux ARM binaries.
        0 | 3 | 64 | 97 => "linux".to_string(),
        1 => "hpux".to_string(),
        2 => "netbsd".to_string(),
        6 => "solaris".to_string(),
        7 => "aix".to_string(),
        8 => "irix".to_string(),
        9 => "freebsd".to_string(),
        10 => "tru64".to_string(),
        12 => "openbsd".to_string(),
        13 => "openvms".to_string(),
        17 => "cloudabi".to_string(),
        n => format!("unknown({n})"),
    }
}

/// The OS named by a BSD ABI ident note, by the note's owner name.
pub(super) fn os_from_note(name: &[u8]) -> Option<&'static str> {
    match name {
        b"FreeBSD\0" => Some("freebsd"),
        b"OpenBSD\0" => Some("openbsd"),
        b"NetBSD\0" => Some("netbsd"),
        b"DragonFly\0" => Some("dragonfly"),
        _ => None,
    }
}

/// "FreeBSD" etc. for messages.
pub fn os_display(os: &str) -> String {
    match os {
        "freebsd" => "FreeBSD".into(),
        "openbsd" => "OpenBSD".into(),
        "netbsd" => "NetBSD".into(),
        "dragonfly" => "DragonFly BSD".into(),
        "solaris" => "Solaris".into(),
        "hpux" => "HP-UX".into(),
        "aix" => "AIX".into(),
        "irix" => "IRIX".into(),
        "openvms" => "OpenVMS".into(),
        other => other.to_string(),
    }
}

pub(super) fn elf_type(e_type: u16) -> String {
    match e_type {
        header::ET_NONE => "none".into(),
        header::ET_REL => "rel".into(),
        header::ET_EXEC => "exec".into(),
        header::ET_DYN => "dyn".into(),
        header::ET_CORE => "core".into(),
        t => format!("unknown({t})"),
    }
}

/// Dynamic as soon as the kernel or a loader must find something else (PT_INTERP, DT_NEEDED).
/// Otherwise an ET_DYN is position independent and relocates itself (static-pie); an ET_DYN
/// without PT_DYNAMIC has nothing to relocate and is still loaded at a random base, so it is
/// counted as static-pie too. Everything else (ET_EXEC, and the non-executables rel/core, whose
/// linkage means little and which `ElfFacts::is_executable` flags) is static.
pub(super) fn linkage(e_type: u16, has_interp: bool, has_needed: bool) -> Linkage {
    if has_interp || has_needed {
        Linkage::Dynamic
    } else if e_type == header::ET_DYN {
        Linkage::StaticPie
    } else {
        Linkage::Static
    }
}

/// Symbols that only musl defines (crt and startup internals).
pub(super) const MUSL_SYMBOLS: &[&str] = &[
    "__init_libc",
    "__libc_start_init",
    "__dls2",
    "__dls3",
    "__init_tp",
    "__copy_tls",
];

/// Symbols that only glibc defines (startup, static-pie self-relocation, TLS setup).
pub(super) const GLIBC_SYMBOLS: &[&str] = &[
    "__libc_setup_tls",
    "_dl_relocate_static_pie",
    "__libc_start_call_main",
    "__libc_csu_init",
    "_dl_non_dynamic_init",
    "_dl_aux_init",
    "__libc_early_init",
];

/// Byte strings glibc leaves in every binary it is linked into, stripped or not.
pub(super) const GLIBC_STRINGS: &[&str] = &[
    "GLIBC_TUNABLES",
    "GLIBC_PRIVATE",
    "GLIBC_2.",
    "GNU C Library",
    "Fatal glibc error",
];

/// What glibc's NSS module loader leaves in a static binary, stripped or not (its module
/// name pattern), and the hazard it means; a binary without NSS code has none of it. (gconv's
/// strings are no such evidence: every static stdio program carries them, iconv or not.)
pub(super) const GLIBC_MODULE_STRINGS: &[(&str, &str)] = &[(
    "libnss_",
    "NSS modules (libnss_*.so, named in the stripped binary)",
)];

/// musl leaves few strings; its loader name is one (dynamic binaries and musl's own libc.so).
pub(super) const MUSL_STRINGS: &[&str] = &["ld-musl-", "musl libc"];

pub(super) struct LibcEvidence<'a> {
    /// From [`os`]: the libc names below mean Linux libcs only on Linux.
    pub os: &'a str,
    pub interpreter: Option<&'a str>,
    pub needed: &'a [String],
    /// Which of MUSL_SYMBOLS / GLIBC_SYMBOLS the symbol tables hold.
    pub musl_symbols: Vec<&'static str>,
    pub glibc_symbols: Vec<&'static str>,
    /// A `name@GLIBC_x` versioned symbol name was seen.
    pub glibc_versioned: bool,
    pub is_go: bool,
    /// The Go binary links C code: runtime/cgo symbols, DT_NEEDED entries, or (stripped, so
    /// unknowable) CGO_ENABLED=1.
    pub go_cgo: bool,
    /// The first bytes at the entry point: the C start file (crt1) survives stripping.
    pub entry_code: &'a [u8],
}

/// The `_start` of each libc's crt1 (`rcrt1.o` and `Scrt1.o` too), as it begins, per machine.
/// musl's comes from its `crt_arch.h`, glibc's from `sysdeps/<arch>/start.S`.
const START_CODE: &[(Libc, &str, &[u8])] = &[
    // x86-64: xor %rbp,%rbp; mov %rsp,%rdi
    (Libc::Musl, "x86-64", &[0x48, 0x31, 0xed, 0x48, 0x89, 0xe7]),
    // aarch64: mov x29,#0; mov x30,#0; mov x0,sp
    (
        Libc::Musl,
        "aarch64",
        &[
            0x1d, 0x00, 0x80, 0xd2, 0x1e, 0x00, 0x80, 0xd2, 0xe0, 0x03, 0x00, 0x91,
        ],
    ),
    // x86-64: [endbr64;] xor %ebp,%ebp; mov %rdx,%r9; pop %rsi
    (Libc::Glibc, "x86-64", &[0x31, 0xed, 0x49, 0x89, 0xd1, 0x5e]),
    (
        Libc::Glibc,
        "x86-64",
        &[0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xed, 0x49, 0x89, 0xd1, 0x5e],
    ),
    // aarch64: [bti c;] mov x29,#0; mov x30,#0; mov x5,x0
    (
        Libc::Glibc,
        "aarch64",
        &[
            0x1d, 0x00, 0x80, 0xd2, 0x1e, 0x00, 0x80, 0xd2, 0xe5, 0x03, 0x00, 0xaa,
        ],
    ),
    (
        Libc::Glibc,
        "aarch64",
        &[
            0x5f, 0x24, 0x03, 0xd5, 0x1d, 0x00, 0x80, 0xd2, 0x1e, 0x00, 0x80, 0xd2, 0xe5, 0x03,
            0x00, 0xaa,
        ],
    ),
];

/// Decides the libc from the strongest evidence first: the loader and DT_NEEDED names of a
/// dynamic binary, then symbols, then strings (`contains` scans the file, bounded by its size).
/// Returns the verdict and the evidence in plain words.
pub(super) fn libc(e: &LibcEvidence<'_>, contains: &dyn Fn(&str) -> bool) -> (Libc, Vec<String>) {
    let mut why = Vec::new();
    if e.os != "linux" {
        why.push(format!(
            "a {} program: its C library is that system's own, neither glibc nor musl",
            os_display(e.os)
        ));
        return (Libc::Unknown, why);
    }
    // A Go PIE from the internal linker has a PT_INTERP only so that the system loader
    // relocates it; it links no libc. Only a Go binary that needs libraries uses the loader's.
    let loader_counts = !e.is_go || !e.needed.is_empty();
    if let Some(interp) = e.interpreter.filter(|_| loader_counts) {
        if interp.contains("ld-musl") {
            why.push(format!("interpreter {interp} is musl's loader"));
            return (Libc::Musl, why);
        }
        if interp.contains("ld-linux") || interp.contains("/ld64.so") {
            why.push(format!("interpreter {interp} is glibc's loader"));
            return (Libc::Glibc, why);
        }
    }
    for n in e.needed {
        // musl's soname is plain "libc.so" (Debian) or "libc.musl-<arch>.so.1" (Alpine).
        if n == "libc.so" || n.starts_with("libc.musl-") || n.starts_with("ld-musl") {
            why.push(format!("needs {n} (musl)"));
            return (Libc::Musl, why);
        }
        if n == "libc.so.6" || n == "libc.so.6.1" {
            why.push(format!("needs {n} (glibc)"));
            return (Libc::Glibc, why);
        }
    }
    let musl = e.musl_symbols.len();
    let glibc = e.glibc_symbols.len() + usize::from(e.glibc_versioned);
    if musl > glibc {
        why.push(format!("musl symbols: {}", e.musl_symbols.join(", ")));
        return (Libc::Musl, why);
    }
    if glibc > musl {
        let mut names = e.glibc_symbols.clone();
        if e.glibc_versioned {
            names.push("name@GLIBC_* versions");
        }
        why.push(format!("glibc symbols: {}", names.join(", ")));
        return (Libc::Glibc, why);
    }
    // A Go binary without cgo has no libc at all (external linking can still pull in libc's
    // start-up code, which the symbols above catch); its strings would only mislead.
    if e.is_go && !e.go_cgo {
        why.push("Go binary without cgo: the Go runtime makes system calls itself".into());
        return (Libc::None, why);
    }
    // Stripped static binaries keep their start file: its first instructions tell the libc.
    if let Some((libc, arch, _)) = START_CODE
        .iter()
        .find(|(_, _, code)| e.entry_code.starts_with(code))
    {
        why.push(format!(
            "the entry point is {}'s _start ({arch} crt1), which survives stripping",
            libc_name(*libc)
        ));
        return (*libc, why);
    }
    if let Some(s) = GLIBC_STRINGS.iter().find(|s| contains(s)) {
        why.push(format!("string {s:?} (glibc)"));
        return (Libc::Glibc, why);
    }
    if let Some(s) = MUSL_STRINGS.iter().find(|s| contains(s)) {
        why.push(format!("string {s:?} (musl)"));
        return (Libc::Musl, why);
    }
    why.push(
        "no libc fingerprint found (a stripped static musl binary looks like this)".to_string(),
    );
    (Libc::Unknown, why)
}

fn libc_name(libc: Libc) -> &'static str {
    match libc {
        Libc::Musl => "musl",
        Libc::Glibc => "glibc",
        _ => "an unknown libc",
    }
}

/// Symbols that make glibc load a shared object other than NSS modules at run time, by kind,
/// and whether only an import (an undefined symbol) counts. `dlopen`: glibc ≥ 2.34 defines it
/// (and dlmopen) in every static binary, so only an import says the program calls it. The
/// pthread functions: a static glibc links libgcc_eh's unwinder and loads nothing; only the
/// shared glibc dlopens libgcc_s.so.1, so only an import is the hazard. The IDNA functions are
/// glibc internals linked with getaddrinfo / getnameinfo (they dlopen libidn2 when AI_IDN or
/// NI_IDN is passed, which the binary does not tell).
pub(super) const LOAD_SYMBOLS: &[(&str, LoadKind, bool)] = &[
    ("iconv_open", LoadKind::Gconv, false),
    ("pthread_cancel", LoadKind::LibgccS, true),
    ("pthread_exit", LoadKind::LibgccS, true),
    ("__idna_to_dns_encoding", LoadKind::Idn2, false),
    ("__idna_from_dns_encoding", LoadKind::Idn2, false),
    ("dlopen", LoadKind::Dlopen, true),
    ("dlmopen", LoadKind::Dlopen, true),
];

/// The [`LOAD_SYMBOLS`] that `nss_hazards` listed before they had findings of their own, and
/// still lists (the JSON schema 1 meaning of the field); they are not NSS.
pub(super) const LEGACY_NSS_LIST: &[&str] = &["iconv_open", "dlopen"];

/// What a stripped static glibc binary still says about a [`LoadKind`]: the library name its
/// loader passes to dlopen.
pub(super) const LOAD_STRINGS: &[(&str, LoadKind)] = &[("libidn2.so", LoadKind::Idn2)];

/// Functions that make glibc load NSS modules at run time. In a static glibc binary they work
/// only where the same glibc's libnss_*.so exist (or, for files and dns, where its libc.a has
/// them built in).
pub(super) const NSS_HAZARDS: &[&str] = &[
    "getpwnam",
    "getpwnam_r",
    "getpwuid",
    "getpwuid_r",
    "getpwent",
    "getgrnam",
    "getgrnam_r",
    "getgrgid",
    "getgrgid_r",
    "getgrent",
    "getgrouplist",
    "initgroups",
    "getspnam",
    "getspnam_r",
    "getaddrinfo",
    "getnameinfo",
    "gethostbyname",
    "gethostbyname2",
    "gethostbyname_r",
    "gethostbyname2_r",
    "gethostbyaddr",
    "gethostbyaddr_r",
    "getservbyname",
    "getservbyname_r",
    "getservbyport",
    "getservbyport_r",
    "getprotobyname",
    "getprotobyname_r",
    "getprotobynumber",
];

#[cfg(test)]
mod start_code_tests {
    use super::*;

    fn evidence(entry_code: &[u8]) -> LibcEvidence<'_> {
        LibcEvidence {
            os: "linux",
            interpreter: None,
            needed: &[],
            musl_symbols: Vec::new(),
            glibc_symbols: Vec::new(),
            glibc_versioned: false,
            is_go: false,
            go_cgo: false,
            entry_code,
        }
    }

    #[test]
    fn each_libcs_start_file_is_told_apart_on_both_machines() {
        let none = |_: &str| false;
        let musl_a64 = [
            0x1d, 0x00, 0x80, 0xd2, 0x1e, 0x00, 0x80, 0xd2, 0xe0, 0x03, 0x00, 0x91, 0x01, 0x00,
        ];
        let glibc_a64 = [
            0x1d, 0x00, 0x80, 0xd2, 0x1e, 0x00, 0x80, 0xd2, 0xe5, 0x03, 0x00, 0xaa, 0xe1, 0x03,
        ];
        let glibc_x64_cet = [
            0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xed, 0x49, 0x89, 0xd1, 0x5e, 0x48,
        ];
        assert_eq!(libc(&evidence(&musl_a64), &none).0, Libc::Musl);
        assert_eq!(libc(&evidence(&glibc_a64), &none).0, Libc::Glibc);
        assert_eq!(libc(&evidence(&glibc_x64_cet), &none).0, Libc::Glibc);
        // Anything else, or too few bytes, stays unknown.
        assert_eq!(libc(&evidence(&[0x48, 0x31]), &none).0, Libc::Unknown);
        assert_eq!(libc(&evidence(&[0x90; 16]), &none).0, Libc::Unknown);
    }
}
