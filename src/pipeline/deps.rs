//! `[[build.deps]]`: static C dependencies built before the recipe that needs them. Each is
//! another recipe with `install = true`; what it installs under `$DESTDIR/usr` is kept by its
//! own inputs digest (in the shared cache's `deps/` when builds may reuse it, else in the build
//! folder) and merged into the dependent's `<build>/sysroot` (`include/`, `lib/`,
//! `lib/pkgconfig/`). A dependency gets no image and no run proof, only its build and the
//! verification of any ELF file it installs; none of its files reach the dependent's image.

use super::{
    BUILD_DIR_PREFIX, BuildOptions, Event, PipelineError, Tools, inputs, installed_entries,
};
use crate::build::BuildContext;
use crate::digest::Digest;
use crate::fsio::IoContext;
use crate::recipe::Recipe;
use crate::workdir::WorkDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each direct dependency's name → its inputs digest (part of the dependent's inputs).
pub(super) fn digests(
    recipe: &Recipe,
    opts: &BuildOptions,
) -> Result<BTreeMap<String, String>, PipelineError> {
    let mut out = BTreeMap::new();
    for dep in &recipe.build.deps {
        let digest = inputs(dep, opts)?.digest().to_string();
        // Two dependencies may share a name; both digests must count.
        let mut key = dep.name.clone();
        let mut n = 1;
        while out.contains_key(&key) {
            n += 1;
            key = format!("{} #{n}", dep.name);
        }
        out.insert(key, digest);
    }
    Ok(out)
}

/// A dependency tree being stored, in the store folder, until it is renamed to its digest.
const PARTIAL_PREFIX: &str = ".partial-";

/// One dependency to have built, once however many recipes need it.
struct Node<'a> {
    recipe: &'a Recipe,
    digest: String,
    /// The digests of its own dependencies, transitively: its sysroot.
    below: Vec<String>,
}

/// Adds `recipe`'s dependencies to `nodes`, each after its own (so that building in order always
/// finds a node's sysroot ready), each digest once; returns the digests `recipe` needs.
fn collect<'a>(
    recipe: &'a Recipe,
    opts: &BuildOptions,
    nodes: &mut Vec<Node<'a>>,
) -> Result<Vec<String>, PipelineError> {
    let mut needed: Vec<String> = Vec::new();
    for dep in &recipe.build.deps {
        let digest = inputs(dep, opts)?.digest().to_string();
        let below = collect(dep, opts, nodes)?;
        for d in below.iter().chain(std::iter::once(&digest)) {
            if !needed.contains(d) {
                needed.push(d.clone());
            }
        }
        if !nodes.iter().any(|n| n.digest == digest) {
            nodes.push(Node {
                recipe: dep,
                digest,
                below,
            });
        }
    }
    Ok(needed)
}

/// Builds (or finds) every dependency of `recipe` and merges them into `<build_dir>/sysroot`.
/// `log_dir` is where a failing dependency's build log is kept.
pub(super) fn prepare(
    recipe: &Recipe,
    opts: &BuildOptions,
    build_dir: &Path,
    log_dir: &Path,
    tools: Tools,
    events: &mut dyn FnMut(Event),
) -> Result<(), PipelineError> {
    if recipe.build.deps.is_empty() {
        return Ok(());
    }
    let mut nodes = Vec::new();
    let needed = collect(recipe, opts, &mut nodes)?;
    // Cold builds (--no-cache, the second --check-repro build) keep them in the build folder.
    let store = match opts.shared_cache.as_ref().and_then(|c| c.deps()) {
        Some(dir) => dir,
        None => build_dir.join("deps"),
    };
    std::fs::create_dir_all(&store).at("creating", &store)?;
    // What a killed build was storing (no living process holds it) goes first.
    for path in crate::workdir::sweep(&store, PARTIAL_PREFIX, &|_| {}) {
        events(Event::Swept(path));
    }
    for node in &nodes {
        let tree = store.join(&node.digest);
        let mut cached = tree.is_dir();
        if cached {
            if let Err(reason) = check_tree(&tree) {
                // Never used: removed, said, and built again.
                events(Event::CacheRejected {
                    entry: tree.clone(),
                    reason,
                });
                let _ = std::fs::remove_dir_all(&tree);
                let _ = std::fs::remove_file(tree_record(&tree));
                cached = false;
            }
        }
        if !cached {
            build_one(node, &store, opts, log_dir, tools, events).map_err(|e| {
                PipelineError::Dependency {
                    name: node.recipe.name.clone(),
                    source: Box::new(e),
                }
            })?;
        }
        events(Event::Dependency {
            name: &node.recipe.name,
            inputs_digest: &node.digest,
            cached,
        });
    }
    make_sysroot(&build_dir.join("sysroot"), &store, &needed)
}

/// `<dir>` holding every tree of `digests` merged, and `usr -> .`, so that the `/usr/include`
/// and `/usr/lib` that .pc files name resolve under `PKG_CONFIG_SYSROOT_DIR=<dir>` as well.
fn make_sysroot(dir: &Path, store: &Path, digests: &[String]) -> Result<(), PipelineError> {
    std::fs::create_dir_all(dir).at("creating", dir)?;
    for d in digests {
        merge(&store.join(d), dir, dir)?;
    }
    let usr = dir.join("usr");
    if std::fs::symlink_metadata(&usr).is_err() {
        std::os::unix::fs::symlink(".", &usr).at("creating the link", &usr)?;
    }
    Ok(())
}

/// Builds one dependency in a build folder of its own and stores its `$DESTDIR/usr` at
/// `<store>/<digest>`, written to a temporary name first and renamed into place.
fn build_one(
    node: &Node,
    store: &Path,
    opts: &BuildOptions,
    log_dir: &Path,
    tools: Tools,
    events: &mut dyn FnMut(Event),
) -> Result<(), PipelineError> {
    let r = node.recipe;
    let dir =
        WorkDir::new(BUILD_DIR_PREFIX).at("creating a build folder in", std::env::temp_dir())?;
    let (spec, jail) = super::toolchain_setup(r, opts, dir.path(), events)?;
    make_sysroot(&dir.path().join("sysroot"), store, &node.below)?;
    let ctx = BuildContext {
        build_dir: dir.path().to_path_buf(),
        epoch: opts.epoch,
        jail,
        keep_log: Some(log_dir.join(format!(".{}.build.log", r.name))),
        cache: opts.shared_cache.clone(),
    };
    events(Event::Building {
        name: &r.name,
        lang: r.build.lang_name(),
        libc: r.build.libc,
        link: r.build.link,
    });
    let artifact = (tools.compile)(&spec, &ctx, &mut |step| super::forward(step, events));
    super::report_killed(&ctx, events);
    let artifact = artifact?;
    events(Event::Toolchain(&artifact.toolchain));
    let destdir = artifact.installed.ok_or_else(|| {
        PipelineError::Unsupported(format!(
            "the dependency {} installed no tree (it needs install = true)",
            r.name
        ))
    })?;
    verify_elves(&destdir, r, opts, events)?;
    let usr = destdir.join("usr");
    if !usr.is_dir() {
        return Err(PipelineError::Unsupported(format!(
            "the dependency {} installed nothing under $DESTDIR/usr: install it with prefix /usr (e.g. ./configure --prefix=/usr, make install PREFIX=/usr)",
            r.name
        )));
    }
    let tmp = WorkDir::new_in(store, &format!("{PARTIAL_PREFIX}{}-", node.digest))
        .at("creating a folder in", store)?;
    let staged = tmp.path().join("tree");
    std::fs::create_dir(&staged).at("creating", &staged)?;
    merge(&usr, &staged, &staged)?;
    let target = store.join(&node.digest);
    // The record first: a tree without one is refused on reuse, never trusted.
    let digest = tree_digest(&staged).at("reading", &staged)?;
    let record = tree_record(&target);
    let records = record.parent().unwrap_or(store);
    std::fs::create_dir_all(records).at("creating", records)?;
    let mut pending = tempfile::NamedTempFile::new_in(records).at("writing in", records)?;
    std::io::Write::write_all(&mut pending, digest.hex().as_bytes()).at("writing", &record)?;
    if std::fs::symlink_metadata(&target).is_err() {
        pending
            .persist(&record)
            .map_err(|e| crate::fsio::IoError::new("writing", &record, e.error))?;
    }
    if let Err(e) = std::fs::rename(&staged, &target) {
        // Another build stored the same inputs first: its tree is as good as ours.
        if !target.is_dir() {
            return Err(crate::fsio::IoError::new("storing the dependency in", &target, e).into());
        }
    }
    Ok(())
}

/// Where the digest of a stored tree, taken when it was stored, is kept: `<store>.records/`
/// beside the store (so the store holds the trees alone).
fn tree_record(tree: &Path) -> PathBuf {
    let name = tree.file_name().unwrap_or_default();
    let store = tree.parent().unwrap_or(Path::new("."));
    let mut records = store.as_os_str().to_owned();
    records.push(".records");
    PathBuf::from(records).join(name)
}

/// Whether a stored tree still holds what was stored: its digest against the record.
fn check_tree(tree: &Path) -> Result<(), String> {
    let recorded = std::fs::read_to_string(tree_record(tree))
        .map_err(|_| "no digest was recorded for it".to_owned())?;
    let actual = tree_digest(tree).map_err(|e| format!("reading it: {e}"))?;
    if actual.hex() == recorded.trim() {
        Ok(())
    } else {
        Err(format!(
            "its files hash to {} where {} was recorded when it was stored",
            actual.hex(),
            recorded.trim()
        ))
    }
}

/// One digest over a tree: every entry's path, kind, permission bits and content (a file's
/// bytes, a link's target), in sorted order; symlinks are never followed.
fn tree_digest(root: &Path) -> std::io::Result<Digest> {
    use std::os::unix::fs::PermissionsExt;
    let mut listing = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = rel.join(e.file_name());
            let meta = std::fs::symlink_metadata(e.path())?;
            let mode = meta.permissions().mode() & 0o7777;
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(e.path())?.display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else if meta.is_file() {
                let mut f = std::fs::File::open(e.path())?;
                format!("file {}", Digest::of_reader(&mut f)?.hex())
            } else {
                "other".to_owned()
            };
            listing.push(format!("{} {mode:o} {what}\n", path.display()));
        }
    }
    listing.sort();
    Ok(Digest::of_bytes(listing.concat().as_bytes()))
}

/// Every ELF file the dependency installed is verified as an image's would be.
fn verify_elves(
    tree: &Path,
    recipe: &Recipe,
    opts: &BuildOptions,
    events: &mut dyn FnMut(Event),
) -> Result<(), PipelineError> {
    for e in installed_entries(tree)? {
        super::verify_installed_elf(&e, recipe, opts, events)?;
    }
    Ok(())
}

/// Copies the tree `from` into `to` (folders merged, symlinks as symlinks, modes kept). A file
/// already there with other bytes is a conflict between two dependencies, refused; the same
/// bytes (a header two of them install) are fine. `root` names paths in the error.
fn merge(from: &Path, to: &Path, root: &Path) -> Result<(), PipelineError> {
    let mut entries: Vec<_> = std::fs::read_dir(from)
        .at("reading", from)?
        .collect::<Result<_, _>>()
        .at("reading", from)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let src = e.path();
        let dst = to.join(e.file_name());
        let kind = e.file_type().at("reading", &src)?;
        let existing = std::fs::symlink_metadata(&dst).ok();
        let conflict = || {
            PipelineError::Unsupported(format!(
                "two dependencies install {} with different contents",
                Path::new("/usr")
                    .join(dst.strip_prefix(root).unwrap_or(&dst))
                    .display()
            ))
        };
        if kind.is_symlink() {
            let target = std::fs::read_link(&src).at("reading the link", &src)?;
            match existing {
                Some(_) if std::fs::read_link(&dst).ok().as_ref() == Some(&target) => {}
                Some(_) => return Err(conflict()),
                None => std::os::unix::fs::symlink(&target, &dst).at("creating the link", &dst)?,
            }
        } else if kind.is_dir() {
            match existing {
                Some(m) if m.is_dir() => {}
                Some(_) => return Err(conflict()),
                None => std::fs::create_dir(&dst).at("creating", &dst)?,
            }
            merge(&src, &dst, root)?;
        } else if kind.is_file() {
            match existing {
                Some(_) => {
                    // Compared by streamed digests: a dependency's big file is never held whole.
                    let digest = |p: &Path| {
                        std::fs::File::open(p).and_then(|mut f| Digest::of_reader(&mut f))
                    };
                    let theirs = digest(&src).at("reading", &src)?;
                    let same = digest(&dst).ok() == Some(theirs);
                    if !same {
                        return Err(conflict());
                    }
                }
                None => {
                    std::fs::copy(&src, &dst).at("copying", &src)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_shared_identical_files_and_refuses_different_ones() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, to) = (d.path().join("a"), d.path().join("b"), d.path().join("to"));
        for (dir, text) in [(&a, "same"), (&b, "same")] {
            std::fs::create_dir_all(dir.join("include")).unwrap();
            std::fs::write(dir.join("include/common.h"), text).unwrap();
        }
        std::fs::write(a.join("include/a.h"), "a").unwrap();
        std::os::unix::fs::symlink("a.h", a.join("include/link.h")).unwrap();
        std::fs::create_dir(&to).unwrap();
        merge(&a, &to, &to).unwrap();
        merge(&b, &to, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(to.join("include/a.h")).unwrap(),
            "a"
        );
        assert_eq!(
            std::fs::read_link(to.join("include/link.h")).unwrap(),
            Path::new("a.h")
        );
        std::fs::write(b.join("include/common.h"), "other").unwrap();
        let e = merge(&b, &to, &to).unwrap_err().to_string();
        assert!(
            e.contains("two dependencies install /usr/include/common.h"),
            "{e}"
        );
    }
}
