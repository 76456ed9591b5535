//! Base images: a `base.toml` definition and the files it names. The ones shipped in `images/`
//! are embedded in the binary; a recipe may also name a folder of its own.

use super::layer::{EntryKind, FileSource, LayerEntry, LayerSpec};
use super::users::{Owner, Users};
use crate::fsio::{IoContext, IoError};
use serde::Deserialize;
use std::path::{Path, PathBuf};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_images.rs"));
}

pub(crate) const DEFINITION_FILE: &str = "base.toml";

/// The mtime of every entry of a base layer: fixed, independent of the recipe's
/// SOURCE_DATE_EPOCH. A base layer is the same blob for every recipe and every commit that uses
/// it, so registries and caches share it (one upload, one pull) instead of storing a new copy
/// each time a recipe's epoch moves (`epoch = "git"` moves it on every commit).
pub const BASE_MTIME: u64 = 0;

#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("unknown base image {name:?}; available: {available}")]
    Unknown { name: String, available: String },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error(transparent)]
    Io(#[from] IoError),
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
    /// Where the content comes from (e.g. a Debian package and version): the SBOM's record.
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
    package: Option<String>,
    digest: String,
}

/// What a tree holds, whatever stores it: files with their content, symlinks with targets.
pub(crate) enum TreeItem {
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
pub(crate) fn tree_digest(items: &[TreeItem]) -> String {
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

fn folder_tree(root: &Path, items: &mut Vec<TreeItem>) -> Result<(), BaseError> {
    for e in crate::fsio::tree(root)? {
        if e.kind.is_symlink() {
            let target = std::fs::read_link(&e.path).at("reading", &e.path)?;
            items.push(TreeItem::Symlink {
                rel: e.rel,
                target: target.to_string_lossy().into_owned(),
            });
        } else if e.kind.is_file() {
            let bytes = std::fs::read(&e.path).at("reading", &e.path)?;
            items.push(TreeItem::File {
                rel: e.rel,
                sha256: crate::digest::Digest::of_bytes(&bytes).hex().to_owned(),
                source: FileSource::Path(e.path),
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
    /// The base's /etc/passwd and /etc/group, to resolve user and owner names against.
    pub users: Users,
    /// Files and trees that name where they come from (`package = "tzdata 2025b-0+deb12u2
    /// (Debian 12), …"`), sorted by path: the SBOM lists them by package.
    pub packages: Vec<BasePackage>,
}

/// One file or tree of a base that comes from a named package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BasePackage {
    /// Its path in the image ("/usr/share/zoneinfo").
    pub path: String,
    /// The definition's `package` text as written.
    pub package: String,
    /// The pinned digest: a file's sha256, or a tree's over its listing.
    pub digest: Option<String>,
    pub tree: bool,
}

impl BasePackage {
    /// The package name and version: the first two words of `package`.
    pub fn name_version(&self) -> (String, Option<String>) {
        let mut words = self.package.split_whitespace();
        let name = words.next().unwrap_or_default().to_owned();
        let version = words
            .next()
            .map(|v| v.trim_end_matches(',').to_owned())
            .filter(|v| !v.starts_with('('));
        (name, version)
    }
}

/// Names of the embedded bases, sorted.
pub(crate) fn embedded_names() -> Vec<&'static str> {
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
pub(crate) fn is_path_reference(reference: &str) -> bool {
    reference.contains('/') || reference.starts_with('.')
}

/// Loads `reference`: an embedded base's name, or a folder (relative to `recipe_dir`) holding a
/// base.toml. The layer's mtime is [`BASE_MTIME`], whatever the recipe's epoch.
pub fn load(reference: &str, recipe_dir: &Path) -> Result<Base, BaseError> {
    if is_path_reference(reference) {
        let dir = recipe_dir.join(reference);
        let def_path = dir.join(DEFINITION_FILE);
        let text = std::fs::read_to_string(&def_path).at("reading", &def_path)?;
        // A base's files stay in the base's folder, symlinks resolved.
        let confinement =
            crate::confine::Confinement::new(&dir, &[]).map_err(|e| BaseError::Invalid {
                path: dir.clone(),
                reason: e.to_string(),
            })?;
        let inside = |src: &str| {
            confinement
                .check(&dir.join(src))
                .map_err(|e| format!("source {src:?}: {e}"))
        };
        return build(
            &def_path,
            &text,
            |src| {
                let p = inside(src)?;
                if !p.is_file() {
                    return Err(format!("source {src:?} is not a file"));
                }
                Ok(FileSource::Path(p))
            },
            |src| {
                let root = inside(src).map_err(|reason| BaseError::Invalid {
                    path: def_path.clone(),
                    reason,
                })?;
                let mut items = Vec::new();
                folder_tree(&root, &mut items)?;
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
        |src| {
            embedded_file(&format!("{reference}/{src}"))
                .map(|b| FileSource::Bytes(b.to_vec()))
                .ok_or_else(|| format!("source {src:?} does not exist"))
        },
        |src| Ok(embedded_tree(&format!("{reference}/{src}"))),
    )
}

fn build(
    def_path: &Path,
    text: &str,
    resolve: impl Fn(&str) -> Result<FileSource, String>,
    resolve_tree: impl Fn(&str) -> Result<Vec<TreeItem>, BaseError>,
) -> Result<Base, BaseError> {
    let invalid = |reason: String| BaseError::Invalid {
        path: def_path.to_path_buf(),
        reason,
    };
    let def: Definition = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for f in &def.files {
        let source = resolve(&f.source).map_err(|why| invalid(format!("{}: {why}", f.path)))?;
        let path = rel(&f.path).map_err(invalid)?;
        let is_db = matches!(path.as_str(), "etc/passwd" | "etc/group");
        if f.digest.is_none() && !is_db {
            files.push((f, path, source, None));
            continue;
        }
        // Only pinned files and the user databases are read here; the layer streams the rest.
        let bytes = match &source {
            FileSource::Bytes(b) => std::borrow::Cow::Borrowed(b.as_slice()),
            FileSource::Path(p) => std::borrow::Cow::Owned(std::fs::read(p).at("reading", p)?),
        };
        if let Some(pin) = &f.digest {
            let actual = crate::digest::Digest::of_bytes(&bytes).to_string();
            if &actual != pin {
                return Err(invalid(format!(
                    "{}: {} has digest {actual}, but the definition pins {pin}; restore the file or update the pin deliberately",
                    f.path, f.source
                )));
            }
        }
        let text = is_db.then(|| String::from_utf8_lossy(&bytes).into_owned());
        files.push((f, path, source, text));
    }
    let db = |name: &str| {
        files
            .iter()
            .find(|(_, p, _, _)| p == name)
            .and_then(|(_, _, _, t)| t.as_deref())
    };
    let users = Users::parse(db("etc/passwd"), db("etc/group"));
    let owner = |path: &str, spec: Option<&str>| -> Result<(u32, u32), BaseError> {
        let Some(s) = spec else { return Ok((0, 0)) };
        s.parse::<Owner>()
            .and_then(|o| users.resolve_owner(&o))
            .map_err(|e| invalid(format!("{path}: owner {s:?}: {e}")))
    };
    for d in &def.dirs {
        let (uid, gid) = owner(&d.path, d.owner.as_deref())?;
        entries.push(LayerEntry {
            path: rel(&d.path).map_err(invalid)?,
            mode: d.mode,
            uid,
            gid,
            kind: EntryKind::Dir,
        });
    }
    for (f, path, source, _) in files {
        let (uid, gid) = owner(&f.path, f.owner.as_deref())?;
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
        mtime: BASE_MTIME,
        comment: format!("staticpack base {}: {}", def.name, def.description),
    });
    let mut packages: Vec<BasePackage> = (def.files.iter())
        .filter_map(|f| {
            Some(BasePackage {
                path: f.path.clone(),
                package: f.package.clone()?,
                digest: f.digest.clone(),
                tree: false,
            })
        })
        .chain(def.trees.iter().filter_map(|t| {
            Some(BasePackage {
                path: t.path.clone(),
                package: t.package.clone()?,
                digest: Some(t.digest.clone()),
                tree: true,
            })
        }))
        .collect();
    packages.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Base {
        name: def.name,
        description: def.description,
        layer,
        users,
        packages,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_bases_are_embedded() {
        assert_eq!(embedded_names(), vec!["scratch", "static"]);
        let scratch = load("scratch", Path::new(".")).unwrap();
        assert!(scratch.layer.is_none());
        let st = load("static", Path::new(".")).unwrap();
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
        let nonroot = st.users.resolve(&"nonroot".parse().unwrap()).unwrap();
        assert_eq!((nonroot.uid, nonroot.gid), (65532, 65532));
        assert_eq!(nonroot.home.as_deref(), Some("/home/nonroot"));
        assert_eq!(st.users.group_names(), vec!["root", "nonroot"]);
        let home = layer
            .entries
            .iter()
            .find(|e| e.path == "home/nonroot")
            .unwrap();
        assert_eq!((home.uid, home.gid), (65532, 65532));
    }

    #[test]
    fn unknown_base_lists_the_available_ones() {
        let e = load("statik", Path::new(".")).unwrap_err().to_string();
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
        let b = load("./mybase", d.path()).unwrap();
        assert_eq!(b.name, "mine");
        assert_eq!(b.layer.unwrap().mtime, BASE_MTIME);
        std::fs::write(
            d.path().join("mybase/base.toml"),
            "name = \"mine\"\n[[files]]\npath = \"etc/motd\"\nsource = \"f/motd\"\nmode = 0o644\n",
        )
        .unwrap();
        assert!(
            load("./mybase", d.path())
                .unwrap_err()
                .to_string()
                .contains("must be an absolute path")
        );
    }

    #[test]
    fn owners_may_name_the_bases_own_users() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b")).unwrap();
        std::fs::write(d.path().join("b/passwd"), "app:x:7:8::/app:/bin/sh\n").unwrap();
        std::fs::write(d.path().join("b/group"), "app:x:8:\nops:x:9:\n").unwrap();
        let def = |owner: &str| {
            format!(
                "name = \"b\"\n[[dirs]]\npath = \"/app\"\nmode = 0o700\nowner = \"{owner}\"\n\
                 [[files]]\npath = \"/etc/passwd\"\nsource = \"passwd\"\nmode = 0o644\n\
                 [[files]]\npath = \"/etc/group\"\nsource = \"group\"\nmode = 0o644\n"
            )
        };
        std::fs::write(d.path().join("b/base.toml"), def("app:ops")).unwrap();
        let b = load("./b", d.path()).unwrap();
        let layer = b.layer.unwrap();
        let app = layer.entries.iter().find(|e| e.path == "app").unwrap();
        assert_eq!((app.uid, app.gid), (7, 9));
        std::fs::write(d.path().join("b/base.toml"), def("app:staff")).unwrap();
        let e = load("./b", d.path()).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "/app: owner \"app:staff\": group \"staff\" is not in the image's /etc/group (it has: app, ops)"
            ),
            "{e}"
        );
    }

    /// The base layer is one blob whatever the recipe's epoch: `load` takes none, and the layer
    /// is the golden one of tests/base_images.rs.
    #[test]
    fn base_layer_digest_is_fixed() {
        let layer = load("static", Path::new(".")).unwrap().layer.unwrap();
        assert_eq!(layer.mtime, BASE_MTIME);
        let blobs = tempfile::tempdir().unwrap();
        let blob = super::super::layer::write_layer(&layer, blobs.path()).unwrap();
        assert_eq!(
            blob.digest.to_string(),
            "sha256:487cc1946fb75bffcfe5157c8017ffe203e21283f4a59499dc7d9e994b6706cc"
        );
    }
}
