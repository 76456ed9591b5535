//! C file lists with musl (our specs, so static-pie is real) or with the host's glibc gcc:
//! each file compiled on its own, one job per core, objects reused from the shared cache when
//! what decides their bytes is unchanged, then one link.

use super::process;
use super::{Artifact, BuildContext, BuildError, Step, musl};
use crate::fsio::IoContext;
use crate::recipe::{BuildSpec, CBuild, LibcChoice, LinkMode};
use sha2::{Digest as _, Sha256};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub(super) fn build(
    spec: &BuildSpec,
    c: &CBuild,
    ctx: &BuildContext,
    report: &mut dyn FnMut(Step),
) -> Result<Artifact, BuildError> {
    let gcc = super::c_compiler(&spec.platform)?;
    let version = process::version_line(&gcc);
    let binary = super::output_path(ctx, &spec.output)?;
    let (toolchain, libc_args, specs_text) = match spec.libc {
        LibcChoice::Musl => {
            let (specs, m) = musl::write_specs(&ctx.build_dir, &spec.platform)?;
            let text = std::fs::read(&specs).at("reading", &specs)?;
            (
                format!("{version} + musl ({})", m.lib_dir.display()),
                vec!["-specs".to_owned(), specs.display().to_string()],
                text,
            )
        }
        LibcChoice::Glibc => (format!("{version} + glibc"), Vec::new(), Vec::new()),
        LibcChoice::None => {
            return Err(BuildError::Unsupported(
                "C needs a libc: musl or glibc".into(),
            ));
        }
    };
    let compile_flags = compile_flags(spec, c, ctx.epoch);
    // No host path may reach an object: the source and build folders get fixed names. gcc
    // tries the last map first, and an unpacked archive's source is inside the build folder.
    let maps = [
        prefix_map(&ctx.build_dir, "/build"),
        prefix_map(&spec.source, "/src"),
    ];
    let sysroot: Vec<String> = if spec.deps.is_empty() {
        Vec::new()
    } else {
        super::commands::sysroot_flags(&ctx.build_dir.join("sysroot")).to_vec()
    };
    let objects = ctx.build_dir.join("obj");
    std::fs::create_dir_all(&objects).at("creating", &objects)?;
    let compiler = Compiler {
        gcc: &gcc,
        ctx,
        source: &spec.source,
        // The dependencies' sysroot: its headers' text is in each object's key already.
        args: [libc_args.as_slice(), &maps, &sysroot, &compile_flags].concat(),
        // The maps' host paths are left out: mapping them away is their whole point.
        key: object_key_base(
            spec,
            &without_build_dir(&specs_text, &ctx.build_dir),
            &compile_flags,
        ),
        cache: ctx
            .cache
            .as_ref()
            .and_then(|cache| cache.objects())
            .filter(|dir| std::fs::create_dir_all(dir).is_ok()),
    };
    let compiled = compiler.compile_all(&c.files, &objects)?;
    for (entry, reason) in compiled.iter().filter_map(|o| o.rejected.clone()) {
        report(Step::CacheRejected { entry, reason });
    }
    let reused = compiled.iter().filter(|o| o.reused).count();
    report(Step::Compiled {
        compiled: compiled.len() - reused,
        reused,
    });

    let mut link = process::hermetic(&gcc, &ctx.build_dir, ctx.epoch);
    link.current_dir(&spec.source).args(&libc_args);
    match spec.link {
        LinkMode::StaticPie => link.arg("-static-pie"),
        LinkMode::Static => link.arg("-static"),
        LinkMode::Dynamic => &mut link,
    };
    // As make's default link rule does: flags like -flto, -pthread or -Wl,… in cflags must
    // reach the link too.
    link.args(&maps)
        .arg("-O2")
        .args(&sysroot)
        .args(&c.cflags)
        .arg("-o")
        .arg(&binary)
        .args(compiled.iter().map(|o| &o.path))
        .args(&c.ldflags);
    if c.strip {
        link.arg("-s");
    }
    let mut artifact = super::run_one(link, binary, toolchain, ctx)?;
    // Every compile is recorded, reused or not: the provenance says how the objects are made,
    // and must not depend on what the cache held.
    let mut commands: Vec<String> = compiled.into_iter().map(|o| o.command).collect();
    commands.append(&mut artifact.commands);
    artifact.commands = commands;
    Ok(artifact)
}

/// What decides an object's bytes, besides its preprocessed text and toolchain: written by the
/// recipe, in order.
fn compile_flags(spec: &BuildSpec, c: &CBuild, epoch: u64) -> Vec<String> {
    let mut flags = Vec::new();
    flags.extend(super::timestamp_macro(epoch));
    if spec.link == LinkMode::StaticPie {
        flags.push("-fPIE".to_owned());
    }
    flags.push("-O2".to_owned());
    // Relative (the compiler runs in the source folder), so that the preprocessed text, and
    // with it the object's key, is the same wherever the source is.
    flags.extend(c.include_dirs.iter().map(|d| format!("-I{d}")));
    flags.extend(c.defines.iter().map(|d| format!("-D{d}")));
    flags.extend(c.cflags.iter().cloned());
    flags
}

fn object_key_base(spec: &BuildSpec, specs_text: &[u8], flags: &[String]) -> Sha256 {
    let mut key = Sha256::new();
    let versions = super::toolchain_versions(spec);
    let mut feed = |label: &str, bytes: &[u8]| {
        key.update((label.len() as u64).to_le_bytes());
        key.update(label.as_bytes());
        key.update((bytes.len() as u64).to_le_bytes());
        key.update(bytes);
    };
    feed("staticpack", env!("CARGO_PKG_VERSION").as_bytes());
    for (tool, version) in &versions {
        feed(tool, version.as_bytes());
    }
    feed("specs", specs_text);
    for f in flags {
        feed("flag", f.as_bytes());
    }
    key
}

/// `bytes` with every occurrence of the build folder's path replaced by `<build>`: what is
/// in the build folder is the same from one build to the next, its name is not.
fn without_build_dir(bytes: &[u8], build_dir: &Path) -> Vec<u8> {
    let needle = build_dir.as_os_str().as_encoded_bytes();
    if needle.is_empty() {
        return bytes.to_vec();
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(b"<build>");
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

fn prefix_map(from: &Path, to: &str) -> String {
    format!("-ffile-prefix-map={}={to}", from.display())
}

struct Compiler<'a> {
    gcc: &'a Path,
    ctx: &'a BuildContext,
    source: &'a Path,
    /// libc, prefix maps, then [`compile_flags`].
    args: Vec<String>,
    key: Sha256,
    /// `<cache>/objects`, when builds may reuse it.
    cache: Option<PathBuf>,
}

struct Object {
    path: PathBuf,
    command: String,
    reused: bool,
    /// The cache entry that failed its check and was compiled again instead, and why.
    rejected: Option<(PathBuf, String)>,
}

impl Compiler<'_> {
    /// Compiles every file, one worker per core; the objects come back in the files' order.
    fn compile_all(&self, files: &[String], dir: &Path) -> Result<Vec<Object>, BuildError> {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(files.len())
            .max(1);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<Option<Result<Object, BuildError>>>> =
            Mutex::new((0..files.len()).map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= files.len() || failed.load(Ordering::Relaxed) {
                            break;
                        }
                        let result = self.compile(i, &files[i], dir);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if let Ok(mut slots) = results.lock() {
                            slots[i] = Some(result);
                        }
                    }
                });
            }
        });
        let slots = results.into_inner().unwrap_or_default();
        // The first failure in file order, so that the error does not depend on scheduling
        // more than it must.
        let mut objects = Vec::with_capacity(files.len());
        for slot in slots {
            match slot {
                Some(Ok(o)) => objects.push(o),
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        Ok(objects)
    }

    fn command(&self) -> Command {
        let mut cmd = process::hermetic(self.gcc, &self.ctx.build_dir, self.ctx.epoch);
        cmd.current_dir(self.source).args(&self.args);
        cmd
    }

    fn compile(&self, index: usize, file: &str, dir: &Path) -> Result<Object, BuildError> {
        let stem = Path::new(file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let path = dir.join(format!("{index:04}-{stem}.o"));
        let mut compile = self.command();
        compile.arg("-c").arg(file).arg("-o").arg(&path);
        let command = process::render(&compile);
        let Some(cache) = &self.cache else {
            process::run_step(compile, self.ctx)?;
            return Ok(Object {
                path,
                command,
                reused: false,
                rejected: None,
            });
        };
        // The key is the preprocessed text (every header it includes, as it was included), the
        // file's name (it is in the object's symbol table), the flags and the toolchain.
        let preprocessed = dir.join(format!("{index:04}-{stem}.i"));
        let mut pp = self.command();
        pp.arg("-E").arg(file).arg("-o").arg(&preprocessed);
        process::run_step(pp, self.ctx)?;
        let mut key = self.key.clone();
        key.update(file.as_bytes());
        key.update([0]);
        let text = std::fs::read(&preprocessed).at("reading", &preprocessed)?;
        let _ = std::fs::remove_file(&preprocessed);
        // Headers found through the build folder (kernel headers, the dependencies' sysroot)
        // name it in line markers; the objects do not (the prefix map), so neither does the key.
        key.update(without_build_dir(&text, &self.ctx.build_dir));
        let hex = hex::encode(key.finalize());
        let cached = cache.join(&hex[..2]).join(format!("{}.o", &hex[2..]));
        let mut rejected = None;
        match reuse(&cached, &path) {
            Reuse::Checked => {
                return Ok(Object {
                    path,
                    command,
                    reused: true,
                    rejected,
                });
            }
            Reuse::Missing => {}
            Reuse::Mismatch(reason) => rejected = Some((cached.clone(), reason)),
        }
        process::run_step(compile, self.ctx)?;
        store(&path, &cached);
        Ok(Object {
            path,
            command,
            reused: false,
            rejected,
        })
    }
}

/// The sha256 of an entry's bytes recorded when it was stored, beside it.
fn digest_file_of(cached: &Path) -> PathBuf {
    let mut name = cached.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

enum Reuse {
    /// Copied to the object's place after its bytes matched the recorded digest.
    Checked,
    Missing,
    /// There, but not what was stored: never used.
    Mismatch(String),
}

/// Copies a cached object to `to` if its bytes still hash to the digest recorded when it was
/// stored (hashed as copied, so what is checked is what is used).
fn reuse(cached: &Path, to: &Path) -> Reuse {
    let Ok(mut from) = std::fs::File::open(cached) else {
        return Reuse::Missing;
    };
    let Ok(recorded) = std::fs::read_to_string(digest_file_of(cached)) else {
        return Reuse::Mismatch("no digest was recorded for it".into());
    };
    let copied = std::fs::File::create(to).and_then(|mut out| {
        let mut hashing = crate::digest::HashingWriter::new(&mut out);
        std::io::copy(&mut from, &mut hashing)?;
        Ok(hashing.finish().1)
    });
    match copied {
        Ok(digest) if digest.hex() == recorded.trim() => Reuse::Checked,
        Ok(digest) => {
            let _ = std::fs::remove_file(to);
            Reuse::Mismatch(format!(
                "sha256 {} where {} was recorded when it was stored",
                digest.hex(),
                recorded.trim()
            ))
        }
        Err(_) => {
            let _ = std::fs::remove_file(to);
            Reuse::Missing
        }
    }
}

/// Keeps a copy of a fresh object in the cache with the digest of its bytes, whole or not at
/// all; a cache that cannot be written only makes the next build slower.
fn store(object: &Path, cached: &Path) {
    let Some(parent) = cached.parent() else {
        return;
    };
    let _ = std::fs::create_dir_all(parent).and_then(|()| {
        let mut tmp = tempfile::NamedTempFile::new_in(parent)?;
        let digest = {
            let mut hashing = crate::digest::HashingWriter::new(&mut tmp);
            std::io::copy(&mut std::fs::File::open(object)?, &mut hashing)?;
            hashing.finish().1
        };
        let mut record = tempfile::NamedTempFile::new_in(parent)?;
        std::io::Write::write_all(&mut record, digest.hex().as_bytes())?;
        // The digest first: an object without its digest is a miss, never a hit.
        record
            .persist(digest_file_of(cached))
            .map_err(|e| e.error)?;
        tmp.persist(cached).map_err(|e| e.error)?;
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_build_folder_is_named_alike_in_every_key() {
        let dir = std::path::Path::new("/tmp/staticpack-build-1");
        let text =
            b"# 1 \"/tmp/staticpack-build-1/kernel-headers/linux/x.h\"\n/tmp/staticpack-build-1";
        assert_eq!(
            super::without_build_dir(text, dir),
            b"# 1 \"<build>/kernel-headers/linux/x.h\"\n<build>".to_vec()
        );
        assert_eq!(super::without_build_dir(b"none", dir), b"none".to_vec());
    }
}
