//! What a push did, as plain data: per blob (skipped, mounted, uploaded) and per reference.
//! Serializable for `--json`; carried by progress events and the final [`PushReport`].

use crate::digest::Digest;
use serde::Serialize;

/// What happened to one blob in one repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BlobAction {
    /// The repository already had it (`HEAD` answered 200).
    Skipped,
    /// Mounted from another repository of the same registry: no bytes sent.
    Mounted { from: String },
    /// Sent. `resumed`: times a chunked upload went on from the registry's offset after a
    /// failure; `restarted`: times it began again from byte 0.
    Uploaded {
        chunked: bool,
        resumed: u32,
        restarted: u32,
    },
}

impl BlobAction {
    pub fn describe(&self) -> String {
        match self {
            BlobAction::Skipped => "already there".into(),
            BlobAction::Mounted { from } => format!("mounted from {from}"),
            BlobAction::Uploaded {
                resumed, restarted, ..
            } => match (resumed, restarted) {
                (0, 0) => "uploaded".into(),
                _ => format!("uploaded (resumed {resumed}×, restarted {restarted}×)"),
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlobReport {
    pub registry: String,
    pub repository: String,
    #[serde(serialize_with = "as_string")]
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    #[serde(flatten)]
    pub action: BlobAction,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushedReference {
    /// As pushed: `127.0.0.1:5000/app:v1` (or `…@sha256:…` when pushed by digest).
    pub reference: String,
    /// The same content pinned: `127.0.0.1:5000/app@sha256:…`.
    pub pinned: String,
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
}

/// The outcome of a push, fit for `--json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushReport {
    /// The pushed manifest's (or index's) digest.
    #[serde(serialize_with = "as_string")]
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub references: Vec<PushedReference>,
    pub blobs: Vec<BlobReport>,
    /// Skipped credential sources, an unusable blob cache, ...
    pub warnings: Vec<String>,
    /// The artifact manifests (SBOMs, statements) pushed about the image, and how a client
    /// finds them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<PushedReferrers>,
}

/// The referrers of the image in one repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PushedReferrers {
    pub repository: String,
    #[serde(serialize_with = "digests_as_strings")]
    pub manifests: Vec<Digest>,
    /// The referrers tag schema's tag (`sha256-<hex>`) when the registry has no referrers API;
    /// `None` when it answers `/v2/<name>/referrers/<digest>` itself.
    pub fallback_tag: Option<String>,
}

fn digests_as_strings<S: serde::Serializer>(d: &[Digest], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(d.iter().map(|d| d.to_string()))
}

impl PushReport {
    pub fn uploaded(&self) -> usize {
        self.count(|a| matches!(a, BlobAction::Uploaded { .. }))
    }
    pub fn skipped(&self) -> usize {
        self.count(|a| matches!(a, BlobAction::Skipped))
    }
    pub fn mounted(&self) -> usize {
        self.count(|a| matches!(a, BlobAction::Mounted { .. }))
    }
    fn count(&self, f: impl Fn(&BlobAction) -> bool) -> usize {
        self.blobs.iter().filter(|b| f(&b.action)).count()
    }
}

fn as_string<S: serde::Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(action: BlobAction) -> BlobReport {
        BlobReport {
            registry: "r".into(),
            repository: "x".into(),
            digest: Digest::of_bytes(b"x"),
            size: 1,
            media_type: "l".into(),
            action,
        }
    }

    #[test]
    fn reports_serialize_with_actions_and_string_digests() {
        let d = Digest::of_bytes(b"x");
        let report = PushReport {
            digest: d.clone(),
            media_type: "m".into(),
            size: 1,
            references: vec![PushedReference {
                reference: "r/x:t".into(),
                pinned: format!("r/x@{d}"),
                registry: "r".into(),
                repository: "x".into(),
                tag: Some("t".into()),
            }],
            referrers: Vec::new(),
            blobs: vec![
                blob(BlobAction::Mounted { from: "y".into() }),
                blob(BlobAction::Uploaded {
                    chunked: true,
                    resumed: 1,
                    restarted: 0,
                }),
            ],
            warnings: vec![],
        };
        let v = serde_json::to_value(&report).unwrap();
        assert_eq!(v["digest"], d.to_string());
        assert_eq!(v["blobs"][0]["action"], "mounted");
        assert_eq!(v["blobs"][0]["from"], "y");
        assert_eq!(v["blobs"][1]["action"], "uploaded");
        assert_eq!(v["blobs"][1]["resumed"], 1);
        assert_eq!(
            (report.mounted(), report.uploaded(), report.skipped()),
            (1, 1, 0)
        );
    }
}
