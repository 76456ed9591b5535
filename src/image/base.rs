//! Base images: a `base.toml` definition and the files it names. The ones shipped in `images/`
//! are embedded in the binary; a recipe may also name a folder of its own.

use super::layer::{EntryKind, FileSource, LayerEntry, LayerSpec};
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_images.rs"));
}

pub const DEFINITION_FILE: &str = "base.toml";

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("unknown base image {name:?}; available: {available}")]
    Unknown { name: String, available: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Definition {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    dirs: Vec<DirDef>,
    #[serde(default)]
    files: Vec<FileDef>,
    #[serde(default)]
    symlinks: Vec<SymlinkDef>,
    #[serde(default)]
    trees: Vec<TreeDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirDef {
    path: String,
    mode: u32,
    owner: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    path: String,
    source: String,
    mode: u32,
    owner: Option<String>,
    /// Where the content comes from (e.g. a Debian package and version), for the record.
    #[allow(dead_code)]
    package: Option<String>,
    /// sha256 the content must have: a vendored input that changed is an error, not a new digest.
    digest: Option<String>,
}

/// A whole folder of vendored files (files 0644, folders 0755, symlinks kept), pinned by a
/// digest over its sorted listing.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeDef {
    path: String,
    source: String,
    #[allow(dead_code)]
    package: Option<String>,
    digest: String,
}

/// What a tree holds, whatever stores it: files with their content, symlinks with targets.
pub enum TreeItem {
    File {
        rel: String,
        source: FileSource,
        sha256: String,
    },
    Symlink {
        rel: String,
        target: String,
    },
}

/// The pin of a tree: sha256 over its sorted listing ("f PATH SHA256" / "l PATH TARGET" lines).
pub fn tree_digest(items: &[TreeItem]) -> String {
    let mut lines: Vec<String> = items
        .iter()
        .map(|i| match i {
            TreeItem::File { rel, sha256, .. } => format!("f {rel} {sha256}\n"),
            TreeItem::Symlink { rel, target } => format!("l {rel} {target}\n"),
        })
        .collect();
    lines.sort();
    crate::digest::Digest::of_bytes(lines.concat().as_bytes()).to_string()
}

fn embedded_tree(prefix: &str) -> Vec<TreeItem> {
    let prefix = format!("{}/", prefix.trim_end_matches('/'));
    let mut items: Vec<TreeItem> = embedded::EMBEDDED
        .iter()
        .filter_map(|(p, bytes)| {
            let rel = p.strip_prefix(&prefix)?;
            Some(TreeItem::File {
                rel: rel.to_owned(),
                source: FileSource::Bytes(bytes.to_vec()),
                sha256: crate::digest::Digest::of_bytes(bytes).hex().to_owned(),
            })
        })
        .collect();
    items.extend(embedded::EMBEDDED_LINKS.iter().filter_map(|(p, target)| {
        Some(TreeItem::Symlink {
            rel: p.strip_prefix(&prefix)?.to_owned(),
            target: (*target).to_owned(),
        })
    }));
    items
}

fn folder_tree(root: &Path, dir: &Path, items: &mut Vec<TreeItem>) -> Result<(), BaseError> {
    let io = |source| BaseError::Io {
        path: dir.to_path_buf(),
        source,
    };
    for e in std::fs::read_dir(dir).map_err(io)?.flatten() {
        let p = e.path();
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        let kind = e.file_type().map_err(io)?;
        if kind.is_dir() {
            folder_tree(root, &p, items)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&p).map_err(|source| BaseError::Io {
                path: p.clone(),
                source,
            })?;
            items.push(TreeItem::Symlink {
                rel,
                target: target.to_string_lossy().into_owned(),
            });
        } else if kind.is_file() {
            let bytes = std::fs::read(&p).map_err(|source| BaseError::Io {
                path: p.clone(),
                source,
            })?;
            items.push(TreeItem::File {
                rel,
                sha256: crate::digest::Digest::of_bytes(&bytes).hex().to_owned(),
                source: FileSource::Path(p),
            });
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SymlinkDef {
    path: String,
    target: String,
}

/// A base image, ready to become the bottom layer.
#[derive(Clone, Debug)]
pub struct Base {
    pub name: String,
    pub description: String,
    /// None for an empty base (scratch).
    pub layer: Option<LayerSpec>,
    /// The base's /etc/passwd, to check user names against.
    pub passwd: Option<String>,
}

/// Names of the embedded bases, sorted.
pub fn embedded_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = embedded::EMBEDDED
        .iter()
        .filter_map(|(p, _)| p.strip_suffix(&format!("/{DEFINITION_FILE}")))
        .collect();
    names.sort();
    names
}

fn embedded_file(rel: &str) -> Option<&'static [u8]> {
    embedded::EMBEDDED
        .iter()
        .find(|(p, _)| *p == rel)
        .map(|(_, b)| *b)
}

/// True when a recipe's `base` names a folder rather than an embedded base.
pub fn is_path_reference(reference: &str) -> bool {
    reference.contains('/') || reference.starts_with('.')
}

/// Loads `reference`: an embedded base's name, or a folder (relative to `recipe_dir`) holding a
/// base.toml. `epoch` is the layer's mtime.
pub fn load(reference: &str, recipe_dir: &Path, epoch: u64) -> Result<Base, BaseError> {
    if is_path_reference(reference) {
        let dir = recipe_dir.join(reference);
        let def_path = dir.join(DEFINITION_FILE);
        let text = std::fs::read_to_string(&def_path).map_err(|source| BaseError::Io {
            path: def_path.clone(),
            source,
        })?;
        return build(
            &def_path,
            &text,
            epoch,
            |src| {
                let p = dir.join(src);
                p.is_file().then_some(FileSource::Path(p))
            },
            |src| {
                let mut items = Vec::new();
                folder_tree(&dir.join(src), &dir.join(src), &mut items)?;
                Ok(items)
            },
        );
    }
    let def_rel = format!("{reference}/{DEFINITION_FILE}");
    let Some(text) = embedded_file(&def_rel) else {
        return Err(BaseError::Unknown {
            name: reference.to_owned(),
            available: embedded_names().join(", "),
        });
    };
    let text = String::from_utf8_lossy(text);
    build(
        &PathBuf::from("images").join(&def_rel),
        &text,
        epoch,
        |src| embedded_file(&format!("{reference}/{src}")).map(|b| FileSource::Bytes(b.to_vec())),
        |src| Ok(embedded_tree(&format!("{reference}/{src}"))),
    )
}

fn build(
    def_path: &Path,
    text: &str,
    epoch: u64,
    resolve: impl Fn(&str) -> Option<FileSource>,
    resolve_tree: impl Fn(&str) -> Result<Vec<TreeItem>, BaseError>,
) -> Result<Base, BaseError> {
    let invalid = |reason: String| BaseError::Invalid {
        path: def_path.to_path_buf(),
        reason,
    };
    let def: Definition = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut entries = Vec::new();
    let mut passwd = None;
    for d in &def.dirs {
        let (uid, gid) = owner(d.owner.as_deref()).map_err(invalid)?;
        entries.push(LayerEntry {
            path: rel(&d.path).map_err(invalid)?,
            mode: d.mode,
            uid,
            gid,
            kind: EntryKind::Dir,
        });
    }
    for f in &def.files {
        let (uid, gid) = owner(f.owner.as_deref()).map_err(invalid)?;
        let source = resolve(&f.source)
            .ok_or_else(|| invalid(format!("{}: source {:?} does not exist", f.path, f.source)))?;
        let path = rel(&f.path).map_err(invalid)?;
        if let Some(pin) = &f.digest {
            let actual = match &source {
                FileSource::Bytes(b) => crate::digest::Digest::of_bytes(b).to_string(),
                FileSource::Path(p) => crate::digest::Digest::of_bytes(
                    &std::fs::read(p).map_err(|e| invalid(format!("{}: {e}", p.display())))?,
                )
                .to_string(),
            };
            if &actual != pin {
                return Err(invalid(format!(
                    "{}: {} has digest {actual}, but the definition pins {pin}; restore the file or update the pin deliberately",
                    f.path, f.source
                )));
            }
        }
        if path == "etc/passwd" {
            passwd = Some(match &source {
                FileSource::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                FileSource::Path(p) => std::fs::read_to_string(p)
                    .map_err(|e| invalid(format!("{}: {e}", p.display())))?,
            });
        }
        entries.push(LayerEntry {
            path,
            mode: f.mode,
            uid,
            gid,
            kind: EntryKind::File(source),
        });
    }
    for t in &def.trees {
        let base = rel(&t.path).map_err(invalid)?;
        let items = resolve_tree(&t.source)?;
        if items.is_empty() {
            return Err(invalid(format!(
                "{}: tree {:?} is empty or missing",
                t.path, t.source
            )));
        }
        let actual = tree_digest(&items);
        if actual != t.digest {
            return Err(invalid(format!(
                "{}: the files in {} have digest {actual}, but the definition pins {}; restore them or update the pin deliberately",
                t.path, t.source, t.digest
            )));
        }
        for item in items {
            entries.push(match item {
                TreeItem::File { rel: r, source, .. } => LayerEntry {
                    path: format!("{base}/{r}"),
                    mode: 0o644,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::File(source),
                },
                TreeItem::Symlink { rel: r, target } => LayerEntry {
                    path: format!("{base}/{r}"),
                    mode: 0o777,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::Symlink(target),
                },
            });
        }
    }
    for s in &def.symlinks {
        entries.push(LayerEntry {
            path: rel(&s.path).map_err(invalid)?,
            mode: 0o777,
            uid: 0,
            gid: 0,
            kind: EntryKind::Symlink(s.target.clone()),
        });
    }
    let layer = (!entries.is_empty()).then(|| LayerSpec {
        entries,
        mtime: epoch,
        comment: format!("staticpack base {}: {}", def.name, def.description),
    });
    Ok(Base {
        name: def.name,
        description: def.description,
        layer,
        passwd,
    })
}

fn rel(path: &str) -> Result<String, String> {
    let trimmed = path.trim_start_matches('/');
    if !path.starts_with('/')
        || trimmed.is_empty()
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "{path:?} must be an absolute path without '.', '..' or empty parts"
        ));
    }
    Ok(trimmed.to_owned())
}

fn owner(spec: Option<&str>) -> Result<(u32, u32), String> {
    let Some(s) = spec else { return Ok((0, 0)) };
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => Ok((u, g)),
        _ => Err(format!("owner {s:?} must be numeric UID:GID")),
    }
}

/// The uid and gid of `user` ("name", "uid" or "uid:gid") per a passwd file's text.
pub fn lookup_user(passwd: &str, user: &str) -> Option<(u32, u32)> {
    let (name, group) = user
        .split_once(':')
        .map(|(u, g)| (u, Some(g)))
        .unwrap_or((user, None));
    let from_passwd = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && (f[0] == name || f[2] == name))
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    });
    match (
        from_passwd,
        name.parse::<u32>(),
        group.map(str::parse::<u32>),
    ) {
        (Some((uid, _)), _, Some(Ok(gid))) => Some((uid, gid)),
        (Some(ids), _, _) => Some(ids),
        (None, Ok(uid), Some(Ok(gid))) => Some((uid, gid)),
        (None, Ok(uid), None) => Some((uid, uid)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_bases_are_embedded() {
        assert_eq!(embedded_names(), vec!["scratch", "static"]);
        let scratch = load("scratch", Path::new("."), 0).unwrap();
        assert!(scratch.layer.is_none());
        let st = load("static", Path::new("."), 0).unwrap();
        let layer = st.layer.unwrap();
        let paths: Vec<&str> = layer.entries.iter().map(|e| e.path.as_str()).collect();
        for p in [
            "etc/passwd",
            "etc/group",
            "etc/nsswitch.conf",
            "etc/hosts",
            "tmp",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let tmp = layer.entries.iter().find(|e| e.path == "tmp").unwrap();
        assert_eq!(tmp.mode, 0o1777);
        assert_eq!(
            lookup_user(&st.passwd.unwrap(), "nonroot"),
            Some((65532, 65532))
        );
    }

    #[test]
    fn unknown_base_lists_the_available_ones() {
        let e = load("statik", Path::new("."), 0).unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown base image \"statik\"; available: scratch, static"
        );
    }

    #[test]
    fn custom_base_folder() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("mybase/f")).unwrap();
        std::fs::write(d.path().join("mybase/f/motd"), "hi\n").unwrap();
        std::fs::write(
            d.path().join("mybase/base.toml"),
            "name = \"mine\"\n[[files]]\npath = \"/etc/motd\"\nsource = \"f/motd\"\nmode = 0o644\n",
        )
        .unwrap();
        let b = load("./mybase", d.path(), 5).unwrap();
        assert_eq!(b.name, "mine");
        assert_eq!(b.layer.unwrap().mtime, 5);
        std::fs::write(
            d.path().join("mybase/base.toml"),
            "name = \"mine\"\n[[files]]\npath = \"etc/motd\"\nsource = \"f/motd\"\nmode = 0o644\n",
        )
        .unwrap();
        assert!(
            load("./mybase", d.path(), 5)
                .unwrap_err()
                .to_string()
                .contains("must be an absolute path")
        );
    }

    #[test]
    fn user_lookup() {
        let pw = "root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/bin/sh\n";
        assert_eq!(lookup_user(pw, "root"), Some((0, 0)));
        assert_eq!(lookup_user(pw, "nonroot:0"), Some((65532, 0)));
        assert_eq!(lookup_user(pw, "1000"), Some((1000, 1000)));
        assert_eq!(lookup_user(pw, "1000:5"), Some((1000, 5)));
        assert_eq!(lookup_user(pw, "nobody"), None);
    }
}
