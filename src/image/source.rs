//! Image-source references for `verify IMAGE` / `run IMAGE` (issue 16): which transport an
//! argument names. Only parsing so far; readers for each transport come next.

use crate::registry::{Reference, ReferenceError};
use std::path::PathBuf;

/// Where an image to diagnose comes from. The prefixes follow skopeo's transport names so a
/// reference copied from a skopeo command line means the same thing here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageSource {
    /// `oci:LAYOUT[:TAG]`
    OciLayout { path: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE`
    OciArchive(PathBuf),
    /// `docker-archive:FILE`
    DockerArchive(PathBuf),
    /// `docker://REGISTRY/REPO[:TAG|@DIGEST]`
    Registry(Reference),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("image reference {input:?} has an empty path after {prefix:?}")]
    EmptyPath { input: String, prefix: &'static str },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

impl ImageSource {
    /// `Ok(None)` when `arg` has none of the image prefixes: it is a file or directory path,
    /// as `verify` has always taken.
    pub fn parse(arg: &str) -> Result<Option<Self>, SourceError> {
        let nonempty = |rest: &str, prefix: &'static str| {
            if rest.is_empty() {
                Err(SourceError::EmptyPath {
                    input: arg.to_owned(),
                    prefix,
                })
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        if let Some(rest) = arg.strip_prefix("docker://") {
            return Ok(Some(Self::Registry(Reference::parse(rest)?)));
        }
        if let Some(rest) = arg.strip_prefix("oci-archive:") {
            return Ok(Some(Self::OciArchive(nonempty(rest, "oci-archive:")?)));
        }
        if let Some(rest) = arg.strip_prefix("docker-archive:") {
            return Ok(Some(Self::DockerArchive(nonempty(
                rest,
                "docker-archive:",
            )?)));
        }
        if let Some(rest) = arg.strip_prefix("oci:") {
            nonempty(rest, "oci:")?;
            let (path, tag) = super::layout::parse_layout_ref(rest);
            return Ok(Some(Self::OciLayout { path, tag }));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_not_images() {
        assert_eq!(ImageSource::parse("target/app").unwrap(), None);
        assert_eq!(ImageSource::parse("/usr/bin/ls").unwrap(), None);
    }

    #[test]
    fn prefixes_select_the_transport() {
        assert_eq!(
            ImageSource::parse("oci:/no/such/layout:v1").unwrap(),
            Some(ImageSource::OciLayout {
                path: PathBuf::from("/no/such/layout"),
                tag: Some("v1".into())
            })
        );
        assert_eq!(
            ImageSource::parse("oci-archive:img.tar").unwrap(),
            Some(ImageSource::OciArchive(PathBuf::from("img.tar")))
        );
        assert_eq!(
            ImageSource::parse("docker-archive:img.tar").unwrap(),
            Some(ImageSource::DockerArchive(PathBuf::from("img.tar")))
        );
        match ImageSource::parse("docker://localhost:5000/app:v2").unwrap() {
            Some(ImageSource::Registry(r)) => {
                assert_eq!(r.registry, "localhost:5000");
                assert_eq!(r.repository, "app");
                assert_eq!(r.tag.as_deref(), Some("v2"));
            }
            other => panic!("not a registry source: {other:?}"),
        }
    }

    #[test]
    fn empty_or_bad_references_are_refused() {
        assert!(ImageSource::parse("oci:").is_err());
        assert!(ImageSource::parse("oci-archive:").is_err());
        assert!(ImageSource::parse("docker://").is_err());
        assert!(ImageSource::parse("docker://UPPER/Case").is_err());
    }
}
