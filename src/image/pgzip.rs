//! Parallel gzip whose bytes do not depend on the thread count (pigz's scheme).
//!
//! The input is cut into fixed 128 KiB blocks. Each block is raw-deflated on its own with the
//! previous 32 KiB of input as its dictionary and ends with a sync flush (byte-aligned, so the
//! blocks concatenate into one deflate stream); an empty final block closes the stream. Block
//! boundaries depend only on the input offset, and each block's bytes only on its data, its
//! dictionary and the level: the pool's size cannot change a byte. The crc32 of each block is
//! computed beside its deflate and combined in order.
//!
//! Memory stays flat: at most one batch of blocks (4 MiB of input and its output) is in flight.
//! The batch is compressed on the current rayon pool (the global one: one thread per core).

use flate2::{Compress, Compression, FlushCompress};
use rayon::prelude::*;
use std::io::{self, Write};

/// Input bytes per independently deflated block.
pub(crate) const BLOCK: usize = 128 * 1024;
/// Deflate's window: each block is primed with this much of the input before it.
const DICT: usize = 32 * 1024;
/// Blocks compressed per parallel batch: bounds memory, irrelevant to the bytes.
const BATCH_BLOCKS: usize = 32;
/// The gzip header: deflate, no flags, mtime 0, no extra flags, OS 255 (unknown, whatever the
/// host).
const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];

/// A gzip encoder writing into `inner`; call [`ParGzEncoder::finish`] to end the stream.
pub(crate) struct ParGzEncoder<W: Write> {
    inner: W,
    level: Compression,
    /// Input not compressed yet (less than one batch).
    pending: Vec<u8>,
    /// The last (up to) 32 KiB of input before `pending`.
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    header_written: bool,
}

struct Block {
    deflated: Vec<u8>,
    crc: crc32fast::Hasher,
}

fn deflate_error(e: flate2::CompressError) -> io::Error {
    io::Error::other(format!("deflate failed: {e}"))
}

/// Raw-deflates `data` primed with `dict`, ending in a sync flush (or the stream's end when
/// `data` is empty and `finish` is set).
fn deflate_block(level: Compression, dict: &[u8], data: &[u8], finish: bool) -> io::Result<Block> {
    let mut c = Compress::new(level, false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(deflate_error)?;
    }
    let flush = if finish {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut out = Vec::with_capacity(data.len() + data.len() / 16 + 64);
    loop {
        let consumed = usize::try_from(c.total_in()).unwrap_or(data.len());
        let status = c
            .compress_vec(&data[consumed.min(data.len())..], &mut out, flush)
            .map_err(deflate_error)?;
        let all_in = usize::try_from(c.total_in()).is_ok_and(|n| n == data.len());
        // zlib's rule: a flush is complete when it left output space unused.
        let done = if finish {
            status == flate2::Status::StreamEnd
        } else {
            all_in && out.len() < out.capacity()
        };
        if done {
            break;
        }
        out.reserve(out.capacity().max(64));
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    Ok(Block { deflated: out, crc })
}

/// The last `DICT` bytes of `before` followed by `data`.
fn tail(before: &[u8], data: &[u8]) -> Vec<u8> {
    if data.len() >= DICT {
        return data[data.len() - DICT..].to_vec();
    }
    let keep = (DICT - data.len()).min(before.len());
    let mut t = before[before.len() - keep..].to_vec();
    t.extend_from_slice(data);
    t
}

impl<W: Write> ParGzEncoder<W> {
    pub(crate) fn new(inner: W, level: Compression) -> Self {
        ParGzEncoder {
            inner,
            level,
            pending: Vec::with_capacity(BLOCK * BATCH_BLOCKS),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            header_written: false,
        }
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&HEADER)?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Deflates `pending` (whole blocks, the last one possibly short) in parallel and writes the
    /// results in order.
    fn compress_pending(&mut self) -> io::Result<()> {
        self.write_header()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        let level = self.level;
        let data = &self.pending;
        let dict = &self.dict;
        let blocks: Vec<io::Result<Block>> = (0..data.len().div_ceil(BLOCK))
            .into_par_iter()
            .map(|i| {
                let start = i * BLOCK;
                let end = (start + BLOCK).min(data.len());
                let before = if i == 0 {
                    tail(dict, &[])
                } else {
                    tail(dict, &data[..start])
                };
                deflate_block(level, &before, &data[start..end], false)
            })
            .collect();
        for block in blocks {
            let block = block?;
            self.inner.write_all(&block.deflated)?;
            self.crc.combine(&block.crc);
        }
        self.total_in += data.len() as u64;
        self.dict = tail(&self.dict, &self.pending);
        self.pending.clear();
        Ok(())
    }

    /// Ends the stream (final block, crc32 and length) and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.compress_pending()?;
        let last = deflate_block(self.level, &[], &[], true)?;
        self.inner.write_all(&last.deflated)?;
        let crc = self.crc.clone().finalize();
        self.inner.write_all(&crc.to_le_bytes())?;
        // ISIZE: the input length modulo 2^32, as RFC 1952 says.
        self.inner
            .write_all(&((self.total_in & 0xffff_ffff) as u32).to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ParGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = BLOCK * BATCH_BLOCKS - self.pending.len();
        let n = buf.len().min(room);
        self.pending.extend_from_slice(&buf[..n]);
        if self.pending.len() == BLOCK * BATCH_BLOCKS {
            self.compress_pending()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Compressing early would not change the bytes but would cut a batch short; the data is
        // flushed by `finish`.
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Compressible, non-repeating input: text-like with varying numbers.
    fn sample(len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 64);
        let mut i: u64 = 0;
        while v.len() < len {
            v.extend_from_slice(
                format!("line {i} value {} ", i.wrapping_mul(2654435761) % 9973).as_bytes(),
            );
            i += 1;
        }
        v.truncate(len);
        v
    }

    fn gz(data: &[u8], threads: usize) -> Vec<u8> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut e = ParGzEncoder::new(Vec::new(), Compression::new(6));
            // Uneven writes, as the tar builder does.
            for chunk in data.chunks(10_007) {
                e.write_all(chunk).unwrap();
            }
            e.finish().unwrap()
        })
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn gzip_binary_d(bytes: &[u8]) -> Vec<u8> {
        let mut child = std::process::Command::new("gzip")
            .arg("-dc")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        assert!(out.status.success(), "gzip -d failed");
        out.stdout
    }

    #[test]
    fn round_trips_at_block_edges() {
        let batch = BLOCK * BATCH_BLOCKS;
        for len in [
            0,
            1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            batch,
            batch + 1,
            3 * batch + 17,
        ] {
            let data = sample(len);
            let z = gz(&data, 2);
            assert_eq!(gunzip(&z), data, "flate2 GzDecoder, {len} bytes");
            assert_eq!(gzip_binary_d(&z), data, "gzip -d, {len} bytes");
        }
    }

    #[test]
    fn bytes_do_not_depend_on_the_thread_count() {
        let data = sample(2 * BLOCK * BATCH_BLOCKS + 3 * BLOCK + 5);
        let one = gz(&data, 1);
        assert_eq!(gz(&data, 2), one);
        assert_eq!(gz(&data, 16), one);
    }

    #[test]
    fn empty_input_is_a_valid_gzip_of_nothing() {
        let z = gz(&[], 1);
        assert_eq!(&z[..10], &HEADER);
        assert!(gunzip(&z).is_empty());
        assert!(gzip_binary_d(&z).is_empty());
    }

    #[test]
    fn compresses_about_as_well_as_one_stream() {
        let data = sample(4 * BLOCK * BATCH_BLOCKS);
        let ours = gz(&data, 2).len();
        let mut one = flate2::write::GzEncoder::new(Vec::new(), Compression::new(6));
        one.write_all(&data).unwrap();
        let single = one.finish().unwrap().len();
        assert!(
            ours as f64 <= single as f64 * 1.02,
            "{ours} bytes vs {single} for one stream"
        );
    }
}
