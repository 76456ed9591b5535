//! Wording for the build's events and failures: the library reports values, this decides the
//! lines a person reads.

use staticpack::pipeline::{Event, PipelineError, Proof, publish::Published};
use staticpack::run::{Outcome, Runtime};
use staticpack::verify::{Finding, Severity};

fn processes(n: u64) -> String {
    if n == 1 {
        "1 process".into()
    } else {
        format!("{n} processes")
    }
}

/// One or more lines for a build event, or nothing.
pub fn event_lines(event: &Event) -> Option<String> {
    Some(match event {
        Event::Cached { inputs_digest } => {
            format!("cached  inputs {inputs_digest} unchanged: nothing to do")
        }
        Event::Unjailed(reason) => format!(
            "warning: the build steps run without isolation (the host's files are readable, and writable where you can write): {reason}"
        ),
        Event::Swept(path) => format!(
            "cleanup removed {}, left by a build or run that was killed",
            path.display()
        ),
        Event::OutsideAllowed(path) => format!(
            "input   {} is outside the recipe's folder (allowed by allow_outside)",
            path.display()
        ),
        Event::CacheMiss { reason } => format!("cache   not used: {reason}"),
        Event::Building {
            name,
            lang,
            libc,
            link,
        } => format!("build   {name} ({lang:?}, libc {libc}, link {link})"),
        Event::Unpacking { archive } => format!(
            "source  {} ({})",
            match &archive.origin {
                staticpack::recipe::ArchiveOrigin::File(path) => path.display().to_string(),
                staticpack::recipe::ArchiveOrigin::Url(url) => url.clone(),
            },
            archive.sha256
        ),
        Event::Toolchain(line) => format!("        {line}"),
        Event::Verified { verdict } => format!("verify  {verdict}"),
        Event::VerifiedInstalled { path, verdict } => format!("verify  {path}: {verdict}"),
        Event::Dependency {
            name,
            inputs_digest,
            cached,
        } => format!(
            "dep     {name} {inputs_digest} ({})",
            if *cached { "cached" } else { "built" }
        ),
        Event::Command {
            index,
            total,
            command,
        } => format!("command [{index}/{total}] {command}"),
        Event::CacheRejected { entry, reason } => format!(
            "warning: the cache entry {} failed its check ({reason}): not used, rebuilt instead",
            entry.display()
        ),
        Event::LeftRunning {
            command: Some((index, total)),
            killed,
        } => format!(
            "command [{index}/{total}] left {} running: killed",
            processes(*killed)
        ),
        Event::LeftRunning {
            command: None,
            killed,
        } => format!("build   steps left {} running: killed", processes(*killed)),
        Event::JailLimits {
            timeout_seconds,
            max_processes,
            max_bytes,
            mechanism,
        } => format!(
            "jail    limits: {timeout_seconds} s, {max_processes} processes, {max_bytes} bytes in the build folder; held by {mechanism}"
        ),
        // On a terminal the spinner says it; a log without a terminal needs no second line.
        Event::CommandDone { .. } => return None,
        Event::Compiled { compiled, reused } => format!(
            "compile {} file{}: {compiled} compiled, {reused} reused from the cache",
            compiled + reused,
            if compiled + reused == 1 { "" } else { "s" }
        ),
        Event::Warning(w) => super::render::finding_block(w, "").trim_end().to_owned(),
        Event::Allowed(f) => format!("allowed by --allow-dynamic: {}", f.what),
        Event::NssAllowed { reason, hazards } => format!(
            "nss     allowed by the recipe (allow_nss_hazards): {}; reason: {reason}",
            hazards.join(", ")
        ),
        Event::Staged { digest, layers } => format!(
            "image   {digest} ({layers} layer{})",
            if *layers == 1 { "" } else { "s" }
        ),
        Event::NoTest => "run     skipped: the recipe has no [test] section".into(),
        Event::Platform {
            platform,
            index,
            total,
        } => format!("platform {platform} ({index} of {total})"),
        Event::Indexed { digest, platforms } => {
            let mut lines = vec![format!("index   {digest} ({} platforms)", platforms.len())];
            for p in platforms.iter() {
                let how = match &p.report.proof {
                    Some(proof) => match &proof.outcome.emulation {
                        Some(e) => format!("proven under emulation ({})", e.emulator),
                        None => format!("proven natively ({})", runtime_name(proof.runtime)),
                    },
                    None => "not proven (no run)".to_owned(),
                };
                lines.push(format!(
                    "        {} {} {how}",
                    p.platform, p.report.manifest_digest
                ));
            }
            lines.join("\n")
        }
        Event::Proven(proof) => proven(proof),
        Event::Published(p) => match p {
            Published::Layout(dir) => format!("publish layout {}", dir.display()),
            Published::Archive(file) => format!("publish archive {}", file.display()),
            Published::Pushed(report) => {
                let mut line = format!(
                    "push    {} blob(s) uploaded, {} already there, {} mounted",
                    report.uploaded(),
                    report.skipped(),
                    report.mounted()
                );
                for r in &report.referrers {
                    line.push_str(&format!(
                        "\npush    {} referrer(s) in {}, {}",
                        r.manifests.len(),
                        r.repository,
                        match &r.fallback_tag {
                            Some(tag) =>
                                format!("listed by the referrers tag {tag} (no referrers API)"),
                            None => "listed by the registry's referrers API".to_owned(),
                        }
                    ));
                }
                line
            }
        },
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

fn runtime_name(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Builtin => "builtin namespace sandbox",
        Runtime::Runc => "runc",
    }
}

fn proven(proof: &Proof) -> String {
    let runtime = runtime_name(proof.runtime);
    // A foreign platform's proof says so: it ran, but under an emulator, not natively.
    let name = match &proof.outcome.emulation {
        Some(e) => format!(
            "{runtime}, {} proven under emulation ({})",
            e.platform, e.emulator
        ),
        None => runtime.to_owned(),
    };
    if proof.libc_files.is_empty() {
        let files = proof.rootfs_files;
        format!(
            "run     ok ({name}): exit {}, stdout as expected; the root held {files} file{} and no libc or dynamic loader",
            proof.expect_exit,
            if files == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "run     ok ({name}): exit {}; note: the image carries {}",
            proof.expect_exit,
            proof.libc_files.join(", ")
        )
    }
}

/// The details a pipeline error carries beyond its one-line message: verify's problems with
/// their why and fix, the proof's exit status and output.
pub fn error_details(e: &PipelineError) -> Option<String> {
    match e {
        PipelineError::Refused { findings, .. }
        | PipelineError::RefusedInstalled { findings, .. } => Some(problems(findings)),
        PipelineError::ProofFailed { outcome, .. } => Some(outcome_lines(outcome)),
        PipelineError::Dependency { source, .. } | PipelineError::Platform { source, .. } => {
            error_details(source)
        }
        _ => None,
    }
}

fn problems(findings: &[Finding]) -> String {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| super::render::finding_block(f, "  "))
        .collect::<String>()
        .trim_end()
        .to_owned()
}

fn outcome_lines(o: &Outcome) -> String {
    // The exec error, if any, is already among the problems.
    let mut lines = Vec::new();
    match (o.exit_code, o.signal) {
        (Some(c), _) => lines.push(format!("  exit code: {c}")),
        (None, Some(sig)) => lines.push(format!(
            "  killed by signal {sig} ({})",
            staticpack::run::signal_meaning(sig)
        )),
        _ => {}
    }
    for (name, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        if !bytes.is_empty() {
            lines.push(format!(
                "  {name}: {}",
                String::from_utf8_lossy(bytes).trim_end()
            ));
        }
    }
    lines.join("\n")
}
