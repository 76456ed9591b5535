//! Pushes an OCI image layout with the library's registry client, until `staticpack push`
//! exists; benches/push.sh times it against skopeo.
//!
//! usage: push LAYOUT[:TAG] REFERENCE... [--json] [--verbose] [--no-cache]
//!             [--chunk-size BYTES] [--insecure-registry HOST[:PORT]]...

use staticpack::registry::{
    self, ClientOptions, NoProgress, Progress, PushOptions, Reference, TerminalProgress,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let (mut json, mut verbose, mut cache) = (false, false, true);
    let mut client = ClientOptions::default();
    let mut options = PushOptions::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => json = true,
            "--verbose" | "-v" => verbose = true,
            "--no-cache" => cache = false,
            "--chunk-size" => {
                options.chunk_size = args.next().ok_or("--chunk-size needs a value")?.parse()?;
            }
            "--insecure-registry" => client
                .insecure_registries
                .push(args.next().ok_or("--insecure-registry needs a value")?),
            "-h" | "--help" => {
                println!(
                    "usage: push LAYOUT[:TAG] REFERENCE... [--json] [--verbose] [--no-cache] \
                     [--chunk-size BYTES] [--insecure-registry HOST[:PORT]]..."
                );
                return Ok(());
            }
            _ => positional.push(arg),
        }
    }
    let [layout, refs @ ..] = positional.as_slice() else {
        return Err("usage: push LAYOUT[:TAG] REFERENCE...".into());
    };
    let (dir, tag) = split_layout(layout);
    let targets = refs
        .iter()
        .map(|r| Reference::parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    if cache {
        options.blob_cache = registry::default_blob_cache_path();
    }
    let terminal;
    let progress: &dyn Progress = if std::io::stderr().is_terminal() || verbose {
        terminal = TerminalProgress::new(verbose);
        &terminal
    } else {
        &NoProgress
    };
    let report = registry::push(&dir, tag.as_deref(), &targets, &client, &options, progress)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.references {
            println!("{} {}", r.reference, report.digest);
        }
    }
    Ok(())
}

/// `out/app:v1` → (`out/app`, `v1`), unless the whole argument is an existing folder.
fn split_layout(arg: &str) -> (PathBuf, Option<String>) {
    if Path::new(arg).is_dir() {
        return (PathBuf::from(arg), None);
    }
    match arg.rsplit_once(':') {
        Some((dir, tag)) if !tag.contains('/') => (PathBuf::from(dir), Some(tag.to_owned())),
        _ => (PathBuf::from(arg), None),
    }
}
