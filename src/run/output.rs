//! Bounded capture of a child's output pipe on a thread of its own (both pipes are drained
//! concurrently, so a chatty process never blocks on one while we wait on the other).

use super::OUTPUT_CAP;
use std::io::Read;
use std::thread::JoinHandle;

#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub bytes: Vec<u8>,
    /// More than [`OUTPUT_CAP`] bytes came; the rest was read and dropped.
    pub truncated: bool,
}

/// Reads `pipe` to its end on a new thread, keeping the first [`OUTPUT_CAP`] bytes.
pub(crate) fn capture<R: Read + Send + 'static>(mut pipe: R) -> JoinHandle<Captured> {
    std::thread::spawn(move || {
        let mut out = Captured::default();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(out.bytes.len());
                    out.bytes.extend_from_slice(&buf[..n.min(room)]);
                    out.truncated |= n > room;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // A read error on a pipe ends the capture; what we have is what it said.
                Err(_) => break,
            }
        }
        out
    })
}

/// The captured output; a capture thread that died (it cannot panic, but) gives nothing.
pub(crate) fn join(handle: JoinHandle<Captured>) -> Captured {
    handle.join().unwrap_or_default()
}
