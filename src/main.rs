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
            if let Some(details) = e
                .chain()
                .find_map(|c| c.downcast_ref::<pipeline::PipelineError>())
                .and_then(cli::report::error_details)
            {
                eprintln!("{details}");
            }
            if e.chain().any(is_registry_timeout) {
                eprintln!(
                    "hint: a registry that is only slow can be given longer: --timeout SECONDS"
                );
            }
            ExitCode::from(1)
        }
    }
}

fn is_registry_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let timeout =
        |r: &registry::RegistryError| matches!(r, registry::RegistryError::Timeout { .. });
    e.downcast_ref::<registry::RegistryError>()
        .is_some_and(timeout)
        || e.downcast_ref::<Box<registry::RegistryError>>()
            .is_some_and(|r| timeout(r))
        // A pull for verify or run of a docker:// image: the registry's error, transparently.
        || matches!(
            e.downcast_ref::<image::source::SourceError>(),
            Some(image::source::SourceError::Pull(r)) if timeout(r)
        )
}

fn runtime(r: RuntimeArg) -> run::Runtime {
    match r {
        RuntimeArg::Builtin => run::Runtime::Builtin,
        RuntimeArg::Runc => run::Runtime::Runc,
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let cache = cli
        .cache_dir
        .map(staticpack::cache::CacheDir::at)
        .or_else(staticpack::cache::CacheDir::from_env);
    match cli.command {
        Command::Build(args) => build_cmd(args, cache),
        Command::Push {
            image: reference,
            references,
            registry: registry_args,
        } => {
            let (dir, tag) = image::parse_layout_ref(&reference);
            push_layout(
                &dir,
                tag.as_deref(),
                &references,
                &registry_args,
                cache.as_ref(),
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Login {
            registry: host,
            username,
            password_stdin: _,
            insecure_registry,
            timeout,
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
                request_timeout: Duration::from_secs(timeout),
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
            format,
            allow_nss_hazards,
            platform,
            insecure_registry,
            timeout,
            max_unpack_bytes,
            max_unpack_entries,
            attestations,
            key,
        } => verify_cmd(
            &binaries,
            &VerifyOptions {
                attestations: match (attestations, key) {
                    (false, _) => None,
                    (true, None) => Some(None),
                    (true, Some(path)) => Some(Some(staticpack::supply::PublicKey::load(&path)?)),
                },
                require,
                json: json || format == Some(cli::VerifyFormatArg::Json),
                sarif: format == Some(cli::VerifyFormatArg::Sarif),
                allow_nss_hazards,
                platform: platform.as_ref(),
                pull: pull_options(insecure_registry, timeout),
                limits: run::UnpackLimits {
                    max_bytes: max_unpack_bytes,
                    max_entries: max_unpack_entries,
                },
            },
        ),
        Command::Run {
            image: reference,
            runtime: rt,
            platform,
            timeout,
            max_unpack_bytes,
            max_unpack_entries,
            insecure_registry,
            read_only,
            args,
        } => {
            // oci:/oci-archive: references as verify takes them, else LAYOUT[:TAG] as always.
            let opened = match image::source::ImageSource::parse(&reference)? {
                Some(source) => source
                    .open_with(
                        &reference,
                        platform.as_ref(),
                        &pull_options(insecure_registry, timeout.unwrap_or(cli::NETWORK_TIMEOUT)),
                    )
                    .with_context(|| format!("opening the image {reference}"))?,
                None => {
                    let (dir, tag) = image::parse_layout_ref(&reference);
                    image::source::OpenedImage::from(
                        image::Layout::open(&dir)?
                            .load_platform(tag.as_deref(), platform.as_ref())?,
                    )
                }
            };
            let loaded = &opened.image;
            let args = (!args.is_empty()).then_some(args);
            let opts = run::RunOptions {
                runtime: runtime(rt),
                timeout: Duration::from_secs(timeout.unwrap_or(60)),
                limits: run::UnpackLimits {
                    max_bytes: max_unpack_bytes,
                    max_entries: max_unpack_entries,
                },
                read_only,
            };
            let o = run::run_image(loaded, args.as_deref(), &opts)?;
            use std::io::Write;
            std::io::stdout().write_all(&o.stdout)?;
            std::io::stderr().write_all(&o.stderr)?;
            if let Some(e) = &o.exec_error {
                bail!("{e}");
            }
            match (o.exit_code, o.signal) {
                (Some(c), _) => Ok(ExitCode::from(u8::try_from(c).unwrap_or(1))),
                (None, Some(s)) => bail!(
                    "the entrypoint was killed by signal {s} ({})",
                    run::signal_meaning(s)
                ),
                (None, None) => bail!("the entrypoint ended without a status"),
            }
        }
        Command::Inspect {
            image: reference,
            platform,
        } => {
            let (dir, tag) = image::parse_layout_ref(&reference);
            let layout = image::Layout::open(&dir)?;
            // An index without --platform: every platform's image, one after the other.
            let images = match platform.as_ref() {
                Some(_) => vec![layout.load_platform(tag.as_deref(), platform.as_ref())?],
                None => layout.load_all(tag.as_deref())?,
            };
            if images.len() > 1 {
                let index = layout.select(tag.as_deref())?;
                println!("index:     {} ({} platforms)", index.digest(), images.len());
            }
            for (n, loaded) in images.iter().enumerate() {
                if n > 0 {
                    println!();
                }
                // A summary of a tampered image would vouch for it: the layers are checked
                // first.
                loaded.verify_layers()?;
                print!("{}", image::describe(loaded)?);
                for r in staticpack::supply::referrers(&layout, &loaded.manifest_digest)? {
                    println!("referrer:  {}", r.describe());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Where a recipe's output goes when `--out` is not given.
fn default_out(name: &str, format: FormatArg) -> std::path::PathBuf {
    std::path::Path::new("out").join(match format {
        FormatArg::Oci => name.to_owned(),
        FormatArg::OciArchive => format!("{name}.oci.tar"),
        FormatArg::DockerArchive => format!("{name}.docker.tar"),
    })
}

fn build_cmd(a: cli::BuildArgs, cache: Option<staticpack::cache::CacheDir>) -> Result<ExitCode> {
    use staticpack::pipeline::publish::{Archive, LayoutDir, Publisher, RegistryPush};
    let mut r = recipe::load(&a.recipe)?;
    // --platform wins over the recipe's [image] platforms.
    if let Some(cli::PlatformList(platforms)) = &a.platform {
        r.build.set_platforms(platforms);
    }
    // Refused before the build, not after it: the archive can hold one platform's image.
    if matches!(a.format, FormatArg::DockerArchive) && r.build.platforms.len() > 1 {
        let names: Vec<String> = r.build.platforms.iter().map(ToString::to_string).collect();
        bail!(
            "--format docker-archive holds one platform's image, and this build makes {} ({}): `docker load` would give each the same name and keep the last; build one platform per docker-archive (--platform {}), or use --format oci-archive, which holds the index",
            names.len(),
            names.join(", "),
            names[0]
        );
    }
    if a.check_repro && !matches!(a.format, FormatArg::Oci) {
        bail!(
            "--check-repro compares OCI layouts: leave --format at oci (archives are made from the same layout)"
        );
    }
    let opts = BuildOptions {
        max_build_bytes: a.max_build_bytes,
        max_build_processes: a.max_build_processes,
        run: !a.no_run,
        runtime: runtime(a.runtime),
        allow_dynamic: a.allow_dynamic,
        allow_nss_hazards: a.allow_nss_hazards,
        cache: !a.no_cache && !a.check_repro,
        shared_cache: cache.clone().map(|c| {
            if a.no_cache {
                c.without_build_reuse()
            } else {
                c
            }
        }),
        epoch: pipeline::resolve_epoch(&r, pipeline::epoch_from_env()?)?,
        supply: staticpack::supply::SupplyOptions {
            sbom: match a.sbom {
                cli::SbomArg::None => staticpack::supply::SbomChoice::None,
                cli::SbomArg::Spdx => staticpack::supply::SbomChoice::Spdx,
                cli::SbomArg::Cyclonedx => staticpack::supply::SbomChoice::CycloneDx,
                cli::SbomArg::Both => staticpack::supply::SbomChoice::Both,
            },
            sign_key: match &a.sign_key {
                Some(path) => {
                    let key: std::sync::Arc<dyn staticpack::supply::Signer> =
                        std::sync::Arc::new(staticpack::supply::SigningKey::load(path)?);
                    Some(key)
                }
                None => None,
            },
        },
    };
    let out = a.out.unwrap_or_else(|| default_out(&r.name, a.format));
    let layout_dir;
    let archive;
    let first: &dyn Publisher = match a.format {
        FormatArg::Oci => {
            layout_dir = LayoutDir { out: out.clone() };
            &layout_dir
        }
        FormatArg::OciArchive | FormatArg::DockerArchive => {
            archive = Archive {
                out: out.clone(),
                format: if matches!(a.format, FormatArg::OciArchive) {
                    image::ArchiveFormat::Oci
                } else {
                    image::ArchiveFormat::Docker
                },
            };
            &archive
        }
    };
    let mut publishers = vec![first];
    let terminal = (!a.push.is_empty()).then(|| push_progress(&a.registry));
    let push_to = match &terminal {
        Some(terminal) => Some(RegistryPush {
            targets: parse_references(&a.push)?,
            client: client_options(&a.registry),
            options: push_options(cache.as_ref(), &a.registry),
            progress: terminal.as_ref(),
        }),
        None => None,
    };
    // With --check-repro the push waits for the comparison: an image that is not reproducible
    // must never reach the registry. Otherwise it publishes with the build.
    if let (Some(push_to), false) = (&push_to, a.check_repro) {
        publishers.push(push_to);
    }
    let mut pushed = None;
    let mut spinner = std::io::IsTerminal::is_terminal(&std::io::stderr())
        .then(cli::progress::CommandSpinner::default);
    let result = pipeline::build_and_publish(&r, &opts, &publishers, &mut |event| {
        if spinner.as_mut().is_some_and(|s| s.handle(&event)) {
            return;
        }
        if let pipeline::Event::Published(staticpack::pipeline::publish::Published::Pushed(
            report,
        )) = &event
        {
            pushed = Some(report.clone());
            if a.registry.json {
                return;
            }
        }
        if matches!(event, pipeline::Event::JailLimits { .. }) && !a.registry.verbose {
            return;
        }
        if let Some(lines) = cli::report::event_lines(&event) {
            eprintln!("{lines}");
        }
    });
    if let Some(s) = spinner.as_mut() {
        s.clear();
    }
    let result = result.with_context(|| format!("building {}", r.path.display()))?;
    let digest = result.manifest_digest().to_string();
    if a.check_repro {
        let mut flags = Vec::new();
        if a.allow_dynamic {
            flags.push("--allow-dynamic".to_owned());
        }
        if a.allow_nss_hazards {
            flags.push("--allow-nss-hazards".to_owned());
        }
        if a.platform.is_some() {
            flags.push("--platform".to_owned());
            let names: Vec<String> = r.build.platforms.iter().map(ToString::to_string).collect();
            flags.push(names.join(","));
        }
        if a.no_run {
            flags.push("--no-run".to_owned());
        }
        if matches!(a.runtime, cli::RuntimeArg::Runc) {
            flags.push("--runtime".to_owned());
            flags.push("runc".to_owned());
        }
        // The second build attaches the same documents, so that they are compared too.
        flags.push("--sbom".to_owned());
        flags.push(opts.supply.sbom.name().to_owned());
        if let Some(key) = &a.sign_key {
            flags.push("--sign-key".to_owned());
            flags.push(key.display().to_string());
        }
        // The same downloads; its build caches are cold (it runs with --no-cache).
        if let Some(c) = &cache {
            flags.push("--cache-dir".to_owned());
            flags.push(c.root().display().to_string());
        }
        eprintln!(
            "repro   building a second time (other folder, time, umask 077, TZ, LANG, noise)"
        );
        let exe = std::env::current_exe().context("finding the staticpack executable")?;
        let diffs = staticpack::build::second::check(
            &staticpack::build::second::SecondBuild {
                exe: &exe,
                recipe: &r.path,
                out: &out,
                epoch: opts.epoch,
                flags,
            },
            &out,
            &r.image.settings.tag,
        )?;
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
        eprintln!("repro   ok: both builds gave {digest} with every blob identical");
        if let Some(push_to) = &push_to {
            // Compared, now published: from the layout the first build wrote.
            let source = staticpack::pipeline::publish::Source {
                layout: &out,
                tag: &r.image.settings.tag,
                name: &r.name,
                epoch: opts.epoch,
            };
            staticpack::pipeline::publish::publish_all(&[push_to], source, &mut |published| {
                if let staticpack::pipeline::publish::Published::Pushed(report) = published {
                    pushed = Some(report.clone());
                    if a.registry.json {
                        return;
                    }
                }
                if let Some(lines) =
                    cli::report::event_lines(&pipeline::Event::Published(published))
                {
                    eprintln!("{lines}");
                }
            })
            .with_context(|| format!("pushing {} after --check-repro", out.display()))?;
        }
    }
    if a.sign_key.is_none() {
        eprintln!(
            "attest  the in-toto statements are unsigned: nothing can tell an edited one from the build's; sign them with --sign-key KEY.pem (PKCS#8, ed25519 or ECDSA P-256) to attach Sigstore bundles"
        );
    }
    println!(
        "{digest} {}:{} written to {}",
        r.name,
        r.image.settings.tag,
        out.display()
    );
    if let Some(report) = pushed {
        print_push_report(&report, &a.registry)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_references(references: &[String]) -> Result<Vec<registry::Reference>> {
    references
        .iter()
        .map(|r| {
            registry::Reference::parse(r).with_context(|| format!("reading the reference {r:?}"))
        })
        .collect()
}

/// Registry options for `verify`/`run` of a docker:// image: the same deadline rule as push's
/// (`--timeout`, the whole of one request, a trickling body included).
fn pull_options(insecure_registries: Vec<String>, timeout: u64) -> registry::ClientOptions {
    registry::ClientOptions {
        insecure_registries,
        request_timeout: Duration::from_secs(timeout),
        ..Default::default()
    }
}

fn client_options(args: &cli::RegistryArgs) -> registry::ClientOptions {
    registry::ClientOptions {
        insecure_registries: args.insecure_registry.clone(),
        request_timeout: Duration::from_secs(args.timeout),
        ..Default::default()
    }
}

fn push_options(
    cache: Option<&staticpack::cache::CacheDir>,
    args: &cli::RegistryArgs,
) -> registry::PushOptions {
    registry::PushOptions {
        blob_cache: cache.map(|c| c.blob_locations()),
        referrers: !args.no_referrers,
        ..Default::default()
    }
}

/// Progress bars on a terminal (or with --verbose); otherwise only the lines saying that a
/// registry has not answered yet.
fn push_progress(args: &cli::RegistryArgs) -> Box<dyn registry::Progress> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() || args.verbose {
        Box::new(cli::progress::TerminalProgress::new(args.verbose))
    } else {
        Box::new(cli::progress::WaitingOnly)
    }
}

fn print_push_report(report: &registry::PushReport, args: &cli::RegistryArgs) -> Result<()> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        for r in &report.references {
            println!("{} {}", report.digest, r.reference);
        }
    }
    Ok(())
}

/// Pushes the image of a layout to every reference; prints one line per pushed reference, or
/// the report as JSON.
fn push_layout(
    dir: &std::path::Path,
    tag: Option<&str>,
    references: &[String],
    args: &cli::RegistryArgs,
    cache: Option<&staticpack::cache::CacheDir>,
) -> Result<()> {
    let targets = parse_references(references)?;
    let progress = push_progress(args);
    let report = registry::push(
        dir,
        tag,
        &targets,
        &client_options(args),
        &push_options(cache, args),
        progress.as_ref(),
    )
    .with_context(|| format!("pushing {}", dir.display()))?;
    print_push_report(&report, args)?;
    if !args.json {
        eprintln!(
            "push    {} blob(s) uploaded, {} already there, {} mounted",
            report.uploaded(),
            report.skipped(),
            report.mounted()
        );
    }
    Ok(())
}

/// `verify`'s flags.
struct VerifyOptions<'a> {
    /// `--attestations`, with `--key`'s public key when given.
    attestations: Option<Option<staticpack::supply::PublicKey>>,
    require: RequireArg,
    json: bool,
    /// `--format sarif`: nothing per file; one SARIF log at the end.
    sarif: bool,
    allow_nss_hazards: bool,
    platform: Option<&'a recipe::Platform>,
    /// For docker:// images.
    pull: registry::ClientOptions,
    /// For images: how much their layers may unpack to.
    limits: run::UnpackLimits,
}

fn verify_cmd(paths: &[std::path::PathBuf], opts: &VerifyOptions<'_>) -> Result<ExitCode> {
    let &VerifyOptions {
        require,
        json,
        allow_nss_hazards,
        platform,
        ..
    } = opts;
    let requirement = match require {
        RequireArg::Static => verify::Requirement::Static,
        RequireArg::StaticPie => verify::Requirement::StaticPie,
        RequireArg::Any => verify::Requirement::Any,
    };
    if opts.sarif && opts.attestations.is_some() {
        bail!("--attestations has no SARIF form: use --json or the text output");
    }
    let mut tally = verify::Tally::default();
    let mut files = Vec::new();
    let mut images_pass = true;
    let mut sarif = opts.sarif.then(cli::sarif::Log::default);
    for path in paths {
        let arg = path.to_string_lossy();
        match image::source::ImageSource::parse(&arg)? {
            Some(source) => {
                images_pass &= verify_image(&arg, &source, requirement, opts, sarif.as_mut())?
            }
            None => files.push(path.clone()),
        }
    }
    if opts.attestations.is_some() && !files.is_empty() {
        bail!(
            "--attestations checks what is attached to an image: name it as oci:LAYOUT[:TAG], oci-archive:FILE or docker://REGISTRY/REPO[:TAG|@DIGEST] ({} is a file path)",
            files[0].display()
        );
    }
    if files.is_empty() {
        if let Some(log) = &sarif {
            println!("{}", serde_json::to_string_pretty(&log.to_json())?);
        }
        return Ok(if images_pass {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let paths = &files;
    let stats = verify::verify_paths(paths, requirement, &mut |mut r| {
        if let Ok((_, findings)) = &mut r.result {
            *findings = verify::apply_nss_rule(
                std::mem::take(findings),
                requirement,
                allow_nss_hazards,
                "or pass --allow-nss-hazards to accept it",
            );
        }
        if let (Some(p), Ok((facts, findings))) = (platform, &mut r.result) {
            if let Some(wrong) = verify::check_platform(facts, p.oci_arch(), &p.to_string()) {
                findings.insert(0, wrong);
            }
        }
        tally.add(r.status());
        if let Some(log) = sarif.as_mut() {
            log.add(&r, &cli::sarif::Place::File);
        } else if json {
            println!("{}", r.to_json());
        } else if r.status() == verify::Status::Error {
            eprint!("{}", cli::render::report_text(&r));
        } else {
            print!("{}", cli::render::report_text(&r));
        }
    });
    if let Some(log) = &sarif {
        println!("{}", serde_json::to_string_pretty(&log.to_json())?);
    }
    if stats.reported > 1 || stats.directories > 0 {
        eprintln!("{}", cli::render::closing_line(&tally, &stats));
    }
    Ok(if tally.all_passed() && images_pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `verify IMAGE`: unpacked into a private temp dir (the unpacker refuses entries that reach
/// outside it), the entrypoint resolved as a runtime would and judged, then every other ELF.
/// True when the entrypoint will start and passes `require`.
fn verify_image(
    arg: &str,
    source: &image::source::ImageSource,
    requirement: verify::Requirement,
    opts: &VerifyOptions<'_>,
    mut sarif: Option<&mut cli::sarif::Log>,
) -> Result<bool> {
    let &VerifyOptions {
        json,
        allow_nss_hazards,
        platform,
        ..
    } = opts;
    let opened = source
        .open_with(arg, platform, &opts.pull)
        .with_context(|| format!("opening the image {arg}"))?;
    let loaded = &opened.image;
    // Locked while in use: what a killed verify, run or build left goes first.
    run::sweep_leftovers();
    let tmp = staticpack::WorkDir::new(run::VERIFY_DIR_PREFIX)
        .context("creating a temporary folder to unpack the image in")?;
    let root = std::fs::canonicalize(tmp.path())?;
    run::unpack(loaded, &root, &opts.limits)
        .with_context(|| format!("unpacking the image {arg}"))?;
    let config = loaded.config.config().clone().unwrap_or_default();
    let command = verify::image::ImageCommand {
        entrypoint: config.entrypoint().clone().unwrap_or_default(),
        cmd: config.cmd().clone().unwrap_or_default(),
        env: config.env().clone().unwrap_or_default(),
        working_dir: config.working_dir().clone().filter(|w| !w.is_empty()),
    };
    let user = config.user().clone().filter(|u| !u.is_empty());
    let arch = loaded.config.architecture().to_string();
    let image_platform = format!("{}/{arch}", loaded.config.os());
    let judge = |r: &mut verify::FileReport| {
        if let Ok((facts, findings)) = &mut r.result {
            *findings = verify::apply_nss_rule(
                std::mem::take(findings),
                requirement,
                allow_nss_hazards,
                "or pass --allow-nss-hazards to accept it",
            );
            if let Some(wrong) = verify::check_platform(facts, &arch, &image_platform) {
                findings.insert(0, wrong);
            }
            verify::image::drop_answered_loads(&root, findings);
        }
    };
    let mut analyze = |host: &std::path::Path| {
        let mut one = None;
        verify::verify_paths(&[host.to_path_buf()], requirement, &mut |r| one = Some(r));
        let mut r =
            one.filter(|r| !matches!(&r.result, Err(e) if e.kind == verify::ErrorKind::NotElf))?;
        judge(&mut r);
        // Static is not enough: the files it will look for, against the image's.
        if let (Ok((facts, findings)), Ok(map)) =
            (&mut r.result, verify::mapped::Mapped::open(host))
        {
            let needs = verify::needs::runtime_needs_by(&|m| map.contains(m));
            let process = verify::needs::Process {
                user: user.as_deref(),
                env: &command.env,
                lang: verify::needs::Language::of(facts),
            };
            findings.extend(verify::needs::unmet_for(&root, &needs, &process));
        }
        r.path = verify::image::in_image_path(&root, &r.path);
        Some(r)
    };
    let (start, entry) = verify::image::start(&root, &command, &mut analyze);
    let entry_passes = entry
        .as_ref()
        .is_some_and(|r| r.status() == verify::Status::Pass);
    let passes = start.starts() && entry_passes;
    let argv = verify::image::argv(&command);
    if let Some(log) = sarif.as_deref_mut() {
        if let Some(r) = &entry {
            log.add(r, &cli::sarif::Place::Image(arg));
        }
        if !start.starts() {
            let at = entry
                .as_ref()
                .map(|r| r.path.to_string_lossy().into_owned());
            log.add_will_not_start(&start.explain(), at.as_deref(), arg);
        }
    } else if json {
        let mut line = serde_json::json!({
            "schema_version": verify::SCHEMA_VERSION,
            "image": arg,
            "manifest_digest": loaded.manifest_digest.to_string(),
            "platform": image_platform,
            "argv": argv,
            "start": start,
            "starts": start.starts(),
            "explanation": start.explain(),
            "status": if passes { "pass" } else { "fail" },
        });
        if let Some((digest, platforms)) = opened.pulled.as_ref().and_then(|p| p.index.as_ref()) {
            line["index"] = serde_json::json!({
                "digest": digest.to_string(),
                "platforms": platforms,
            });
        }
        println!("{line}");
        if let Some(r) = &entry {
            println!("{}", r.to_json());
        }
    } else {
        println!(
            "image    {arg} ({}, {image_platform})",
            loaded.manifest_digest
        );
        // From an index: which one, and what else it offers (`--platform` picks another).
        if let Some((digest, platforms)) = opened.pulled.as_ref().and_then(|p| p.index.as_ref()) {
            println!(
                "index    {digest}: {image_platform} of {}",
                platforms.join(", ")
            );
        }
        println!("command  {}", serde_json::to_string(&argv)?);
        if let Some(r) = &entry {
            print!("{}", cli::render::report_text(r));
        }
        let verdict = if start.starts() { "yes" } else { "NO" };
        println!("starts   {verdict}: {}", start.explain());
    }
    // The other ELF files: a helper the entrypoint execs, libraries, a second program.
    let entry_path = entry.as_ref().map(|r| r.path.clone());
    let mut others = 0usize;
    verify::image::every_elf(&root, requirement, &mut |mut r| {
        if Some(&r.path) == entry_path.as_ref() {
            return;
        }
        others += 1;
        judge(&mut r);
        if let Some(log) = sarif.as_deref_mut() {
            log.add(&r, &cli::sarif::Place::Image(arg));
        } else if json {
            println!("{}", r.to_json());
        } else {
            print!("{}", cli::render::report_text(&r));
        }
    });
    if !json && sarif.is_none() {
        eprintln!(
            "{arg}: the entrypoint {}; {others} other ELF file{} in the image",
            if passes { "starts" } else { "will not start" },
            if others == 1 { "" } else { "s" }
        );
    }
    let attested = match &opts.attestations {
        None => true,
        Some(key) => {
            source
                .pull_referrers(&opened, &opts.pull)
                .with_context(|| format!("pulling the referrers of {arg}"))?;
            let layout = opened.layout.as_deref().with_context(|| {
                format!("{arg}: a docker archive carries no attestations (no OCI referrers); check the OCI layout or the registry it came from")
            })?;
            let report = staticpack::supply::check_attestations(
                &image::Layout::open(layout)?,
                &loaded.manifest_digest,
                &root,
                key.as_ref(),
            )
            .with_context(|| format!("checking the attestations of {arg}"))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "schema_version": verify::SCHEMA_VERSION,
                        "image": arg,
                        "attestations": report,
                        "status": if report.passes() { "pass" } else { "fail" },
                    })
                );
            } else {
                print!("{}", cli::render::attestations_text(&report, key.is_some()));
            }
            report.passes()
        }
    };
    Ok(passes && attested)
}
