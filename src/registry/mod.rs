//! Pushing OCI image layouts to registries (the OCI distribution spec), synchronously, over
//! ureq + rustls.
//!
//! ```no_run
//! use staticpack::registry::{self, ClientOptions, NoProgress, PushOptions, Reference};
//! let target = Reference::parse("127.0.0.1:5000/app:v1")?;
//! let report = registry::push(
//!     std::path::Path::new("out/app"), Some("v1"), &[target],
//!     &ClientOptions::default(), &PushOptions::default(), &NoProgress,
//! )?;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What a push does, per target repository: `GET /v2/` once per registry (picks https, or http
//! for loopback and insecure registries; learns Basic or Bearer), `HEAD` each blob and skip the
//! ones present, mount the others from a repository of the same registry known to hold them,
//! upload the rest (one `PUT`, or `PATCH` chunks that resume from the registry's `Range` after a
//! dropped connection), then `PUT` child manifests by digest and the manifest or index under
//! each tag. Every digest the registry reports back is compared with ours.

mod auth;
mod client;
mod credentials;
mod mounts;
mod progress;
mod push;
mod reference;
mod secret;

pub use crate::image::ImageError as LayoutError;
/// The image layout types push reads, from [`crate::image::layout`] (one reader, one tag rule).
pub use crate::image::layout::{LocalBlob, LocalManifest, SelectedImage as LayoutImage};
pub use auth::{Challenge, parse_www_authenticate};
pub use client::{Client, ClientOptions, RetryPolicy, login};
pub use credentials::{
    Credential, CredentialError, Keychain, Resolved, StoredIn, auth_files_from,
    docker_config_file_from, store_credentials,
};
pub use mounts::default_blob_cache_path;
pub use progress::{NoProgress, Progress, TerminalProgress};
pub use push::{BlobAction, BlobReport, PushOptions, PushReport, PushedReference, push};
pub use reference::{Reference, ReferenceError, normalize_registry};
pub use secret::Secret;

/// Everything that can go wrong talking to a registry. Messages name the registry, the
/// repository and the action, and for auth and not-found errors what to do; they never contain
/// a secret.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error(transparent)]
    Layout(#[from] LayoutError),
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
            RegistryError::Status { status, .. } => client::is_retryable_status(*status),
            _ => false,
        }
    }
}
