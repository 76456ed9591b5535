//! The provenance record written with every image: what went in (recipe, every input file,
//! toolchain versions, options) and what was run. Its input part is also the build cache key:
//! two builds with the same inputs digest must give the same image.

use crate::digest::Digest;
use crate::recipe::{ArchiveOrigin, LangSpec, Recipe};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub(crate) const FILE_NAME: &str = "staticpack-provenance.json";
pub(crate) const ANNOTATION: &str = "dev.staticpack.provenance";

#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("reading input {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything that decides the output bytes. Serialized canonically, its digest is the cache key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub staticpack: String,
    pub recipe: String,
    /// Input files relative to the recipe's folder → sha256.
    pub files: BTreeMap<String, String>,
    /// Tool → version line.
    pub toolchain: BTreeMap<String, String>,
    pub epoch: u64,
    /// Options that change what is produced (e.g. allow-dynamic).
    pub options: BTreeMap<String, String>,
    /// `[[build.deps]]`: each dependency's name → its own inputs digest (which covers its
    /// dependencies in turn). Left out when empty, so that recipes without any keep their key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub deps: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub inputs_digest: String,
    pub inputs: Inputs,
    /// The commands run, with the build folder as <build> and the source as <source>.
    pub commands: Vec<String>,
    /// The environment the toolchain saw (the hermetic one), host paths replaced.
    pub environment: BTreeMap<String, String>,
    pub binary_digest: String,
    pub manifest_digest: String,
    /// The runtime whose run proof the image passed (`builtin`, `runc`); absent when it was
    /// not run (`--no-run`, or no `[test]`). Not an input: the image is the same either way,
    /// but the cache may only reuse it for a build that asks for no other proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proven_by: Option<String>,
}

impl Inputs {
    pub fn digest(&self) -> Digest {
        let bytes =
            serde_json::to_vec(&serde_json::to_value(self).unwrap_or_default()).unwrap_or_default();
        Digest::of_bytes(&bytes)
    }
}

/// Digests of the recipe file and every file it builds from, keyed relative to the recipe folder
/// (folders outside it keep a `../` path). `.git`, `out` and `target` folders are skipped.
pub(crate) fn input_files(recipe: &Recipe) -> Result<BTreeMap<String, String>, ProvenanceError> {
    let mut files = BTreeMap::new();
    // recipe.path is as the user typed it (maybe relative to the working directory): key the
    // recipe file by its place in the recipe's folder instead.
    let recipe_file = recipe.dir.join(recipe.path.file_name().unwrap_or_default());
    add_file(&recipe.dir, &recipe_file, &mut files)?;
    if let Some(archive) = &recipe.build.archive {
        // Its pinned digest stands for the whole tree: the build refuses any other bytes.
        let origin = match &archive.origin {
            ArchiveOrigin::File(path) => relative(&recipe.dir, path),
            ArchiveOrigin::Url(url) => url.clone(),
        };
        files.insert(
            format!(
                "<archive {origin} strip_components={}>",
                archive.strip_components
            ),
            archive.sha256.to_string(),
        );
    } else if matches!(recipe.build.lang, LangSpec::Prebuilt) {
        add_file(&recipe.dir, &recipe.build.source, &mut files)?;
    } else {
        walk(&recipe.dir, &recipe.build.source, &mut files)?;
    }
    for extra in &recipe.image.files {
        add_file(&recipe.dir, &extra.src, &mut files)?;
    }
    if crate::image::base::is_path_reference(&recipe.image.base) {
        walk(
            &recipe.dir,
            &recipe.dir.join(&recipe.image.base),
            &mut files,
        )?;
    }
    Ok(files)
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, String>,
) -> Result<(), ProvenanceError> {
    let read_err = |source| ProvenanceError::Read {
        path: dir.to_path_buf(),
        source,
    };
    // Every entry counts: one that cannot be read is an error, never a silent hole in the key.
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type().map_err(|source| ProvenanceError::Read {
            path: path.clone(),
            source,
        })?;
        if kind.is_dir() {
            if !matches!(e.file_name().to_str(), Some(".git" | "out" | "target")) {
                walk(root, &path, files)?;
            }
        } else if kind.is_file() {
            add_file(root, &path, files)?;
        } else if kind.is_symlink() {
            add_symlink(root, &path, files)?;
        }
    }
    Ok(())
}

/// A symlink counts by its target and, when that is a file, by the file's content: the
/// toolchain follows it, so what it points to decides the output.
fn add_symlink(
    root: &Path,
    path: &Path,
    files: &mut BTreeMap<String, String>,
) -> Result<(), ProvenanceError> {
    let read_err = |source| ProvenanceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let target = std::fs::read_link(path).map_err(read_err)?;
    let content = match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {
            let mut f = std::fs::File::open(path).map_err(read_err)?;
            Digest::of_reader(&mut f).map_err(read_err)?.to_string()
        }
        // A dangling link or one to a folder: its target alone.
        _ => String::new(),
    };
    files.insert(
        relative(root, path),
        format!("symlink:{}:{content}", target.display()),
    );
    Ok(())
}

fn add_file(
    root: &Path,
    path: &Path,
    files: &mut BTreeMap<String, String>,
) -> Result<(), ProvenanceError> {
    let read_err = |source| ProvenanceError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(read_err)?;
    let digest = Digest::of_reader(&mut f).map_err(read_err)?;
    files.insert(relative(root, path), digest.to_string());
    Ok(())
}

/// `path` relative to `root`, with `../` where it lies outside.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    if let Ok(rel) = path.strip_prefix(root) {
        return rel.to_string_lossy().into_owned();
    }
    let mut up = String::new();
    let mut base = root;
    while let Some(parent) = base.parent() {
        up.push_str("../");
        if let Ok(rel) = path.strip_prefix(parent) {
            return format!("{up}{}", rel.to_string_lossy());
        }
        base = parent;
    }
    path.to_string_lossy().into_owned()
}

/// The version of an installed Debian package, read from dpkg's status file (no process).
pub(crate) fn debian_package_version(status_text: &str, package: &str) -> Option<String> {
    // "musl-dev:arm64": that architecture's copy (multiarch); a bare name: any.
    let (package, arch) = match package.split_once(':') {
        Some((name, arch)) => (name, Some(arch)),
        None => (package, None),
    };
    status_text.split("\n\n").find_map(|stanza| {
        let mut name = None;
        let mut version = None;
        let mut installed = false;
        let mut architecture = None;
        for line in stanza.lines() {
            if let Some(v) = line.strip_prefix("Package: ") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version: ") {
                version = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("Status: ") {
                installed = v.trim().ends_with(" installed");
            } else if let Some(v) = line.strip_prefix("Architecture: ") {
                architecture = Some(v.trim());
            }
        }
        let arch_ok = arch.is_none_or(|a| architecture == Some(a));
        (name == Some(package) && installed && arch_ok)
            .then_some(version)
            .flatten()
    })
}

/// Variables naming caches: where they are changes how long a build takes, never what it makes
/// (a warm shared cache or a cold one in the build folder), so the record names them alike.
const CACHE_VARIABLES: [&str; 2] = ["GOCACHE", "CARGO_HOME"];

/// The recorded value of an environment variable: caches as `<cache>`, the rest as given.
pub(crate) fn environment_value(name: &str, value: &str) -> String {
    if CACHE_VARIABLES.contains(&name) {
        "<cache>".to_owned()
    } else {
        value.to_owned()
    }
}

/// Replaces the host paths of a build (build folder, source folder) with stable names.
pub(crate) fn normalize(text: &str, build_dir: &Path, source: &Path) -> String {
    text.replace(&build_dir.to_string_lossy().into_owned(), "<build>")
        .replace(&source.to_string_lossy().into_owned(), "<source>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_inside_and_outside() {
        assert_eq!(
            relative(Path::new("/r/a"), Path::new("/r/a/src/x.c")),
            "src/x.c"
        );
        assert_eq!(
            relative(Path::new("/r/a"), Path::new("/r/b/src/x.c")),
            "../b/src/x.c"
        );
    }

    #[test]
    fn a_symlinked_source_file_counts_by_what_it_points_to() {
        let d = tempfile::tempdir().unwrap();
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(d.path().join("real.c"), "int x;").unwrap();
        std::os::unix::fs::symlink("../real.c", src.join("x.c")).unwrap();
        let mut before = BTreeMap::new();
        walk(d.path(), &src, &mut before).unwrap();
        assert!(before["src/x.c"].starts_with("symlink:../real.c:sha256:"));
        std::fs::write(d.path().join("real.c"), "int y;").unwrap();
        let mut after = BTreeMap::new();
        walk(d.path(), &src, &mut after).unwrap();
        assert_ne!(before, after, "the key missed a change behind a symlink");
    }

    #[test]
    fn dpkg_status_parsing() {
        let status = "Package: musl-dev\nStatus: install ok installed\nVersion: 1.2.3-1\n\nPackage: gone\nStatus: deinstall ok config-files\nVersion: 9\n";
        assert_eq!(
            debian_package_version(status, "musl-dev").as_deref(),
            Some("1.2.3-1")
        );
        assert_eq!(debian_package_version(status, "gone"), None);
        assert_eq!(debian_package_version(status, "absent"), None);
    }

    #[test]
    fn inputs_digest_is_stable_and_sensitive() {
        let mut i = Inputs {
            staticpack: "0.1.0".into(),
            recipe: "x".into(),
            files: BTreeMap::from([("a".into(), "sha256:1".into())]),
            toolchain: BTreeMap::new(),
            epoch: 0,
            options: BTreeMap::new(),
            deps: BTreeMap::new(),
        };
        let d1 = i.digest();
        assert_eq!(d1, i.clone().digest());
        i.epoch = 1;
        assert_ne!(d1, i.digest());
    }

    #[test]
    fn caches_are_recorded_by_what_they_are_not_where() {
        assert_eq!(
            environment_value("GOCACHE", "/root/.cache/staticpack/go-build"),
            "<cache>"
        );
        assert_eq!(environment_value("GOCACHE", "<build>/gocache"), "<cache>");
        assert_eq!(environment_value("GOOS", "linux"), "linux");
    }

    #[test]
    fn normalize_replaces_host_paths() {
        let s = normalize(
            "gcc -o /tmp/b1/out/x /home/u/src/a.c",
            Path::new("/tmp/b1"),
            Path::new("/home/u/src"),
        );
        assert_eq!(s, "gcc -o <build>/out/x <source>/a.c");
    }
}
