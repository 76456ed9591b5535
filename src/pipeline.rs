//! The whole pipeline for one recipe: build → verify → layers → image → run proof → publish.
//! Each stage is its own module; this one only wires them and decides what counts as failure.

use crate::build::{self, Artifact, BuildContext, BuildError};
use crate::image::{
    self, EntryKind, FileSource, ImageError, ImageMeta, ImageOutput, LayerEntry, LayerSpec,
};
use crate::provenance;
use crate::recipe::{Epoch, LinkMode, Recipe, TestSpec};
use crate::run::{self, Outcome, RunError, Runtime};
use crate::verify::{self, ElfFacts, Finding, Requirement, Severity, VerifyError};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("build failed")]
    Build(#[from] BuildError),
    #[error("cannot verify the built binary {path}")]
    Verify {
        path: PathBuf,
        #[source]
        source: VerifyError,
    },
    #[error("{}", refusal(.verdict, .findings))]
    Refused {
        verdict: String,
        findings: Vec<Finding>,
    },
    #[error("image assembly failed")]
    Image(#[from] ImageError),
    #[error("base image")]
    Base(#[from] image::base::BaseError),
    #[error("collecting the build's inputs")]
    Inputs(#[from] provenance::ProvenanceError),
    #[error("the run proof could not run")]
    Run(#[from] RunError),
    #[error("the run proof failed: {}\n{}", .problems.join("; "), show_outcome(.outcome))]
    ProofFailed {
        problems: Vec<String>,
        outcome: Box<Outcome>,
    },
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Unsupported(String),
}

fn refusal(verdict: &str, findings: &[Finding]) -> String {
    let mut s = format!("verify refused the binary: it is {verdict}");
    for f in findings.iter().filter(|f| f.severity == Severity::Error) {
        s.push_str(&format!(
            "\n  problem: {}\n  why:     {}\n  fix:     {}",
            f.what, f.why, f.fix
        ));
    }
    s
}

fn show_outcome(o: &Outcome) -> String {
    // The exec error, if any, is already among the problems.
    let mut s = String::new();
    match (o.exit_code, o.signal) {
        (Some(c), _) => s.push_str(&format!("  exit code: {c}\n")),
        (None, Some(sig)) => s.push_str(&format!("  killed by signal {sig}\n")),
        _ => {}
    }
    for (name, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        if !bytes.is_empty() {
            s.push_str(&format!(
                "  {name}: {}\n",
                String::from_utf8_lossy(bytes).trim_end()
            ));
        }
    }
    s.trim_end().to_owned()
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// Where the OCI layout goes; default `out/<name>`.
    pub out: Option<PathBuf>,
    /// Run the `[test]` proof (default on).
    pub run: bool,
    pub runtime: Runtime,
    /// Pack a dynamic binary anyway (to watch the proof fail with the real error).
    pub allow_dynamic: bool,
    /// Pack a static glibc binary that loads NSS modules at run time.
    pub allow_nss_hazards: bool,
    /// Reuse the image in `out` when the inputs are unchanged.
    pub cache: bool,
    /// SOURCE_DATE_EPOCH for tar mtimes, `created` and the toolchain.
    pub epoch: u64,
    pub format: OutputFormat,
}

/// What `out` becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// An OCI image layout folder.
    Oci,
    /// That folder as one tar file (skopeo's `oci-archive:`).
    OciArchive,
    /// A tar that `docker load` and `podman load` take (and that is also an OCI layout).
    DockerArchive,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            out: None,
            run: true,
            runtime: Runtime::Builtin,
            allow_dynamic: false,
            allow_nss_hazards: false,
            cache: true,
            epoch: 0,
            format: OutputFormat::Oci,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Proof {
    pub outcome: Outcome,
    /// Files the root held; it had no dynamic loader and no libc.so.
    pub rootfs_files: usize,
}

#[derive(Clone, Debug)]
pub struct BuildReport {
    pub artifact: Artifact,
    pub facts: ElfFacts,
    pub verdict: String,
    /// Warnings that did not stop the build.
    pub warnings: Vec<Finding>,
    pub image: ImageOutput,
    pub proof: Option<Proof>,
}

/// SOURCE_DATE_EPOCH from the environment, when set to a number.
pub fn epoch_from_env() -> Option<u64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok()
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

/// Where a recipe's image goes when `--out` is not given.
pub fn default_out(recipe: &Recipe, format: OutputFormat) -> PathBuf {
    Path::new("out").join(match format {
        OutputFormat::Oci => recipe.name.clone(),
        OutputFormat::OciArchive => format!("{}.oci.tar", recipe.name),
        OutputFormat::DockerArchive => format!("{}.docker.tar", recipe.name),
    })
}

/// What a build produced: a fresh image, or the one already in `out` (same inputs).
#[derive(Clone, Debug)]
pub enum BuildResult {
    Built(Box<BuildReport>),
    UpToDate {
        dir: PathBuf,
        tag: String,
        manifest_digest: String,
    },
}

impl BuildResult {
    pub fn manifest_digest(&self) -> String {
        match self {
            BuildResult::Built(r) => r.image.manifest_digest.to_string(),
            BuildResult::UpToDate {
                manifest_digest, ..
            } => manifest_digest.clone(),
        }
    }
    pub fn dir(&self) -> &Path {
        match self {
            BuildResult::Built(r) => &r.image.dir,
            BuildResult::UpToDate { dir, .. } => dir,
        }
    }
}

/// Everything that decides the output, digested: the cache key and the provenance's input part.
pub fn inputs(recipe: &Recipe, opts: &BuildOptions) -> Result<provenance::Inputs, PipelineError> {
    let mut options = BTreeMap::new();
    options.insert("allow_dynamic".to_owned(), opts.allow_dynamic.to_string());
    options.insert(
        "allow_nss_hazards".to_owned(),
        opts.allow_nss_hazards.to_string(),
    );
    Ok(provenance::Inputs {
        staticpack: env!("CARGO_PKG_VERSION").to_owned(),
        recipe: recipe.name.clone(),
        files: provenance::input_files(recipe)?,
        toolchain: build::toolchain_versions(&recipe.build),
        epoch: opts.epoch,
        options,
    })
}

/// The image already in `out`, when its provenance says it was built from exactly these inputs
/// and the layout still reads back with the recorded digest.
fn cached(out: &Path, tag: &str, inputs_digest: &str) -> Option<String> {
    let text = std::fs::read(out.join(provenance::FILE_NAME)).ok()?;
    let recorded: provenance::Provenance = serde_json::from_slice(&text).ok()?;
    if recorded.inputs_digest != inputs_digest {
        return None;
    }
    let loaded = image::read_image(out, Some(tag)).ok()?;
    let digest = loaded.manifest_digest.to_string();
    (digest == recorded.manifest_digest).then_some(digest)
}

/// Runs every stage for a recipe; `log` receives one line per step. With the cache on, an
/// unchanged recipe whose image is still in `out` rebuilds nothing and rewrites nothing.
pub fn build_recipe(
    recipe: &Recipe,
    opts: &BuildOptions,
    log: &mut dyn FnMut(&str),
) -> Result<BuildResult, PipelineError> {
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| default_out(recipe, opts.format));
    let inputs = inputs(recipe, opts)?;
    let inputs_digest = inputs.digest().to_string();
    // The cache reads its record from the layout folder; archives are always rebuilt.
    if opts.cache && opts.format == OutputFormat::Oci {
        if let Some(manifest_digest) = cached(&out, &recipe.image.tag, &inputs_digest) {
            log(&format!(
                "cached  inputs {inputs_digest} unchanged: nothing to do"
            ));
            return Ok(BuildResult::UpToDate {
                dir: out,
                tag: recipe.image.tag.clone(),
                manifest_digest,
            });
        }
    }
    let parent = parent_dir(&out);
    let parent_existed = parent.exists();
    let result = build_fresh(recipe, opts, &out, inputs, inputs_digest, log);
    if result.is_err() && !parent_existed {
        // Leave nothing behind: the folder we made for the output, if it stayed empty.
        let _ = std::fs::remove_dir(&parent);
    }
    result.map(|r| BuildResult::Built(Box::new(r)))
}

fn build_fresh(
    recipe: &Recipe,
    opts: &BuildOptions,
    out: &Path,
    inputs: provenance::Inputs,
    inputs_digest: String,
    log: &mut dyn FnMut(&str),
) -> Result<BuildReport, PipelineError> {
    let build_dir = tempfile::Builder::new()
        .prefix("staticpack-build-")
        .tempdir()
        .map_err(|source| PipelineError::Io {
            action: "creating a build folder in",
            path: std::env::temp_dir(),
            source,
        })?;
    let ctx = BuildContext {
        build_dir: build_dir.path().to_path_buf(),
        epoch: opts.epoch,
    };

    log(&format!(
        "build   {} ({:?}, libc {}, link {})",
        recipe.name, recipe.build.lang, recipe.build.libc, recipe.build.link
    ));
    let artifact = build::build(&recipe.build, &ctx)?;
    log(&format!("        {}", artifact.toolchain));

    let bytes = std::fs::read(&artifact.binary).map_err(|source| PipelineError::Io {
        action: "reading",
        path: artifact.binary.clone(),
        source,
    })?;
    let facts = verify::analyze(&bytes).map_err(|source| PipelineError::Verify {
        path: artifact.binary.clone(),
        source,
    })?;
    let verdict = verify::summary(&facts);
    log(&format!("verify  {verdict}"));
    let warnings = judge(&facts, recipe, opts, &verdict, log)?;

    let architecture = facts.oci_arch.clone().ok_or_else(|| {
        PipelineError::Unsupported(format!(
            "no OCI architecture for ELF machine {}",
            facts.machine
        ))
    })?;
    let base = recipe.image.base_image.clone();
    // Layers by concern, bottom up: the base (byte-identical across recipes), the recipe's extra
    // files, the binary. Only the layers above a change need re-uploading.
    let mut layers: Vec<LayerSpec> = base.layer.into_iter().collect();
    if !recipe.image.files.is_empty() {
        layers.push(files_layer(recipe, opts.epoch));
    }
    layers.push(app_layer(recipe, &artifact, opts.epoch));
    let meta = image_meta(recipe, architecture, opts.epoch);

    let record = provenance::Provenance {
        inputs_digest,
        inputs,
        commands: artifact
            .commands
            .iter()
            .map(|c| provenance::normalize(c, &ctx.build_dir, &recipe.build.source))
            .collect(),
        environment: artifact
            .environment
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    provenance::normalize(v, &ctx.build_dir, &recipe.build.source),
                )
            })
            .collect(),
        binary_digest: crate::digest::Digest::of_bytes(&bytes).to_string(),
        manifest_digest: String::new(),
    };
    let annotations = standard_annotations(recipe, opts.epoch);
    // The index entry names the provenance's input digest and the record beside the layout.
    // Not the manifest: the image digest stays a function of the image's content alone, so a
    // comment edited in a recipe does not change it.
    let mut meta = meta;
    meta.index_annotations.insert(
        provenance::ANNOTATION.to_owned(),
        record.inputs_digest.clone(),
    );
    meta.index_annotations.insert(
        format!("{}.file", provenance::ANNOTATION),
        provenance::FILE_NAME.to_owned(),
    );

    // The image is staged, proven, and only then moved to `out`: a failing proof publishes nothing.
    let parent = parent_dir(out);
    std::fs::create_dir_all(&parent).map_err(|source| PipelineError::Io {
        action: "creating",
        path: parent.clone(),
        source,
    })?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.unproven-", recipe.name))
        .tempdir_in(&parent)
        .map_err(|source| PipelineError::Io {
            action: "creating a staging folder in",
            path: parent.clone(),
            source,
        })?;
    let staged_layout = staging.path().join("layout");
    let staged = image::write_image(
        &staged_layout,
        &recipe.image.tag,
        &meta,
        &layers,
        &annotations,
    )?;
    log(&format!(
        "image   {} ({} layer{})",
        staged.manifest_digest,
        staged.layers.len(),
        if staged.layers.len() == 1 { "" } else { "s" }
    ));

    let proof = match (&recipe.test, opts.run) {
        (Some(test), true) => Some(prove(
            &staged_layout,
            &recipe.image.tag,
            test,
            opts.runtime,
            log,
        )?),
        (None, true) => {
            log("run     skipped: the recipe has no [test] section");
            None
        }
        (_, false) => None,
    };

    let record = provenance::Provenance {
        manifest_digest: staged.manifest_digest.to_string(),
        ..record
    };
    let record_path = staged_layout.join(provenance::FILE_NAME);
    let json = serde_json::to_vec_pretty(&record)
        .map_err(|e| PipelineError::Unsupported(e.to_string()))?;
    std::fs::write(&record_path, json).map_err(|source| PipelineError::Io {
        action: "writing",
        path: record_path.clone(),
        source,
    })?;

    match opts.format {
        OutputFormat::Oci => image::layout::publish(&staged_layout, out)?,
        OutputFormat::OciArchive | OutputFormat::DockerArchive => {
            let format = if opts.format == OutputFormat::OciArchive {
                image::archive::ArchiveFormat::Oci
            } else {
                image::archive::ArchiveFormat::Docker
            };
            let repo_tag = format!("{}:{}", recipe.name, recipe.image.tag);
            image::archive::write_archive(&staged_layout, out, format, &repo_tag, opts.epoch)?;
        }
    }
    let image = ImageOutput {
        dir: out.to_path_buf(),
        ..staged
    };
    Ok(BuildReport {
        artifact,
        facts,
        verdict,
        warnings,
        image,
        proof,
    })
}

/// Turns verify's findings into a decision: errors refuse the binary (unless allowed), and so
/// does a static glibc binary that reaches NSS (unless allowed); other warnings are returned.
fn judge(
    facts: &ElfFacts,
    recipe: &Recipe,
    opts: &BuildOptions,
    verdict: &str,
    log: &mut dyn FnMut(&str),
) -> Result<Vec<Finding>, PipelineError> {
    let (mut errors, mut warnings): (Vec<Finding>, Vec<Finding>) =
        verify::diagnose(facts, requirement(recipe.build.link))
            .into_iter()
            .partition(|f| f.severity == Severity::Error);
    if !opts.allow_nss_hazards {
        // A binary that dlopens libnss_*.so at run time does not "run with no libc present".
        let (nss, rest): (Vec<Finding>, Vec<Finding>) =
            warnings.into_iter().partition(|f| f.code == NSS_HAZARD);
        warnings = rest;
        errors.extend(nss.into_iter().map(|mut f| {
            f.severity = Severity::Error;
            f.fix = format!("{} (or pass --allow-nss-hazards to pack it anyway)", f.fix);
            f
        }));
    }
    for w in &warnings {
        log(&format!(
            "warning: {}\n  why: {}\n  fix: {}",
            w.what, w.why, w.fix
        ));
    }
    if errors.is_empty() {
        return Ok(warnings);
    }
    if opts.allow_dynamic && errors.iter().all(|e| e.code != NSS_HAZARD) {
        for e in &errors {
            log(&format!("allowed by --allow-dynamic: {}", e.what));
        }
        return Ok(warnings);
    }
    Err(PipelineError::Refused {
        verdict: verdict.to_owned(),
        findings: errors,
    })
}

const NSS_HAZARD: &str = "nss-hazard";

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
    if recipe.image.base != "scratch" {
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
        if let Some(v) = recipe.image.labels.get(&full) {
            a.insert(full, v.clone());
        }
    }
    a.extend(recipe.image.annotations.clone());
    a
}

fn files_layer(recipe: &Recipe, epoch: u64) -> LayerSpec {
    LayerSpec {
        entries: recipe
            .image
            .files
            .iter()
            .map(|f| LayerEntry {
                path: f.dst.trim_start_matches('/').to_owned(),
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
                kind: EntryKind::File(FileSource::Path(f.src.clone())),
            })
            .collect(),
        mtime: epoch,
        comment: format!(
            "staticpack: {} files ({})",
            recipe.name,
            recipe
                .image
                .files
                .iter()
                .map(|f| f.dst.as_str())
                .collect::<Vec<_>>()
                .join(", ")
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

fn image_meta(recipe: &Recipe, architecture: String, epoch: u64) -> ImageMeta {
    let img = &recipe.image;
    let mut env = img.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, "PATH=/usr/local/bin:/usr/bin:/bin".to_owned());
    }
    ImageMeta {
        os: "linux".into(),
        architecture,
        variant: None,
        entrypoint: img.entrypoint.clone(),
        cmd: img.cmd.clone(),
        env,
        user: img.user.as_ref().map(ToString::to_string),
        workdir: img.workdir.clone(),
        labels: img.labels.clone(),
        exposed_ports: img.ports.clone(),
        stop_signal: img.stop_signal.clone(),
        index_annotations: BTreeMap::new(),
        created_epoch: epoch,
    }
}

/// Runs the image in an empty root and checks the `[test]` expectations.
fn prove(
    layout: &Path,
    tag: &str,
    test: &TestSpec,
    runtime: Runtime,
    log: &mut dyn FnMut(&str),
) -> Result<Proof, PipelineError> {
    let loaded = image::read_image(layout, Some(tag))?;
    // No [test] args means the image's own Cmd, as `docker run IMAGE` would.
    let args = (!test.args.is_empty()).then_some(test.args.as_slice());
    let outcome = run::run_image(
        &loaded,
        args,
        runtime,
        Duration::from_secs(test.timeout_seconds),
    )?;
    let problems = check_outcome(&outcome, test);
    if !problems.is_empty() {
        return Err(PipelineError::ProofFailed {
            problems,
            outcome: Box::new(outcome),
        });
    }
    // What the root held, as the run stage found it after unpacking.
    let files = outcome.rootfs_files;
    let libc = outcome.libc_files.clone();
    let runtime_name = match runtime {
        Runtime::Builtin => "builtin namespace sandbox",
        Runtime::Runc => "runc",
    };
    if libc.is_empty() {
        log(&format!(
            "run     ok ({runtime_name}): exit {}, stdout as expected; the root held {files} file{} and no libc or dynamic loader",
            test.expect_exit,
            if files == 1 { "" } else { "s" }
        ));
    } else {
        log(&format!(
            "run     ok ({runtime_name}): exit {}; note: the image carries {}",
            test.expect_exit,
            libc.join(", ")
        ));
    }
    Ok(Proof {
        outcome,
        rootfs_files: files,
    })
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
        (None, Some(sig)) => {
            problems.push(format!("killed by signal {sig} (a timeout kills with 9)"))
        }
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
        }
    }

    fn test_spec(exit: i32, stdout: Option<&str>) -> TestSpec {
        TestSpec {
            args: vec![],
            expect_exit: exit,
            expect_stdout: stdout.map(str::to_owned),
            timeout_seconds: 5,
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
}
