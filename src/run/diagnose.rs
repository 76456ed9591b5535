//! Why an exec failed, in the image's terms: the kernel says ENOENT both for a missing file
//! and for a present dynamic ELF whose interpreter (the libc loader) is missing.

use super::unpack::{Walk, resolve_in_root};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The paths `execvp` would try for `argv0` with the process's `env`, in order.
pub(crate) fn exec_candidates(argv0: &str, env: &[String]) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_owned()];
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(super::DEFAULT_PATH);
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{}/{argv0}", dir.trim_end_matches('/')))
        .collect()
}

/// The host path of in-image `path` (relative ones against `cwd`), if it exists.
fn in_root(root: &Path, cwd: &str, path: &str) -> Option<PathBuf> {
    let full = Path::new(cwd).join(path);
    resolve_in_root(root, &full, Walk::Lookup).ok().flatten()
}

/// The first of `candidates` present in the image, as (in-image path, host path).
pub(crate) fn first_present(
    root: &Path,
    cwd: &str,
    candidates: &[String],
) -> Option<(String, PathBuf)> {
    candidates.iter().find_map(|c| {
        in_root(root, cwd, c)
            .filter(|p| p.is_file())
            .map(|p| (c.clone(), p))
    })
}

/// What to add to an ENOENT from exec: the missing interpreter, or the missing program.
pub(crate) fn enoent_hint(root: &Path, cwd: &str, argv0: &str, candidates: &[String]) -> String {
    let Some((_, host)) = first_present(root, cwd, candidates) else {
        return if argv0.contains('/') {
            format!(": {argv0} is not in the image")
        } else {
            format!(
                ": {argv0} is in none of the PATH directories ({})",
                dirs_of(candidates)
            )
        };
    };
    match interpreter_of(&host) {
        Some(Interp::Elf(interp)) if in_root(root, "/", &interp).is_none() => {
            format!(": its ELF interpreter {interp} is not in the image")
        }
        Some(Interp::Script(interp)) if in_root(root, "/", &interp).is_none() => {
            format!(": its script interpreter {interp} is not in the image")
        }
        _ => String::new(),
    }
}

fn dirs_of(candidates: &[String]) -> String {
    let dirs: Vec<&str> = candidates
        .iter()
        .map(|c| c.rsplit_once('/').map_or("", |(d, _)| d))
        .collect();
    dirs.join(":")
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Interp {
    /// PT_INTERP of an ELF (a dynamically linked program).
    Elf(String),
    /// The `#!` line of a script.
    Script(String),
}

/// The interpreter `file` needs to run, if any: PT_INTERP of an ELF, or a script's `#!`.
/// Only the headers are read.
pub(crate) fn interpreter_of(file: &Path) -> Option<Interp> {
    let mut f = File::open(file).ok()?;
    let mut head = [0u8; 256];
    let n = read_up_to(&mut f, &mut head).ok()?;
    let head = &head[..n];
    if let Some(rest) = head.strip_prefix(b"#!") {
        let line = rest.split(|&b| b == b'\n').next()?;
        let line = String::from_utf8_lossy(line);
        return line
            .split_whitespace()
            .next()
            .map(|s| Interp::Script(s.to_owned()));
    }
    elf_interp(&mut f, head).map(Interp::Elf)
}

fn read_up_to(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// PT_INTERP from the program headers (32/64-bit, either byte order).
fn elf_interp(f: &mut File, head: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    if head.len() < 52 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let is64 = match head[4] {
        1 => false,
        2 => true,
        _ => return None,
    };
    let le = match head[5] {
        1 => true,
        2 => false,
        _ => return None,
    };
    let u16_at = |b: &[u8], o: usize| -> Option<u64> {
        let a: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(u64::from(if le {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }))
    };
    let u32_at = |b: &[u8], o: usize| -> Option<u64> {
        let a: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(u64::from(if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }))
    };
    let u64_at = |b: &[u8], o: usize| -> Option<u64> {
        let a: [u8; 8] = b.get(o..o + 8)?.try_into().ok()?;
        Some(if le {
            u64::from_le_bytes(a)
        } else {
            u64::from_be_bytes(a)
        })
    };
    let (phoff, phentsize, phnum) = if is64 {
        (u64_at(head, 32)?, u16_at(head, 54)?, u16_at(head, 56)?)
    } else {
        (u32_at(head, 28)?, u16_at(head, 42)?, u16_at(head, 44)?)
    };
    let min_entsize = if is64 { 56 } else { 32 };
    if phentsize < min_entsize || phnum == 0 {
        return None;
    }
    let mut table = vec![0u8; usize::try_from(phentsize * phnum).ok()?];
    f.seek(SeekFrom::Start(phoff)).ok()?;
    f.read_exact(&mut table).ok()?;
    for ph in table.chunks_exact(usize::try_from(phentsize).ok()?) {
        if u32_at(ph, 0)? != u64::from(PT_INTERP) {
            continue;
        }
        let (offset, size) = if is64 {
            (u64_at(ph, 8)?, u64_at(ph, 32)?)
        } else {
            (u32_at(ph, 4)?, u32_at(ph, 16)?)
        };
        if size == 0 || size > 4096 {
            return None;
        }
        let mut name = vec![0u8; usize::try_from(size).ok()?];
        f.seek(SeekFrom::Start(offset)).ok()?;
        f.read_exact(&mut name).ok()?;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        return Some(String::from_utf8_lossy(&name[..end]).into_owned());
    }
    None
}
