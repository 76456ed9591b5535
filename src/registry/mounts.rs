//! Which repositories of a registry are known to hold a blob, so a push to a new repository can
//! mount (`POST …/blobs/uploads/?mount=…&from=…`) instead of uploading. Filled by every push;
//! optionally kept in a small JSON file between runs. A stale entry costs one request: the
//! registry then answers with a normal upload session.

use crate::digest::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Repositories remembered per blob (most recent first).
const REPOS_PER_BLOB: usize = 4;
/// Blobs remembered per registry file; beyond this the ones not seen in this run are dropped.
const BLOBS_MAX: usize = 20_000;

#[derive(Clone, Default, serde::Serialize, serde::Deserialize)]
struct Stored {
    #[serde(default)]
    registries: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Clone, Default)]
pub(crate) struct BlobLocations {
    path: Option<PathBuf>,
    data: Stored,
    touched: std::collections::HashSet<(String, String)>,
}

impl BlobLocations {
    /// Loads `path` if given; an unreadable cache is only a warning (mounting is an optimization).
    pub(crate) fn load(path: Option<&Path>) -> (Self, Option<String>) {
        let mut this = BlobLocations {
            path: path.map(Path::to_owned),
            ..BlobLocations::default()
        };
        let Some(path) = path else {
            return (this, None);
        };
        let warning = match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(data) => {
                    this.data = data;
                    None
                }
                Err(e) => Some(format!(
                    "{}: {e}; starting a new blob cache",
                    path.display()
                )),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!("{}: {e}; not using the blob cache", path.display())),
        };
        (this, warning)
    }

    /// Adds what `other` knows (its entries go after ours for the same blob).
    pub(crate) fn merge_from(&mut self, other: &BlobLocations) {
        for (registry, blobs) in &other.data.registries {
            let mine = self.data.registries.entry(registry.clone()).or_default();
            for (digest, repos) in blobs {
                let entry = mine.entry(digest.clone()).or_default();
                for repo in repos {
                    if !entry.contains(repo) && entry.len() < REPOS_PER_BLOB {
                        entry.push(repo.clone());
                    }
                }
            }
        }
        self.touched.extend(other.touched.iter().cloned());
    }

    /// The same knowledge, detached from any file.
    pub(crate) fn in_memory(&self) -> BlobLocations {
        BlobLocations {
            path: None,
            ..self.clone()
        }
    }

    pub(crate) fn candidates(&self, registry: &str, digest: &Digest) -> Vec<String> {
        self.data
            .registries
            .get(registry)
            .and_then(|blobs| blobs.get(&digest.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn record(&mut self, registry: &str, digest: &Digest, repository: &str) {
        let key = digest.to_string();
        self.touched.insert((registry.to_owned(), key.clone()));
        let repos = self
            .data
            .registries
            .entry(registry.to_owned())
            .or_default()
            .entry(key)
            .or_default();
        repos.retain(|r| r != repository);
        repos.insert(0, repository.to_owned());
        repos.truncate(REPOS_PER_BLOB);
    }

    pub(crate) fn forget(&mut self, registry: &str, digest: &Digest, repository: &str) {
        if let Some(repos) = self
            .data
            .registries
            .get_mut(registry)
            .and_then(|b| b.get_mut(&digest.to_string()))
        {
            repos.retain(|r| r != repository);
        }
    }

    /// Writes the cache back (temp file + rename); failures are returned as a warning.
    pub(crate) fn save(&mut self) -> Option<String> {
        let path = self.path.clone()?;
        for (registry, blobs) in self.data.registries.iter_mut() {
            blobs.retain(|_, repos| !repos.is_empty());
            if blobs.len() > BLOBS_MAX {
                blobs
                    .retain(|digest, _| self.touched.contains(&(registry.clone(), digest.clone())));
            }
        }
        let result = (|| -> std::io::Result<()> {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            serde_json::to_writer(&mut tmp, &self.data).map_err(std::io::Error::other)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        result
            .err()
            .map(|e| format!("{}: {e}; the blob cache was not saved", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_forgets_and_survives_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/cache.json");
        let d = Digest::of_bytes(b"x");
        let (mut cache, warning) = BlobLocations::load(Some(&path));
        assert!(warning.is_none());
        for repo in ["a", "b", "c", "d", "e", "b"] {
            cache.record("r:1", &d, repo);
        }
        assert_eq!(cache.candidates("r:1", &d), ["b", "e", "d", "c"]);
        cache.forget("r:1", &d, "e");
        assert!(cache.save().is_none());
        let (cache, _) = BlobLocations::load(Some(&path));
        assert_eq!(cache.candidates("r:1", &d), ["b", "d", "c"]);
        assert!(cache.candidates("other", &d).is_empty());

        let mut memory = BlobLocations::default();
        memory.record("r:1", &d, "z");
        memory.merge_from(&cache);
        assert_eq!(memory.candidates("r:1", &d), ["z", "b", "d", "c"]);
        assert!(memory.in_memory().save().is_none());

        std::fs::write(&path, "garbage").unwrap();
        let (cache, warning) = BlobLocations::load(Some(&path));
        assert!(warning.is_some());
        assert!(cache.candidates("r:1", &d).is_empty());
    }
}
