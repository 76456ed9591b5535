//! Sources that are archives: a tarball in the recipe's folder or at a URL, pinned by sha256.
//! The bytes are verified before anything is unpacked, downloads are cached by digest
//! ([`fetch`]), and unpacking stays inside the build folder ([`unpack`]).

mod fetch;
mod unpack;

pub use unpack::SourceLimits;

use crate::digest::Digest;
use crate::recipe::{ArchiveOrigin, ArchiveSource};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the archive {origin} has sha256 {actual}, but the recipe pins {expected}")]
    Mismatch {
        origin: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("downloading {url}: {message}")]
    Download { url: String, message: String },
    #[error("{url} is larger than {limit} bytes")]
    DownloadTooLarge { url: String, limit: u64 },
    #[error("unsafe entry {entry:?} in {archive}: {reason}")]
    UnsafeEntry {
        archive: String,
        entry: String,
        reason: String,
    },
    #[error("the archive {archive} unpacks to more than {limit} {what}")]
    TooLarge {
        archive: String,
        what: &'static str,
        limit: u64,
    },
    #[error("the archive {archive} holds nothing after stripping {strip} leading folder(s)")]
    Empty { archive: String, strip: u32 },
    #[error("{0}")]
    Layout(String),
}

impl SourceError {
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        SourceError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `$XDG_CACHE_HOME/staticpack/sources` (or `~/.cache/…`): downloads, by digest.
pub fn default_cache_dir() -> Option<PathBuf> {
    let non_empty = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|h| h.join(".cache")))
        .map(|dir| dir.join("staticpack").join("sources"))
}

/// How an archive is fetched and unpacked.
#[derive(Clone, Debug)]
pub struct SourceOptions {
    /// Where downloads are kept by digest; `None`: not kept (each build downloads).
    pub cache_dir: Option<PathBuf>,
    pub limits: SourceLimits,
    pub max_download_bytes: u64,
    pub timeout: std::time::Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            cache_dir: default_cache_dir(),
            limits: unpack::default_limits(),
            max_download_bytes: 2 << 30,
            timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// Verifies the archive and unpacks it into the new folder `dest` (inside the build folder).
pub fn materialize(
    archive: &ArchiveSource,
    dest: &Path,
    opts: &SourceOptions,
) -> Result<(), SourceError> {
    let file = match &archive.origin {
        ArchiveOrigin::File(path) => {
            // Hashed first, unpacked after: a mismatch is refused before any entry is read.
            let actual = fetch::digest_file(path)?;
            if actual != archive.sha256 {
                return Err(SourceError::Mismatch {
                    origin: path.display().to_string(),
                    expected: archive.sha256.clone(),
                    actual,
                });
            }
            Located::Kept(path.clone())
        }
        ArchiveOrigin::Url(url) => fetch::fetched(url, &archive.sha256, opts, dest)?,
    };
    let result = unpack::unpack(
        file.path(),
        archive.format,
        archive.strip_components,
        dest,
        &opts.limits,
    );
    file.discard();
    result
}

/// A verified archive on disk: the user's, the cache's, or a temporary download.
enum Located {
    Kept(PathBuf),
    Temporary(tempfile::TempPath),
}

impl Located {
    fn path(&self) -> &Path {
        match self {
            Located::Kept(p) => p,
            Located::Temporary(t) => t,
        }
    }

    fn discard(self) {
        if let Located::Temporary(t) = self {
            let _ = t.close();
        }
    }
}
