//! Publishers: where a proven, staged layout goes. A build hands its staged layout to a list of
//! them (ko's split of build and publish), so any combination of outputs works in one build.

use super::PipelineError;
use crate::image;
use crate::registry::{self, ClientOptions, Progress, PushOptions, PushReport, Reference};
use std::path::{Path, PathBuf};

/// What a publisher is given: the proven layout and the names it is known by.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    /// An OCI layout folder holding the image (and its provenance record).
    pub layout: &'a Path,
    pub tag: &'a str,
    /// The recipe's name, e.g. for an archive's `RepoTags`.
    pub name: &'a str,
    /// SOURCE_DATE_EPOCH, for the mtimes inside archives.
    pub epoch: u64,
}

/// What one publisher did.
#[derive(Clone, Debug)]
pub enum Published {
    /// The layout folder now at this path.
    Layout(PathBuf),
    /// An archive written at this path.
    Archive(PathBuf),
    Pushed(PushReport),
}

pub trait Publisher {
    /// Publishes the image of `source`. Returns what was done and, when the layout itself was
    /// moved (the layout folder publisher), where it is now, for the publishers after it.
    fn publish(&self, source: Source<'_>) -> Result<(Published, Option<PathBuf>), PipelineError>;

    /// The layout folder this publisher keeps, if any: the build cache lives there.
    fn layout_dir(&self) -> Option<&Path> {
        None
    }

    /// Where and under which prefix this publisher keeps scratch folders while it writes
    /// (locked `WorkDir`s), for the next build to sweep those of a killed one.
    fn scratch(&self) -> Option<(PathBuf, String)> {
        None
    }
}

/// The OCI layout folder: the staged folder is swapped into place in one step.
pub struct LayoutDir {
    pub out: PathBuf,
}

impl Publisher for LayoutDir {
    fn publish(&self, source: Source<'_>) -> Result<(Published, Option<PathBuf>), PipelineError> {
        image::layout::publish(source.layout, &self.out)?;
        Ok((Published::Layout(self.out.clone()), Some(self.out.clone())))
    }

    fn layout_dir(&self) -> Option<&Path> {
        Some(&self.out)
    }
}

/// The layout as one tar file: `oci-archive` (skopeo's `oci-archive:`) or `docker-archive`
/// (for `docker load` / `podman load`).
pub struct Archive {
    pub out: PathBuf,
    pub format: image::archive::ArchiveFormat,
}

impl Publisher for Archive {
    fn publish(&self, source: Source<'_>) -> Result<(Published, Option<PathBuf>), PipelineError> {
        let repo_tag = format!("{}:{}", source.name, source.tag);
        image::archive::write_archive(
            source.layout,
            &self.out,
            self.format,
            &repo_tag,
            source.epoch,
        )?;
        Ok((Published::Archive(self.out.clone()), None))
    }

    fn scratch(&self) -> Option<(PathBuf, String)> {
        let name = self.out.file_name()?.to_string_lossy().into_owned();
        Some((
            super::parent_dir(&self.out),
            image::archive::partial_prefix(&name),
        ))
    }
}

/// A push to one or more registry references.
pub struct RegistryPush<'a> {
    pub targets: Vec<Reference>,
    pub client: ClientOptions,
    pub options: PushOptions,
    pub progress: &'a dyn Progress,
}

impl Publisher for RegistryPush<'_> {
    fn publish(&self, source: Source<'_>) -> Result<(Published, Option<PathBuf>), PipelineError> {
        let report = registry::push(
            source.layout,
            Some(source.tag),
            &self.targets,
            &self.client,
            &self.options,
            self.progress,
        )?;
        Ok((Published::Pushed(report), None))
    }
}

/// Runs the publishers in order; the layout folder one (at most one) goes first, so that a push
/// that fails still leaves the image on disk to push again.
pub fn publish_all(
    publishers: &[&dyn Publisher],
    source: Source<'_>,
    on_published: &mut dyn FnMut(&Published),
) -> Result<Vec<Published>, PipelineError> {
    let mut ordered: Vec<&dyn Publisher> = publishers.to_vec();
    ordered.sort_by_key(|p| p.layout_dir().is_none());
    if ordered.iter().filter(|p| p.layout_dir().is_some()).count() > 1 {
        return Err(PipelineError::Unsupported(
            "more than one layout folder to publish to: give one --out".into(),
        ));
    }
    let mut layout = source.layout.to_path_buf();
    let mut done = Vec::new();
    for p in ordered {
        let (published, moved_to) = p.publish(Source {
            layout: &layout,
            ..source
        })?;
        on_published(&published);
        if let Some(new_place) = moved_to {
            layout = new_place;
        }
        done.push(published);
    }
    Ok(done)
}
