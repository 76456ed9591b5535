//! Facts + requirement → findings in plain words, each with the fix for its toolchain.

use super::classify::os_display;
use super::{
    ElfFacts, Finding, Libc, Linkage, LoadHazard, LoadKind, Relro, Requirement, Severity, StackExec,
};

/// The toolchain the fix is written for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Toolchain {
    Go,
    Rust,
    C,
}

fn toolchain(f: &ElfFacts) -> Toolchain {
    if f.is_go {
        Toolchain::Go
    } else if f.is_rust {
        Toolchain::Rust
    } else {
        Toolchain::C
    }
}

/// Findings for `facts` under `require`.
///
/// Every problem for running in an empty root is reported whatever the requirement: a program
/// for another system (`foreign-os`) or a dynamic one (`dynamic`, including Go's fake static
/// build) is an error when `require` is `Static` or `StaticPie`, and a warning under `Any`, so
/// the diagnosis is the same and only the verdict follows the requirement.
///
/// Choices: a static-pie satisfies `Requirement::Static` (it needs nothing at run time either,
/// and also gets ASLR); a static ET_EXEC falls short only of `StaticPie`; the linkage of a
/// shared library or object file says nothing about running it, so only "not an executable" is
/// reported for those, and only under a requirement (being a library is not a defect).
pub fn diagnose(facts: &ElfFacts, require: Requirement) -> Vec<Finding> {
    let mut out = Vec::new();
    if !facts.is_executable() {
        if require != Requirement::Any {
            out.push(not_executable(facts));
        }
        return out;
    }
    let severity = if require == Requirement::Any {
        Severity::Warning
    } else {
        Severity::Error
    };
    if facts.os != "linux" {
        out.push(Finding {
            severity,
            ..foreign_os(facts)
        });
        return out;
    }
    match (require, facts.linkage) {
        (_, Linkage::Dynamic) => out.push(Finding {
            severity,
            ..dynamic(facts, require)
        }),
        (Requirement::StaticPie, Linkage::Static) => out.push(not_pie(facts)),
        _ => {}
    }
    if facts.libc == Libc::Glibc
        && facts.linkage != Linkage::Dynamic
        && !facts.nss_functions().is_empty()
    {
        out.push(nss(facts));
    }
    if facts.libc == Libc::Glibc {
        out.extend(facts.load_hazards.iter().map(|h| load_hazard(facts, h)));
    }
    out.extend(hardening(facts));
    out
}

/// Hardening gaps that are defects whatever the requirement, as warnings: they do not stop a
/// binary from running in scratch, so they never fail a build on their own. Only gaps with a
/// clear fix are reported; missing stack protector or FORTIFY are facts, not findings (code
/// without arrays or fortifiable calls legitimately has neither).
fn hardening(f: &ElfFacts) -> Vec<Finding> {
    let mut out = Vec::new();
    let tc = toolchain(f);
    let h = &f.hardening;
    if h.stack == StackExec::Executable {
        let fix = match tc {
            Toolchain::Go => "the Go linker never asks for one: it comes from C or assembly linked \
                              through cgo; link with `-ldflags '-extldflags \"-Wl,-z,noexecstack\"'` \
                              and fix the object that lacks a `.note.GNU-stack` section"
                .to_string(),
            Toolchain::Rust => "`RUSTFLAGS='-C link-arg=-Wl,-z,noexecstack'`, and fix the C or \
                                assembly object (from a build script) that lacks a \
                                `.note.GNU-stack` section"
                .to_string(),
            Toolchain::C => "link with `-Wl,-z,noexecstack`; the cause is usually an assembly file \
                             without `.section .note.GNU-stack,\"\",@progbits` (or a nested \
                             function taking a trampoline): fix that object"
                .to_string(),
        };
        out.push(Finding {
            code: "exec-stack",
            severity: Severity::Warning,
            what: "the stack is executable (PT_GNU_STACK has the X flag)".into(),
            why: "code injected into a stack buffer can run directly: the non-executable stack is \
                  the mitigation that turns most stack overflows from code execution into a crash"
                .into(),
            fix,
        });
    }
    if h.textrel {
        let fix = match tc {
            Toolchain::Go => "an object linked through cgo was not compiled as position \
                              independent: build the C code with `-fPIC`"
                .to_string(),
            Toolchain::Rust => "a C or assembly object from a build script is not position \
                                independent: compile it with `-fPIC`"
                .to_string(),
            Toolchain::C => "compile every object with `-fPIE` (programs) or `-fPIC` (libraries), \
                             and fix hand-written assembly with absolute addresses; `scanelf -qT` \
                             names the offending code"
                .to_string(),
        };
        out.push(Finding {
            code: "textrel",
            severity: Severity::Warning,
            what: "text relocations (DT_TEXTREL): code pages are patched at load time".into(),
            why: "the loader must make code writable to relocate it, which defeats W^X, keeps the \
                  pages from being shared, and is refused outright by hardened kernels (SELinux \
                  execmod, PaX)"
                .into(),
            fix,
        });
    }
    // Only where a loader or self-relocation writes a GOT: a fixed-address static binary has
    // nothing resolved at run time, and Go's internal linker uses no GOT for Go code.
    if h.relro == Relro::None && f.linkage != Linkage::Static && tc != Toolchain::Go {
        let fix = match tc {
            Toolchain::Rust => "rustc asks for full RELRO by default: remove `-C relro-level=off` \
                                or `-z norelro` from RUSTFLAGS / linker args"
                .to_string(),
            _ => "link with `-Wl,-z,relro,-z,now` (full RELRO)".to_string(),
        };
        out.push(Finding {
            code: "no-relro",
            severity: Severity::Warning,
            what: "no RELRO (no PT_GNU_RELRO segment)".into(),
            why:
                "the GOT and other relocated pointers stay writable for the program's whole life, \
                  so a memory-corruption bug can redirect calls by overwriting them"
                    .into(),
            fix,
        });
    }
    out
}

fn foreign_os(f: &ElfFacts) -> Finding {
    let os = os_display(&f.os);
    let fix = match toolchain(f) {
        Toolchain::Go => "build with `GOOS=linux` (and `CGO_ENABLED=0`)".to_string(),
        Toolchain::Rust => format!(
            "build for a Linux target: `--target {}`",
            rust_musl_target(&f.machine)
        ),
        Toolchain::C => "build with a Linux toolchain (musl-gcc, or a Linux cross-compiler for \
                         the target), not the one of the other system"
            .to_string(),
    };
    Finding {
        code: "foreign-os",
        severity: Severity::Error,
        what: format!("a {os} program, not a Linux one"),
        why: format!(
            "container images run on the Linux kernel; a {os} binary makes {os} system calls, \
             which Linux does not have or numbers differently, so it fails or misbehaves at once"
        ),
        fix,
    }
}

fn not_executable(f: &ElfFacts) -> Finding {
    let kind = if f.debug_only {
        "a separate debug-info file (objcopy --only-keep-debug): it holds no code".to_string()
    } else if f.is_shared_library {
        match &f.soname {
            Some(s) => format!("a shared library ({s})"),
            None => "a shared library".to_string(),
        }
    } else {
        match f.elf_type.as_str() {
            "rel" => "a relocatable object file (.o)".to_string(),
            "core" => "a core dump".to_string(),
            t => format!("an ELF file of type {t}"),
        }
    };
    Finding {
        code: "not-executable",
        severity: Severity::Error,
        what: format!("not an executable program: this is {kind}"),
        why: "a container's entrypoint must be a program the kernel can exec; a library or object \
              file only becomes part of a program when something links or loads it"
            .into(),
        fix: "point the recipe's output at the linked program (for a library: build the program \
              that uses it, linked statically)"
            .into(),
    }
}

fn rust_musl_target(machine: &str) -> String {
    let arch = match machine {
        "x86-64" => "x86_64-unknown-linux-musl",
        "aarch64" => "aarch64-unknown-linux-musl",
        "arm" => "armv7-unknown-linux-musleabihf",
        "riscv64" => "riscv64gc-unknown-linux-musl",
        "386" => "i686-unknown-linux-musl",
        "s390x" => "s390x-unknown-linux-musl",
        "ppc64le" => "powerpc64le-unknown-linux-musl",
        _ => "<arch>-unknown-linux-musl",
    };
    arch.to_string()
}

fn dynamic(f: &ElfFacts, require: Requirement) -> Finding {
    // "; wanted static": what the requirement asked for, when there is one.
    let want = match require {
        Requirement::StaticPie => "; wanted static-pie",
        Requirement::Static => "; wanted static",
        Requirement::Any => "",
    };
    let mut parts = Vec::new();
    if let Some(i) = &f.interpreter {
        parts.push(format!("interpreter {i}"));
    }
    if !f.needed.is_empty() {
        parts.push(format!("needs {}", f.needed.join(", ")));
    }
    let details = parts.join(", ");
    let mut why = match &f.interpreter {
        Some(i) => {
            let mut w = format!(
                "the kernel looks for the interpreter {i} when it starts the program; a scratch \
                 image has none, so the container fails with `exec /app: no such file or \
                 directory` (the missing file is the interpreter, not the program)"
            );
            if !f.needed.is_empty() {
                w.push_str(&format!(
                    "; after it, the loader would need {} too",
                    f.needed.join(", ")
                ));
            }
            w
        }
        None => format!(
            "it names shared libraries ({}) but no interpreter, so nothing loads them: the \
             kernel jumps straight into code whose library calls are unresolved, and it crashes",
            f.needed.join(", ")
        ),
    };
    let go = f.go.as_ref();
    // -trimpath keeps -ldflags out of the build info, so the internal link itself is the tell.
    let fake_static = go.is_some_and(|g| {
        (g.extldflags_static() && !g.external_linkmode())
            || (f.go_internal_link
                && !f.needed.is_empty()
                && g.setting("-trimpath") == Some("true")
                && g.setting("-ldflags").is_none())
    });
    let debian_musl_pie = toolchain(f) == Toolchain::C
        && f.elf_type == "dyn"
        && f.interpreter
            .as_deref()
            .is_some_and(|i| i.contains("ld-musl"));
    let static_flag = if require == Requirement::StaticPie {
        "-static-pie"
    } else {
        "-static"
    };
    let (what, fix) = match toolchain(f) {
        Toolchain::Go => {
            let pure = "`CGO_ENABLED=0 go build` (add `-tags netgo,osusergo` so net and os/user \
                        use their pure-Go code)";
            let buildmode = if require == Requirement::StaticPie {
                "-buildmode=pie "
            } else {
                ""
            };
            let external = format!(
                "`go build {buildmode}-ldflags '-linkmode external -extldflags \"{static_flag}\"'` \
                 with CC=musl-gcc (a static glibc would still load NSS modules at run time)"
            );
            if fake_static {
                why.push_str(
                    ". This is the fake static build of Go folklore: Go's internal linker did the \
                     link (it does whenever only the standard library uses cgo), and it ignores \
                     -extldflags, so -extldflags \"-static\" had no effect (they reach only an \
                     external linker such as gcc)",
                );
                (
                    format!(
                        "fake static: linked by Go's internal linker, which ignores -extldflags (any -extldflags \"-static\" had no effect); dynamically linked ({details})"
                    ),
                    format!("{pure}; or, to keep cgo, add `-linkmode external`: {external}"),
                )
            } else if f.needed.is_empty() && f.libc == Libc::None {
                // Internal linker + -buildmode=pie: no libc, but PT_INTERP for relocation.
                why.push_str(
                    ". Go's internal linker builds -buildmode=pie as a dynamic PIE: the program \
                     uses no libc, yet the kernel must start the system loader to relocate it",
                );
                let fix = if require == Requirement::StaticPie {
                    format!(
                        "link it externally: {external_pie} (external linking needs \
                         CGO_ENABLED=1 and a C toolchain, e.g. CC=musl-gcc)",
                        external_pie = "`go build -buildmode=pie -ldflags '-linkmode external \
                                        -extldflags \"-static-pie\"'`"
                    )
                } else {
                    "drop `-buildmode=pie`: `CGO_ENABLED=0 go build` gives a static binary".into()
                };
                (
                    format!("Go PIE that needs the system loader ({details}){want}"),
                    fix,
                )
            } else {
                (
                    format!("dynamically linked Go program, uses cgo ({details}){want}"),
                    format!("{pure}; or, to keep cgo, {external}"),
                )
            }
        }
        // Rust's musl target links statically unless told not to (`-crt-static`, or a target
        // spec or distribution patch that flips the default): then it needs ld-musl at run time.
        Toolchain::Rust
            if f.interpreter
                .as_deref()
                .is_some_and(|i| i.contains("ld-musl")) =>
        {
            (
                format!(
                    "Rust program for musl linked dynamically ({details}){want}: it needs the musl loader at run time"
                ),
                format!(
                    "remove `-C target-feature=-crt-static` (look in RUSTFLAGS and .cargo/config.toml) and build                      with `-C target-feature=+crt-static --target {}` (lang = \"rust\" in a recipe does this)",
                    rust_musl_target(&f.machine)
                ),
            )
        }
        Toolchain::Rust => (
            format!("dynamically linked Rust program ({details}){want}"),
            format!(
                "`RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --target {}` \
                 (the musl target links musl statically and produces a static-pie)",
                rust_musl_target(&f.machine)
            ),
        ),
        Toolchain::C if debian_musl_pie => {
            why.push_str(
                ". This is what Debian's musl-gcc makes of `-static-pie` (and of a build without \
                 `-static`): its specs file links the dynamic start file and passes \
                 `-dynamic-linker` to ld-musl, so -static-pie is silently dropped and a dynamic \
                 PIE comes out",
            );
            let fix = if require == Requirement::StaticPie {
                "let staticpack link it (`link = \"static-pie\"` in the recipe): its own musl specs \
                 link rcrt1.o with `-static -pie --no-dynamic-linker`; or `musl-gcc -static` for \
                 a static binary that is not PIE"
            } else {
                "`musl-gcc -static`; or, for a static-pie, `link = \"static-pie\"` in the recipe, \
                 which uses staticpack's own musl specs (rcrt1.o, `-static -pie \
                 --no-dynamic-linker`)"
            };
            (
                format!("dynamic PIE against musl ({details}){want}"),
                fix.to_string(),
            )
        }
        Toolchain::C => {
            let fix = if f.libc == Libc::Musl {
                format!(
                    "link with `musl-gcc {static_flag}` (for static-pie use `link = \
                     \"static-pie\"`: staticpack's musl specs make it work)"
                )
            } else {
                let pie = if require == Requirement::StaticPie {
                    "`link = \"static-pie\"` (staticpack's musl specs: rcrt1.o, \
                     `-static -pie --no-dynamic-linker`)"
                } else {
                    "`musl-gcc -static` (or `link = \"static-pie\"` with staticpack's musl specs)"
                };
                format!(
                    "link against musl: `libc = \"musl\"` in the recipe, i.e. {pie}; `gcc \
                     {static_flag}` links glibc statically, but then NSS and iconv still need \
                     glibc's modules at run time"
                )
            };
            (format!("dynamically linked ({details}){want}"), fix)
        }
    };
    Finding {
        code: "dynamic",
        severity: Severity::Error,
        what,
        why,
        fix,
    }
}

fn not_pie(f: &ElfFacts) -> Finding {
    let fix = match toolchain(f) {
        Toolchain::Go => "`go build -buildmode=pie -ldflags '-linkmode external -extldflags \
                          \"-static-pie\"'` (needs cgo and a C toolchain, e.g. CC=musl-gcc with \
                          staticpack's specs)"
            .to_string(),
        Toolchain::Rust => format!(
            "build for {} with `-C target-feature=+crt-static`, which gives a static-pie by \
             default; drop `-C relocation-model=static` or `-no-pie` if present",
            rust_musl_target(&f.machine)
        ),
        Toolchain::C => "`link = \"static-pie\"` in the recipe (staticpack links rcrt1.o with \
                         `-static-pie`), or by hand `-fPIE -static-pie`; plain `-static` gives a \
                         fixed-address ET_EXEC"
            .to_string(),
    };
    Finding {
        code: "not-pie",
        severity: Severity::Error,
        what: "static but not position independent (ET_EXEC); wanted static-pie".into(),
        why: "the kernel maps an ET_EXEC at the fixed address it was linked for, so address space \
              layout randomization cannot move its code and data; a static-pie is loaded at a \
              random address and relocates itself"
            .into(),
        fix,
    }
}

fn nss(f: &ElfFacts) -> Finding {
    let list = f.nss_functions().join(", ");
    let fix = match toolchain(f) {
        Toolchain::Go => "link the cgo code against musl instead (`libc = \"musl\"`: CC=musl-gcc with \
                          `-linkmode external -extldflags \"-static\"`), which reads /etc/passwd, \
                          /etc/hosts and DNS itself; or, when only the standard library needs them, \
                          build with `-tags netgo,osusergo` (pure-Go resolver and user lookup) or \
                          `CGO_ENABLED=0`"
            .to_string(),
        Toolchain::Rust => format!(
            "build for the musl target ({}): musl reads /etc/passwd, /etc/group and DNS itself",
            rust_musl_target(&f.machine)
        ),
        Toolchain::C => "link against musl (`libc = \"musl\"`, musl-gcc -static): musl reads \
                         /etc/passwd, /etc/group, /etc/hosts and DNS itself, without loading \
                         modules"
            .to_string(),
    };
    Finding {
        code: "nss-hazard",
        severity: Severity::Warning,
        what: format!("static glibc binary uses {list}"),
        why: "glibc answers user, group, host and service lookups through NSS: it loads \
              libnss_*.so (per /etc/nsswitch.conf) with dlopen at run time. A scratch image has none, so lookups fail or come back empty \
              (unknown user, host not found); where they exist, they must come from the exact \
              glibc version the binary was linked with"
            .into(),
        fix,
    }
}

/// The codes of the findings [`load_hazard`] gives, one per [`LoadKind`].
pub const GCONV_HAZARD: &str = "gconv-hazard";
pub const LIBGCC_S_HAZARD: &str = "libgcc-s-hazard";
pub const IDN_HAZARD: &str = "idn-hazard";
pub const DLOPEN_HAZARD: &str = "dlopen-hazard";

/// A shared object glibc (or the program) loads at run time that no image built from PT_INTERP
/// and DT_NEEDED holds: a warning, since the program starts and only the calls that need it
/// fail (or, for libgcc_s, abort).
fn load_hazard(f: &ElfFacts, h: &LoadHazard) -> Finding {
    let tc = toolchain(f);
    let seen = h.evidence.join(", ");
    let musl = match tc {
        Toolchain::Go => "link the cgo code against musl (`libc = \"musl\"`: CC=musl-gcc with \
                          `-linkmode external -extldflags \"-static\"`)"
            .to_string(),
        Toolchain::Rust => format!(
            "build for the musl target ({})",
            rust_musl_target(&f.machine)
        ),
        Toolchain::C => "link against musl (`libc = \"musl\"`, musl-gcc -static)".to_string(),
    };
    let dynamic = f.linkage == Linkage::Dynamic;
    let (code, what, why, fix) = match h.kind {
        LoadKind::Gconv => (
            GCONV_HAZARD,
            format!(
                "glibc iconv: the program converts character sets ({seen}), and glibc loads gconv modules to do it"
            ),
            "iconv_open looks its converters up in gconv-modules and loads them with dlopen \
             from the gconv folder of the glibc that linked the program (GCONV_PATH, else e.g. \
             /usr/lib/x86_64-linux-gnu/gconv); they are in no DT_NEEDED list. Without them only \
             glibc's built-in conversions work (UTF-8, UCS-2, UCS-4, WCHAR_T, ASCII): any other \
             (UTF-16, UTF-32, ISO-8859-1, EBCDIC, Shift_JIS, …) fails with EINVAL, so in a scratch image \
             iconv_open returns (iconv_t)-1; where modules exist, they must be that exact glibc \
             version's"
                .to_string(),
            format!(
                "{musl}: musl's iconv has its converters built in and loads nothing; or convert \
                 with a library linked into the program (GNU libiconv built statically{})",
                if tc == Toolchain::Rust {
                    ", or the encoding_rs crate"
                } else {
                    ""
                }
            ),
        ),
        LoadKind::LibgccS => (
            LIBGCC_S_HAZARD,
            format!(
                "imports {seen} from the shared glibc, which loads libgcc_s.so.1 (not in DT_NEEDED) to unwind the thread"
            ),
            "glibc unwinds a cancelled or exiting thread with libgcc_s's unwinder, which it \
             loads with dlopen on first use: an image holding only the DT_NEEDED closure (the \
             loader, libc.so.6, …) lacks it, and the program aborts with `libgcc_s.so.1 must be \
             installed for pthread_cancel to work`. A static glibc binary links libgcc_eh's \
             unwinder in and loads nothing"
                .to_string(),
            "link statically (`libc = \"musl\"`, or `gcc -static`, which links the unwinder \
             in); or, to keep it dynamic, put the libgcc_s.so.1 of the same distribution in the \
             image next to libc.so.6"
                .to_string(),
        ),
        LoadKind::Idn2 => (
            IDN_HAZARD,
            format!(
                "glibc's IDN code is linked in ({seen}): getaddrinfo with AI_IDN, or getnameinfo with NI_IDN, loads libidn2.so.0"
            ),
            "glibc converts internationalized host names with libidn2, which it loads with \
             dlopen when a call passes AI_IDN or NI_IDN; the binary does not tell whether this \
             one does (the code comes with getaddrinfo either way). Without libidn2.so.0 — a \
             scratch image has none — such a lookup of a non-ASCII name fails with \
             EAI_IDN_ENCODE; ASCII names are unaffected"
                .to_string(),
            format!(
                "pass names already in their ASCII (punycode) form and no AI_IDN / NI_IDN, \
                 converting them with a library linked into the program (libidn2 built \
                 statically); or {musl}, which loads nothing at run time"
            ),
        ),
        LoadKind::Dlopen => (
            DLOPEN_HAZARD,
            format!("the program loads libraries by name at run time ({seen})"),
            if dynamic {
                "what it opens with dlopen is in no DT_NEEDED list, so an image made of the \
                 program and its DT_NEEDED closure lacks it: dlopen returns NULL and the \
                 program's error path decides what happens (a plugin or an optional feature \
                 missing, or a failure)"
                    .to_string()
            } else {
                "in a static glibc binary dlopen needs the same glibc version's loader and \
                 libc.so.6 as well as the library and all it needs, none of which a scratch \
                 image has: dlopen returns NULL"
                    .to_string()
            },
            "link what it loads into the program; or ship those libraries (and what they \
             need) in the image: `ltrace -e dlopen` or `LD_DEBUG=files` on the build machine \
             names them"
                .to_string(),
        ),
    };
    Finding {
        code,
        severity: Severity::Warning,
        what,
        why,
        fix,
    }
}

/// One-line verdict, e.g. "static-pie (musl, x86-64)",
/// "dynamic (glibc, interpreter /lib64/ld-linux-x86-64.so.2, needs libc.so.6, x86-64)",
/// "static (no libc, Go go1.19.8, x86-64)".
pub fn summary(facts: &ElfFacts) -> String {
    let kind = if facts.debug_only {
        "debug-info file"
    } else if facts.is_shared_library {
        "shared library"
    } else {
        match (facts.elf_type.as_str(), facts.linkage) {
            ("rel", _) => "relocatable object",
            ("core", _) => "core dump",
            (_, Linkage::Dynamic) => "dynamic",
            (_, Linkage::Static) => "static",
            (_, Linkage::StaticPie) => "static-pie",
        }
    };
    let mut parts = Vec::new();
    if facts.os != "linux" {
        parts.push(os_display(&facts.os));
    }
    parts.push(
        match facts.libc {
            Libc::Musl => "musl",
            Libc::Glibc => "glibc",
            Libc::None => "no libc",
            Libc::Unknown => "libc unknown",
        }
        .to_string(),
    );
    if facts.is_go {
        parts.push(match &facts.go {
            Some(g) => format!("Go {}", g.go_version.trim_start_matches("go")),
            None => "Go".to_string(),
        });
    } else if facts.is_rust {
        parts.push("Rust".to_string());
    }
    if let Some(i) = &facts.interpreter {
        parts.push(format!("interpreter {i}"));
    }
    if !facts.needed.is_empty() {
        parts.push(format!("needs {}", facts.needed.join(" ")));
    }
    if let Some(s) = &facts.soname {
        parts.push(format!("soname {s}"));
    }
    parts.push(facts.machine.clone());
    format!("{kind} ({})", parts.join(", "))
}
