//! Progress bars for `staticpack push`: one indicatif bar per blob on stderr, drawn from the
//! library's typed [`Progress`] events, plus notes when verbose.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use staticpack::digest::Digest;
use staticpack::registry::{BlobReport, LocalBlob, Progress};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// `push    still waiting for HOST (20 s)`.
fn waiting_line(host: &str, elapsed: Duration) -> String {
    format!("push    still waiting for {host} ({} s)", elapsed.as_secs())
}

/// No bars (stderr is not a terminal): only the lines saying a registry has not answered yet,
/// so that a slow registry never looks like a hang.
pub struct WaitingOnly;

impl Progress for WaitingOnly {
    fn waiting(&self, host: &str, elapsed: Duration) {
        eprintln!("{}", waiting_line(host, elapsed));
    }
}

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

    fn waiting(&self, host: &str, elapsed: Duration) {
        let line = waiting_line(host, elapsed);
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
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
    use staticpack::registry::BlobAction;

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

/// On a terminal, the build command running now with its elapsed time, replaced by one line
/// when it ends; without a terminal the event lines say one line per command instead.
#[derive(Default)]
pub struct CommandSpinner {
    running: Option<(ProgressBar, String)>,
}

impl CommandSpinner {
    /// Handles a command event on a terminal; false for every other event.
    pub fn handle(&mut self, event: &staticpack::pipeline::Event) -> bool {
        use staticpack::pipeline::Event;
        match event {
            Event::Command {
                index,
                total,
                command,
            } => {
                let line = format!("command [{index}/{total}] {command}");
                let bar = ProgressBar::new_spinner();
                bar.set_draw_target(ProgressDrawTarget::stderr());
                let style = ProgressStyle::with_template("{msg} ({elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner());
                bar.set_style(style);
                bar.set_message(line.clone());
                bar.enable_steady_tick(Duration::from_millis(500));
                self.running = Some((bar, line));
                true
            }
            Event::CommandDone { elapsed, .. } => {
                if let Some((bar, line)) = self.running.take() {
                    bar.finish_and_clear();
                    eprintln!("{line} ({:.1} s)", elapsed.as_secs_f64());
                }
                true
            }
            _ => {
                // A failed command ends without CommandDone: clear its spinner before the error.
                if let Some((bar, _)) = self.running.take() {
                    bar.finish_and_clear();
                }
                false
            }
        }
    }

    /// Clears a spinner left running by a failure.
    pub fn clear(&mut self) {
        if let Some((bar, _)) = self.running.take() {
            bar.finish_and_clear();
        }
    }
}
