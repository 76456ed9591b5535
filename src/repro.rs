//! Explaining why two builds of one recipe differ, without diffoscope: which blob, which file in
//! which layer, the first differing bytes (and the ELF section they fall in), which JSON field.
//! Pure reading and comparing of two OCI layouts; the two builds themselves are run by
//! `build::second`.

use crate::image::layout::LocalBlob;
use crate::image::{self, ImageError, LoadedImage};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReproError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("reading {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    /// The second build of `--check-repro` could not be set up or run, or failed: `what`
    /// says which ("failed (exit status: 1): …", "could not start: …").
    #[error("the second build of {recipe} {what}")]
    SecondBuild { recipe: PathBuf, what: String },
}

/// One place where the two builds differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// "config", "manifest", or "layer N (sha256:…)".
    pub blob: String,
    /// The file inside the layer, when the difference is in a layer.
    pub file: Option<String>,
    /// The JSON field (dotted path), when the difference is in JSON.
    pub field: Option<String>,
    /// Byte offset of the first difference inside the file.
    pub offset: Option<u64>,
    /// The ELF section that offset falls in.
    pub section: Option<String>,
    /// Both sides around the difference: hex bytes, JSON values, or header fields.
    pub left: String,
    pub right: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.blob)?;
        if let Some(file) = &self.file {
            write!(f, ", file /{file}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        if let Some(off) = self.offset {
            write!(f, ", offset {off} (0x{off:x})")?;
        }
        if let Some(sec) = &self.section {
            write!(f, " in ELF section {sec}")?;
        }
        write!(
            f,
            ":\n    first build:  {}\n    second build: {}",
            self.left, self.right
        )
    }
}

const MAX_DIFFERENCES: usize = 20;
/// Bytes shown on each side of a content difference.
const CONTEXT_BYTES: usize = 16;

/// Compares two layouts' images for `tag`; empty when they are byte-identical. An index is
/// compared platform by platform (each difference names its platform), then as a whole.
pub(crate) fn compare_layouts(
    a: &Path,
    b: &Path,
    tag: &str,
) -> Result<Vec<Difference>, ReproError> {
    let left = image::Layout::open(a)?.load_all(Some(tag))?;
    let right = image::Layout::open(b)?.load_all(Some(tag))?;
    if let ([l], [r]) = (left.as_slice(), right.as_slice()) {
        return compare_images(a, b, l, r);
    }
    let platform = |img: &LoadedImage| format!("{}/{}", img.config.os(), img.config.architecture());
    let names = |imgs: &[LoadedImage]| imgs.iter().map(platform).collect::<Vec<_>>().join(", ");
    let mut diffs = Vec::new();
    if names(&left) != names(&right) {
        diffs.push(Difference {
            blob: "index".into(),
            field: Some("platforms".into()),
            left: names(&left),
            right: names(&right),
            file: None,
            offset: None,
            section: None,
        });
        return Ok(diffs);
    }
    for (l, r) in left.iter().zip(&right) {
        for mut d in compare_images(a, b, l, r)? {
            d.blob = format!("{} {}", platform(l), d.blob);
            diffs.push(d);
        }
    }
    if diffs.is_empty() {
        // The same images, another index around them.
        let (li, ri) = (
            image::SelectedImage::open(a, Some(tag))?,
            image::SelectedImage::open(b, Some(tag))?,
        );
        if li.digest() != ri.digest() {
            diffs.push(Difference {
                blob: "index".into(),
                field: None,
                left: li.digest().to_string(),
                right: ri.digest().to_string(),
                file: None,
                offset: None,
                section: None,
            });
        }
    }
    diffs.truncate(MAX_DIFFERENCES);
    Ok(diffs)
}

/// Compares one platform's image in two layouts.
fn compare_images(
    a: &Path,
    b: &Path,
    left: &LoadedImage,
    right: &LoadedImage,
) -> Result<Vec<Difference>, ReproError> {
    if left.manifest_digest == right.manifest_digest {
        return referrer_differences(a, b, &left.manifest_digest);
    }
    let mut diffs = Vec::new();
    let config = |img: &LoadedImage| serde_json::to_value(&img.config).unwrap_or(Value::Null);
    json_differences("config", "", &config(left), &config(right), &mut diffs);

    let (ll, rl) = (&left.layers, &right.layers);
    if ll.len() != rl.len() {
        diffs.push(Difference {
            blob: "manifest".into(),
            field: Some("layers".into()),
            left: format!("{} layers", ll.len()),
            right: format!("{} layers", rl.len()),
            file: None,
            offset: None,
            section: None,
        });
    }
    for (i, (lp, rp)) in ll.iter().zip(rl.iter()).enumerate() {
        if lp.digest == rp.digest {
            continue;
        }
        let label = format!(
            "layer {} (sha256:{} vs sha256:{})",
            i + 1,
            &lp.digest.hex()[..12],
            &rp.digest.hex()[..12]
        );
        let before = diffs.len();
        layer_differences(&label, lp, rp, &mut diffs)?;
        if diffs.len() == before {
            // Same files, same headers, different compressed bytes: the gzip stream itself.
            diffs.push(Difference {
                blob: label,
                file: None,
                field: None,
                offset: None,
                section: None,
                left: "same tar content, different gzip bytes".into(),
                right: "compare the compression settings (level, backend, header)".into(),
            });
        }
        if diffs.len() >= MAX_DIFFERENCES {
            break;
        }
    }
    if diffs.is_empty() {
        // Only the manifest differs (annotations, media types).
        diffs.push(Difference {
            blob: "manifest".into(),
            file: None,
            field: None,
            offset: None,
            section: None,
            left: left.manifest_digest.to_string(),
            right: right.manifest_digest.to_string(),
        });
    }
    diffs.truncate(MAX_DIFFERENCES);
    Ok(diffs)
}

/// The SBOMs and statements about one image in two layouts: each pair by artifact type (and
/// predicate), its document compared field by field when the bytes differ.
fn referrer_differences(
    a: &Path,
    b: &Path,
    subject: &crate::digest::Digest,
) -> Result<Vec<Difference>, ReproError> {
    let list = |dir: &Path| -> Result<Vec<crate::supply::Referrer>, ReproError> {
        crate::supply::referrers(&image::Layout::open(dir)?, subject).map_err(|e| {
            ReproError::Read {
                path: dir.to_path_buf(),
                reason: format!("its referrers: {e}"),
            }
        })
    };
    let (left, right) = (list(a)?, list(b)?);
    let key = |r: &crate::supply::Referrer| {
        let predicate = r.annotations.get(crate::supply::PREDICATE_ANNOTATION);
        format!(
            "{} {}",
            r.artifact_type,
            predicate.map_or("", |p| p.as_str())
        )
    };
    let mut diffs = Vec::new();
    let names = |rs: &[crate::supply::Referrer]| rs.iter().map(key).collect::<Vec<_>>();
    if names(&left) != names(&right) {
        diffs.push(Difference {
            blob: "referrers".into(),
            file: None,
            field: None,
            offset: None,
            section: None,
            left: names(&left).join(", "),
            right: names(&right).join(", "),
        });
        return Ok(diffs);
    }
    let read = |dir: &Path, r: &crate::supply::Referrer| -> Result<Value, ReproError> {
        let path = image::Layout::open(dir)?.blob_path(&r.layer_digest);
        let bytes = std::fs::read(&path).map_err(|e| ReproError::Read {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    };
    for (l, r) in left.iter().zip(&right) {
        if l.digest == r.digest {
            continue;
        }
        let label = format!("referrer {}", key(l).trim_end());
        let before = diffs.len();
        json_differences(&label, "", &read(a, l)?, &read(b, r)?, &mut diffs);
        if diffs.len() == before {
            // The same document, a different manifest (its annotations).
            diffs.push(Difference {
                blob: label,
                file: None,
                field: None,
                offset: None,
                section: None,
                left: l.digest.to_string(),
                right: r.digest.to_string(),
            });
        }
    }
    diffs.truncate(MAX_DIFFERENCES);
    Ok(diffs)
}

/// Walks two JSON values and records each differing leaf with its dotted path.
pub(crate) fn json_differences(
    blob: &str,
    path: &str,
    a: &Value,
    b: &Value,
    out: &mut Vec<Difference>,
) {
    if a == b || out.len() >= MAX_DIFFERENCES {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                json_differences(
                    blob,
                    &join(k),
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (xi, yi)) in x.iter().zip(y).enumerate() {
                json_differences(blob, &join(&i.to_string()), xi, yi, out);
            }
        }
        _ => out.push(Difference {
            blob: blob.to_owned(),
            file: None,
            field: Some(path.to_owned()),
            offset: None,
            section: None,
            left: a.to_string(),
            right: b.to_string(),
        }),
    }
}

/// A tar entry's header facts and content.
#[derive(PartialEq, Eq)]
struct Entry {
    header: String,
    content: Vec<u8>,
}

fn read_layer(blob: &LocalBlob) -> Result<BTreeMap<String, Entry>, ReproError> {
    let err = |reason: String| ReproError::Read {
        path: blob.path.clone(),
        reason,
    };
    let file = blob.open().map_err(|e| err(e.to_string()))?;
    let format = crate::image::LayerFormat::of_media_type(&blob.media_type).ok_or_else(|| {
        err(format!(
            "layer media type {:?} is not supported ({} are)",
            blob.media_type,
            crate::image::LayerFormat::SUPPORTED
        ))
    })?;
    let tar_stream = format
        .decoder(std::io::BufReader::new(file))
        .map_err(|e| err(e.to_string()))?;
    let mut archive = tar::Archive::new(tar_stream);
    let mut entries = BTreeMap::new();
    for entry in archive.entries().map_err(|e| err(e.to_string()))? {
        let mut entry = entry.map_err(|e| err(e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| err(e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let h = entry.header();
        let header = format!(
            "type {:?}, mode {:o}, uid {}, gid {}, mtime {}, size {}, link {:?}, user {:?}, group {:?}",
            h.entry_type(),
            h.mode().unwrap_or(0),
            h.uid().unwrap_or(0),
            h.gid().unwrap_or(0),
            h.mtime().unwrap_or(0),
            h.size().unwrap_or(0),
            h.link_name()
                .ok()
                .flatten()
                .map(|l| l.to_string_lossy().into_owned()),
            h.username().ok().flatten().unwrap_or(""),
            h.groupname().ok().flatten().unwrap_or(""),
        );
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(|e| err(e.to_string()))?;
        entries.insert(name, Entry { header, content });
    }
    Ok(entries)
}

fn layer_differences(
    label: &str,
    a: &LocalBlob,
    b: &LocalBlob,
    out: &mut Vec<Difference>,
) -> Result<(), ReproError> {
    let left = read_layer(a)?;
    let right = read_layer(b)?;
    let names: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    for name in names {
        let diff = |left: String, right: String, offset: Option<u64>, section: Option<String>| {
            Difference {
                blob: label.to_owned(),
                file: Some(name.clone()),
                field: None,
                offset,
                section,
                left,
                right,
            }
        };
        match (left.get(name), right.get(name)) {
            (Some(_), None) => out.push(diff("present".into(), "absent".into(), None, None)),
            (None, Some(_)) => out.push(diff("absent".into(), "present".into(), None, None)),
            (Some(x), Some(y)) if x != y => {
                if x.content != y.content {
                    let off = first_difference(&x.content, &y.content);
                    let section = elf_section_at(&x.content, off as u64);
                    out.push(diff(
                        window(&x.content, off),
                        window(&y.content, off),
                        Some(off as u64),
                        section,
                    ));
                } else {
                    out.push(diff(x.header.clone(), y.header.clone(), None, None));
                }
            }
            _ => {}
        }
        if out.len() >= MAX_DIFFERENCES {
            break;
        }
    }
    Ok(())
}

fn first_difference(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

/// Hex bytes from `off`, and the printable text they spell when there is some.
fn window(bytes: &[u8], off: usize) -> String {
    let end = (off + CONTEXT_BYTES).min(bytes.len());
    let slice = bytes.get(off..end).unwrap_or(&[]);
    if slice.is_empty() {
        return "(end of file)".into();
    }
    let hex: Vec<String> = slice.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = slice
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{} |{text}|", hex.join(" "))
}

/// The name of the ELF section holding file offset `off`, if the bytes are an ELF file.
pub(crate) fn elf_section_at(bytes: &[u8], off: u64) -> Option<String> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        return None;
    }
    let elf = std::panic::catch_unwind(|| goblin::elf::Elf::parse(bytes).ok())
        .ok()
        .flatten()?;
    if off < elf.header.e_ehsize as u64 {
        return Some("(ELF header)".into());
    }
    elf.section_headers
        .iter()
        .filter(|s| s.sh_type != goblin::elf::section_header::SHT_NOBITS)
        .find(|s| s.sh_offset <= off && off < s.sh_offset.saturating_add(s.sh_size))
        .map(|s| {
            elf.shdr_strtab
                .get_at(s.sh_name)
                .unwrap_or("(unnamed)")
                .to_owned()
        })
        .or_else(|| Some("(outside any section)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_differences_name_the_field() {
        let mut out = Vec::new();
        let a = json!({"config": {"Env": ["A=1"], "User": "0"}, "created": "1970"});
        let b = json!({"config": {"Env": ["A=2"], "User": "0"}, "created": "1970"});
        json_differences("config", "", &a, &b, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].field.as_deref(), Some("config.Env.0"));
        assert_eq!(
            (out[0].left.as_str(), out[0].right.as_str()),
            ("\"A=1\"", "\"A=2\"")
        );
    }

    #[test]
    fn first_difference_and_window() {
        assert_eq!(first_difference(b"abcdef", b"abcxef"), 3);
        assert_eq!(first_difference(b"abc", b"abcd"), 3);
        assert_eq!(window(b"abcxyz", 3), "78 79 7a |xyz|");
        assert_eq!(window(b"abc", 3), "(end of file)");
    }

    #[test]
    fn elf_section_of_an_offset() {
        let bytes = std::fs::read("/bin/true").unwrap();
        let elf = goblin::elf::Elf::parse(&bytes).unwrap();
        let text = elf
            .section_headers
            .iter()
            .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".text"))
            .unwrap();
        assert_eq!(
            elf_section_at(&bytes, text.sh_offset + 1).as_deref(),
            Some(".text")
        );
        assert_eq!(elf_section_at(&bytes, 3).as_deref(), Some("(ELF header)"));
        assert_eq!(elf_section_at(b"not an elf", 0), None);
    }

    /// A layout at `dir` whose tag "latest" is an index over an amd64 and an arm64 image, each
    /// one layer holding /app with the given bytes.
    fn index_layout(dir: &Path, amd64: &[u8], arm64: &[u8]) {
        use crate::image::{EntryKind, FileSource, ImageMeta, LayerEntry, LayerSpec};
        let merged = image::Layout::create(&dir.join("merged")).unwrap();
        let mut manifests = Vec::new();
        for (arch, bytes) in [("amd64", amd64), ("arm64", arm64)] {
            let meta = ImageMeta {
                os: "linux".into(),
                architecture: arch.into(),
                ..Default::default()
            };
            let layer = LayerSpec {
                entries: vec![LayerEntry {
                    path: "app".into(),
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    kind: EntryKind::File(FileSource::Bytes(bytes.to_vec())),
                }],
                mtime: 0,
                comment: "app".into(),
            };
            let one = dir.join(arch);
            let out =
                image::write_image(&one, "latest", &meta, &[layer], &Default::default()).unwrap();
            for e in std::fs::read_dir(one.join("blobs/sha256")).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), merged.blobs_dir().join(e.file_name())).unwrap();
            }
            manifests.push(image::PlatformManifest {
                digest: out.manifest_digest,
                size: out.manifest_size,
                os: "linux".into(),
                architecture: arch.into(),
                variant: None,
            });
        }
        image::write_platform_index(&merged, "latest", &manifests, &Default::default()).unwrap();
    }

    #[test]
    fn an_index_is_compared_platform_by_platform() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, c) = (d.path().join("a"), d.path().join("b"), d.path().join("c"));
        index_layout(&a, b"amd64 app", b"arm64 app");
        index_layout(&b, b"amd64 app", b"arm64 app");
        index_layout(&c, b"amd64 app", b"arm64 app, other");
        let (a, b, c) = (a.join("merged"), b.join("merged"), c.join("merged"));
        assert!(compare_layouts(&a, &b, "latest").unwrap().is_empty());
        let diffs = compare_layouts(&a, &c, "latest").unwrap();
        assert!(!diffs.is_empty());
        // Only arm64 differs, and the difference says so, down to the file.
        assert!(
            diffs.iter().all(|d| d.blob.starts_with("linux/arm64 ")),
            "{diffs:?}"
        );
        let layer = diffs
            .iter()
            .find(|d| d.blob.starts_with("linux/arm64 layer 1"));
        assert_eq!(
            layer.and_then(|d| d.file.as_deref()),
            Some("app"),
            "{diffs:?}"
        );
        // An index against one platform's image: the platforms differ.
        let one = d.path().join("a/amd64");
        let diffs = compare_layouts(&a, &one, "latest").unwrap();
        assert_eq!(diffs[0].blob, "index", "{diffs:?}");
        assert_eq!(diffs[0].right, "linux/amd64");
    }
}
