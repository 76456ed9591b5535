//! ELF bytes → `ElfFacts`. goblin reads the records (header, program and section headers, the
//! dynamic array, symbols); this file decides where to read them and checks every offset and
//! count against the input first, so hostile input ends in an error, never a panic, a hang or
//! an allocation larger than the input.

use std::collections::{BTreeMap, BTreeSet};

use goblin::container::{Container, Ctx, Endian};
use goblin::elf::{
    Dynamic, Elf, ProgramHeader, SectionHeader, Sym, Symtab, dynamic as dynm, header,
    program_header as ph, section_header as sh, sym,
};

use super::gobuildinfo::{self, GoBuildInfo};
use super::{ElfFacts, Hardening, Presence, Relro, StackExec, VerifyError, classify};

/// Longest library name or interpreter path read (PATH_MAX).
const MAX_NAME: usize = 4096;
/// Longest symbol or section name looked at: every name we match is far shorter, and the cap
/// bounds the work per symbol on hostile string tables.
const MAX_SYMBOL: usize = 256;
const MAX_NEEDED: usize = 1024;
const MAX_NOTES: usize = 1024;
/// RPATH/RUNPATH entries and `.comment` strings kept (real files have a handful).
const MAX_PATHS: usize = 64;
const MAX_COMMENTS: usize = 16;
/// Fortified function names kept for the report (the count is exact).
const MAX_FORTIFIED: usize = 64;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const DF_TEXTREL: u64 = 0x4;
const DF_BIND_NOW: u64 = 0x8;
const DF_1_NOW: u64 = 0x1;

fn malformed(msg: impl Into<String>) -> VerifyError {
    VerifyError::Malformed(msg.into())
}

/// `bytes[off .. off+len]`, or None when it does not fit (with overflow checked).
fn slice(bytes: &[u8], off: u64, len: u64) -> Option<&[u8]> {
    let start = usize::try_from(off).ok()?;
    let end = usize::try_from(off.checked_add(len)?).ok()?;
    bytes.get(start..end)
}

/// NUL-terminated name at `off` in a string table; None when out of range, unterminated or longer
/// than `max`.
fn cstr(table: &[u8], off: usize, max: usize) -> Option<&[u8]> {
    let rest = table.get(off..)?;
    let window = &rest[..rest.len().min(max + 1)];
    let nul = window.iter().position(|&b| b == 0)?;
    Some(&window[..nul])
}

pub(super) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, tail)) = needle.split_first() else {
        return true;
    };
    let mut i = 0;
    while let Some(p) = hay
        .get(i..)
        .and_then(|h| h.iter().position(|&b| b == first))
    {
        let at = i + p;
        if hay.get(at + 1..at + 1 + tail.len()) == Some(tail) {
            return true;
        }
        i = at + 1;
    }
    false
}

struct Section<'a> {
    name: &'a [u8],
    hdr: SectionHeader,
}

/// What the symbol tables told us.
#[derive(Default)]
struct SymbolScan {
    hazards: BTreeSet<String>,
    loads: BTreeMap<super::LoadKind, BTreeSet<&'static str>>,
    musl: BTreeSet<&'static str>,
    glibc: BTreeSet<&'static str>,
    glibc_versioned: bool,
    go: bool,
    cgo: bool,
    rust: bool,
    /// A symbol table was read (otherwise stack protector and FORTIFY are unknowable).
    seen_table: bool,
    stack_chk: bool,
    fortified: BTreeSet<String>,
}

impl SymbolScan {
    /// `imports_only`: a dynamically linked file, where `__stack_chk_fail` and `__*_chk` come
    /// from libc.so, so only imports say the program's own code uses them (libc.so itself
    /// defines them all).
    fn visit(&mut self, name: &[u8], undefined: bool, imports_only: bool) {
        // `.symtab` of a dynamic binary spells imports "puts@GLIBC_2.2.5" (or "@@").
        let (base, version) = match name.iter().position(|&b| b == b'@') {
            Some(at) => (&name[..at], Some(&name[at..])),
            None => (name, None),
        };
        if version.is_some_and(|v| {
            v.strip_prefix(b"@@")
                .or_else(|| v.strip_prefix(b"@"))
                .is_some_and(|v| v.starts_with(b"GLIBC_"))
        }) {
            self.glibc_versioned = true;
        }
        // Symbol names we care about are ASCII; anything else matches nothing.
        let Ok(base) = std::str::from_utf8(base) else {
            return;
        };
        if let Some(h) = classify::NSS_HAZARDS.iter().find(|h| **h == base) {
            self.hazards.insert((*h).to_string());
        }
        if let Some((name, kind, _)) = classify::LOAD_SYMBOLS
            .iter()
            .find(|(name, _, import_only)| *name == base && (undefined || !import_only))
        {
            self.loads.entry(*kind).or_default().insert(name);
        }
        if let Some(s) = classify::MUSL_SYMBOLS.iter().find(|s| **s == base) {
            self.musl.insert(s);
        }
        if let Some(s) = classify::GLIBC_SYMBOLS.iter().find(|s| **s == base) {
            self.glibc.insert(s);
        }
        if undefined || !imports_only {
            self.hardening_symbol(base);
        }
        match base {
            "runtime.rt0_go" | "runtime.main" | "runtime.goexit" => self.go = true,
            "x_cgo_init" | "crosscall2" => self.cgo = true,
            _ => {}
        }
        if base.contains("rust_begin_unwind")
            || base.contains("__rust_")
            || base.starts_with("_ZN3std")
            || base.starts_with("_ZN4core")
        {
            self.rust = true;
        }
    }

    fn hardening_symbol(&mut self, base: &str) {
        match base {
            // -fstack-protector: the check's failure path (i386 PIC uses a local alias).
            "__stack_chk_fail" | "__stack_chk_fail_local" => self.stack_chk = true,
            // _FORTIFY_SOURCE: checked variants `__memcpy_chk`, `__printf_chk`, … (and the
            // failure handler `__chk_fail`, which is not a fortified function itself).
            "__chk_fail" | "__stack_chk_guard" => {}
            _ if base.len() > 6
                && base.starts_with("__")
                && base.ends_with("_chk")
                && self.fortified.len() < MAX_FORTIFIED =>
            {
                self.fortified.insert(base.to_string());
            }
            _ => {}
        }
    }
}

/// `contains` answers whether a literal occurs in the file: over `bytes` itself, or a windowed
/// scan of a map that releases its pages (see `mapped`).
pub(super) fn analyze(
    bytes: &[u8],
    contains: &dyn Fn(&[u8]) -> bool,
) -> Result<ElfFacts, VerifyError> {
    if bytes.len() < 4 || &bytes[..4] != header::ELFMAG {
        let hint = if bytes.starts_with(b"#!") {
            " (a script with a #! line, not a compiled program)"
        } else if bytes.is_empty() {
            " (the file is empty)"
        } else {
            ""
        };
        return Err(VerifyError::NotElf(format!(
            "does not start with the ELF magic 7f 45 4c 46{hint}"
        )));
    }
    let class = bytes.get(header::EI_CLASS).copied().unwrap_or(0);
    let data = bytes.get(header::EI_DATA).copied().unwrap_or(0);
    let container = match class {
        header::ELFCLASS32 => Container::Little,
        header::ELFCLASS64 => Container::Big,
        c => {
            return Err(malformed(format!(
                "unknown ELF class {c} (expected 1 or 2)"
            )));
        }
    };
    let endian = match data {
        header::ELFDATA2LSB => Endian::Little,
        header::ELFDATA2MSB => Endian::Big,
        d => {
            return Err(malformed(format!(
                "unknown ELF data encoding {d} (expected 1 or 2)"
            )));
        }
    };
    let ctx = Ctx::new(container, endian);
    let hdr = Elf::parse_header(bytes).map_err(|e| malformed(format!("ELF header: {e}")))?;
    let len = bytes.len() as u64;

    // Program headers: the kernel insists on the exact entry size, and so do we.
    let phdrs = if hdr.e_phnum == 0 {
        Vec::new()
    } else {
        let entsize = ProgramHeader::size(ctx);
        if usize::from(hdr.e_phentsize) != entsize {
            return Err(malformed(format!(
                "program header entry size {} (expected {entsize})",
                hdr.e_phentsize
            )));
        }
        let total = u64::from(hdr.e_phnum) * entsize as u64;
        if slice(bytes, hdr.e_phoff, total).is_none() {
            return Err(malformed(format!(
                "program header table ({} entries at offset {:#x}) runs past the end of the file ({len} bytes)",
                hdr.e_phnum, hdr.e_phoff
            )));
        }
        ProgramHeader::parse(bytes, hdr.e_phoff as usize, usize::from(hdr.e_phnum), ctx)
            .map_err(|e| malformed(format!("program headers: {e}")))?
    };
    for (i, p) in phdrs.iter().enumerate() {
        let checked = matches!(
            p.p_type,
            ph::PT_LOAD | ph::PT_INTERP | ph::PT_DYNAMIC | ph::PT_NOTE
        );
        if checked && p.p_filesz > 0 && slice(bytes, p.p_offset, p.p_filesz).is_none() {
            return Err(malformed(format!(
                "segment {i} ({}) at offset {:#x} size {:#x} runs past the end of the file ({len} bytes): truncated?",
                ph::pt_to_str(p.p_type),
                p.p_offset,
                p.p_filesz
            )));
        }
    }

    let sections = read_sections(bytes, &hdr, ctx)?;
    let section = |name: &str| sections.iter().find(|s| s.name == name.as_bytes());
    let section_data = |s: &Section| {
        slice(bytes, s.hdr.sh_offset, s.hdr.sh_size).filter(|_| s.hdr.sh_type != sh::SHT_NOBITS)
    };

    // A separate debug-info file (objcopy --only-keep-debug) keeps the program headers of the
    // program it was split from, but not its code: every executable PT_LOAD is empty in the
    // file (only the first one, holding the headers, may keep bytes).
    let code_loads = || {
        phdrs
            .iter()
            .filter(|p| p.p_type == ph::PT_LOAD && p.p_flags & ph::PF_X != 0)
    };
    let debug_only =
        code_loads().next().is_some() && code_loads().all(|p| p.p_filesz == 0 && p.p_memsz > 0);

    // PT_INTERP: the path the kernel opens before the program.
    let interpreter = match phdrs.iter().find(|p| p.p_type == ph::PT_INTERP) {
        None => None,
        Some(_) if debug_only => None,
        Some(p) => {
            let raw = slice(bytes, p.p_offset, p.p_filesz).unwrap_or(&[]);
            let raw = &raw[..raw.len().min(MAX_NAME)];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            if end == 0 {
                return Err(malformed(
                    "PT_INTERP names no interpreter (empty): the kernel refuses to start this program",
                ));
            }
            Some(String::from_utf8_lossy(&raw[..end]).into_owned())
        }
    };

    // The dynamic array: DT_NEEDED, DT_SONAME, DF_1_PIE.
    let dynamic =
        Dynamic::parse(bytes, &phdrs, ctx).map_err(|e| malformed(format!("PT_DYNAMIC: {e}")))?;
    let mut needed = Vec::new();
    let mut soname = None;
    let mut pie_flag = false;
    let mut rpath = Vec::new();
    let mut runpath = Vec::new();
    let mut textrel = false;
    let mut bind_now = false;
    if let Some(d) = &dynamic {
        let from_dt = (d.info.strtab != 0)
            .then(|| {
                let start = d.info.strtab;
                let end = start.saturating_add(d.info.strsz).min(bytes.len());
                bytes.get(start..end)
            })
            .flatten();
        let dynstr = from_dt
            .filter(|t| !t.is_empty())
            .or_else(|| section(".dynstr").and_then(section_data))
            .unwrap_or(&[]);
        let name_at = |v: u64| {
            usize::try_from(v)
                .ok()
                .and_then(|o| cstr(dynstr, o, MAX_NAME))
                .map(|n| String::from_utf8_lossy(n).into_owned())
        };
        for dy in &d.dyns {
            match dy.d_tag {
                dynm::DT_NEEDED if needed.len() < MAX_NEEDED => {
                    needed.push(name_at(dy.d_val).unwrap_or_else(|| {
                        format!("<unreadable name at dynstr offset {:#x}>", dy.d_val)
                    }));
                }
                dynm::DT_SONAME => soname = name_at(dy.d_val),
                dynm::DT_RPATH | dynm::DT_RUNPATH => {
                    let list = if dy.d_tag == dynm::DT_RPATH {
                        &mut rpath
                    } else {
                        &mut runpath
                    };
                    if list.len() < MAX_PATHS {
                        list.push(name_at(dy.d_val).unwrap_or_else(|| {
                            format!("<unreadable name at dynstr offset {:#x}>", dy.d_val)
                        }));
                    }
                }
                dynm::DT_FLAGS_1 => {
                    pie_flag = dy.d_val & dynm::DF_1_PIE != 0;
                    bind_now |= dy.d_val & DF_1_NOW != 0;
                }
                dynm::DT_FLAGS => {
                    textrel |= dy.d_val & DF_TEXTREL != 0;
                    bind_now |= dy.d_val & DF_BIND_NOW != 0;
                }
                dynm::DT_TEXTREL => textrel = true,
                dynm::DT_BIND_NOW => bind_now = true,
                _ => {}
            }
        }
    }

    // Symbols from .symtab and .dynsym: the first table of each type only, as a loader or
    // debugger would; hostile files may stack thousands of overlapping tables.
    let mut syms = SymbolScan::default();
    let imports_only = !needed.is_empty();
    let sym_size = Sym::size(container);
    let first_of = |t: u32| sections.iter().find(|s| s.hdr.sh_type == t);
    for s in [first_of(sh::SHT_SYMTAB), first_of(sh::SHT_DYNSYM)]
        .into_iter()
        .flatten()
    {
        if s.hdr.sh_entsize != sym_size as u64 || section_data(s).is_none() {
            continue;
        }
        let count = (s.hdr.sh_size / sym_size as u64) as usize;
        let Ok(table) = Symtab::parse(bytes, s.hdr.sh_offset as usize, count, ctx) else {
            continue;
        };
        let strtab = sections
            .get(s.hdr.sh_link as usize)
            .and_then(section_data)
            .unwrap_or(&[]);
        syms.seen_table |= count > 1;
        for symbol in table.iter() {
            let t = symbol.st_type();
            if t == sym::STT_FILE || t == sym::STT_SECTION || symbol.st_name == 0 {
                continue;
            }
            if let Some(name) = cstr(strtab, symbol.st_name, MAX_SYMBOL) {
                syms.visit(
                    name,
                    symbol.st_shndx == sh::SHN_UNDEF as usize,
                    imports_only,
                );
            }
        }
    }

    // Notes: GNU build-id, Go build id.
    let mut build_id = None;
    let mut go_note = false;
    let mut os_note = None;
    let mut on_note = |name: &[u8], ntype: u32, desc: &[u8]| {
        if name == b"GNU\0" && ntype == 3 && build_id.is_none() && desc.len() <= 64 {
            build_id = Some(hex::encode(desc));
        } else if name == b"Go\0\0" && ntype == 4 {
            go_note = true;
        } else if let Some(os) = classify::os_from_note(name) {
            // The BSDs' ABI tags (.note.tag, .note.openbsd.ident, .note.netbsd.ident).
            os_note.get_or_insert(os);
        }
    };
    let big = endian == Endian::Big;
    // One budget for all note records, however many (overlapping) note areas there are.
    let mut budget = MAX_NOTES;
    let note_phdrs: Vec<_> = phdrs.iter().filter(|p| p.p_type == ph::PT_NOTE).collect();
    if note_phdrs.is_empty() {
        for s in sections.iter().filter(|s| s.hdr.sh_type == sh::SHT_NOTE) {
            if let Some(d) = section_data(s) {
                walk_notes(d, s.hdr.sh_addralign, big, &mut budget, &mut on_note);
            }
        }
    } else {
        for p in note_phdrs {
            if let Some(d) = slice(bytes, p.p_offset, p.p_filesz) {
                walk_notes(d, p.p_align, big, &mut budget, &mut on_note);
            }
        }
    }

    // Go build info: the section when there are sections, else the magic at a 16-byte boundary.
    let go_blob = match section(".go.buildinfo") {
        Some(s) => section_data(s),
        // Only a file without section headers is searched: any other file may carry the magic
        // as data (this very program does).
        None if sections.is_empty() => find_go_magic(bytes),
        None => None,
    };
    let read_vaddr = |addr: u64| -> Option<&[u8]> {
        phdrs.iter().find_map(|p| {
            let rel = addr.checked_sub(p.p_vaddr)?;
            if p.p_type != ph::PT_LOAD || rel >= p.p_filesz {
                return None;
            }
            slice(bytes, p.p_offset.checked_add(rel)?, p.p_filesz - rel)
        })
    };
    let go: Option<GoBuildInfo> = go_blob.and_then(|b| gobuildinfo::parse(b, &read_vaddr));
    let is_go = go.is_some()
        || go_note
        || syms.go
        || section(".note.go.buildid").is_some()
        || section(".gopclntab").is_some();

    let stripped = !sections.iter().any(|s| s.hdr.sh_type == sh::SHT_SYMTAB);
    let has_debug_info = section(".debug_info").is_some() || section(".zdebug_info").is_some();
    let compilers = section(".comment")
        .and_then(section_data)
        .map(comment_strings)
        .unwrap_or_default();
    let is_rust = !is_go
        && (syms.rust
            || compilers.iter().any(|c| c.starts_with("rustc version"))
            || section(".rustc").is_some()
            || contains(b"/rustc/")
            || contains(b"rust_panic"));

    let rust = is_rust.then(|| super::rustinfo::RustInfo {
        rustc: super::rustinfo::rustc_version(&compilers),
        crates: section(".dep-v0")
            .and_then(section_data)
            .and_then(super::rustinfo::crates),
    });

    let go_cgo = syms.cgo
        || !needed.is_empty()
        || (stripped && go.as_ref().and_then(GoBuildInfo::cgo_enabled) == Some(true));
    let os = classify::os(bytes.get(header::EI_OSABI).copied().unwrap_or(0), os_note);
    let entry_code = read_vaddr(hdr.e_entry)
        .map(|code| &code[..code.len().min(16)])
        .unwrap_or(&[]);
    let evidence = classify::LibcEvidence {
        os: &os,
        interpreter: interpreter.as_deref(),
        needed: &needed,
        musl_symbols: syms.musl.iter().copied().collect(),
        glibc_symbols: syms.glibc.iter().copied().collect(),
        glibc_versioned: syms.glibc_versioned,
        is_go,
        go_cgo,
        entry_code,
    };
    let (libc, libc_evidence) = classify::libc(&evidence, &|s| contains(s.as_bytes()));

    let is_64 = container == Container::Big;
    let (machine, oci_arch) = classify::machine(hdr.e_machine, is_64, big);
    let linkage = classify::linkage(hdr.e_type, interpreter.is_some(), !needed.is_empty());
    // Loads the DT_NEEDED closure does not cover, from the symbols, and for a stripped static
    // glibc binary from the library names its loaders leave behind.
    let mut loads = syms.loads;
    if needed.iter().any(|n| n.starts_with("libgcc_s.so")) {
        loads.remove(&super::LoadKind::LibgccS);
    }
    if stripped && libc == super::Libc::Glibc && linkage != super::Linkage::Dynamic {
        for (literal, kind) in classify::LOAD_STRINGS {
            if !loads.contains_key(kind) && contains(literal.as_bytes()) {
                loads.entry(*kind).or_default().insert(literal);
            }
        }
    }
    let load_hazards: Vec<super::LoadHazard> = loads
        .into_iter()
        .map(|(kind, evidence)| super::LoadHazard {
            kind,
            evidence: evidence.into_iter().map(String::from).collect(),
        })
        .collect();
    // `nss_hazards` keeps its schema-1 meaning (every function that makes glibc load a shared
    // object): iconv_open and an imported dlopen stay listed there too.
    let mut hazards = syms.hazards;
    for h in &load_hazards {
        for e in &h.evidence {
            if classify::LEGACY_NSS_LIST.contains(&e.as_str()) {
                hazards.insert(e.clone());
            }
        }
    }
    let mut nss_hazards: Vec<String> = hazards.into_iter().collect();
    // Stripped, a static glibc binary has no symbols left to name its hazards, but glibc's
    // module loaders leave their file names in it: they settle it either way.
    if stripped
        && libc == super::Libc::Glibc
        && linkage != super::Linkage::Dynamic
        && nss_hazards.is_empty()
    {
        for (literal, hazard) in classify::GLIBC_MODULE_STRINGS {
            if contains(literal.as_bytes()) {
                nss_hazards.push((*hazard).to_owned());
            }
        }
    }
    // A shared library is ET_DYN like a PIE; the PIE flag (or its absence with a soname or no
    // entry point) tells them apart. Old linkers set no DF_1_PIE, hence the fallbacks.
    let is_shared_library =
        hdr.e_type == header::ET_DYN && !pie_flag && (soname.is_some() || hdr.e_entry == 0);

    // Hardening as the ELF asks for it (the checksec conventions): RELRO is partial with
    // PT_GNU_RELRO alone and full when binding is also immediate (nothing left to patch lazily).
    let has = |t: u32| phdrs.iter().find(|p| p.p_type == t);
    let relro = match has(PT_GNU_RELRO) {
        None => Relro::None,
        Some(_) if bind_now => Relro::Full,
        Some(_) => Relro::Partial,
    };
    let stack = match has(PT_GNU_STACK) {
        None => StackExec::Default,
        Some(p) if p.p_flags & ph::PF_X != 0 => StackExec::Executable,
        Some(_) => StackExec::NonExecutable,
    };
    let known = |yes: bool| match (yes, syms.seen_table) {
        (true, _) => Presence::Yes,
        (false, true) => Presence::No,
        (false, false) => Presence::Unknown,
    };
    let hardening = Hardening {
        pie: hdr.e_type == header::ET_DYN && !is_shared_library,
        relro,
        bind_now,
        stack,
        stack_protector: known(syms.stack_chk),
        fortify: known(!syms.fortified.is_empty()),
        fortified: syms.fortified.into_iter().collect(),
        textrel,
    };

    Ok(ElfFacts {
        class: if is_64 { 64 } else { 32 },
        big_endian: big,
        machine,
        oci_arch,
        elf_type: classify::elf_type(hdr.e_type),
        interpreter,
        needed,
        linkage,
        libc,
        nss_hazards,
        load_hazards,
        is_go,
        is_shared_library,
        is_rust,
        rust,
        soname,
        entry: hdr.e_entry,
        libc_evidence,
        go,
        stripped,
        has_debug_info,
        build_id,
        go_internal_link: is_go && section(".comment").is_none(),
        rpath,
        runpath,
        hardening,
        compilers,
        os,
        debug_only,
    })
}

/// `.comment` holds NUL-separated compiler identifications ("GCC: (Debian 14.2.0-19) 14.2.0",
/// "rustc version 1.85.0 (…)", "Linker: LLD …"); distinct ones, in order, bounded.
fn comment_strings(data: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for raw in data.split(|&b| b == 0) {
        if out.len() >= MAX_COMMENTS {
            break;
        }
        let raw = &raw[..raw.len().min(MAX_SYMBOL)];
        let text = String::from_utf8_lossy(raw).trim().to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push(text);
        }
    }
    out
}

fn read_sections<'a>(
    bytes: &'a [u8],
    hdr: &header::Header,
    ctx: Ctx,
) -> Result<Vec<Section<'a>>, VerifyError> {
    if hdr.e_shoff == 0 {
        return Ok(Vec::new());
    }
    let entsize = SectionHeader::size(ctx);
    if usize::from(hdr.e_shentsize) != entsize {
        return Err(malformed(format!(
            "section header entry size {} (expected {entsize})",
            hdr.e_shentsize
        )));
    }
    // e_shnum 0 means "count in the first header's sh_size"; goblin reads that and rejects
    // counts the file cannot hold before it allocates.
    if hdr.e_shnum != 0 {
        let total = u64::from(hdr.e_shnum) * entsize as u64;
        if slice(bytes, hdr.e_shoff, total).is_none() {
            return Err(malformed(format!(
                "section header table ({} entries at offset {:#x}) runs past the end of the file ({} bytes): truncated?",
                hdr.e_shnum,
                hdr.e_shoff,
                bytes.len()
            )));
        }
    }
    let shoff = usize::try_from(hdr.e_shoff).map_err(|_| malformed("section header offset"))?;
    let headers = SectionHeader::parse(bytes, shoff, usize::from(hdr.e_shnum), ctx)
        .map_err(|e| malformed(format!("section headers: {e}")))?;
    for (i, s) in headers.iter().enumerate() {
        if s.sh_type != sh::SHT_NOBITS
            && s.sh_size > 0
            && slice(bytes, s.sh_offset, s.sh_size).is_none()
        {
            return Err(malformed(format!(
                "section {i} at offset {:#x} size {:#x} runs past the end of the file ({} bytes): truncated?",
                s.sh_offset,
                s.sh_size,
                bytes.len()
            )));
        }
    }
    let mut strndx = usize::from(hdr.e_shstrndx);
    if strndx == sh::SHN_XINDEX as usize {
        strndx = headers.first().map_or(0, |h| h.sh_link as usize);
    }
    let names = headers
        .get(strndx)
        .filter(|h| h.sh_type != sh::SHT_NOBITS)
        .and_then(|h| slice(bytes, h.sh_offset, h.sh_size))
        .unwrap_or(&[]);
    Ok(headers
        .into_iter()
        .map(|h| Section {
            name: cstr(names, h.sh_name, MAX_SYMBOL).unwrap_or_default(),
            hdr: h,
        })
        .collect())
}

/// Walks ELF note records (namesz, descsz, type, name, desc; name and desc padded to the
/// alignment, 4 unless the container says 8). Stops at the first record that does not fit or
/// when `budget` records have been read.
fn walk_notes(
    data: &[u8],
    align: u64,
    big: bool,
    budget: &mut usize,
    f: &mut impl FnMut(&[u8], u32, &[u8]),
) {
    let align = if align == 8 { 8 } else { 4 };
    let pad = |n: usize| n.checked_add(align - 1).map(|v| v & !(align - 1));
    let word = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let mut off = 0usize;
    while *budget > 0 {
        *budget -= 1;
        let (Some(namesz), Some(descsz), Some(ntype)) = (
            word(off),
            word(off.wrapping_add(4)),
            word(off.wrapping_add(8)),
        ) else {
            return;
        };
        let name_at = off + 12;
        let Some(name_end) = name_at.checked_add(namesz as usize) else {
            return;
        };
        let Some(desc_at) = pad(name_end) else { return };
        let Some(desc_end) = desc_at.checked_add(descsz as usize) else {
            return;
        };
        let (Some(name), Some(desc)) = (data.get(name_at..name_end), data.get(desc_at..desc_end))
        else {
            return;
        };
        f(name, ntype, desc);
        match pad(desc_end) {
            Some(next) if next > off => off = next,
            _ => return,
        }
    }
}

/// Go's build info blob is 16-byte aligned in memory, hence in the file too.
fn find_go_magic(bytes: &[u8]) -> Option<&[u8]> {
    (0..bytes.len())
        .step_by(16)
        .find(|&i| bytes[i..].starts_with(gobuildinfo::MAGIC))
        .map(|i| &bytes[i..])
}
