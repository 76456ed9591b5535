//! Several platforms in one build. Each is built, verified and proven as a one-platform copy
//! of the recipe (`build_with`, unchanged); their staged layouts are then merged into one:
//! every blob once (the `static` base layers are the same bytes on every platform), every
//! platform's referrers, a provenance record per platform, and an OCI image index over the
//! manifests, each descriptor with its `platform`, named by the tag in index.json (written
//! last).

use super::{
    BuildOptions, BuildReport, Built, Event, PipelineError, Tools, build_with, unproven_prefix,
};
use crate::digest::Digest;
use crate::fsio::IoContext;
use crate::image::{self, Layout, PlatformManifest};
use crate::provenance::{self, Provenance};
use crate::recipe::{Platform, Recipe};
use crate::workdir::WorkDir;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One platform of a several-platform build: what its one-platform build found and made.
#[derive(Clone, Debug)]
pub struct PlatformBuild {
    pub platform: Platform,
    pub report: BuildReport,
    pub provenance: Provenance,
}

/// The provenance record beside an index: each platform's own record (its inputs, toolchain,
/// commands and manifest), by platform. `inputs_digest` and `manifest_digest` (the index's)
/// are where a one-platform record has them, for the cache's lookup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexProvenance {
    pub inputs_digest: String,
    pub manifest_digest: String,
    /// As a one-platform record's: set only when every platform passed that proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_by: Option<String>,
    pub platforms: BTreeMap<String, Provenance>,
}

/// A several-platform build, staged: the merged layout, the index and each platform's part.
pub(super) struct BuiltIndex {
    staging: WorkDir,
    pub(super) index_digest: Digest,
    pub(super) platforms: Vec<PlatformBuild>,
}

impl BuiltIndex {
    pub(super) fn layout(&self) -> PathBuf {
        self.staging.path().join("layout")
    }
}

/// The recipe once per platform, sorted (the index lists them in that order, whatever order
/// the recipe or `--platform` named them in), each with its inputs.
pub(super) fn per_platform(
    recipe: &Recipe,
    opts: &BuildOptions,
) -> Result<Vec<(Recipe, provenance::Inputs)>, PipelineError> {
    let mut platforms = recipe.build.platforms.clone();
    platforms.sort();
    platforms
        .iter()
        .map(|p| {
            let mut one = recipe.clone();
            one.build.set_platform(p);
            let inputs = super::inputs(&one, opts)?;
            Ok((one, inputs))
        })
        .collect()
}

/// The cache key of the whole index: every platform's inputs digest, by platform (a foreign
/// platform's inputs name it already; the map names the native one too).
pub(super) fn inputs_digest(copies: &[(Recipe, provenance::Inputs)]) -> Digest {
    let by_platform: BTreeMap<String, String> = copies
        .iter()
        .map(|(r, i)| (r.build.platform.to_string(), i.digest().to_string()))
        .collect();
    Digest::of_bytes(&serde_json::to_vec(&by_platform).unwrap_or_default())
}

/// Builds, verifies and proves every platform in turn, then merges their layouts under
/// `staging_parent`. A failure of any platform publishes nothing.
pub(super) fn build_index(
    recipe: &Recipe,
    opts: &BuildOptions,
    copies: Vec<(Recipe, provenance::Inputs)>,
    inputs_digest: &str,
    staging_parent: &Path,
    tools: Tools,
    events: &mut dyn FnMut(Event),
) -> Result<BuiltIndex, PipelineError> {
    let total = copies.len();
    let mut built: Vec<(Platform, Built)> = Vec::with_capacity(total);
    for (n, (one, inputs)) in copies.into_iter().enumerate() {
        let platform = one.build.platform.clone();
        events(Event::Platform {
            platform: &platform,
            index: n + 1,
            total,
        });
        let b = build_with(&one, opts, inputs, staging_parent, tools, events).map_err(|e| {
            PipelineError::Platform {
                platform: platform.to_string(),
                source: Box::new(e),
            }
        })?;
        built.push((platform, b));
    }

    let staging = WorkDir::new_in(staging_parent, &unproven_prefix(&recipe.name))
        .at("creating a staging folder in", staging_parent)?;
    let merged = Layout::create(&staging.path().join("layout"))?;
    let mut manifests = Vec::with_capacity(total);
    for (platform, b) in &built {
        move_blobs(&b.layout(), &merged)?;
        manifests.push(PlatformManifest {
            digest: b.report.manifest_digest.clone(),
            size: manifest_size(&merged, &b.report.manifest_digest)?,
            os: platform.os.clone(),
            architecture: platform.oci_arch().to_owned(),
            variant: platform.variant.clone(),
        });
    }
    let sources: Vec<PathBuf> = built.iter().map(|(_, b)| b.layout()).collect();
    let sources: Vec<&Path> = sources.iter().map(PathBuf::as_path).collect();
    crate::supply::merge_referrers(&merged, &sources)?;

    // The index's bytes depend only on its manifests: the annotations that say where the
    // records are sit on its index.json entry, as for one platform.
    let annotations = BTreeMap::from([
        (provenance::ANNOTATION.to_owned(), inputs_digest.to_owned()),
        (
            format!("{}.file", provenance::ANNOTATION),
            provenance::FILE_NAME.to_owned(),
        ),
        (
            "dev.staticpack.referrers.file".to_owned(),
            crate::supply::REFERRERS_FILE.to_owned(),
        ),
    ]);
    let (index_digest, _) = image::write_platform_index(
        &merged,
        &recipe.image.settings.tag,
        &manifests,
        &annotations,
    )?;
    // Beside the layout, as a one-platform build's record is (the whole folder is swapped in
    // at once).
    let record = IndexProvenance {
        inputs_digest: inputs_digest.to_owned(),
        manifest_digest: index_digest.to_string(),
        proven_by: built
            .iter()
            .map(|(_, b)| b.provenance.proven_by.clone())
            .collect::<Option<Vec<String>>>()
            .and_then(|names| names.first().cloned()),
        platforms: built
            .iter()
            .map(|(p, b)| (p.to_string(), b.provenance.clone()))
            .collect(),
    };
    let record_path = merged.dir().join(provenance::FILE_NAME);
    let json = serde_json::to_vec_pretty(&record)
        .map_err(|e| PipelineError::Unsupported(format!("serializing the provenance: {e}")))?;
    std::fs::write(&record_path, json).at("writing", &record_path)?;
    let platforms: Vec<PlatformBuild> = built
        .into_iter()
        .map(|(platform, b)| PlatformBuild {
            platform,
            report: b.report,
            provenance: b.provenance,
        })
        .collect();
    events(Event::Indexed {
        digest: &index_digest,
        platforms: &platforms,
    });
    Ok(BuiltIndex {
        staging,
        index_digest,
        platforms,
    })
}

/// Moves every blob of a staged one-platform layout into the merged one; a blob already there
/// (the shared base layers, the empty JSON of the referrers) is the same bytes by its name.
fn move_blobs(from: &Path, into: &Layout) -> Result<(), PipelineError> {
    let dir = from.join("blobs/sha256");
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)
        .at("reading", &dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .at("reading", &dir)?;
    names.sort();
    let blobs = into.blobs_dir();
    for name in names {
        let (src, dst) = (dir.join(&name), blobs.join(&name));
        if dst.exists() {
            continue;
        }
        std::fs::rename(&src, &dst).at("moving a blob to", &dst)?;
    }
    Ok(())
}

fn manifest_size(layout: &Layout, digest: &Digest) -> Result<u64, PipelineError> {
    let path = layout.blob_path(digest);
    Ok(std::fs::metadata(&path).at("inspecting", &path)?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_key_changes_with_the_platforms() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("app"), b"\x7fELF").unwrap();
        std::fs::write(
            d.path().join("recipe.toml"),
            "name = \"fake\"\n[build]\nlang = \"prebuilt\"\nsource = \"app\"\nlink = \"static\"\noutput = \"/app\"\n[image]\nbase = \"scratch\"\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n",
        )
        .unwrap();
        let mut r = crate::recipe::load(d.path()).unwrap();
        let opts = BuildOptions::default();
        let copies = per_platform(&r, &opts).unwrap();
        // Sorted, each a one-platform recipe.
        let names: Vec<String> = copies
            .iter()
            .map(|(c, _)| c.build.platforms.iter().map(|p| p.to_string()).collect())
            .collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64"]);
        let both = inputs_digest(&copies);
        // The order written does not change the key; another set of platforms does.
        r.build.set_platforms(&[
            "linux/amd64".parse().unwrap(),
            "linux/arm64".parse().unwrap(),
        ]);
        assert_eq!(inputs_digest(&per_platform(&r, &opts).unwrap()), both);
        r.build.set_platforms(&["linux/arm64".parse().unwrap()]);
        assert_ne!(inputs_digest(&per_platform(&r, &opts).unwrap()), both);
    }
}
