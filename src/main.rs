//! The thin CLI: parse, call the library, render reports; every error is printed once, here,
//! with its chain of causes.

mod cli;

use anyhow::{Context, Result, bail};
use clap::Parser;
use cli::{Cli, Command, FormatArg, RequireArg, RuntimeArg};
use staticpack::pipeline::{self, BuildOptions};
use staticpack::{image, recipe, registry, run, verify};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(1)
        }
    }
}

fn runtime(r: RuntimeArg) -> run::Runtime {
    match r {
        RuntimeArg::Builtin => run::Runtime::Builtin,
        RuntimeArg::Runc => run::Runtime::Runc,
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Build {
            recipe,
            out,
            no_run,
            runtime: rt,
            allow_dynamic,
            allow_nss_hazards,
            no_cache,
            check_repro,
            format,
            push,
            registry: registry_args,
        } => {
            let r = recipe::load(&recipe)?;
            if check_repro && !matches!(format, FormatArg::Oci) {
                bail!(
                    "--check-repro compares OCI layouts: leave --format at oci (archives are made from the same layout)"
                );
            }
            let opts = BuildOptions {
                out,
                run: !no_run,
                runtime: runtime(rt),
                allow_dynamic,
                allow_nss_hazards,
                cache: !no_cache && !check_repro,
                epoch: pipeline::resolve_epoch(&r, pipeline::epoch_from_env())?,
                format: match format {
                    FormatArg::Oci => pipeline::OutputFormat::Oci,
                    FormatArg::OciArchive => pipeline::OutputFormat::OciArchive,
                    FormatArg::DockerArchive => pipeline::OutputFormat::DockerArchive,
                },
            };
            let result = pipeline::build_recipe(&r, &opts, &mut |line| eprintln!("{line}"))
                .with_context(|| format!("building {}", r.path.display()))?;
            if check_repro {
                let mut flags = Vec::new();
                if allow_dynamic {
                    flags.push("--allow-dynamic".to_owned());
                }
                if allow_nss_hazards {
                    flags.push("--allow-nss-hazards".to_owned());
                }
                let second_dir =
                    tempfile::tempdir().context("creating a folder for the second build")?;
                let second_out = second_dir.path().join("layout");
                eprintln!(
                    "repro   building a second time (other folder, time, umask 077, TZ, LANG, noise)"
                );
                staticpack::repro::run_second_build(&staticpack::repro::SecondBuild {
                    exe: &std::env::current_exe().context("finding the staticpack executable")?,
                    recipe: &r.path,
                    out: &second_out,
                    epoch: opts.epoch,
                    flags,
                })?;
                let diffs =
                    staticpack::repro::compare_layouts(result.dir(), &second_out, &r.image.tag)?;
                if !diffs.is_empty() {
                    eprintln!("repro   NOT reproducible: {} difference(s)", diffs.len());
                    for d in &diffs {
                        eprintln!("  {d}");
                    }
                    bail!(
                        "{} is not reproducible: the two builds differ (see above)",
                        r.path.display()
                    );
                }
                eprintln!(
                    "repro   ok: both builds gave {} with every blob identical",
                    result.manifest_digest()
                );
            }
            println!(
                "{} {}:{} written to {}",
                result.manifest_digest(),
                r.name,
                r.image.tag,
                result.dir().display()
            );
            if !push.is_empty() {
                if !matches!(format, FormatArg::Oci) {
                    bail!("--push sends the OCI layout: leave --format at oci");
                }
                push_layout(result.dir(), Some(&r.image.tag), &push, &registry_args)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Push {
            image: reference,
            references,
            registry: registry_args,
        } => {
            let (dir, tag) = image::layout::parse_layout_ref(&reference);
            push_layout(&dir, tag.as_deref(), &references, &registry_args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Login {
            registry: host,
            username,
            password_stdin: _,
            insecure_registry,
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                bail!(
                    "no password on standard input: pipe it in, e.g. `echo \"$TOKEN\" | staticpack login {host} -u {username} --password-stdin`"
                );
            }
            let config_file = registry::docker_config_file_from(|k| std::env::var_os(k))
                .context("no place for the docker config file: set HOME or DOCKER_CONFIG")?;
            let options = registry::ClientOptions {
                insecure_registries: insecure_registry,
                ..Default::default()
            };
            let stored = registry::login(
                &host,
                &username,
                &registry::Secret::new(password),
                &options,
                &config_file,
            )?;
            let place = match stored {
                registry::StoredIn::File(p) => p.display().to_string(),
                registry::StoredIn::Helper(h) => {
                    format!("the credential helper docker-credential-{h}")
                }
            };
            eprintln!("login succeeded for {username} at {host}; credentials stored in {place}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            binaries,
            require,
            json,
        } => verify_cmd(&binaries, require, json),
        Command::Run {
            image: reference,
            runtime: rt,
            timeout,
            args,
        } => {
            let (dir, tag) = image::layout::parse_layout_ref(&reference);
            let loaded = image::Layout::open(&dir)?.load(tag.as_deref())?;
            let args = (!args.is_empty()).then_some(args);
            let o = run::run_image(
                &loaded,
                args.as_deref(),
                runtime(rt),
                Duration::from_secs(timeout),
            )?;
            use std::io::Write;
            std::io::stdout().write_all(&o.stdout)?;
            std::io::stderr().write_all(&o.stderr)?;
            if let Some(e) = &o.exec_error {
                bail!("{e}");
            }
            match (o.exit_code, o.signal) {
                (Some(c), _) => Ok(ExitCode::from(u8::try_from(c).unwrap_or(1))),
                (None, Some(s)) => bail!("the entrypoint was killed by signal {s}"),
                (None, None) => bail!("the entrypoint ended without a status"),
            }
        }
        Command::Inspect { image: reference } => {
            let (dir, tag) = image::layout::parse_layout_ref(&reference);
            let loaded = image::Layout::open(&dir)?.load(tag.as_deref())?;
            print!("{}", image::layout::describe(&loaded)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Pushes the image of a layout to every reference; prints one line per pushed reference, or
/// the report as JSON.
fn push_layout(
    dir: &std::path::Path,
    tag: Option<&str>,
    references: &[String],
    args: &cli::RegistryArgs,
) -> Result<()> {
    use std::io::IsTerminal;
    let targets = references
        .iter()
        .map(|r| {
            registry::Reference::parse(r).with_context(|| format!("reading the reference {r:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let client = registry::ClientOptions {
        insecure_registries: args.insecure_registry.clone(),
        ..Default::default()
    };
    let options = registry::PushOptions {
        blob_cache: registry::default_blob_cache_path(),
        ..Default::default()
    };
    let terminal;
    let progress: &dyn registry::Progress = if std::io::stderr().is_terminal() || args.verbose {
        terminal = registry::TerminalProgress::new(args.verbose);
        &terminal
    } else {
        &registry::NoProgress
    };
    let report = registry::push(dir, tag, &targets, &client, &options, progress)
        .with_context(|| format!("pushing {}", dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for r in &report.references {
            println!("{} {}", report.digest, r.reference);
        }
        eprintln!(
            "push    {} blob(s) uploaded, {} already there, {} mounted",
            report.uploaded(),
            report.skipped(),
            report.mounted()
        );
    }
    Ok(())
}

fn verify_cmd(paths: &[std::path::PathBuf], require: RequireArg, json: bool) -> Result<ExitCode> {
    let requirement = match require {
        RequireArg::Static => verify::Requirement::Static,
        RequireArg::StaticPie => verify::Requirement::StaticPie,
        RequireArg::Any => verify::Requirement::Any,
    };
    let mut tally = verify::Tally::default();
    let stats = verify::verify_paths(paths, requirement, &mut |r| {
        tally.add(r.status());
        if json {
            println!("{}", r.to_json());
        } else if r.status() == verify::Status::Error {
            eprint!("{}", r.to_text());
        } else {
            print!("{}", r.to_text());
        }
    });
    if stats.reported > 1 || stats.directories > 0 {
        eprintln!("{}", verify::closing_line(&tally, &stats));
    }
    Ok(if tally.all_passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
