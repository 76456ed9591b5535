//! A GNU sparse tar entry for the unpackers' tests: its header declares one size, its data
//! block stores another.

/// The header and data blocks of a GNU sparse entry `path` of `logical` bytes (at least 512):
/// a hole, then 512 bytes of 7s. Append it to a tar without its end-of-archive blocks.
pub(crate) fn gnu_sparse_entry(path: &str, logical: u64) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("a test path");
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    h.set_mtime(0);
    // Twelve octal digits, unterminated, past 8 GiB (as GNU tar writes them).
    let octal = |n: u64| {
        let mut field = [0u8; 12];
        let digits = format!("{n:011o}");
        field[..digits.len()].copy_from_slice(digits.as_bytes());
        field
    };
    let gnu = h.as_gnu_mut().expect("a GNU header");
    gnu.sparse[0].offset = octal(logical - 512);
    gnu.sparse[0].numbytes = octal(512);
    gnu.realsize = octal(logical);
    h.set_cksum();
    let mut entry = h.as_bytes().to_vec();
    entry.extend([7u8; 512]);
    entry
}
