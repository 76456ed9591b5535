//! Content digests (`sha256:<hex>`) shared by every stage.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};

/// An OCI content digest. Only sha256 is produced; parsing accepts only sha256 too.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self::from_raw(&Sha256::digest(bytes))
    }

    /// Hashes a stream in bounded buffers, so a big file never sits whole in memory.
    pub fn of_reader(reader: &mut impl Read) -> io::Result<Self> {
        let mut w = HashingWriter::new(io::sink());
        io::copy(reader, &mut w)?;
        Ok(w.finish().1)
    }

    fn from_raw(raw: &[u8]) -> Self {
        Digest {
            hex: hex::encode(raw),
        }
    }

    /// Parses `sha256:<64 lowercase hex>`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let hex = s.strip_prefix("sha256:")?;
        let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| Digest {
            hex: hex.to_owned(),
        })
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }

    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// A writer that hashes and counts everything passing through it on the way to `inner`.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// The bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Returns the inner writer, the digest and the byte count of what went through.
    pub fn finish(self) -> (W, Digest, u64) {
        let digest = Digest::from_raw(&self.hasher.finalize());
        (self.inner, digest, self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that checks, as the bytes pass, that they are exactly `size` bytes with digest
/// `expected`: one byte too many fails at once, a wrong digest or a short read fails the read
/// that reaches the end. Whoever reads to the end has read verified content.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    size: u64,
    expected: Digest,
}

/// What a [`VerifyingReader`] found wrong (carried inside an `io::Error` of kind InvalidData).
#[derive(Debug, thiserror::Error)]
pub enum Mismatch {
    #[error("the content is longer than the {size} bytes its descriptor gives")]
    TooLong { size: u64 },
    #[error("the content is {read} bytes, its descriptor gives {size}")]
    TooShort { read: u64, size: u64 },
    #[error("the content's digest is {actual}, its descriptor gives {expected}")]
    Digest { actual: Digest, expected: Digest },
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            read: 0,
            size,
            expected,
        }
    }

    fn check_end(&mut self) -> Result<(), Mismatch> {
        if self.read != self.size {
            return Err(Mismatch::TooShort {
                read: self.read,
                size: self.size,
            });
        }
        let actual = Digest::from_raw(&self.hasher.clone().finalize());
        if actual != self.expected {
            return Err(Mismatch::Digest {
                actual,
                expected: self.expected.clone(),
            });
        }
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // One byte past the size is enough to know, and never more than that is read.
        let room = (self.size - self.read.min(self.size)).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.read += n as u64;
        if self.read > self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                Mismatch::TooLong { size: self.size },
            ));
        }
        self.hasher.update(&buf[..n]);
        if n == 0 && !buf.is_empty() {
            self.check_end()
                .map_err(|m| io::Error::new(io::ErrorKind::InvalidData, m))?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_digest_equals_the_whole_buffer_digest_across_buffer_boundaries() {
        // Longer than io::copy's 8 KiB buffer, so the stream is hashed in several updates.
        let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let streamed = Digest::of_reader(&mut content.as_slice()).unwrap();
        assert_eq!(streamed, Digest::of_bytes(&content));
        assert_ne!(streamed, Digest::of_bytes(&content[1..]));
    }

    #[test]
    fn a_verifying_reader_passes_exact_content_and_fails_anything_else() {
        let content = b"layer bytes".to_vec();
        let digest = Digest::of_bytes(&content);
        let read_all = |bytes: &[u8], size: u64| {
            let mut out = Vec::new();
            VerifyingReader::new(bytes, digest.clone(), size)
                .read_to_end(&mut out)
                .map(|_| out)
        };
        assert_eq!(read_all(&content, 11).unwrap(), content);
        let wrong = |bytes: &[u8], size: u64| {
            let e = read_all(bytes, size).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            e.into_inner().unwrap().to_string()
        };
        assert!(wrong(b"layer bytez", 11).starts_with("the content's digest is"));
        assert_eq!(
            wrong(&content, 10),
            "the content is longer than the 10 bytes its descriptor gives"
        );
        assert_eq!(
            wrong(&content, 12),
            "the content is 11 bytes, its descriptor gives 12"
        );
        // An endless source is cut at size + 1.
        let mut endless = VerifyingReader::new(io::repeat(0), digest, 11);
        assert!(io::copy(&mut endless, &mut io::sink()).is_err());
    }

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            Digest::of_bytes(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hashing_writer_matches_one_shot_digest_and_counts() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, digest, n) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(n, 11);
        assert_eq!(digest, Digest::of_bytes(b"hello world"));
    }

    #[test]
    fn parse_rejects_other_algorithms_and_bad_hex() {
        let good = format!("sha256:{}", "a".repeat(64));
        assert!(Digest::parse(&good).is_some());
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(64))).is_none());
        assert!(Digest::parse(&format!("sha256:{}", "A".repeat(64))).is_none());
        assert!(Digest::parse("sha256:abc").is_none());
    }
}
