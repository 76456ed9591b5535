//! Image config, manifest and index as canonical JSON (keys sorted, no whitespace).
use std::collections::BTreeMap;

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
    /// SOURCE_DATE_EPOCH, for `created` and history.
    pub created_epoch: u64,
}

pub fn rfc3339(_epoch: u64) -> String {
    unimplemented!("image helper")
}
