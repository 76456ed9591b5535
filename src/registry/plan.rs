//! The push plan: what to do with each blob of an image in one repository, decided from plain
//! data (what `HEAD` answered, which repositories of the registry are known to hold it, which
//! the user offered to mount from). No I/O here; the push carries the plan out and falls back
//! to an upload when a mount is refused.

use crate::digest::Digest;

/// How many mount sources to try before uploading: each stale one costs a request.
pub(crate) const MAX_MOUNT_TRIES: usize = 3;

/// What is known about one blob before acting on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlobFacts {
    pub digest: Digest,
    /// `HEAD` in the target repository: `Some(true)` present, `Some(false)` missing, `None`
    /// not asked.
    pub exists: Option<bool>,
    /// Repositories of the same registry known (blob cache, this run) to hold the blob.
    pub known_in: Vec<String>,
}

/// The decision for one blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BlobStep {
    /// Already in the repository: nothing to send.
    Exists,
    /// Try mounting from these repositories in order, then upload if none works.
    Mount { from: Vec<String> },
    /// Send the bytes.
    Upload,
}

/// The step for one blob in `repository`. Mount sources: the known ones first, then the
/// user's `mount_from`, without duplicates or the repository itself, at most
/// [`MAX_MOUNT_TRIES`].
pub(crate) fn plan_blob(repository: &str, facts: &BlobFacts, mount_from: &[String]) -> BlobStep {
    if facts.exists == Some(true) {
        return BlobStep::Exists;
    }
    let mut from: Vec<String> = Vec::new();
    for candidate in facts.known_in.iter().chain(mount_from) {
        if candidate != repository && !from.contains(candidate) {
            from.push(candidate.clone());
        }
    }
    from.truncate(MAX_MOUNT_TRIES);
    if from.is_empty() {
        BlobStep::Upload
    } else {
        BlobStep::Mount { from }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &[u8], exists: Option<bool>, known_in: &[&str]) -> BlobFacts {
        BlobFacts {
            digest: Digest::of_bytes(name),
            exists,
            known_in: known_in.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn present_blobs_are_left_alone_whatever_else_is_known() {
        let f = facts(b"a", Some(true), &["lib/base"]);
        assert_eq!(plan_blob("app", &f, &["x".into()]), BlobStep::Exists);
    }

    #[test]
    fn missing_blobs_mount_from_known_then_offered_repositories() {
        let f = facts(b"a", Some(false), &["lib/base", "app", "lib/base"]);
        let step = plan_blob("app", &f, &["other".into(), "lib/base".into()]);
        assert_eq!(
            step,
            BlobStep::Mount {
                from: vec!["lib/base".into(), "other".into()]
            }
        );
    }

    #[test]
    fn mount_sources_are_bounded_and_never_the_target() {
        let f = facts(b"a", None, &["a", "b", "app", "c", "d"]);
        assert_eq!(
            plan_blob("app", &f, &[]),
            BlobStep::Mount {
                from: vec!["a".into(), "b".into(), "c".into()]
            }
        );
        let only_self = facts(b"a", Some(false), &["app"]);
        assert_eq!(
            plan_blob("app", &only_self, &["app".into()]),
            BlobStep::Upload
        );
    }

    #[test]
    fn a_whole_image_plans_in_order() {
        let blobs = [
            facts(b"config", Some(false), &[]),
            facts(b"base", Some(false), &["lib/base"]),
            facts(b"app", Some(true), &[]),
        ];
        let steps: Vec<_> = blobs.iter().map(|f| plan_blob("app", f, &[])).collect();
        assert_eq!(
            steps,
            vec![
                BlobStep::Upload,
                BlobStep::Mount {
                    from: vec!["lib/base".into()]
                },
                BlobStep::Exists
            ]
        );
    }
}
