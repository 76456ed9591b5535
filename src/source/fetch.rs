//! Downloads, checked against their pinned digest and cached by it:
//! `<cache>/sha256/<hex>`, written through a temporary file renamed into place, and hashed
//! again before each use (a cached file that no longer matches is fetched anew).

use super::{Located, SourceError, SourceOptions};
use crate::digest::{Digest, HashingWriter};
use crate::workdir::WorkDir;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The sha256 of a file's bytes, streamed.
pub(super) fn digest_file(path: &Path) -> Result<Digest, SourceError> {
    let mut file = fs::File::open(path).map_err(|e| SourceError::io("opening", path, e))?;
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).map_err(|e| SourceError::io("reading", path, e))?;
    Ok(hasher.finish().1)
}

/// Where the cache keeps the file of this digest.
pub(super) fn cached_path(cache_dir: &Path, digest: &Digest) -> PathBuf {
    cache_dir.join("sha256").join(digest.hex())
}

/// The archive at `url` with digest `expected`: from the cache when it holds it intact, else
/// downloaded (into the cache, or beside `dest` when there is none).
pub(super) fn fetched(
    url: &str,
    expected: &Digest,
    opts: &SourceOptions,
    dest: &Path,
) -> Result<Located, SourceError> {
    let loopback = check_scheme(url)?;
    let (folder, cached) = match &opts.cache_dir {
        Some(dir) => {
            let path = cached_path(dir, expected);
            if path.is_file() {
                if digest_file(&path)? == *expected {
                    return Ok(Located::Kept(path));
                }
                // Corrupt or truncated on disk: not trusted, fetched again.
                fs::remove_file(&path).map_err(|e| SourceError::io("removing", &path, e))?;
            }
            (dir.join("sha256"), Some(path))
        }
        None => (
            dest.parent().map(Path::to_path_buf).unwrap_or_default(),
            None,
        ),
    };
    fs::create_dir_all(&folder).map_err(|e| SourceError::io("creating", &folder, e))?;
    // Downloads a killed build cut short (up to the 2 GiB cap each) go first; a download in
    // progress is held by its build.
    crate::workdir::sweep(&folder, DOWNLOAD_PREFIX, &|_| {});
    let work = WorkDir::new_in(&folder, DOWNLOAD_PREFIX)
        .map_err(|e| SourceError::io("creating a folder in", &folder, e))?;
    let temp = work.path().join("archive");
    let mut file =
        fs::File::create_new(&temp).map_err(|e| SourceError::io("creating", &temp, e))?;
    let actual = download(url, loopback, opts, &mut file)?;
    if actual != *expected {
        return Err(SourceError::Mismatch {
            origin: url.to_owned(),
            expected: expected.clone(),
            actual,
        });
    }
    match cached {
        Some(path) => {
            fs::rename(&temp, &path).map_err(|e| SourceError::io("saving", &path, e))?;
            Ok(Located::Kept(path))
        }
        None => Ok(Located::Temporary(work)),
    }
}

/// The locked folders a download is written in, beside where it is kept (swept when their
/// build was killed).
const DOWNLOAD_PREFIX: &str = "download-";

/// https anywhere; plain http only to this machine (a test server, a local mirror). Whether
/// the host is this machine (then no proxy is used).
fn check_scheme(url: &str) -> Result<bool, SourceError> {
    let refuse = |message: &str| SourceError::Download {
        url: url.to_owned(),
        message: message.to_owned(),
    };
    let (secure, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => return Err(refuse("only https:// URLs are fetched")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once('@') {
        Some((_, h)) => h,
        None => authority,
    };
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if secure || loopback {
        Ok(loopback)
    } else {
        Err(refuse(
            "plain http is fetched only from this machine (127.0.0.1, ::1, localhost); use https",
        ))
    }
}

/// Streams the body into `out` (at most the size cap), returning its digest.
fn download(
    url: &str,
    loopback: bool,
    opts: &SourceOptions,
    out: &mut fs::File,
) -> Result<Digest, SourceError> {
    let failed = |message: String| SourceError::Download {
        url: url.to_owned(),
        message,
    };
    let tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::PlatformVerifier)
        .build();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(concat!("staticpack/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(std::time::Duration::from_secs(30)))
        .timeout_global(Some(opts.timeout))
        .max_redirects(5)
        .tls_config(tls)
        .proxy(if loopback {
            None
        } else {
            ureq::Proxy::try_from_env()
        })
        .build()
        .new_agent();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let status = response.status();
    if !status.is_success() {
        return Err(failed(format!("the server answered {status}")));
    }
    let limit = opts.max_download_bytes;
    let mut body = response.into_body().into_reader().take(limit + 1);
    let mut hasher = HashingWriter::new(out);
    let copied = io::copy(&mut body, &mut hasher).map_err(|e| failed(e.to_string()))?;
    if copied > limit {
        return Err(SourceError::DownloadTooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    Ok(hasher.finish().1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://example.org/a.tar.gz",
            "http://127.0.0.1:8080/a.tar.gz",
            "http://localhost/a",
            "http://[::1]:9/a",
        ] {
            assert!(check_scheme(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.org/a.tar.gz",
            "http://127.0.0.1.example.org/a",
            "ftp://127.0.0.1/a",
            "file:///etc/passwd",
            "http://user@example.org/a",
        ] {
            assert!(check_scheme(bad).is_err(), "{bad}");
        }
    }
}
