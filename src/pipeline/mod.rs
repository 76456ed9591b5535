//! The whole pipeline for one recipe: build → verify → layers → image → run proof → publish.
//! Each stage is its own module; this one only wires them and decides what counts as failure.
//!
//! `build` returns a value (`Built`: a staged, proven layout, the report, the provenance);
//! `publish::Publisher`s then put it where it goes; `build_and_publish` wraps both with the
//! cache. The library reports typed `Event`s; the CLI words them.

mod deps;
mod platforms;
pub mod publish;

pub use platforms::{IndexProvenance, PlatformBuild};

use crate::build::{self, Artifact, BuildContext, BuildError};
use crate::digest::Digest;
use crate::fsio::{IoContext, IoError};
use crate::image::{
    self, EntryKind, FileSource, ImageError, ImageMeta, LayerBlob, LayerEntry, LayerSpec,
    LoadedImage,
};
use crate::provenance::{self, Provenance};
use crate::recipe::{BuildSpec, Epoch, Lang, LibcChoice, LinkMode, Recipe, TestSpec};
use crate::run::{self, Outcome, RunError, Runtime};
use crate::verify::{self, ElfFacts, Finding, Requirement, Severity, VerifyError};
use crate::workdir::{self, WorkDir};
use publish::{Published, Publisher, Source};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("build failed")]
    Build(#[from] BuildError),
    #[error("cannot verify the built binary")]
    Verify(#[source] VerifyError),
    #[error("cannot verify {path} (installed under $DESTDIR)")]
    VerifyInstalled {
        path: String,
        #[source]
        source: VerifyError,
    },
    /// An ELF file of an `install = true` tree that verify refuses, by its path in the image.
    #[error("verify refused {path} (installed under $DESTDIR): it is {verdict}")]
    RefusedInstalled {
        path: String,
        verdict: String,
        findings: Vec<Finding>,
    },
    /// verify's findings that refuse the binary; the CLI prints each with its why and fix.
    #[error("verify refused the binary: it is {verdict}")]
    Refused {
        verdict: String,
        findings: Vec<Finding>,
    },
    /// One platform of a several-platform build failed (nothing was published).
    #[error("building for {platform}")]
    Platform {
        platform: String,
        #[source]
        source: Box<PipelineError>,
    },
    /// A `[[build.deps]]` recipe failed to build or verify.
    #[error("building the dependency {name}")]
    Dependency {
        name: String,
        #[source]
        source: Box<PipelineError>,
    },
    #[error("image assembly failed")]
    Image(#[from] ImageError),
    #[error("base image")]
    Base(#[from] image::base::BaseError),
    #[error("collecting the build's inputs")]
    Inputs(#[from] provenance::ProvenanceError),
    #[error("the run proof could not run")]
    Run(#[from] RunError),
    #[error("the run proof failed: {}", .problems.join("; "))]
    ProofFailed {
        problems: Vec<String>,
        outcome: Box<Outcome>,
    },
    #[error("publishing to a registry failed")]
    Push(#[source] Box<crate::registry::RegistryError>),
    #[error("the source archive")]
    Source(#[from] crate::source::SourceError),
    #[error("the SBOMs and attestations")]
    Supply(#[from] crate::supply::SupplyError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "SOURCE_DATE_EPOCH={value:?} is not a time an image can carry; set it to seconds since 1970, from 0 to 253402300799 (the end of the year 9999), or unset it"
    )]
    BadEpoch { value: String },
}

impl From<crate::registry::RegistryError> for PipelineError {
    fn from(e: crate::registry::RegistryError) -> Self {
        PipelineError::Push(Box::new(e))
    }
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Run the `[test]` proof (default on).
    pub run: bool,
    pub runtime: Runtime,
    /// Pack a dynamic binary anyway (to watch the proof fail with the real error).
    pub allow_dynamic: bool,
    /// Pack a static glibc binary that loads NSS modules at run time.
    pub allow_nss_hazards: bool,
    /// Reuse the image in the layout folder when the inputs are unchanged.
    pub cache: bool,
    /// The shared cache folder for downloads and build caches; `None`: everything in the
    /// build folder, nothing kept.
    pub shared_cache: Option<crate::cache::CacheDir>,
    /// SOURCE_DATE_EPOCH for tar mtimes, `created` and the toolchain.
    pub epoch: u64,
    /// The SBOMs and statements attached to the image, and their signing key.
    pub supply: crate::supply::SupplyOptions,
    /// The build jail's bounds (`--max-build-processes`, `--max-build-bytes`).
    pub max_build_processes: u64,
    pub max_build_bytes: u64,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            run: true,
            runtime: Runtime::Builtin,
            allow_dynamic: false,
            allow_nss_hazards: false,
            cache: true,
            shared_cache: None,
            epoch: 0,
            supply: Default::default(),
            max_build_processes: run::DEFAULT_MAX_PROCESSES,
            max_build_bytes: run::DEFAULT_MAX_BYTES,
        }
    }
}

/// What a build tells while it works; the CLI decides the words.
#[derive(Debug)]
pub enum Event<'a> {
    /// The layout folder already holds the image of these inputs.
    Cached {
        inputs_digest: &'a str,
    },
    /// Toolchain steps run without the build jail, and why (no namespaces here).
    Unjailed(&'a str),
    /// A folder a killed build or run left behind, removed now.
    Swept(PathBuf),
    /// An input the recipe reads from outside its folder, by its `allow_outside`.
    OutsideAllowed(&'a std::path::Path),
    /// The cache could not be used, and why (a damaged record is a miss, not an error).
    CacheMiss {
        reason: String,
    },
    Building {
        name: &'a str,
        lang: Lang,
        libc: LibcChoice,
        link: LinkMode,
    },
    /// A source archive is verified and unpacked (fetched first unless cached).
    Unpacking {
        archive: &'a crate::recipe::ArchiveSource,
    },
    Toolchain(&'a str),
    /// A recipe's build command starts (1-based `index` of `total`).
    Command {
        index: usize,
        total: usize,
        command: &'a str,
    },
    CommandDone {
        index: usize,
        total: usize,
        elapsed: Duration,
    },
    /// A cache entry failed its check on reuse: not used, rebuilt (or downloaded) instead.
    CacheRejected {
        entry: PathBuf,
        reason: String,
    },
    /// Build steps left processes running when they ended; the jail killed them. `command`:
    /// which of a recipe's commands (index, total); `None`: the toolchain's other steps.
    LeftRunning {
        command: Option<(usize, usize)>,
        killed: u64,
    },
    /// The build jail's limits and how they are held (for --verbose).
    JailLimits {
        timeout_seconds: u64,
        max_processes: u64,
        max_bytes: u64,
        mechanism: &'static str,
    },
    /// A file-list C build compiled `compiled` files and reused the cached objects of the rest.
    Compiled {
        compiled: usize,
        reused: usize,
    },
    Verified {
        verdict: &'a str,
    },
    /// A `[[build.deps]]` recipe is ready: built now (its build's events came before) or found
    /// in the cache by its inputs digest.
    Dependency {
        name: &'a str,
        inputs_digest: &'a str,
        cached: bool,
    },
    /// One ELF file of an `install = true` tree, by its path in the image.
    VerifiedInstalled {
        path: &'a str,
        verdict: &'a str,
    },
    Warning(&'a Finding),
    /// A refusing finding let through by `--allow-dynamic`.
    Allowed(&'a Finding),
    /// NSS hazards packed because the recipe says `allow_nss_hazards = true`, and why.
    NssAllowed {
        reason: &'a str,
        hazards: &'a [String],
    },
    Staged {
        digest: &'a Digest,
        layers: usize,
    },
    /// The proof was asked for but the recipe has no `[test]`.
    NoTest,
    /// A several-platform build starts on its `index`th (1-based) of `total` platforms; the
    /// events up to the next one are that platform's.
    Platform {
        platform: &'a crate::recipe::Platform,
        index: usize,
        total: usize,
    },
    /// Every platform is built, verified and proven (as asked): the image index over them is
    /// staged.
    Indexed {
        digest: &'a Digest,
        platforms: &'a [PlatformBuild],
    },
    Proven(&'a Proof),
    Published(&'a Published),
}

#[derive(Clone, Debug)]
pub struct Proof {
    pub runtime: Runtime,
    pub expect_exit: i32,
    pub outcome: Outcome,
    /// Files the root held.
    pub rootfs_files: usize,
    /// Files in the root named like a libc or a dynamic loader (none for a scratch image).
    pub libc_files: Vec<String>,
}

/// What a build found and made; every path in it outlives the build.
#[derive(Clone, Debug)]
pub struct BuildReport {
    /// The toolchain and its version, as one line.
    pub toolchain: String,
    pub facts: ElfFacts,
    pub verdict: String,
    /// Warnings that did not stop the build.
    pub warnings: Vec<Finding>,
    pub binary_digest: Digest,
    pub manifest_digest: Digest,
    pub layers: Vec<LayerBlob>,
    pub proof: Option<Proof>,
}

/// A built, verified and (when asked) proven image, staged in a private folder until published.
pub struct Built {
    staging: WorkDir,
    pub report: BuildReport,
    /// Made once, after the manifest digest is known; also written into the staged layout.
    pub provenance: Provenance,
}

impl Built {
    /// The staged OCI layout.
    pub fn layout(&self) -> PathBuf {
        self.staging.path().join("layout")
    }
}

/// The side effects a build has beyond files: compiling and running. The real ones are
/// `build::build` and `run::run_image`; tests pass fakes to check the cache, staging and
/// refusals without gcc or runc.
pub type Compile<'a> = &'a dyn Fn(
    &BuildSpec,
    &BuildContext,
    &mut dyn FnMut(build::Step),
) -> Result<Artifact, BuildError>;
pub type RunImage<'a> =
    &'a dyn Fn(&LoadedImage, Option<&[String]>, &run::RunOptions) -> Result<Outcome, RunError>;

/// The compiler and the runner a build uses, passed together.
#[derive(Clone, Copy)]
pub struct Tools<'a> {
    pub compile: Compile<'a>,
    pub run_image: RunImage<'a>,
}

impl Tools<'static> {
    /// `build::build` and `run::run_image`.
    pub const REAL: Tools<'static> = Tools {
        compile: &build::build_reporting,
        run_image: &run::run_image,
    };
}

const BUILD_DIR_PREFIX: &str = "staticpack-build-";

fn unproven_prefix(name: &str) -> String {
    format!(".{name}.unproven-")
}

/// Removes what builds and runs killed before they could clean up left behind: build, repro,
/// run, verify and image folders in TMPDIR (a run's runc container with it), the recipe's
/// staging folders where it stages (beside its layout folder, else in TMPDIR) and the
/// publishers' partial archives. Every one of them is a `WorkDir`, locked from birth by its
/// owner: what can be locked is a dead owner's, however young.
fn sweep_leftovers(recipe: &Recipe, publishers: &[&dyn Publisher]) -> Vec<PathBuf> {
    let tmp = std::env::temp_dir();
    let mut removed = workdir::sweep(&tmp, BUILD_DIR_PREFIX, &|_| {});
    removed.extend(workdir::sweep(
        &tmp,
        build::second::REPRO_DIR_PREFIX,
        &|_| {},
    ));
    removed.extend(run::sweep_leftovers());
    let layout_dir = publishers.iter().find_map(|p| p.layout_dir());
    let staging_parent = layout_dir.map_or_else(|| tmp.clone(), parent_dir);
    removed.extend(workdir::sweep(
        &staging_parent,
        &unproven_prefix(&recipe.name),
        &|_| {},
    ));
    if let Some(out) = layout_dir {
        let name = out.file_name().unwrap_or_default().to_string_lossy();
        removed.extend(workdir::sweep(
            &parent_dir(out),
            &image::layout::staging_prefix(&name),
            &|_| {},
        ));
    }
    for (parent, prefix) in publishers.iter().filter_map(|p| p.scratch()) {
        removed.extend(workdir::sweep(&parent, &prefix, &|_| {}));
    }
    removed
}

/// SOURCE_DATE_EPOCH from the environment, when set (and not empty). A value that is not a
/// date an image can carry is an error, never silently replaced.
pub fn epoch_from_env() -> Result<Option<u64>, PipelineError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(value) if !value.trim().is_empty() => parse_epoch(&value).map(Some),
        _ => Ok(None),
    }
}

fn parse_epoch(value: &str) -> Result<u64, PipelineError> {
    match value.trim().parse::<u64>() {
        Ok(seconds) if seconds <= crate::recipe::MAX_EPOCH => Ok(seconds),
        _ => Err(PipelineError::BadEpoch {
            value: value.to_owned(),
        }),
    }
}

/// SOURCE_DATE_EPOCH: the environment's when set, else the recipe's, else 0.
pub fn resolve_epoch(recipe: &Recipe, from_env: Option<u64>) -> Result<u64, PipelineError> {
    Ok(match (from_env, recipe.epoch) {
        (Some(e), _) => e,
        (None, Epoch::Fixed(e)) => e,
        (None, Epoch::Git) => build::git_epoch(&recipe.build.source)?,
        (None, Epoch::Default) => 0,
    })
}

/// Everything that decides the output, digested: the cache key and the provenance's input part.
pub fn inputs(recipe: &Recipe, opts: &BuildOptions) -> Result<provenance::Inputs, PipelineError> {
    let b = &recipe.build;
    if !b.per_platform.is_empty() && b.source.as_os_str().is_empty() {
        let has: Vec<String> = b.per_platform.iter().map(|(p, _)| p.to_string()).collect();
        return Err(PipelineError::Unsupported(format!(
            "{}: build.source has no binary for {} (it has {}); add \"{}\" = \"…\" to it, or build with --platform {}",
            recipe.path.display(),
            b.platform,
            has.join(", "),
            b.platform,
            has.join(" or --platform ")
        )));
    }
    let mut options = BTreeMap::new();
    options.insert("allow_dynamic".to_owned(), opts.allow_dynamic.to_string());
    options.insert(
        "allow_nss_hazards".to_owned(),
        match &recipe.nss_allowed {
            // Recorded with its reason, so the provenance says why.
            Some(reason) if !opts.allow_nss_hazards => format!("recipe: {reason}"),
            _ => opts.allow_nss_hazards.to_string(),
        },
    );
    // What is attached changes the layout (not the image): recorded only when not the
    // default, so that the default keeps its key.
    if opts.supply.sbom != crate::supply::SbomChoice::Both {
        options.insert("sbom".to_owned(), opts.supply.sbom.name().to_owned());
    }
    if let Some(key) = &opts.supply.sign_key {
        options.insert("sign_key".to_owned(), format!("sha256:{}", key.keyid()));
    }
    Ok(provenance::Inputs {
        staticpack: env!("CARGO_PKG_VERSION").to_owned(),
        recipe: recipe.name.clone(),
        files: provenance::input_files(recipe)?,
        toolchain: build::toolchain_versions(&recipe.build),
        epoch: opts.epoch,
        options,
        deps: deps::digests(recipe, opts)?,
    })
}

/// The cache's answer for a layout folder.
enum Lookup {
    /// It holds the image of these inputs, with this manifest digest.
    Hit(Digest),
    Miss(Option<String>),
}

/// The image in `out`, when its provenance says it was built from exactly these inputs, passed
/// the proof this build asks for (`wanted_proof`: the runtime's name, `None` when it asks for
/// none) and the layout still reads back with the recorded digest. A folder that was never
/// built is a plain miss; a damaged or unproven one is a miss with its reason.
fn lookup(out: &Path, tag: &str, inputs_digest: &str, wanted_proof: Option<&str>) -> Lookup {
    let record_path = out.join(provenance::FILE_NAME);
    let text = match std::fs::read(&record_path) {
        Ok(t) => t,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return Lookup::Miss(None);
        }
        Err(e) => {
            return Lookup::Miss(Some(format!("cannot read {}: {e}", record_path.display())));
        }
    };
    // A one-platform record or an index's (IndexProvenance): both name these two.
    #[derive(serde::Deserialize)]
    struct Recorded {
        inputs_digest: String,
        manifest_digest: String,
        #[serde(default)]
        proven_by: Option<String>,
    }
    let recorded: Recorded = match serde_json::from_slice(&text) {
        Ok(r) => r,
        Err(e) => {
            return Lookup::Miss(Some(format!("{} is damaged: {e}", record_path.display())));
        }
    };
    if recorded.inputs_digest != inputs_digest {
        return Lookup::Miss(None);
    }
    // The inputs decide the image, not whether it was proven: an image built with --no-run, or
    // proven by another runtime, has not passed this build's proof. A build that asks for no
    // proof takes any image of its inputs.
    if let Some(wanted) = wanted_proof {
        if recorded.proven_by.as_deref() != Some(wanted) {
            return Lookup::Miss(Some(match &recorded.proven_by {
                None => format!(
                    "the image in {} was never run (built with --no-run): building and proving it",
                    out.display()
                ),
                Some(other) => format!(
                    "the image in {} was proven with --runtime {other}, not {wanted}: building and proving it",
                    out.display()
                ),
            }));
        }
    }
    // The tag's whole tree (an index's every manifest and blob) must read back.
    match image::SelectedImage::open(out, Some(tag)) {
        Ok(selected) if selected.digest().to_string() == recorded.manifest_digest => {
            Lookup::Hit(selected.digest().clone())
        }
        Ok(selected) => Lookup::Miss(Some(format!(
            "{} holds {}, not the recorded {}",
            out.display(),
            selected.digest(),
            recorded.manifest_digest
        ))),
        Err(e) => Lookup::Miss(Some(format!("{} does not read back: {e}", out.display()))),
    }
}

/// What `build_and_publish` did.
pub enum BuildResult {
    /// Built afresh; the staging folder is already gone.
    Built {
        report: Box<BuildReport>,
        provenance: Box<Provenance>,
        published: Vec<Published>,
    },
    /// Several platforms built afresh into one image index; the staging folder is gone.
    BuiltIndex {
        index_digest: Digest,
        /// In the index's order.
        platforms: Vec<PlatformBuild>,
        published: Vec<Published>,
    },
    /// The layout folder already held the image of these inputs; only the other publishers ran.
    UpToDate {
        manifest_digest: Digest,
        published: Vec<Published>,
    },
}

impl BuildResult {
    pub fn manifest_digest(&self) -> &Digest {
        match self {
            BuildResult::Built { report, .. } => &report.manifest_digest,
            BuildResult::BuiltIndex { index_digest, .. } => index_digest,
            BuildResult::UpToDate {
                manifest_digest, ..
            } => manifest_digest,
        }
    }
}

/// Builds (or finds in the cache) and publishes to every publisher. The cache lives in the
/// layout folder publisher, when there is one; without one, every build is fresh.
pub fn build_and_publish(
    recipe: &Recipe,
    opts: &BuildOptions,
    publishers: &[&dyn Publisher],
    events: &mut dyn FnMut(Event),
) -> Result<BuildResult, PipelineError> {
    build_and_publish_with(recipe, opts, publishers, Tools::REAL, events)
}

/// `build_and_publish` with the compiler and runner given.
pub fn build_and_publish_with(
    recipe: &Recipe,
    opts: &BuildOptions,
    publishers: &[&dyn Publisher],
    tools: Tools,
    events: &mut dyn FnMut(Event),
) -> Result<BuildResult, PipelineError> {
    let layout_dir = publishers.iter().find_map(|p| p.layout_dir());
    for path in sweep_leftovers(recipe, publishers) {
        events(Event::Swept(path));
    }
    for path in &recipe.allow_outside {
        events(Event::OutsideAllowed(path));
    }
    // Several platforms: one copy of the recipe each, and one key over all of them.
    let (single, copies) = match recipe.build.platforms.len() {
        0 | 1 => (Some(inputs(recipe, opts)?), Vec::new()),
        _ => (None, platforms::per_platform(recipe, opts)?),
    };
    let inputs_digest = match &single {
        Some(inputs) => inputs.digest(),
        None => platforms::inputs_digest(&copies),
    }
    .to_string();
    if let (true, Some(out)) = (opts.cache, layout_dir) {
        let wanted_proof = (opts.run && recipe.test.is_some()).then(|| opts.runtime.name());
        match lookup(
            out,
            &recipe.image.settings.tag,
            &inputs_digest,
            wanted_proof,
        ) {
            Lookup::Hit(manifest_digest) => {
                events(Event::Cached {
                    inputs_digest: &inputs_digest,
                });
                let others: Vec<&dyn Publisher> = publishers
                    .iter()
                    .copied()
                    .filter(|p| p.layout_dir().is_none())
                    .collect();
                let published =
                    publish::publish_all(&others, source(recipe, opts, out), &mut |p| {
                        events(Event::Published(p))
                    })?;
                return Ok(BuildResult::UpToDate {
                    manifest_digest,
                    published,
                });
            }
            Lookup::Miss(Some(reason)) => events(Event::CacheMiss { reason }),
            Lookup::Miss(None) => {}
        }
    }
    // Stage beside the layout folder, so that publishing it is one rename on one filesystem.
    let staging_parent = match layout_dir {
        Some(out) => parent_dir(out),
        None => std::env::temp_dir(),
    };
    let created_parent = !staging_parent.exists();
    let result = match single {
        Some(inputs) => build_one(
            recipe,
            opts,
            inputs,
            &staging_parent,
            publishers,
            tools,
            events,
        ),
        None => platforms::build_index(
            recipe,
            opts,
            copies,
            &inputs_digest,
            &staging_parent,
            tools,
            events,
        )
        .and_then(|built| {
            let published = publish::publish_all(
                publishers,
                source(recipe, opts, &built.layout()),
                &mut |p| events(Event::Published(p)),
            )?;
            let platforms::BuiltIndex {
                index_digest,
                platforms,
                ..
            } = built;
            Ok(BuildResult::BuiltIndex {
                index_digest,
                platforms,
                published,
            })
        }),
    };
    if result.is_err() && created_parent {
        // Leave nothing behind: the folder made for the output, if it stayed empty.
        let _ = std::fs::remove_dir(&staging_parent);
    }
    result
}

/// One platform: built, proven and published.
fn build_one(
    recipe: &Recipe,
    opts: &BuildOptions,
    inputs: provenance::Inputs,
    staging_parent: &Path,
    publishers: &[&dyn Publisher],
    tools: Tools,
    events: &mut dyn FnMut(Event),
) -> Result<BuildResult, PipelineError> {
    build_with(recipe, opts, inputs, staging_parent, tools, events).and_then(|built| {
        let published = publish::publish_all(
            publishers,
            source(recipe, opts, &built.layout()),
            &mut |p| events(Event::Published(p)),
        )?;
        // The staging folder (empty once the layout folder took the layout) goes now.
        let Built {
            staging,
            report,
            provenance,
        } = built;
        drop(staging);
        Ok(BuildResult::Built {
            report: Box::new(report),
            provenance: Box::new(provenance),
            published,
        })
    })
}

fn source<'a>(recipe: &'a Recipe, opts: &BuildOptions, layout: &'a Path) -> Source<'a> {
    Source {
        layout,
        tag: &recipe.image.settings.tag,
        name: &recipe.name,
        epoch: opts.epoch,
    }
}

/// Builds, verifies, assembles and proves the image in a staging folder under
/// `staging_parent`. Nothing outside that folder is written; it goes away with the `Built`.
pub fn build_with(
    recipe: &Recipe,
    opts: &BuildOptions,
    inputs: provenance::Inputs,
    staging_parent: &Path,
    tools: Tools,
    events: &mut dyn FnMut(Event),
) -> Result<Built, PipelineError> {
    let build_dir =
        WorkDir::new(BUILD_DIR_PREFIX).at("creating a build folder in", std::env::temp_dir())?;
    let (spec, jail) = toolchain_setup(recipe, opts, build_dir.path(), events)?;
    // Beside the output: the build folder is gone by the time a person reads the error.
    let log_dir = staging_parent;
    deps::prepare(recipe, opts, build_dir.path(), log_dir, tools, events)?;
    let ctx = BuildContext {
        build_dir: build_dir.path().to_path_buf(),
        epoch: opts.epoch,
        jail,
        keep_log: Some(log_dir.join(format!(".{}.build.log", recipe.name))),
        cache: opts.shared_cache.clone(),
    };

    events(Event::Building {
        name: &recipe.name,
        lang: recipe.build.lang_name(),
        libc: recipe.build.libc,
        link: recipe.build.link,
    });
    let artifact = (tools.compile)(&spec, &ctx, &mut |step| forward(step, events));
    report_killed(&ctx, events);
    let artifact = artifact?;
    events(Event::Toolchain(&artifact.toolchain));
    let installed = match &artifact.installed {
        Some(tree) => Some(installed_entries(tree)?),
        None => None,
    };
    let mut runtime_needs = Vec::new();
    let (facts, verdict, mut warnings, binary_digest) = match &installed {
        None => {
            // Mapped, never read whole: a 400 MiB binary keeps a few MiB resident.
            let map = verify::mapped::Mapped::open(&artifact.binary)
                .at("reading the built binary", &artifact.binary)?;
            let mut facts = verify::analyze_mapped(&map).map_err(PipelineError::Verify)?;
            linked_libc_fallback(&mut facts, recipe);
            runtime_needs = verify::needs::runtime_needs_by(&|m| map.contains(m));
            drop(map);
            let binary_digest = digest_file(&artifact.binary)?;
            let verdict = verify::summary(&facts);
            events(Event::Verified { verdict: &verdict });
            let warnings = judge(&facts, recipe, opts, &verdict, events)?;
            (facts, verdict, warnings, binary_digest)
        }
        Some(entries) => verify_installed(entries, recipe, opts, events)?,
    };

    // `judge` refused a binary of another machine: the platform's name is the ELF's.
    let platform = &recipe.build.platform;
    let architecture = platform.oci_arch().to_owned();
    // Layers by concern, bottom up: the base (byte-identical across recipes), the recipe's extra
    // files, the binary. Only the layers above a change need re-uploading.
    let mut layers: Vec<LayerSpec> = recipe.image.base_image.layer.iter().cloned().collect();
    if !recipe.image.files.is_empty() || !recipe.image.symlinks.is_empty() {
        layers.push(files_layer(recipe, opts.epoch));
    }
    layers.push(match &installed {
        None => app_layer(recipe, &artifact, opts.epoch),
        Some(entries) => installed_layer(recipe, entries, opts.epoch),
    });
    let inputs_digest = inputs.digest().to_string();
    // The index entry names the provenance's input digest and the record beside the layout.
    // Not the manifest: the image digest stays a function of the image's content alone, so a
    // comment edited in a recipe does not change it.
    let index_annotations = BTreeMap::from([
        (provenance::ANNOTATION.to_owned(), inputs_digest.clone()),
        (
            format!("{}.file", provenance::ANNOTATION),
            provenance::FILE_NAME.to_owned(),
        ),
        // The SBOMs and statements about the image (always at least the statements).
        (
            "dev.staticpack.referrers.file".to_owned(),
            crate::supply::REFERRERS_FILE.to_owned(),
        ),
    ]);
    let mut meta = image_meta(recipe, architecture, opts.epoch, index_annotations);
    meta.variant = platform.variant.clone();

    std::fs::create_dir_all(staging_parent).at("creating", staging_parent)?;
    let staging = WorkDir::new_in(staging_parent, &unproven_prefix(&recipe.name))
        .at("creating a staging folder in", staging_parent)?;
    let staged_layout = staging.path().join("layout");
    let staged = image::write_image(
        &staged_layout,
        &recipe.image.settings.tag,
        &meta,
        &layers,
        &standard_annotations(recipe, opts.epoch),
    )?;
    events(Event::Staged {
        digest: &staged.manifest_digest,
        layers: staged.layers.len(),
    });

    // Static is not enough: the files the program will look for, against the image's, before
    // the run proof (which may not exercise them) — warnings that name the base or file to add.
    if !runtime_needs.is_empty() {
        let root = staging.path().join("needs-root");
        std::fs::create_dir(&root).at("creating", &root)?;
        let image = image::Layout::open(&staged_layout)?.load(Some(&recipe.image.settings.tag))?;
        crate::run::unpack(&image, &root, &crate::run::UnpackLimits::default())?;
        let user = recipe.image.user.as_ref().map(ToString::to_string);
        let env = (image.config.config().as_ref())
            .and_then(|c| c.env().clone())
            .unwrap_or_default();
        let process = verify::needs::Process {
            user: user.as_deref(),
            env: &env,
            lang: verify::needs::Language::of(&facts),
        };
        for finding in verify::needs::unmet_for(&root, &runtime_needs, &process) {
            events(Event::Warning(&finding));
            warnings.push(finding);
        }
        std::fs::remove_dir_all(&root).at("removing", &root)?;
    }

    let proof = match (&recipe.test, opts.run) {
        (Some(test), true) => Some(prove(
            &staged_layout,
            &recipe.image.settings.tag,
            test,
            opts.runtime,
            tools.run_image,
            events,
        )?),
        (None, true) => {
            events(Event::NoTest);
            None
        }
        (_, false) => None,
    };

    let normalize = |s: &str| provenance::normalize(s, &ctx.build_dir, &spec.source);
    let record = Provenance {
        inputs_digest,
        inputs,
        commands: artifact.commands.iter().map(|c| normalize(c)).collect(),
        environment: artifact
            .environment
            .iter()
            .map(|(k, v)| (k.clone(), provenance::environment_value(k, &normalize(v))))
            .collect(),
        binary_digest: binary_digest.to_string(),
        manifest_digest: staged.manifest_digest.to_string(),
        proven_by: proof.as_ref().map(|p| p.runtime.name().to_owned()),
    };
    let record_path = staged_layout.join(provenance::FILE_NAME);
    let json = serde_json::to_vec_pretty(&record)
        .map_err(|e| PipelineError::Unsupported(format!("serializing the provenance: {e}")))?;
    std::fs::write(&record_path, json).at("writing", &record_path)?;

    // The SBOMs and statements, each an artifact manifest about the image manifest.
    let nss_hazards_allowed = opts.allow_nss_hazards || recipe.nss_allowed.is_some();
    let docs = crate::supply::documents(
        &crate::supply::Input {
            bom: crate::supply::components::BomInput {
                recipe,
                toolchain: &record.inputs.toolchain,
                facts: &facts,
                source_dir: &spec.source,
                linked_packages: artifact.linked_packages.as_deref(),
                binary_sha256: binary_digest.hex(),
                manifest_sha256: staged.manifest_digest.hex(),
            },
            provenance: &record,
            verdict: &verdict,
            proof: proof.as_ref(),
            epoch: opts.epoch,
            policy: crate::supply::Policy {
                require: match requirement(recipe.build.link) {
                    Requirement::StaticPie => "static-pie",
                    _ => "static",
                },
                nss_hazards_allowed,
                platform: platform.to_string(),
                run_proof: proof.as_ref().map(|p| p.expect_exit),
            },
            passed: meets_policy(&facts, recipe.build.link, nss_hazards_allowed),
        },
        &opts.supply,
    )?;
    crate::supply::attach(
        &image::Layout::open(&staged_layout)?,
        &crate::supply::Subject {
            digest: staged.manifest_digest.clone(),
            size: staged.manifest_size,
        },
        &docs,
        opts.epoch,
    )?;

    Ok(Built {
        staging,
        report: BuildReport {
            toolchain: artifact.toolchain,
            facts,
            verdict,
            warnings,
            binary_digest,
            manifest_digest: staged.manifest_digest,
            layers: staged.layers,
            proof,
        },
        provenance: record,
    })
}

/// What the jail killed after the toolchain's steps (a recipe's commands say it themselves).
fn report_killed(ctx: &BuildContext, events: &mut dyn FnMut(Event)) {
    let killed = ctx
        .jail
        .as_ref()
        .map_or(0, |j| j.killed.load(std::sync::atomic::Ordering::Relaxed));
    if killed > 0 {
        events(Event::LeftRunning {
            command: None,
            killed,
        });
    }
}

/// A build step's progress as the pipeline's event.
fn forward(step: build::Step, events: &mut dyn FnMut(Event)) {
    match step {
        build::Step::Started {
            index,
            total,
            command,
        } => events(Event::Command {
            index,
            total,
            command,
        }),
        build::Step::Finished {
            index,
            total,
            elapsed,
        } => events(Event::CommandDone {
            index,
            total,
            elapsed,
        }),
        build::Step::Compiled { compiled, reused } => events(Event::Compiled { compiled, reused }),
        build::Step::CacheRejected { entry, reason } => {
            events(Event::CacheRejected { entry, reason })
        }
        build::Step::LeftRunning {
            index,
            total,
            killed,
        } => events(Event::LeftRunning {
            command: Some((index, total)),
            killed: u64::from(killed),
        }),
    }
}

/// The spec a toolchain builds (an archive source verified and unpacked into `build_dir/src`)
/// and the jail its steps run in.
fn toolchain_setup(
    recipe: &Recipe,
    opts: &BuildOptions,
    build_dir: &Path,
    events: &mut dyn FnMut(Event),
) -> Result<(BuildSpec, Option<run::JailSpec>), PipelineError> {
    // An archive is verified and unpacked into the build folder before any toolchain runs; the
    // toolchain then builds from there as from a source folder.
    let spec = match &recipe.build.archive {
        Some(archive) => {
            let unpacked = build_dir.join("src");
            events(Event::Unpacking { archive });
            crate::source::materialize(
                archive,
                &unpacked,
                &crate::source::SourceOptions {
                    cache_dir: opts.shared_cache.as_ref().map(|c| c.sources()),
                    ..Default::default()
                },
            )?;
            let mut spec = recipe.build.clone();
            spec.source = unpacked;
            crate::recipe::check_unpacked(&mut spec)
                .map_err(|e| PipelineError::Source(crate::source::SourceError::Layout(e)))?;
            spec
        }
        None => recipe.build.clone(),
    };
    // Toolchain steps see the recipe's declared inputs and write only the build folder.
    let jail = match run::jail_available() {
        Ok(()) => {
            let limits = run::JailLimits::from_now(
                recipe.build.timeout_seconds,
                opts.max_build_processes,
                opts.max_build_bytes,
            );
            events(Event::JailLimits {
                timeout_seconds: limits.timeout_seconds,
                max_processes: limits.max_processes,
                max_bytes: limits.max_bytes,
                mechanism: run::limits_mechanism(),
            });
            let mut jail = run::JailSpec::new(build_dir.to_path_buf(), limits);
            jail.inputs = vec![recipe.dir.clone(), spec.source.clone()];
            jail.inputs.extend(recipe.allow_outside.iter().cloned());
            jail.writable = build::writable_caches(&recipe.build, opts.shared_cache.as_ref())?;
            Some(jail)
        }
        Err(reason) => {
            events(Event::Unjailed(&reason));
            None
        }
    };
    Ok((spec, jail))
}

/// Turns verify's findings into a decision: errors refuse the binary (unless allowed), and so
/// does a static glibc binary that reaches NSS (unless allowed); other warnings are returned.
fn judge(
    facts: &ElfFacts,
    recipe: &Recipe,
    opts: &BuildOptions,
    verdict: &str,
    events: &mut dyn FnMut(Event),
) -> Result<Vec<Finding>, PipelineError> {
    // A binary for another CPU cannot start at all: refused whatever else is allowed.
    let platform = &recipe.build.platform;
    if let Some(wrong) = verify::check_platform(facts, platform.oci_arch(), &platform.to_string()) {
        return Err(PipelineError::Refused {
            verdict: verdict.to_owned(),
            findings: vec![wrong],
        });
    }
    let asked = match recipe.build.libc {
        LibcChoice::Musl => verify::Libc::Musl,
        LibcChoice::Glibc => verify::Libc::Glibc,
        LibcChoice::None => verify::Libc::None,
    };
    if !matches!(recipe.build.lang, crate::recipe::LangSpec::Prebuilt) {
        if let Some(wrong) = verify::check_libc(facts, asked) {
            return Err(PipelineError::Refused {
                verdict: verdict.to_owned(),
                findings: vec![wrong],
            });
        }
    }
    let require = requirement(recipe.build.link);
    let findings = verify::diagnose(facts, require);
    if let Some(reason) = &recipe.nss_allowed {
        if findings.iter().any(|f| f.code == NSS_HAZARD) {
            events(Event::NssAllowed {
                reason,
                hazards: &facts.nss_hazards,
            });
        }
    }
    let (errors, warnings): (Vec<Finding>, Vec<Finding>) = verify::apply_nss_rule(
        findings,
        require,
        opts.allow_nss_hazards || recipe.nss_allowed.is_some(),
        "or set allow_nss_hazards = true with a reason in the recipe's [build], or pass --allow-nss-hazards, to pack it anyway",
    )
    .into_iter()
    .partition(|f| f.severity == Severity::Error);
    for w in &warnings {
        events(Event::Warning(w));
    }
    if errors.is_empty() {
        return Ok(warnings);
    }
    if opts.allow_dynamic && errors.iter().all(|e| e.code != NSS_HAZARD) {
        for e in &errors {
            events(Event::Allowed(e));
        }
        return Ok(warnings);
    }
    Err(PipelineError::Refused {
        verdict: verdict.to_owned(),
        findings: errors,
    })
}

use verify::NSS_HAZARD;

/// Whether the binary meets the recipe's requirement with no refusing finding: false for one
/// that `--allow-dynamic` packed anyway (the verification summary then says FAILED).
fn meets_policy(facts: &ElfFacts, link: LinkMode, nss_hazards_allowed: bool) -> bool {
    let require = requirement(link);
    verify::apply_nss_rule(
        verify::diagnose(facts, require),
        require,
        nss_hazards_allowed,
        "",
    )
    .iter()
    .all(|f| f.severity != Severity::Error)
}

/// A binary without a libc fingerprint was still linked by us: its libc is the one we linked
/// (never said of a prebuilt binary).
fn linked_libc_fallback(facts: &mut ElfFacts, recipe: &Recipe) {
    let linked = match recipe.build.libc {
        LibcChoice::Musl => Some(verify::Libc::Musl),
        LibcChoice::Glibc => Some(verify::Libc::Glibc),
        LibcChoice::None => None,
    };
    if let (verify::Libc::Unknown, Some(libc), false) = (
        facts.libc,
        linked,
        matches!(recipe.build.lang, crate::recipe::LangSpec::Prebuilt),
    ) {
        facts.libc = libc;
        facts
            .libc_evidence
            .push(format!("the recipe linked {}", recipe.build.libc));
    }
}

fn requirement(link: LinkMode) -> Requirement {
    match link {
        LinkMode::StaticPie => Requirement::StaticPie,
        // A dynamic recipe is still held to "static": nothing in a scratch image can load it.
        LinkMode::Static | LinkMode::Dynamic => Requirement::Static,
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The org.opencontainers.image.* annotations staticpack knows, under the recipe's own.
fn standard_annotations(recipe: &Recipe, epoch: u64) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    a.insert(
        "org.opencontainers.image.title".to_owned(),
        recipe.name.clone(),
    );
    a.insert(
        "org.opencontainers.image.created".to_owned(),
        image::config::rfc3339(epoch),
    );
    // A built-in base is named; a folder (`base = "./mybase"`) is no image reference, and
    // `staticpack/./mybase` would read as one.
    if recipe.image.base != "scratch" && !image::base::is_path_reference(&recipe.image.base) {
        a.insert(
            "org.opencontainers.image.base.name".to_owned(),
            format!("staticpack/{}", recipe.image.base),
        );
    }
    for key in [
        "source",
        "revision",
        "version",
        "description",
        "url",
        "licenses",
        "vendor",
        "authors",
    ] {
        let full = format!("org.opencontainers.image.{key}");
        if let Some(v) = recipe.image.settings.labels.get(&full) {
            a.insert(full, v.clone());
        }
    }
    a.extend(recipe.image.settings.annotations.clone());
    a
}

/// The recipe's extra files and its symlinks: both change seldom, unlike the binary above.
fn files_layer(recipe: &Recipe, epoch: u64) -> LayerSpec {
    let files = recipe.image.files.iter().map(|f| LayerEntry {
        path: f.dst.trim_start_matches('/').to_owned(),
        mode: f.mode,
        uid: f.uid,
        gid: f.gid,
        kind: EntryKind::File(FileSource::Path(f.src.clone())),
    });
    let links = recipe.image.symlinks.iter().map(|l| LayerEntry {
        path: l.path.trim_start_matches('/').to_owned(),
        mode: 0o777,
        uid: 0,
        gid: 0,
        kind: EntryKind::Symlink(l.target.clone()),
    });
    let names: Vec<String> = (recipe.image.files.iter().map(|f| f.dst.clone()))
        .chain((recipe.image.symlinks.iter()).map(|l| format!("{} -> {}", l.path, l.target)))
        .collect();
    LayerSpec {
        entries: files.chain(links).collect(),
        mtime: epoch,
        comment: format!("staticpack: {} files ({})", recipe.name, names.join(", ")),
    }
}

/// One entry of an `install = true` tree.
struct Installed {
    /// Relative to the tree, as in the layer ("usr/bin/jq").
    rel: String,
    path: PathBuf,
    kind: EntryKind,
    mode: u32,
}

/// Everything under the `$DESTDIR` tree, sorted; a fifo, socket or device is refused.
fn installed_entries(tree: &Path) -> Result<Vec<Installed>, PipelineError> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).at("reading", &dir)? {
            let e = e.at("reading", &dir)?;
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).at("reading", &path)?;
            let rel = path
                .strip_prefix(tree)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let kind = if meta.is_dir() {
                stack.push(path.clone());
                EntryKind::Dir
            } else if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).at("reading the link", &path)?;
                EntryKind::Symlink(target.to_string_lossy().into_owned())
            } else if meta.is_file() {
                EntryKind::File(FileSource::Path(path.clone()))
            } else {
                return Err(PipelineError::Unsupported(format!(
                    "/{rel}, installed under $DESTDIR, is not a file, folder or symlink"
                )));
            };
            out.push(Installed {
                rel,
                path,
                kind,
                mode: meta.permissions().mode() & 0o7777,
            });
        }
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

/// Verifies every ELF file of the tree as the single binary would be, naming the one refused;
/// the report describes the entrypoint's binary (or, when the entrypoint is not an installed
/// ELF file, the first one).
fn verify_installed(
    entries: &[Installed],
    recipe: &Recipe,
    opts: &BuildOptions,
    events: &mut dyn FnMut(Event),
) -> Result<(ElfFacts, String, Vec<Finding>, Digest), PipelineError> {
    let entry = (recipe.image.settings.entrypoint.first())
        .map(|e| e.trim_start_matches('/').to_owned())
        .unwrap_or_default();
    let mut chosen = None;
    let mut all_warnings = Vec::new();
    for e in entries {
        let Some((facts, verdict, warnings, digest)) =
            verify_installed_elf(e, recipe, opts, events)?
        else {
            continue;
        };
        all_warnings.extend(warnings);
        if chosen.is_none() || e.rel == entry {
            chosen = Some((facts, verdict, digest));
        }
    }
    let (facts, verdict, digest) = chosen.ok_or_else(|| {
        PipelineError::Unsupported(
            "install = true, but no ELF file was installed under $DESTDIR".into(),
        )
    })?;
    Ok((facts, verdict, all_warnings, digest))
}

/// An installed ELF file's facts, verdict, warnings and digest.
type VerifiedElf = (ElfFacts, String, Vec<Finding>, Digest);

/// The sha256 of a file, streamed.
fn digest_file(path: &Path) -> Result<Digest, PipelineError> {
    std::fs::File::open(path)
        .and_then(|mut f| Digest::of_reader(&mut f))
        .at("hashing", path)
        .map_err(Into::into)
}

/// Verifies one installed file when it is an ELF file (`None` when it is not), telling its
/// verdict; one the recipe's rules refuse fails the build, named. Its digest comes back, for
/// the caller that needs its digest.
fn verify_installed_elf(
    e: &Installed,
    recipe: &Recipe,
    opts: &BuildOptions,
    events: &mut dyn FnMut(Event),
) -> Result<Option<VerifiedElf>, PipelineError> {
    if !matches!(e.kind, EntryKind::File(_)) {
        return Ok(None);
    }
    let map = verify::mapped::Mapped::open(&e.path).at("reading", &e.path)?;
    if !map.bytes().starts_with(b"\x7fELF") {
        return Ok(None);
    }
    let path = format!("/{}", e.rel);
    let facts = verify::analyze_mapped(&map).map_err(|source| PipelineError::VerifyInstalled {
        path: path.clone(),
        source,
    })?;
    let verdict = verify::summary(&facts);
    events(Event::VerifiedInstalled {
        path: &path,
        verdict: &verdict,
    });
    match judge(&facts, recipe, opts, &verdict, events) {
        Ok(warnings) => Ok(Some((facts, verdict, warnings, digest_file(&e.path)?))),
        Err(PipelineError::Refused { verdict, findings }) => Err(PipelineError::RefusedInstalled {
            path,
            verdict,
            findings,
        }),
        Err(other) => Err(other),
    }
}

/// The installed tree as the application layer: modes kept, owned by root, the epoch's mtime.
fn installed_layer(recipe: &Recipe, entries: &[Installed], epoch: u64) -> LayerSpec {
    LayerSpec {
        entries: entries
            .iter()
            .map(|e| LayerEntry {
                path: e.rel.clone(),
                mode: e.mode,
                uid: 0,
                gid: 0,
                kind: e.kind.clone(),
            })
            .collect(),
        mtime: epoch,
        comment: format!(
            "staticpack: {} installed tree ({} entries)",
            recipe.name,
            entries.len()
        ),
    }
}

fn app_layer(recipe: &Recipe, artifact: &Artifact, epoch: u64) -> LayerSpec {
    LayerSpec {
        entries: vec![LayerEntry {
            path: recipe.build.output.trim_start_matches('/').to_owned(),
            mode: 0o755,
            uid: 0,
            gid: 0,
            kind: EntryKind::File(FileSource::Path(artifact.binary.clone())),
        }],
        mtime: epoch,
        comment: format!("staticpack: {} binary {}", recipe.name, recipe.build.output),
    }
}

fn image_meta(
    recipe: &Recipe,
    architecture: String,
    epoch: u64,
    index_annotations: BTreeMap<String, String>,
) -> ImageMeta {
    let img = &recipe.image;
    let mut env = img.settings.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, "PATH=/usr/local/bin:/usr/bin:/bin".to_owned());
    }
    ImageMeta {
        os: "linux".into(),
        architecture,
        variant: None,
        entrypoint: img.settings.entrypoint.clone(),
        cmd: img.settings.cmd.clone(),
        env,
        user: img.user.as_ref().map(ToString::to_string),
        workdir: img.settings.workdir.clone(),
        labels: img.settings.labels.clone(),
        exposed_ports: img.settings.ports.clone(),
        stop_signal: img.settings.stop_signal.clone(),
        index_annotations,
        created_epoch: epoch,
        compression: img.settings.compression,
    }
}

/// Runs the image in an empty root and checks the `[test]` expectations.
fn prove(
    layout: &Path,
    tag: &str,
    test: &TestSpec,
    runtime: Runtime,
    run_image: RunImage,
    events: &mut dyn FnMut(Event),
) -> Result<Proof, PipelineError> {
    let loaded = image::read_image(layout, Some(tag))?;
    // No [test] args means the image's own Cmd, as `docker run IMAGE` would.
    let args = (!test.args.is_empty()).then_some(test.args.as_slice());
    let outcome = run_image(
        &loaded,
        args,
        &run::RunOptions {
            read_only: test.read_only,
            ..run::RunOptions::new(runtime, Duration::from_secs(test.timeout_seconds))
        },
    )?;
    let problems = check_outcome(&outcome, test);
    if !problems.is_empty() {
        return Err(PipelineError::ProofFailed {
            problems,
            outcome: Box::new(outcome),
        });
    }
    let proof = Proof {
        runtime,
        expect_exit: test.expect_exit,
        rootfs_files: outcome.rootfs_files,
        libc_files: outcome.libc_files.clone(),
        outcome,
    };
    events(Event::Proven(&proof));
    Ok(proof)
}

/// What differs between the outcome and the recipe's expectations; empty when it passed.
pub fn check_outcome(o: &Outcome, test: &TestSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(e) = &o.exec_error {
        problems.push(format!("the entrypoint could not start: {e}"));
        return problems;
    }
    if o.timed_out {
        problems.push(format!(
            "still running after {} s: killed (raise [test] timeout_seconds if it needs longer)",
            test.timeout_seconds
        ));
        return problems;
    }
    match (o.exit_code, o.signal) {
        (Some(c), _) if c != test.expect_exit => {
            problems.push(format!("exit code {c}, expected {}", test.expect_exit))
        }
        (None, Some(sig)) => problems.push(format!(
            "killed by signal {sig} ({})",
            run::signal_meaning(sig)
        )),
        // No status at all proves nothing (and `run` calls it an error).
        (None, None) => problems.push("the entrypoint ended without an exit status".to_owned()),
        _ => {}
    }
    if let Some(want) = &test.expect_stdout {
        let got = String::from_utf8_lossy(&o.stdout);
        if !stdout_matches(&got, want) {
            problems.push(format!("stdout {:?}, expected {:?}", got, want));
        }
    }
    problems
}

/// Exact match, but a single trailing newline the recipe did not write is forgiven.
fn stdout_matches(got: &str, want: &str) -> bool {
    got == want || (!want.ends_with('\n') && got.strip_suffix('\n') == Some(want))
}

#[cfg(test)]
mod tests {
    #[test]
    fn source_date_epoch_out_of_range_is_refused() {
        assert_eq!(super::parse_epoch(" 1700000000\n").unwrap(), 1_700_000_000);
        assert_eq!(super::parse_epoch("253402300799").unwrap(), 253_402_300_799);
        for bad in ["99999999999999", "253402300800", "-1", "yesterday", "1.5"] {
            let e = super::parse_epoch(bad).unwrap_err();
            assert!(e.to_string().starts_with("SOURCE_DATE_EPOCH="), "{e}");
        }
    }

    use super::*;

    fn outcome(exit: Option<i32>, stdout: &str) -> Outcome {
        Outcome {
            runtime: Runtime::Builtin,
            exit_code: exit,
            signal: None,
            stdout: stdout.as_bytes().to_vec(),
            stderr: vec![],
            exec_error: None,
            rootfs_files: 1,
            libc_files: vec![],
            timed_out: false,
            output_truncated: false,
            emulation: None,
        }
    }

    fn test_spec(exit: i32, stdout: Option<&str>) -> TestSpec {
        TestSpec {
            args: vec![],
            expect_exit: exit,
            expect_stdout: stdout.map(str::to_owned),
            timeout_seconds: 5,
            read_only: false,
        }
    }

    #[test]
    fn outcome_checks() {
        assert!(check_outcome(&outcome(Some(0), "ok\n"), &test_spec(0, Some("ok"))).is_empty());
        assert!(check_outcome(&outcome(Some(0), "ok\n"), &test_spec(0, Some("ok\n"))).is_empty());
        assert_eq!(
            check_outcome(&outcome(Some(1), "ok\n"), &test_spec(0, None)),
            vec!["exit code 1, expected 0"]
        );
        assert_eq!(
            check_outcome(&outcome(Some(0), "ko\n"), &test_spec(0, Some("ok"))),
            vec!["stdout \"ko\\n\", expected \"ok\""]
        );
        let mut o = outcome(None, "");
        o.exec_error = Some("exec /hello: No such file or directory".into());
        assert_eq!(
            check_outcome(&o, &test_spec(0, None)),
            vec!["the entrypoint could not start: exec /hello: No such file or directory"]
        );
    }

    #[test]
    fn an_outcome_without_a_status_does_not_pass_the_proof() {
        assert_eq!(
            check_outcome(&outcome(None, "ok\n"), &test_spec(0, Some("ok"))),
            vec!["the entrypoint ended without an exit status"]
        );
    }

    #[test]
    fn a_folder_base_is_not_named_as_an_image_reference() {
        let dir = tempfile::tempdir().unwrap();
        let mut recipe = recipe_in(dir.path());
        let base_name = |r: &Recipe| {
            standard_annotations(r, 0)
                .get("org.opencontainers.image.base.name")
                .cloned()
        };
        assert_eq!(base_name(&recipe), None);
        recipe.image.base = "static".to_owned();
        assert_eq!(base_name(&recipe).as_deref(), Some("staticpack/static"));
        for folder in ["./mybase", "../bases/mine", "bases/mine"] {
            recipe.image.base = folder.to_owned();
            assert_eq!(base_name(&recipe), None, "{folder}");
        }
    }

    /// A minimal x86-64 ELF executable: one PT_LOAD, and a PT_INTERP when `interp` is given.
    fn elf(interp: Option<&str>) -> Vec<u8> {
        elf_for(goblin::elf::header::EM_X86_64, interp)
    }

    /// [`elf`] for another machine.
    fn elf_for(machine: u16, interp: Option<&str>) -> Vec<u8> {
        let phnum: u16 = if interp.is_some() { 2 } else { 1 };
        let data_at = 64 + 56 * u64::from(phnum);
        let mut b = vec![0x7f, b'E', b'L', b'F', 2, 1, 1];
        b.resize(16, 0);
        b.extend(2u16.to_le_bytes()); // ET_EXEC
        b.extend(machine.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(0x400000u64.to_le_bytes()); // entry
        b.extend(64u64.to_le_bytes()); // phoff
        b.extend(0u64.to_le_bytes()); // shoff
        b.extend(0u32.to_le_bytes());
        b.extend(64u16.to_le_bytes());
        b.extend(56u16.to_le_bytes());
        b.extend(phnum.to_le_bytes());
        b.extend([0u8; 6]);
        let phdr = |b: &mut Vec<u8>, kind: u32, flags: u32, off: u64, size: u64| {
            b.extend(kind.to_le_bytes());
            b.extend(flags.to_le_bytes());
            b.extend(off.to_le_bytes());
            b.extend((0x400000 + off).to_le_bytes());
            b.extend((0x400000 + off).to_le_bytes());
            b.extend(size.to_le_bytes());
            b.extend(size.to_le_bytes());
            b.extend(0x1000u64.to_le_bytes());
        };
        let payload = interp.map(|i| format!("{i}\0")).unwrap_or_default();
        if interp.is_some() {
            phdr(&mut b, 3, 4, data_at, payload.len() as u64);
        }
        phdr(&mut b, 1, 5, 0, data_at + payload.len() as u64);
        b.extend(payload.as_bytes());
        b
    }

    /// Writes the binary it was given; counts its calls.
    struct FakeCompiler {
        binary: Vec<u8>,
        calls: std::cell::Cell<usize>,
    }

    impl FakeCompiler {
        fn compile(&self, _: &BuildSpec, ctx: &BuildContext) -> Result<Artifact, BuildError> {
            self.calls.set(self.calls.get() + 1);
            let binary = ctx.build_dir.join("app");
            std::fs::write(&binary, &self.binary).unwrap();
            Ok(Artifact {
                binary,
                toolchain: "fake".into(),
                commands: vec![],
                environment: BTreeMap::new(),
                installed: None,
                linked_packages: None,
            })
        }
    }

    struct FakeRunner(i32);

    impl FakeRunner {
        fn run(
            &self,
            _: &LoadedImage,
            _: Option<&[String]>,
            _: &crate::run::RunOptions,
        ) -> Result<Outcome, RunError> {
            Ok(outcome(Some(self.0), ""))
        }
    }

    fn recipe_in(dir: &Path) -> Recipe {
        std::fs::write(dir.join("app"), elf(None)).unwrap();
        std::fs::write(
            dir.join("recipe.toml"),
            "name = \"fake\"\n[build]\nlang = \"prebuilt\"\nsource = \"app\"\nlink = \"static\"\noutput = \"/app\"\n\
             [image]\nbase = \"scratch\"\nentrypoint = [\"/app\"]\n[test]\nexpect_exit = 0\n",
        )
        .unwrap();
        crate::recipe::load(dir).unwrap()
    }

    /// A folder with the fake recipe, and the layout folder publisher for `out/fake` in it.
    fn setup() -> (tempfile::TempDir, Recipe, PathBuf, publish::LayoutDir) {
        let d = tempfile::tempdir().unwrap();
        let r = recipe_in(d.path());
        let out = d.path().join("out/fake");
        let layout = publish::LayoutDir { out: out.clone() };
        (d, r, out, layout)
    }

    fn fake(binary: Vec<u8>) -> FakeCompiler {
        FakeCompiler {
            binary,
            calls: std::cell::Cell::new(0),
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A build with the fakes, its events ignored.
    fn quietly(
        recipe: &Recipe,
        opts: &BuildOptions,
        publishers: &[&dyn Publisher],
        compiler: &FakeCompiler,
        runner: &FakeRunner,
    ) -> Result<BuildResult, PipelineError> {
        with_events(recipe, opts, publishers, compiler, runner, &mut |_| {})
    }

    fn with_events(
        recipe: &Recipe,
        opts: &BuildOptions,
        publishers: &[&dyn Publisher],
        compiler: &FakeCompiler,
        runner: &FakeRunner,
        events: &mut dyn FnMut(Event),
    ) -> Result<BuildResult, PipelineError> {
        let tools = Tools {
            compile: &|spec, ctx, _| compiler.compile(spec, ctx),
            run_image: &|image, args, opts| runner.run(image, args, opts),
        };
        build_and_publish_with(recipe, opts, publishers, tools, events)
    }

    fn modified(path: &Path) -> std::time::SystemTime {
        std::fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn a_binary_without_a_libc_fingerprint_gets_the_libc_the_recipe_linked() {
        let (_d, mut r, _out, layout) = setup();
        r.build.libc = LibcChoice::Musl;
        let libc_of = |r: &Recipe| {
            let opts = BuildOptions {
                cache: false,
                ..BuildOptions::default()
            };
            match quietly(r, &opts, &[&layout], &fake(elf(None)), &FakeRunner(0)).unwrap() {
                BuildResult::Built { report, .. } => {
                    (report.facts.libc, report.facts.libc_evidence)
                }
                _ => panic!("not built"),
            }
        };
        // A prebuilt binary says nothing of its libc by being in a recipe.
        assert_eq!(libc_of(&r).0, verify::Libc::Unknown);
        r.build.lang = crate::recipe::LangSpec::C(crate::recipe::CBuild {
            files: vec!["app.c".into()],
            ..Default::default()
        });
        r.build.source = r.dir.clone();
        let (libc, evidence) = libc_of(&r);
        assert_eq!(libc, verify::Libc::Musl);
        assert_eq!(
            evidence.last().map(String::as_str),
            Some("the recipe linked musl")
        );
    }

    #[test]
    fn the_cache_skips_the_compiler_and_rewrites_nothing() {
        let (_d, r, out, layout) = setup();
        let compiler = fake(elf(None));
        let opts = BuildOptions::default();
        let first = quietly(&r, &opts, &[&layout], &compiler, &FakeRunner(0)).unwrap();
        assert!(matches!(first, BuildResult::Built { .. }));
        let index_time = modified(&out.join("index.json"));
        let second = quietly(&r, &opts, &[&layout], &compiler, &FakeRunner(0)).unwrap();
        assert!(matches!(second, BuildResult::UpToDate { .. }));
        assert_eq!(first.manifest_digest(), second.manifest_digest());
        assert_eq!(compiler.calls.get(), 1);
        assert_eq!(modified(&out.join("index.json")), index_time);
        // A damaged record is a miss that says why, then a fresh build.
        std::fs::write(out.join(provenance::FILE_NAME), "{").unwrap();
        let mut reasons = Vec::new();
        with_events(&r, &opts, &[&layout], &compiler, &FakeRunner(0), &mut |e| {
            if let Event::CacheMiss { reason } = e {
                reasons.push(reason)
            }
        })
        .unwrap();
        assert_eq!(compiler.calls.get(), 2);
        assert!(reasons[0].contains("is damaged"), "{reasons:?}");
    }

    #[test]
    fn a_refused_binary_publishes_nothing() {
        let (d, r, _out, layout) = setup();
        let compiler = fake(elf(Some("/lib64/ld-linux-x86-64.so.2")));
        let e = quietly(
            &r,
            &BuildOptions::default(),
            &[&layout],
            &compiler,
            &FakeRunner(0),
        )
        .err()
        .unwrap();
        assert!(matches!(e, PipelineError::Refused { .. }), "{e}");
        assert!(
            !d.path().join("out").exists(),
            "the output folder was left behind"
        );
    }

    #[test]
    fn a_failed_proof_leaves_the_previous_layout_untouched() {
        let (d, r, out, layout) = setup();
        let opts = BuildOptions {
            cache: false,
            ..Default::default()
        };
        quietly(&r, &opts, &[&layout], &fake(elf(None)), &FakeRunner(0)).unwrap();
        let before = std::fs::read(out.join("index.json")).unwrap();
        // Another binary, whose proof fails.
        let mut other = elf(None);
        other.extend(b"other");
        let e = quietly(&r, &opts, &[&layout], &fake(other), &FakeRunner(3))
            .err()
            .unwrap();
        assert!(e.to_string().contains("exit code 3, expected 0"), "{e}");
        assert_eq!(std::fs::read(out.join("index.json")).unwrap(), before);
        assert_eq!(
            names(&d.path().join("out")),
            vec!["fake"],
            "staging left behind"
        );
    }

    #[test]
    fn one_build_feeds_a_layout_and_an_archive() {
        let d = tempfile::tempdir().unwrap();
        let r = recipe_in(d.path());
        let out = d.path().join("out/fake");
        let tar = d.path().join("out/fake.oci.tar");
        let archive = publish::Archive {
            out: tar.clone(),
            format: image::archive::ArchiveFormat::Oci,
        };
        let layout = publish::LayoutDir { out: out.clone() };
        let mut published = Vec::new();
        // The archive is listed first, but the layout folder is published first and the
        // archive is made from it where it now is.
        let result = with_events(
            &r,
            &BuildOptions::default(),
            &[&archive, &layout],
            &fake(elf(None)),
            &FakeRunner(0),
            &mut |e| {
                if let Event::Published(p) = e {
                    published.push(format!("{p:?}"))
                }
            },
        )
        .unwrap();
        assert!(published[0].starts_with("Layout"), "{published:?}");
        assert!(published[1].starts_with("Archive"), "{published:?}");
        assert!(tar.is_file());
        assert_eq!(
            image::read_image(&out, None).unwrap().manifest_digest,
            *result.manifest_digest()
        );
        assert_eq!(names(&d.path().join("out")), vec!["fake", "fake.oci.tar"]);
    }

    /// Builds the fake recipe for linux/arm64 and linux/amd64, each binary for the machine
    /// `machine_of` gives its platform.
    fn build_both(
        out: &Path,
        r: &Recipe,
        calls: &std::cell::Cell<usize>,
        machine_of: &dyn Fn(&crate::recipe::Platform) -> u16,
    ) -> Result<BuildResult, PipelineError> {
        let layout = publish::LayoutDir {
            out: out.to_path_buf(),
        };
        let tools = Tools {
            compile: &|spec, ctx, _| {
                calls.set(calls.get() + 1);
                let binary = ctx.build_dir.join("app");
                std::fs::write(&binary, elf_for(machine_of(&spec.platform), None)).unwrap();
                Ok(Artifact {
                    binary,
                    toolchain: format!("fake for {}", spec.platform),
                    commands: vec![],
                    environment: BTreeMap::new(),
                    installed: None,
                    linked_packages: None,
                })
            },
            run_image: &|image, args, opts| FakeRunner(0).run(image, args, opts),
        };
        build_and_publish_with(r, &BuildOptions::default(), &[&layout], tools, &mut |_| {})
    }

    #[test]
    fn several_platforms_make_one_index_that_the_cache_finds() {
        let (_d, mut r, out, _) = setup();
        let (amd64, arm64): (crate::recipe::Platform, crate::recipe::Platform) = (
            "linux/amd64".parse().unwrap(),
            "linux/arm64".parse().unwrap(),
        );
        r.build.set_platforms(&[arm64.clone(), amd64.clone()]);
        let calls = std::cell::Cell::new(0);
        let first = build_both(&out, &r, &calls, &|p| p.elf_machine()).unwrap();
        let BuildResult::BuiltIndex {
            index_digest,
            platforms,
            ..
        } = &first
        else {
            panic!("not an index build")
        };
        assert_eq!(calls.get(), 2);
        // Sorted by platform, whatever order they were named in.
        let names: Vec<String> = platforms.iter().map(|p| p.platform.to_string()).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64"]);
        let layout = image::Layout::open(&out).unwrap();
        let selected = layout.select(Some("latest")).unwrap();
        assert!(selected.root.is_index());
        assert_eq!(selected.digest(), index_digest);
        for (child, p) in selected.root.children.iter().zip(platforms) {
            assert_eq!(child.digest, p.report.manifest_digest);
            let platform = child.platform.as_ref().unwrap();
            assert_eq!(platform.architecture().to_string(), p.platform.oci_arch());
            let loaded = layout.load_platform(None, Some(&p.platform)).unwrap();
            assert_eq!(loaded.manifest_digest, p.report.manifest_digest);
            // Each platform's SBOMs and statements are about its own manifest.
            let referrers = crate::supply::referrers(&layout, &child.digest).unwrap();
            assert_eq!(referrers.len(), 5, "{referrers:?}");
        }
        // One record, each platform's toolchain in it.
        let record: IndexProvenance =
            serde_json::from_slice(&std::fs::read(out.join(provenance::FILE_NAME)).unwrap())
                .unwrap();
        assert_eq!(record.manifest_digest, index_digest.to_string());
        assert_eq!(
            record.platforms.keys().collect::<Vec<_>>(),
            ["linux/amd64", "linux/arm64"]
        );
        // The same inputs: a cache hit on the index, nothing compiled.
        let again = build_both(&out, &r, &calls, &|p| p.elf_machine()).unwrap();
        assert!(matches!(again, BuildResult::UpToDate { .. }));
        assert_eq!(again.manifest_digest(), index_digest);
        assert_eq!(calls.get(), 2);
    }

    #[test]
    fn one_refused_platform_publishes_nothing() {
        let (d, mut r, out, layout) = setup();
        let opts = BuildOptions::default();
        quietly(&r, &opts, &[&layout], &fake(elf(None)), &FakeRunner(0)).unwrap();
        let before = std::fs::read(out.join("index.json")).unwrap();
        r.build.set_platforms(&[
            "linux/amd64".parse().unwrap(),
            "linux/arm64".parse().unwrap(),
        ]);
        // An x86-64 binary for both: the arm64 image is refused, after the amd64 one was built.
        let calls = std::cell::Cell::new(0);
        let e = build_both(&out, &r, &calls, &|_| goblin::elf::header::EM_X86_64)
            .err()
            .unwrap();
        assert_eq!(calls.get(), 2);
        match &e {
            PipelineError::Platform { platform, source } => {
                assert_eq!(platform, "linux/arm64");
                assert!(
                    matches!(**source, PipelineError::Refused { .. }),
                    "{source}"
                );
            }
            other => panic!("{other}"),
        }
        assert_eq!(std::fs::read(out.join("index.json")).unwrap(), before);
        assert_eq!(
            names(&d.path().join("out")),
            vec!["fake"],
            "staging left behind"
        );
    }
}
