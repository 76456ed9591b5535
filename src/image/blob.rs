//! Writing blobs into a layout: bytes are hashed while written to a temp file in `blobs/sha256`,
//! which is synced and renamed to its digest only when complete. A blob with an expected digest
//! and size is checked on completion and, when wrong, never appears under a digest name.

use super::{ImageError, io_err};
use crate::digest::{Digest, HashingWriter};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A blob being written. Dropping it without [`BlobWriter::finish`] leaves nothing behind.
pub struct BlobWriter {
    blobs_dir: PathBuf,
    inner: HashingWriter<io::BufWriter<tempfile::NamedTempFile>>,
}

impl BlobWriter {
    /// Starts a blob in `blobs_dir` (a layout's `blobs/sha256`).
    pub fn new(blobs_dir: &Path) -> Result<Self, ImageError> {
        let temp = tempfile::NamedTempFile::new_in(blobs_dir)
            .map_err(io_err("creating a blob in", blobs_dir))?;
        Ok(BlobWriter {
            blobs_dir: blobs_dir.to_path_buf(),
            inner: HashingWriter::new(io::BufWriter::new(temp)),
        })
    }

    /// Syncs the blob and names it by its digest; returns the digest and the size.
    pub fn finish(self) -> Result<(Digest, u64), ImageError> {
        let (blobs_dir, temp, digest, size) = self.complete()?;
        persist(temp, &blobs_dir, &digest)?;
        Ok((digest, size))
    }

    /// Like [`BlobWriter::finish`], but only when the bytes written have this digest and size.
    pub fn finish_expecting(self, expected: &Digest, expected_size: u64) -> Result<(), ImageError> {
        let (blobs_dir, temp, digest, size) = self.complete()?;
        let path = blobs_dir.join(expected.hex());
        if size != expected_size {
            return Err(ImageError::SizeMismatch {
                path,
                expected: expected_size,
                actual: size,
            });
        }
        if &digest != expected {
            return Err(ImageError::DigestMismatch {
                path,
                expected: expected.to_string(),
            });
        }
        persist(temp, &blobs_dir, &digest)
    }

    fn complete(self) -> Result<(PathBuf, tempfile::NamedTempFile, Digest, u64), ImageError> {
        let (buffered, digest, size) = self.inner.finish();
        let temp = buffered
            .into_inner()
            .map_err(|e| io_err("writing a blob in", &self.blobs_dir)(e.into_error()))?;
        Ok((self.blobs_dir, temp, digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Syncs a finished temp blob and names it by its digest (an existing blob is the same bytes).
pub(crate) fn persist(
    temp: tempfile::NamedTempFile,
    blobs_dir: &Path,
    digest: &Digest,
) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    // Temp files are created 0600; a layout is meant to be read by anyone, whatever the umask.
    temp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io_err("setting the mode of a blob in", blobs_dir))?;
    temp.as_file()
        .sync_all()
        .map_err(io_err("syncing a blob in", blobs_dir))?;
    let dest = blobs_dir.join(digest.hex());
    if dest.exists() {
        return Ok(());
    }
    temp.persist(&dest)
        .map_err(|e| io_err("naming blob", &dest)(e.error))?;
    Ok(())
}
