//! Text for people: verify's report (verdict, facts, then each problem with why and fix) and
//! its closing line. The library hands over typed values (facts, findings, tallies); every word
//! of their presentation is chosen here.

use staticpack::verify::{
    self, ElfFacts, FileReport, Finding, Libc, Linkage, LoadKind, Presence, Relro, Severity,
    StackExec, Tally, WalkStats, summary,
};

/// The text report: the verdict line, the facts behind it, then each finding with why and
/// the fix. Ends with a newline.
pub fn report_text(r: &FileReport) -> String {
    let path = r.path.display();
    match &r.result {
        Err(e) => format!("{path}: error: {}\n", e.message),
        Ok((f, findings)) => {
            let mut out = format!("{path}: {}\n", summary(f));
            for (label, value) in fact_lines(f) {
                out.push_str(&format!("  {label:<10} {value}\n"));
            }
            for x in findings {
                out.push_str(&finding_block(x, "  "));
            }
            out
        }
    }
}

/// One finding as a block: "error: what", then why and fix, each line starting with `indent`.
pub fn finding_block(x: &Finding, indent: &str) -> String {
    let label = match x.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    format!(
        "{indent}{label}: {}\n{indent}  why: {}\n{indent}  fix: {}\n",
        x.what, x.why, x.fix
    )
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
    let type_words = match (f.kind(), f.elf_type.as_str()) {
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
                format!(", for {}", verify::os_display(&f.os))
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
    if f.libc == Libc::Glibc && !f.nss_functions().is_empty() {
        lines.push((
            "nss:",
            format!(
                "calls {} (glibc serves these by loading libnss_*.so at run time)",
                f.nss_functions().join(", ")
            ),
        ));
    }
    if f.libc == Libc::Glibc && !f.load_hazards.is_empty() {
        let loads: Vec<String> = f
            .load_hazards
            .iter()
            .map(|h| {
                let what = match h.kind {
                    LoadKind::Gconv => "gconv modules",
                    LoadKind::LibgccS => "libgcc_s.so.1",
                    LoadKind::Idn2 => "libidn2.so.0",
                    LoadKind::Dlopen => "libraries of its choice",
                };
                format!("{what} (from {})", h.evidence.join(", "))
            })
            .collect();
        lines.push((
            "loads:",
            format!("at run time, outside DT_NEEDED: {}", loads.join("; ")),
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
        let info = f.rust.clone().unwrap_or_default();
        let mut parts = vec![match &info.rustc {
            Some(v) => format!("rustc {v}"),
            None => "Rust code present (no rustc version in .comment)".to_string(),
        }];
        match &info.crates {
            Some(c) => {
                let names: Vec<String> = c
                    .iter()
                    .filter(|c| c.kind.is_none())
                    .map(|c| format!("{} {}", c.name, c.version))
                    .collect();
                parts.push(format!(
                    "{} crates (cargo auditable): {}",
                    names.len(),
                    names.join(", ")
                ));
            }
            None => parts.push("no cargo auditable crate list".to_string()),
        }
        lines.push(("rust:", parts.join(", ")));
    }
    if !f.compilers.is_empty() {
        lines.push(("built by:", f.compilers.join("; ")));
    }
    lines
}

/// `verify IMAGE --attestations`: one block per attached document, then the verdict.
pub fn attestations_text(r: &staticpack::supply::AttestationReport, keyed: bool) -> String {
    use staticpack::supply::check::Signature;
    let mut s = format!(
        "attestations of {} ({} attached)\n",
        r.subject,
        r.documents.len()
    );
    for d in &r.documents {
        let what = d.predicate_type.as_deref().unwrap_or(&d.artifact_type);
        let signature = match &d.signature {
            Signature::NotSigned => String::new(),
            Signature::Unsigned => ", UNSIGNED".to_owned(),
            Signature::NotChecked { keyid } => {
                format!(", signed (keyid {keyid}), not checked: no --key")
            }
            Signature::Verified { .. } => ", signature verified".to_owned(),
            Signature::Invalid { .. } => ", signature INVALID".to_owned(),
        };
        let verdict = if d.passes() { "ok  " } else { "FAIL" };
        s.push_str(&format!("  {verdict} {} ({what}{signature})\n", d.name));
        for c in &d.checked {
            s.push_str(&format!("         {c}\n"));
        }
        for p in &d.problems {
            s.push_str(&format!("    error: {}: {p}\n", d.name));
        }
    }
    for p in &r.problems {
        s.push_str(&format!("    error: {p}\n"));
    }
    let failed = r.documents.iter().filter(|d| !d.passes()).count();
    let unsigned = (r.documents.iter())
        .filter(|d| matches!(d.signature, Signature::Unsigned))
        .count();
    let mut verdict = if r.passes() {
        format!(
            "attested yes: {} document(s) consistent with the image",
            r.documents.len()
        )
    } else {
        format!(
            "attested NO: {failed} of {} document(s) failed{}",
            r.documents.len(),
            if r.problems.is_empty() {
                String::new()
            } else {
                format!(", {} problem(s) with the set", r.problems.len())
            }
        )
    };
    if !keyed {
        verdict.push_str("; signatures not checked (pass --key PUB)");
    }
    if unsigned > 0 {
        verdict.push_str(&format!("; {unsigned} statement(s) unsigned"));
    }
    s.push_str(&verdict);
    s.push('\n');
    s
}
