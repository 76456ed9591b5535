//! Progress events of a push: the seam between the library, which only reports typed events,
//! and the CLI, which draws them (its bars live in the binary). [`NoProgress`] ignores them.
//! Messages never contain secrets.

use super::LocalBlob;
use super::report::BlobReport;
use crate::digest::Digest;
use std::time::Duration;

/// Callbacks from a push. Uploads run in parallel, so these are called from several threads.
pub trait Progress: Sync {
    /// A blob is about to be checked and, if missing, mounted or uploaded to `repository`.
    fn blob_started(&self, _repository: &str, _blob: &LocalBlob) {}
    /// Bytes of the blob sent so far in the current request stream (monolithic or chunk).
    fn blob_progress(&self, _digest: &Digest, _sent: u64, _total: u64) {}
    /// The registry confirmed a chunk: it now holds `committed` bytes of the blob.
    fn chunk_committed(&self, _digest: &Digest, _committed: u64, _total: u64) {}
    /// The blob is in the repository (uploaded, mounted or already there).
    fn blob_finished(&self, _repository: &str, _report: &BlobReport) {}
    /// A manifest or index was stored under `reference`.
    fn manifest_pushed(&self, _reference: &str, _digest: &Digest) {}
    /// A request to `host` has had no answer for `elapsed` (called every few seconds while
    /// it waits, from another thread).
    fn waiting(&self, _host: &str, _elapsed: Duration) {}
    /// A verbose log line: requests, retries, auth decisions, skipped credential sources.
    fn note(&self, _message: &str) {}
}

/// Ignores every event.
pub struct NoProgress;

impl Progress for NoProgress {}
