//! A binary as a read-only memory map, scanned in windows that are handed back to the kernel as
//! they are passed: goblin reads only the pages of the tables it parses, and a literal scan over
//! a 400 MiB binary keeps a few MiB resident instead of the whole file.
//!
//! The one place in the library with `unsafe`: mapping a file and dropping its pages.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::path::Path;

use memmap2::{Mmap, UncheckedAdvice};

/// Bytes scanned between two page releases.
const WINDOW: usize = 4 << 20;

pub struct Mapped {
    map: Mmap,
}

impl Mapped {
    pub fn open(path: &Path) -> io::Result<Mapped> {
        Mapped::of_file(&File::open(path)?)
    }

    /// Maps an open file (its length now: a file growing later is read as it was).
    pub fn of_file(file: &File) -> io::Result<Mapped> {
        // SAFETY: the map is read-only; the bytes are only read. The file is staticpack's own
        // build output (a recipe's prebuilt is copied into the build folder) or a file handed to
        // `verify`, not written while it is read. A file truncated under us by another process
        // ends the read with SIGBUS — a crash, not a wrong answer; the price of not holding a
        // 400 MiB file in memory.
        let map = unsafe { Mmap::map(file)? };
        Ok(Mapped { map })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether `needle` occurs anywhere; the windows scanned are released as the scan moves on,
    /// each window overlapping the next by `needle.len() - 1` bytes so no match straddles a cut.
    pub fn contains(&self, needle: &[u8]) -> bool {
        if needle.is_empty() {
            return true;
        }
        let finder = memchr::memmem::Finder::new(needle);
        let len = self.map.len();
        let mut start = 0;
        while start < len {
            let end = start.saturating_add(WINDOW).min(len);
            let hay_end = end.saturating_add(needle.len() - 1).min(len);
            let found = self
                .map
                .get(start..hay_end)
                .is_some_and(|w| finder.find(w).is_some());
            self.release(start, end - start);
            if found {
                return true;
            }
            start = end;
        }
        false
    }

    /// Drops the resident pages of `[offset, offset+len)`: the next read faults them back in
    /// from the page cache, unchanged (a private read-only file map has no dirty pages).
    fn release(&self, offset: usize, len: usize) {
        // SAFETY: DONTNEED on a read-only file-backed map only discards clean page-table
        // entries; no reference into the map observes different bytes afterwards.
        // A refusal (EINVAL on an odd range) only means the pages stay resident.
        let _ = unsafe {
            self.map
                .unchecked_advise_range(UncheckedAdvice::DontNeed, offset, len)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_across_window_cuts_and_not_absent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut data = vec![b'x'; 2 * WINDOW + 100];
        // Straddles the first cut: 3 bytes before it, 4 after.
        data[WINDOW - 3..WINDOW + 4].copy_from_slice(b"/etc/pa");
        data[2 * WINDOW + 90..2 * WINDOW + 100].copy_from_slice(b"tail-magic");
        std::fs::write(&p, &data).unwrap();
        let m = Mapped::open(&p).unwrap();
        assert!(m.contains(b"/etc/pa"));
        assert!(m.contains(b"tail-magic"));
        assert!(!m.contains(b"/etc/passwd"));
        // The released pages read back the same.
        assert_eq!(m.bytes(), &data[..]);
    }

    #[test]
    fn an_empty_file_maps_and_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("e");
        std::fs::write(&p, b"").unwrap();
        let m = Mapped::open(&p).unwrap();
        assert!(m.bytes().is_empty());
        assert!(!m.contains(b"x"));
    }
}
