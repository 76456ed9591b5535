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
//! each tag. Every digest the registry reports back is compared with ours; a manifest stored
//! without one is read back and compared byte for byte. Blob bodies are read as the layout
//! reader reads blobs (no symlinks, regular files, verified against their digest), so that a
//! wrong local file is blamed as such, and a DIGEST_INVALID for a sound file is retried once.
//!
//! Layers, each importing only the ones before it (no cycles):
//!
//! - `reference`, `secret`, `credentials`, `auth` (challenge parsing, scopes), `mounts`,
//!   `report` (plain result data), `progress` (the typed-event seam; the CLI draws bars);
//! - `errors`: [`RegistryError`] and registry error bodies read as oci-spec's `ErrorResponse`;
//! - `transport`: one request → status, headers, body behind the `Transport` trait (ureq +
//!   rustls; a scripted fake in tests), the [`RetryPolicy`] and URL helpers;
//! - `session`: [`Client`]: ping, WWW-Authenticate, Basic and Bearer tokens with their cache,
//!   a new token after a 401, retries per the policy, status → error mapping;
//! - `plan`: per blob, exists / mount from … / upload, a pure function over known facts;
//! - `push`: carries the plan out (uploads, chunk resume, manifests, tags).

mod auth;
mod credentials;
mod errors;
mod mounts;
mod plan;
mod progress;
mod pull;
mod push;
mod reference;
mod report;
mod secret;
mod session;
mod transport;

/// The image layout types push reads, from [`crate::image::layout`] (one reader, one tag rule).
pub use crate::image::layout::{LocalBlob, LocalManifest, SelectedImage as LayoutImage};
pub use credentials::{
    Credential, CredentialError, Keychain, Resolved, StoredIn, docker_config_file_from,
};
pub use errors::RegistryError;
pub use progress::{NoProgress, Progress};
pub use pull::{CONFIG_MAX, MANIFEST_MAX, PULL_MAX, Pulled, pull_referrers, pull_to_layout};
pub use push::{PushOptions, push};
pub use reference::{Reference, ReferenceError};
pub use report::{BlobAction, BlobReport, PushReport, PushedReference, PushedReferrers};
pub use secret::Secret;
pub use session::{Client, ClientOptions, login};
pub use transport::RetryPolicy;
