//! Image config, manifest and index as canonical JSON: oci-spec types for the schema, then
//! `serde_json::Value` (a BTreeMap) for sorted keys, since oci-spec keeps labels and annotations
//! in HashMaps whose order changes from run to run.

use super::ImageError;
use super::layer::{LayerBlob, LayerCompression};
use crate::digest::Digest;
use oci_spec::image::{
    ANNOTATION_REF_NAME, ConfigBuilder, DescriptorBuilder, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType, PlatformBuilder,
    RootFsBuilder,
};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default)]
pub struct ImageMeta {
    pub os: String,
    /// OCI architecture ("amd64", "arm64", …).
    pub architecture: String,
    pub variant: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// "8080/tcp", …
    pub exposed_ports: Vec<String>,
    pub stop_signal: Option<String>,
    /// Annotations on the layout's index.json entry: about this copy of the image, not part of
    /// its digest (e.g. where its provenance record is).
    pub index_annotations: BTreeMap<String, String>,
    /// SOURCE_DATE_EPOCH, for `created` and history.
    pub created_epoch: u64,
    /// How every layer is compressed, the base's included.
    pub compression: LayerCompression,
}

fn json_err(what: &'static str) -> impl Fn(String) -> ImageError {
    move |reason| ImageError::Json { what, reason }
}

/// Sorted keys, no whitespace: the same value always gives the same bytes.
pub(crate) fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ImageError> {
    let v = serde_json::to_value(value).map_err(|e| json_err("JSON")(e.to_string()))?;
    serde_json::to_vec(&v).map_err(|e| json_err("JSON")(e.to_string()))
}

fn hash_map(map: &BTreeMap<String, String>) -> HashMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The image config blob.
pub(crate) fn config_json(meta: &ImageMeta, layers: &[LayerBlob]) -> Result<Vec<u8>, ImageError> {
    let err = |e: oci_spec::OciSpecError| json_err("image config")(e.to_string());
    let created = rfc3339(meta.created_epoch);
    let mut config = ConfigBuilder::default();
    if !meta.entrypoint.is_empty() {
        config = config.entrypoint(meta.entrypoint.clone());
    }
    if !meta.cmd.is_empty() {
        config = config.cmd(meta.cmd.clone());
    }
    if !meta.env.is_empty() {
        config = config.env(meta.env.clone());
    }
    if let Some(u) = &meta.user {
        config = config.user(u.clone());
    }
    if let Some(w) = &meta.workdir {
        config = config.working_dir(w.clone());
    }
    if !meta.labels.is_empty() {
        config = config.labels(hash_map(&meta.labels));
    }
    if !meta.exposed_ports.is_empty() {
        config = config.exposed_ports(meta.exposed_ports.clone());
    }
    if let Some(sig) = &meta.stop_signal {
        config = config.stop_signal(sig.clone());
    }
    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(err)?;
    let history = layers
        .iter()
        .map(|l| {
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(l.comment.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let mut builder = ImageConfigurationBuilder::default()
        .created(created)
        .os(meta.os.as_str())
        .architecture(meta.architecture.as_str())
        .config(config.build().map_err(err)?)
        .rootfs(rootfs)
        .history(history);
    if let Some(v) = &meta.variant {
        builder = builder.variant(v.clone());
    }
    canonical_json(&builder.build().map_err(err)?)
}

/// The image manifest blob.
pub(crate) fn manifest_json(
    config_digest: &Digest,
    config_size: u64,
    layers: &[LayerBlob],
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, ImageError> {
    let err = |e: oci_spec::OciSpecError| json_err("manifest")(e.to_string());
    let config = DescriptorBuilder::default()
        .media_type(MediaType::ImageConfig)
        .digest(parse_digest(config_digest)?)
        .size(config_size)
        .build()
        .map_err(err)?;
    let layer_descriptors = layers
        .iter()
        .map(|l| {
            DescriptorBuilder::default()
                .media_type(l.compression.media_type())
                .digest(parse_digest(&l.digest)?)
                .size(l.size)
                .build()
                .map_err(err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(layer_descriptors);
    if !annotations.is_empty() {
        builder = builder.annotations(hash_map(annotations));
    }
    canonical_json(&builder.build().map_err(err)?)
}

/// `index.json`: one manifest, named by its tag, with its platform.
pub(crate) fn index_json(
    manifest_digest: &Digest,
    manifest_size: u64,
    tag: &str,
    meta: &ImageMeta,
) -> Result<Vec<u8>, ImageError> {
    let err = |e: oci_spec::OciSpecError| json_err("index.json")(e.to_string());
    let mut platform = PlatformBuilder::default()
        .os(meta.os.as_str())
        .architecture(meta.architecture.as_str());
    if let Some(v) = &meta.variant {
        platform = platform.variant(v.clone());
    }
    let manifest = DescriptorBuilder::default()
        .media_type(MediaType::ImageManifest)
        .digest(parse_digest(manifest_digest)?)
        .size(manifest_size)
        .platform(platform.build().map_err(err)?)
        .annotations({
            let mut a = hash_map(&meta.index_annotations);
            a.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
            a
        })
        .build()
        .map_err(err)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![manifest])
        .build()
        .map_err(err)?;
    canonical_json(&index)
}

/// One platform's image manifest, as an image index lists it.
#[derive(Clone, Debug)]
pub struct PlatformManifest {
    pub digest: Digest,
    pub size: u64,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// The OCI image index over several platforms' manifests (a blob), each descriptor with its
/// `platform`, in the order given.
pub(crate) fn platform_index_json(manifests: &[PlatformManifest]) -> Result<Vec<u8>, ImageError> {
    let err = |e: oci_spec::OciSpecError| json_err("image index")(e.to_string());
    let descriptors = manifests
        .iter()
        .map(|m| {
            let mut platform = PlatformBuilder::default()
                .os(m.os.as_str())
                .architecture(m.architecture.as_str());
            if let Some(v) = &m.variant {
                platform = platform.variant(v.clone());
            }
            DescriptorBuilder::default()
                .media_type(MediaType::ImageManifest)
                .digest(parse_digest(&m.digest)?)
                .size(m.size)
                .platform(platform.build().map_err(err)?)
                .build()
                .map_err(err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(descriptors)
        .build()
        .map_err(err)?;
    canonical_json(&index)
}

/// The layout's index.json naming one image index blob under `tag` (no `platform`: the index
/// is for several).
pub(crate) fn index_json_for_index(
    index_digest: &Digest,
    index_size: u64,
    tag: &str,
    annotations: &BTreeMap<String, String>,
) -> Result<Vec<u8>, ImageError> {
    let err = |e: oci_spec::OciSpecError| json_err("index.json")(e.to_string());
    let entry = DescriptorBuilder::default()
        .media_type(MediaType::ImageIndex)
        .digest(parse_digest(index_digest)?)
        .size(index_size)
        .annotations({
            let mut a = hash_map(annotations);
            a.insert(ANNOTATION_REF_NAME.to_owned(), tag.to_owned());
            a
        })
        .build()
        .map_err(err)?;
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![entry])
        .build()
        .map_err(err)?;
    canonical_json(&index)
}

fn parse_digest(d: &Digest) -> Result<oci_spec::image::Digest, ImageError> {
    d.to_string()
        .parse()
        .map_err(|e: oci_spec::OciSpecError| json_err("digest")(e.to_string()))
}

/// Seconds since 1970 as RFC 3339 in UTC ("1970-01-01T00:00:00Z").
pub(crate) fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm: proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    fn meta_with_labels(order: &[usize]) -> ImageMeta {
        let mut labels = BTreeMap::new();
        for i in order {
            labels.insert(format!("label.{i}"), format!("value {i}"));
        }
        ImageMeta {
            os: "linux".into(),
            architecture: "amd64".into(),
            entrypoint: vec!["/app".into()],
            env: vec!["PATH=/bin".into()],
            labels,
            ..Default::default()
        }
    }

    #[test]
    fn config_json_is_canonical_whatever_the_hashmap_order() {
        let layer = LayerBlob {
            digest: Digest::of_bytes(b"a"),
            diff_id: Digest::of_bytes(b"b"),
            size: 1,
            comment: "app".into(),
            compression: LayerCompression::Gzip,
        };
        let order: Vec<usize> = (0..50).collect();
        let reversed: Vec<usize> = (0..50).rev().collect();
        let a = config_json(&meta_with_labels(&order), std::slice::from_ref(&layer)).unwrap();
        for _ in 0..20 {
            assert_eq!(
                a,
                config_json(&meta_with_labels(&reversed), std::slice::from_ref(&layer)).unwrap()
            );
        }
        let text = String::from_utf8(a).unwrap();
        assert!(
            text.starts_with("{\"architecture\":\"amd64\",\"config\":{"),
            "{text}"
        );
        assert!(text.contains("\"created\":\"1970-01-01T00:00:00Z\""));
        assert!(text.contains(&format!("\"diff_ids\":[\"{}\"]", Digest::of_bytes(b"b"))));
        assert!(
            !text.contains(' ') || text.contains("value "),
            "no whitespace outside strings"
        );
    }

    #[test]
    fn manifest_and_index_shapes() {
        let annotations = BTreeMap::from([
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
        ]);
        let m = manifest_json(&Digest::of_bytes(b"c"), 10, &[], &annotations).unwrap();
        let text = String::from_utf8(m).unwrap();
        assert!(
            text.starts_with("{\"annotations\":{\"a\":\"1\",\"b\":\"2\"},\"config\":"),
            "{text}"
        );
        assert!(text.contains("\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\""));
        let i = index_json(&Digest::of_bytes(b"m"), 5, "v1", &meta_with_labels(&[])).unwrap();
        let text = String::from_utf8(i).unwrap();
        assert!(
            text.contains("\"org.opencontainers.image.ref.name\":\"v1\""),
            "{text}"
        );
        assert!(
            text.contains("\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}"),
            "{text}"
        );
    }
}
