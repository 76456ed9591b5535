//! Sources that are archives: a tarball in the recipe's folder or at a URL, pinned by sha256.
//! The bytes are verified before anything is unpacked, downloads are cached by digest
//! ([`fetch`]), and unpacking stays inside the build folder ([`unpack`]).

mod fetch;
mod unpack;

pub(crate) use unpack::SourceLimits;

use crate::digest::Digest;
use crate::recipe::{ArchiveOrigin, ArchiveSource};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the archive {origin} is {actual}, but the recipe pins {expected}")]
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
    /// Past a limit, or about to pass it by what an entry's header declares (`declared`: empty,
    /// or that entry and its size).
    #[error("the archive {archive} unpacks to more than {limit} {what}{declared}: {rule}")]
    TooLarge {
        archive: String,
        what: &'static str,
        limit: u64,
        declared: String,
        /// Which limit (the absolute one or the expansion ratio) and how to raise it.
        rule: String,
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

/// How an archive is fetched and unpacked.
#[derive(Clone, Debug)]
pub(crate) struct SourceOptions {
    /// Where downloads are kept by digest; `None`: not kept (each build downloads).
    pub cache_dir: Option<PathBuf>,
    pub limits: SourceLimits,
    pub max_download_bytes: u64,
    pub timeout: std::time::Duration,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            cache_dir: None,
            limits: unpack::default_limits(),
            max_download_bytes: 2 << 30,
            timeout: std::time::Duration::from_secs(600),
        }
    }
}

/// Verifies the archive and unpacks it into the new folder `dest` (inside the build folder).
pub(crate) fn materialize(
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
    // The recipe's own bound replaces the default limit and the expansion ratio.
    let limits = match archive.max_unpack_bytes {
        Some(max_bytes) => SourceLimits {
            max_bytes,
            max_ratio: None,
            ..opts.limits
        },
        None => opts.limits,
    };
    let result = unpack::unpack(
        &file.path(),
        archive.format,
        archive.strip_components,
        dest,
        &limits,
    );
    file.discard();
    result
}

/// A verified archive on disk: the user's, the cache's, or a temporary download (`archive` in
/// a locked folder of its own).
enum Located {
    Kept(PathBuf),
    Temporary(crate::workdir::WorkDir),
}

impl Located {
    fn path(&self) -> PathBuf {
        match self {
            Located::Kept(p) => p.clone(),
            Located::Temporary(t) => t.path().join("archive"),
        }
    }

    fn discard(self) {
        if let Located::Temporary(t) = self {
            let _ = t.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recipe::ArchiveFormat;
    use crate::test_support::http::{FakeServer, Reply, binary_response};
    use unpack::tests::{file, finish, gzip};

    fn tarball() -> Vec<u8> {
        let mut tar = Vec::new();
        file(
            &mut tar,
            "hello-1.0/hello.c",
            b"int main(void){return 0;}\n",
        );
        gzip(&finish(tar))
    }

    fn url_source(server: &FakeServer, sha256: Digest) -> ArchiveSource {
        ArchiveSource {
            origin: ArchiveOrigin::Url(format!("http://{}/hello-1.0.tar.gz", server.host())),
            sha256,
            strip_components: 1,
            format: ArchiveFormat::TarGz,
            max_unpack_bytes: None,
        }
    }

    fn options(cache: &Path) -> SourceOptions {
        SourceOptions {
            cache_dir: Some(cache.to_path_buf()),
            ..SourceOptions::default()
        }
    }

    #[test]
    fn downloads_are_cached_by_digest_and_a_corrupt_cached_file_is_fetched_again() {
        let bytes = tarball();
        let digest = Digest::of_bytes(&bytes);
        let served = bytes.clone();
        let server = FakeServer::start(move |_| Reply::Bytes(binary_response(&served)));
        let source = url_source(&server, digest.clone());
        let cache = tempfile::tempdir().unwrap();
        let build = tempfile::tempdir().unwrap();
        let unpack_into = |name: &str| {
            let dest = build.path().join(name);
            materialize(&source, &dest, &options(cache.path())).unwrap();
            assert!(dest.join("hello.c").is_file());
        };
        unpack_into("one");
        assert_eq!(server.seen().len(), 1);
        let cached = fetch::cached_path(cache.path(), &digest);
        assert_eq!(fs_bytes(&cached), bytes);
        // A hit: no request.
        unpack_into("two");
        assert_eq!(server.seen().len(), 1);
        // A cached file that no longer matches its name is not used: fetched again.
        std::fs::write(&cached, b"truncated").unwrap();
        unpack_into("three");
        assert_eq!(server.seen().len(), 2);
        assert_eq!(fs_bytes(&cached), bytes);
        // Nothing but the cached file is left behind (no temporary downloads).
        let left: Vec<_> = std::fs::read_dir(cached.parent().unwrap())
            .unwrap()
            .collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn a_download_cut_short_by_a_kill_is_swept_by_the_next_and_a_live_one_is_not() {
        let bytes = tarball();
        let digest = Digest::of_bytes(&bytes);
        let served = bytes.clone();
        let server = FakeServer::start(move |_| Reply::Bytes(binary_response(&served)));
        let cache = tempfile::tempdir().unwrap();
        let folder = cache.path().join("sha256");
        std::fs::create_dir_all(&folder).unwrap();
        // A killed build's partial download (nothing holds it), and a concurrent build's.
        let dead = folder.join("download-dead");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("archive"), vec![0u8; 4096]).unwrap();
        let live = crate::workdir::WorkDir::new_in(&folder, "download-").unwrap();
        let build = tempfile::tempdir().unwrap();
        let dest = build.path().join("src");
        materialize(
            &url_source(&server, digest.clone()),
            &dest,
            &options(cache.path()),
        )
        .unwrap();
        assert!(!dead.exists(), "the dead download is swept");
        assert!(live.path().is_dir(), "a live download is left alone");
        let mut left: Vec<_> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        left.sort();
        let mut want = vec![
            live.path().to_path_buf(),
            fetch::cached_path(cache.path(), &digest),
        ];
        want.sort();
        assert_eq!(left, want);
    }

    #[test]
    fn a_wrong_digest_is_refused_before_unpacking_and_not_cached() {
        let bytes = tarball();
        let served = bytes.clone();
        let server = FakeServer::start(move |_| Reply::Bytes(binary_response(&served)));
        let pinned = Digest::of_bytes(b"something else");
        let cache = tempfile::tempdir().unwrap();
        let build = tempfile::tempdir().unwrap();
        let dest = build.path().join("src");
        let e = materialize(
            &url_source(&server, pinned.clone()),
            &dest,
            &options(cache.path()),
        )
        .unwrap_err();
        let shown = e.to_string();
        assert!(shown.contains(&pinned.to_string()), "{shown}");
        assert!(
            shown.contains(&Digest::of_bytes(&bytes).to_string()),
            "{shown}"
        );
        assert!(!dest.exists(), "nothing is unpacked");
        assert!(!fetch::cached_path(cache.path(), &pinned).exists());

        // A local archive likewise.
        let local = build.path().join("a.tar.gz");
        std::fs::write(&local, &bytes).unwrap();
        let source = ArchiveSource {
            origin: ArchiveOrigin::File(local),
            ..url_source(&server, pinned)
        };
        let e = materialize(&source, &dest, &options(cache.path())).unwrap_err();
        assert!(matches!(e, SourceError::Mismatch { .. }), "{e}");
        assert!(!dest.exists());
    }

    #[test]
    fn a_download_over_the_size_cap_or_an_error_status_is_refused() {
        let bytes = tarball();
        let served = bytes.clone();
        let server = FakeServer::start(move |r| {
            if r.target.contains("missing") {
                Reply::Raw(crate::test_support::http::response("404 Not Found", "", ""))
            } else {
                Reply::Bytes(binary_response(&served))
            }
        });
        let cache = tempfile::tempdir().unwrap();
        let build = tempfile::tempdir().unwrap();
        let opts = SourceOptions {
            max_download_bytes: 10,
            ..options(cache.path())
        };
        let source = url_source(&server, Digest::of_bytes(&bytes));
        let e = materialize(&source, &build.path().join("a"), &opts).unwrap_err();
        assert!(
            matches!(e, SourceError::DownloadTooLarge { limit: 10, .. }),
            "{e}"
        );
        let missing = ArchiveSource {
            origin: ArchiveOrigin::Url(format!("http://{}/missing.tar.gz", server.host())),
            ..source
        };
        let e = materialize(&missing, &build.path().join("b"), &options(cache.path())).unwrap_err();
        assert!(e.to_string().contains("404"), "{e}");
    }

    fn fs_bytes(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }
}
