//! Paths → file reports: files named on the command line, and every regular file found by
//! walking the directories named there. The only file I/O of the verify stage; the analysis
//! itself stays a pure function over bytes.
//!
//! Walk rules:
//! - A named path is followed if it is a symlink (the user asked for it); a non-ELF named file is
//!   reported as an error, and so is anything that is not a regular file or directory.
//! - Inside a walked directory, symlinks are never followed (no loops, no duplicates, nothing
//!   outside the tree), a directory reached twice (bind mounts) is walked once, non-ELF files
//!   and special files (FIFOs, devices, sockets) are skipped quietly and only counted.
//! - Entries are visited in byte order of their names, so output is deterministic.
//! - An entry deleted between the listing and the read (a temporary file) is counted as
//!   vanished, not reported as an error.
//! - Files are opened with O_NONBLOCK (a FIFO swapped in after the check cannot block us) and
//!   checked again on the open descriptor; walked files also with O_NOFOLLOW.

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::{ElfFacts, Finding, Requirement, analyze, analyze_mapped, diagnose};

/// Larger files are refused rather than read into memory (real ELF files are far smaller).
pub const MAX_FILE_SIZE: u64 = 4 << 30;

/// Why a file has no facts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Opening or reading failed (permissions, vanished, I/O error).
    Io,
    /// A named path that is a FIFO, device or socket.
    NotRegular,
    /// A named file without the ELF magic.
    NotElf,
    /// ELF magic, but the headers or tables are inconsistent or cut short.
    Malformed,
    /// Larger than [`MAX_FILE_SIZE`].
    TooLarge,
    /// A named directory under which no ELF file was found.
    NoElfFound,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub kind: ErrorKind,
    pub message: String,
}

/// The outcome for one file (or, for [`ErrorKind::NoElfFound`], one named directory).
#[derive(Clone, Debug)]
pub struct FileReport {
    pub path: PathBuf,
    pub require: Requirement,
    pub result: Result<(ElfFacts, Vec<Finding>), FileError>,
}

/// What a run saw, for the closing line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Files reported (analyzed or failed to analyze).
    pub reported: usize,
    pub directories: usize,
    pub skipped_non_elf: usize,
    pub skipped_symlinks: usize,
    pub skipped_special: usize,
    /// Listed in a directory, then gone before it could be read (temporary files).
    pub vanished: usize,
}

impl WalkStats {
    pub fn skipped(&self) -> usize {
        self.skipped_non_elf + self.skipped_symlinks + self.skipped_special + self.vanished
    }
}

enum Read4 {
    /// Mapped, not read: verify of a big binary stays a few MiB resident.
    Elf(super::mapped::Mapped),
    NotElf(Vec<u8>),
}

/// Messages leave the path out: every report carries it already.
fn io_error(action: &str, e: &std::io::Error) -> FileError {
    FileError {
        kind: ErrorKind::Io,
        message: format!("cannot {action}: {e}"),
    }
}

fn describe_type(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_char_device() {
        "a character device"
    } else {
        "an unknown file type"
    }
}

/// Opens and reads a regular file, stopping after 4 bytes when it is not ELF.
fn read_file(path: &Path, follow: bool) -> Result<Read4, FileError> {
    let mut flags = nix::fcntl::OFlag::O_NONBLOCK.bits();
    if !follow {
        flags |= nix::fcntl::OFlag::O_NOFOLLOW.bits();
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| io_error("open", &e))?;
    let meta = file.metadata().map_err(|e| io_error("stat", &e))?;
    if !meta.file_type().is_file() {
        return Err(FileError {
            kind: ErrorKind::NotRegular,
            message: format!("{}, not a regular file", describe_type(meta.file_type())),
        });
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(FileError {
            kind: ErrorKind::TooLarge,
            message: format!(
                "{} bytes, more than the {MAX_FILE_SIZE}-byte limit",
                meta.len()
            ),
        });
    }
    let mut head = Vec::with_capacity(4);
    (&mut file)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| io_error("read", &e))?;
    if head.as_slice() != b"\x7fELF" {
        // Keep a little more for the error message's hint (#! scripts, empty files).
        (&mut file)
            .take(60)
            .read_to_end(&mut head)
            .map_err(|e| io_error("read", &e))?;
        return Ok(Read4::NotElf(head));
    }
    // The map's length is the file's now, under the size limit checked above: a file that
    // grows afterwards is read as it was.
    let map = super::mapped::Mapped::of_file(&file).map_err(|e| io_error("map", &e))?;
    Ok(Read4::Elf(map))
}

fn report(
    path: &Path,
    require: Requirement,
    analyzed: Result<ElfFacts, super::VerifyError>,
) -> FileReport {
    let result = analyzed
        .map(|facts| {
            let findings = diagnose(&facts, require);
            (facts, findings)
        })
        .map_err(|e| FileError {
            kind: match e {
                super::VerifyError::NotElf(_) => ErrorKind::NotElf,
                super::VerifyError::Malformed(_) => ErrorKind::Malformed,
            },
            message: e.to_string(),
        });
    FileReport {
        path: path.to_path_buf(),
        require,
        result,
    }
}

fn error_report(path: &Path, require: Requirement, e: FileError) -> FileReport {
    FileReport {
        path: path.to_path_buf(),
        require,
        result: Err(e),
    }
}

/// Verifies every path (walking directories) and hands each report to `emit` as soon as it is
/// made, in order. Never fails as a whole: every problem is one file's error report.
pub fn verify_paths(
    paths: &[PathBuf],
    require: Requirement,
    emit: &mut dyn FnMut(FileReport),
) -> WalkStats {
    let mut stats = WalkStats::default();
    let mut emit_counted = |r: FileReport, stats: &mut WalkStats| {
        stats.reported += 1;
        emit(r);
    };
    for path in paths {
        // Named paths follow symlinks: naming a link means its target.
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                emit_counted(
                    error_report(path, require, io_error("read", &e)),
                    &mut stats,
                );
                continue;
            }
        };
        if meta.is_dir() {
            let before = stats.reported;
            walk(path, require, &mut stats, &mut |r, s| emit_counted(r, s));
            if stats.reported == before {
                emit_counted(
                    error_report(
                        path,
                        require,
                        FileError {
                            kind: ErrorKind::NoElfFound,
                            message: "no ELF file under this directory (symlinks are not \
                                      followed inside directories)"
                                .to_string(),
                        },
                    ),
                    &mut stats,
                );
            }
            continue;
        }
        if !meta.is_file() {
            let e = FileError {
                kind: ErrorKind::NotRegular,
                message: format!("{}, not a regular file", describe_type(meta.file_type())),
            };
            emit_counted(error_report(path, require, e), &mut stats);
            continue;
        }
        let r = match read_file(path, true) {
            Ok(Read4::Elf(map)) => report(path, require, analyze_mapped(&map)),
            Ok(Read4::NotElf(bytes)) => report(path, require, analyze(&bytes)),
            Err(e) => error_report(path, require, e),
        };
        emit_counted(r, &mut stats);
    }
    stats
}

/// Depth-first, entries in name order, with an explicit stack (no recursion limit to hit).
fn walk(
    root: &Path,
    require: Requirement,
    stats: &mut WalkStats,
    emit: &mut dyn FnMut(FileReport, &mut WalkStats),
) {
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    // Each item: (path, is the named root). Pushed in reverse so they pop in order.
    let mut stack: Vec<PathBuf> = vec![root.to_path_buf()];
    let mut first = true;
    while let Some(path) = stack.pop() {
        let is_root = std::mem::take(&mut first);
        let meta = if is_root {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        };
        let meta = match meta {
            Ok(m) => m,
            // Listed, then deleted before we got to it (a temporary file): not there to verify.
            Err(e) if !is_root && e.kind() == std::io::ErrorKind::NotFound => {
                stats.vanished += 1;
                continue;
            }
            Err(e) => {
                emit(error_report(&path, require, io_error("stat", &e)), stats);
                continue;
            }
        };
        let ft = meta.file_type();
        if ft.is_symlink() {
            stats.skipped_symlinks += 1;
        } else if ft.is_dir() {
            if !seen_dirs.insert((meta.dev(), meta.ino())) {
                continue;
            }
            stats.directories += 1;
            let entries = match std::fs::read_dir(&path) {
                Ok(rd) => rd,
                Err(e) if !is_root && e.kind() == std::io::ErrorKind::NotFound => {
                    stats.vanished += 1;
                    continue;
                }
                Err(e) => {
                    emit(error_report(&path, require, io_error("list", &e)), stats);
                    continue;
                }
            };
            let mut children: Vec<PathBuf> = Vec::new();
            for entry in entries {
                match entry {
                    Ok(e) => children.push(e.path()),
                    Err(e) => emit(error_report(&path, require, io_error("list", &e)), stats),
                }
            }
            children.sort_by(|a, b| a.as_os_str().cmp(b.as_os_str()));
            stack.extend(children.into_iter().rev());
        } else if ft.is_file() {
            match read_file(&path, false) {
                Ok(Read4::Elf(map)) => emit(report(&path, require, analyze_mapped(&map)), stats),
                Ok(Read4::NotElf(_)) => stats.skipped_non_elf += 1,
                // Swapped for a special file between the listing and the open.
                Err(FileError {
                    kind: ErrorKind::NotRegular,
                    ..
                }) => stats.skipped_special += 1,
                Err(FileError {
                    kind: ErrorKind::Io,
                    ..
                }) if matches!(std::fs::symlink_metadata(&path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound) =>
                {
                    stats.vanished += 1
                }
                Err(e) => emit(error_report(&path, require, e), stats),
            }
        } else {
            stats.skipped_special += 1;
        }
    }
}
