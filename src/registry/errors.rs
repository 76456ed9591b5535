//! Errors of the registry layers, and the registry's own words from an error body, read as the
//! distribution spec's `ErrorResponse` (oci-spec).

use super::credentials::CredentialError;
use super::reference::ReferenceError;
use super::transport::is_retryable_status;
use crate::image::ImageError as LayoutError;
use oci_spec::distribution::ErrorResponse;

/// Everything that can go wrong talking to a registry. Messages name the registry, the
/// repository and the action, and for auth and not-found errors what to do; they never contain
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A pulled image that is not what its registry said (media type, size, digest).
    #[error("pulling {reference}: {reason}")]
    BadPull { reference: String, reason: String },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The layout's SBOMs and statements could not be read for the push.
    #[error(
        "the referrers (SBOMs, attestations) in {layout}: {reason}; rebuild the image, or build with --sbom none to push none"
    )]
    Referrers {
        layout: std::path::PathBuf,
        reason: String,
    },
    /// The registry refused an artifact manifest (an SBOM or statement about the image).
    #[error(
        "the registry refused the referrer {digest} ({artifact_type}, an OCI 1.1 artifact manifest about the image): {answer}\n  Fix: push with --no-referrers (the image alone, without its SBOMs and attestations), or push to a registry that stores OCI artifacts"
    )]
    ReferrerRefused {
        digest: String,
        artifact_type: String,
        answer: Box<RegistryError>,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error("{registry}: cannot {action}{}: authentication required (HTTP 401{}). {hint}", in_repo(.repository), with_detail(.detail))]
    AuthenticationRequired {
        registry: String,
        repository: String,
        action: String,
        detail: String,
        hint: String,
    },
    #[error("{registry}: cannot {action}{}: credentials rejected (HTTP 401{}). {hint}", in_repo(.repository), with_detail(.detail))]
    CredentialsRejected {
        registry: String,
        repository: String,
        action: String,
        detail: String,
        hint: String,
    },
    #[error("{registry}: cannot {action}{}: access denied (HTTP 403{}). {hint}", in_repo(.repository), with_detail(.detail))]
    Denied {
        registry: String,
        repository: String,
        action: String,
        detail: String,
        hint: String,
    },
    #[error("{registry}: cannot {action}{}: not found (HTTP 404{}). {hint}", in_repo(.repository), with_detail(.detail))]
    NotFound {
        registry: String,
        repository: String,
        action: String,
        detail: String,
        hint: String,
    },
    #[error("{registry}: cannot {action}{}: HTTP {status}{}", in_repo(.repository), with_detail(.detail))]
    Status {
        registry: String,
        repository: String,
        action: String,
        status: u16,
        detail: String,
    },
    #[error("{registry}: cannot {action}: {message}")]
    Transport {
        registry: String,
        action: String,
        message: String,
        retryable: bool,
    },
    #[error("{registry}: cannot {action}: no answer from {host} within {seconds} s")]
    Timeout {
        registry: String,
        host: String,
        action: String,
        seconds: u64,
    },
    /// The local blob, not the registry, is wrong: not a regular file, or bytes that are not
    /// its digest (the layout changed after it was checked, or was swapped for a link).
    #[error(
        "the local blob {path} is not what the layout says: {reason}; the layout is corrupt or changed during the push, and the registry was not given it"
    )]
    LocalBlob {
        path: std::path::PathBuf,
        reason: String,
    },
    /// A pulled body could not be written where it was to be saved.
    #[error("cannot save the pulled blob to {path}: {reason}")]
    LocalWrite {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(
        "{registry}: repository {repository} rejected blob {digest} as DIGEST_INVALID on two uploads from the start, yet the local file {path} has that digest: the bytes were corrupted in transfer (a proxy or the network)"
    )]
    TransferCorrupted {
        registry: String,
        repository: String,
        digest: String,
        path: std::path::PathBuf,
    },
    #[error(
        "{registry}: {what} in repository {repository}: the registry stored something else ({found}); the push is not complete"
    )]
    ManifestAltered {
        registry: String,
        repository: String,
        what: String,
        found: String,
    },
    #[error("{registry}: {message}")]
    Protocol { registry: String, message: String },
    #[error(
        "{registry}: {what} in repository {repository}: the registry reports digest {actual}, expected {expected}"
    )]
    DigestMismatch {
        registry: String,
        repository: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{reference} names digest {expected}, but the image is {actual}")]
    ReferenceDigestMismatch {
        reference: String,
        expected: String,
        actual: String,
    },
    #[error("nothing to push to: give at least one REGISTRY/REPOSITORY[:TAG]")]
    NoTargets,
}

fn in_repo(repository: &str) -> String {
    if repository.is_empty() {
        String::new()
    } else {
        format!(" repository {repository}")
    }
}

fn with_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

impl RegistryError {
    /// Whether trying the same thing again later can succeed (dropped connections, 429, 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { retryable, .. } => *retryable,
            RegistryError::Status { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }
}

/// The registry's words from an error body: `CODE: message; …` for a distribution-spec
/// `{"errors":[…]}` body (codes outside the spec's list kept as sent), else its first non-empty
/// line. Not yet scrubbed of secrets nor shortened: the session does that.
pub(crate) fn registry_detail(body: &[u8]) -> String {
    if let Ok(response) = serde_json::from_slice::<ErrorResponse>(body) {
        if !response.detail().is_empty() {
            return response
                .detail()
                .iter()
                .map(|e| {
                    // The code as the registry spelled it (serde's names, e.g. TOOMANYREQUESTS).
                    let code = serde_json::to_value(e.code())
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_else(|| e.code().to_string());
                    format!("{code}: {}", e.message().as_deref().unwrap_or_default())
                })
                .collect::<Vec<_>>()
                .join("; ");
        }
    }
    // Registries add codes of their own (TAG_INVALID, UNKNOWN, …) that the spec's enum refuses.
    #[derive(serde::Deserialize)]
    struct Lenient {
        #[serde(default)]
        errors: Vec<LenientItem>,
    }
    #[derive(serde::Deserialize)]
    struct LenientItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Lenient>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_as_the_spec_says_and_beyond() {
        let spec = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":{"digest":"sha256:x"}},{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#;
        assert_eq!(
            registry_detail(spec),
            "BLOB_UNKNOWN: blob unknown to registry; TOOMANYREQUESTS: slow down"
        );
        let custom = br#"{"errors":[{"code":"TAG_INVALID","message":"no"}]}"#;
        assert_eq!(registry_detail(custom), "TAG_INVALID: no");
        assert_eq!(
            registry_detail(br#"{"errors":[{"code":"DENIED"}]}"#),
            "DENIED: "
        );
        assert_eq!(registry_detail(b"\n  <html>oops\nmore"), "<html>oops");
        assert_eq!(registry_detail(b""), "");
    }
}
