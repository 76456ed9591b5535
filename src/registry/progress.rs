//! Progress events of a push. The CLI shows them with [`TerminalProgress`] when stderr is a
//! terminal and stays quiet otherwise ([`NoProgress`]). Messages never contain secrets.

use super::LocalBlob;
use super::push::BlobReport;
use crate::digest::Digest;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

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
    /// A verbose log line: requests, retries, auth decisions, skipped credential sources.
    fn note(&self, _message: &str) {}
}

/// Ignores every event.
pub struct NoProgress;

impl Progress for NoProgress {}

/// One indicatif bar per blob on stderr, plus notes when `verbose`.
pub struct TerminalProgress {
    multi: MultiProgress,
    bars: Mutex<HashMap<Digest, ProgressBar>>,
    verbose: bool,
}

impl TerminalProgress {
    pub fn new(verbose: bool) -> Self {
        TerminalProgress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            verbose,
        }
    }

    fn bar(&self, digest: &Digest) -> Option<ProgressBar> {
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(digest)
            .cloned()
    }
}

impl Progress for TerminalProgress {
    fn blob_started(&self, _repository: &str, blob: &LocalBlob) {
        let bar = self.multi.add(ProgressBar::new(blob.size));
        let style = ProgressStyle::with_template(
            "{prefix:.bold} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(blob.digest.hex().chars().take(12).collect::<String>());
        bar.set_message("checking");
        self.bars
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(blob.digest.clone(), bar);
    }

    fn blob_progress(&self, digest: &Digest, sent: u64, _total: u64) {
        if let Some(bar) = self.bar(digest) {
            bar.set_message("uploading");
            bar.set_position(sent);
        }
    }

    fn chunk_committed(&self, digest: &Digest, committed: u64, _total: u64) {
        if let Some(bar) = self.bar(digest) {
            bar.set_position(committed);
        }
    }

    fn blob_finished(&self, _repository: &str, report: &BlobReport) {
        if let Some(bar) = self.bar(&report.digest) {
            bar.set_position(report.size);
            bar.finish_with_message(report.action.describe());
        }
    }

    fn manifest_pushed(&self, reference: &str, digest: &Digest) {
        self.note(&format!("pushed {reference} {digest}"));
    }

    fn note(&self, message: &str) {
        if !self.verbose {
            return;
        }
        // indicatif draws nothing, printed lines included, when stderr is not a terminal.
        if self.multi.is_hidden() {
            eprintln!("{message}");
        } else {
            let _ = self.multi.println(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::BlobAction;

    #[test]
    fn terminal_progress_handles_every_event() {
        let p = TerminalProgress::new(true);
        let blob = LocalBlob {
            digest: Digest::of_bytes(b"x"),
            size: 10,
            media_type: "m".into(),
            path: "/nonexistent".into(),
        };
        p.blob_started("app", &blob);
        p.blob_progress(&blob.digest, 5, 10);
        p.chunk_committed(&blob.digest, 5, 10);
        p.blob_progress(&Digest::of_bytes(b"unknown"), 1, 1);
        p.blob_finished(
            "app",
            &BlobReport {
                registry: "r".into(),
                repository: "app".into(),
                digest: blob.digest.clone(),
                size: 10,
                media_type: "m".into(),
                action: BlobAction::Skipped,
            },
        );
        p.manifest_pushed("r/app:v1", &blob.digest);
        p.note("note");
    }
}
