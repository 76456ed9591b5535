//! The one staticpack cache folder, shared by every build on the machine: downloads (source
//! archives, the registry's blob locations) and content-addressed build caches (Go's). Nothing
//! in it decides output bytes: downloads are digest-checked and the build caches are keyed by
//! content by their own tools, which `--check-repro` proves by building its second image cold.

use std::path::{Path, PathBuf};

/// The cache folder and whether builds may reuse what earlier builds left in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheDir {
    root: PathBuf,
    reuse_builds: bool,
}

impl CacheDir {
    /// The folder at `root`, build caches reused.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        CacheDir {
            root: root.into(),
            reuse_builds: true,
        }
    }

    /// `$STATICPACK_CACHE`, else `$XDG_CACHE_HOME/staticpack`, else `~/.cache/staticpack`;
    /// `None` when none of them is set.
    pub fn from_env() -> Option<Self> {
        Self::from_vars(|k| std::env::var_os(k))
    }

    fn from_vars(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<Self> {
        let non_empty = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        non_empty("STATICPACK_CACHE")
            .or_else(|| non_empty("XDG_CACHE_HOME").map(|d| d.join("staticpack")))
            .or_else(|| non_empty("HOME").map(|h| h.join(".cache/staticpack")))
            .map(Self::at)
    }

    /// The same folder, with build caches cold (`--no-cache`, the second `--check-repro`
    /// build): downloads are still shared, being checked by digest.
    pub fn without_build_reuse(mut self) -> Self {
        self.reuse_builds = false;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether build caches (Go's, dependencies') may be reused; when not, a build keeps its
    /// caches inside its own build folder.
    pub fn builds_reusable(&self) -> bool {
        self.reuse_builds
    }

    /// Fetched source archives, by sha256.
    pub(crate) fn sources(&self) -> PathBuf {
        self.root.join("sources")
    }

    /// Which repositories of which registries hold which blobs (for cross-repository mounts).
    pub fn blob_locations(&self) -> PathBuf {
        self.root.join("blob-locations.json")
    }

    /// Go's build cache (`GOCACHE`) of one trust domain (see `build::trust_domain`), when
    /// builds may reuse it.
    pub(crate) fn go_build(&self, domain: &str) -> Option<PathBuf> {
        self.reuse_builds
            .then(|| self.root.join("go-build").join(domain))
    }

    /// `CARGO_HOME` for downloaded crates: written by `cargo fetch` alone, each `.crate` checked
    /// against Cargo.lock's checksum by staticpack before a build uses it.
    pub fn cargo_home(&self) -> PathBuf {
        self.root.join("cargo")
    }

    /// Compiled C objects, by what decides their bytes, when builds may reuse them.
    pub(crate) fn objects(&self) -> Option<PathBuf> {
        self.reuse_builds.then(|| self.root.join("objects"))
    }

    /// Built static dependencies, by their inputs digest, when builds may reuse them.
    pub fn deps(&self) -> Option<PathBuf> {
        self.reuse_builds.then(|| self.root.join("deps"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn from(vars: &[(&str, &str)]) -> Option<CacheDir> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        CacheDir::from_vars(|k| vars.get(k).cloned())
    }

    #[test]
    fn staticpack_cache_wins_then_xdg_then_home() {
        let all = [
            ("STATICPACK_CACHE", "/a"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(from(&all).unwrap().root(), Path::new("/a"));
        assert_eq!(from(&all[1..]).unwrap().root(), Path::new("/x/staticpack"));
        assert_eq!(
            from(&all[2..]).unwrap().root(),
            Path::new("/h/.cache/staticpack")
        );
        assert_eq!(from(&[]), None);
        // An empty variable is unset, as the XDG spec says.
        assert_eq!(
            from(&[("STATICPACK_CACHE", ""), ("HOME", "/h")])
                .unwrap()
                .root(),
            Path::new("/h/.cache/staticpack")
        );
    }

    #[test]
    fn cold_builds_keep_downloads_but_no_build_caches() {
        let cold = CacheDir::at("/c").without_build_reuse();
        assert!(!cold.builds_reusable());
        assert_eq!(cold.go_build("x"), None);
        assert_eq!(cold.deps(), None);
        assert_eq!(cold.objects(), None);
        assert_eq!(cold.sources(), Path::new("/c/sources"));
        assert_eq!(cold.cargo_home(), Path::new("/c/cargo"));
    }
}
