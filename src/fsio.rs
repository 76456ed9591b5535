//! One I/O error for the whole library: what was being done, to which path, and the cause.
//!
//! The stages' error enums hold it as `Io(#[from] IoError)` with `#[error(transparent)]`, so the
//! message ("creating /etc/passwd") and the cause each print once.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("{action} {path}")]
pub struct IoError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl IoError {
    pub(crate) fn new(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        IoError {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `.at(action, path)` on an I/O result: the error becomes an [`IoError`] naming both.
pub(crate) trait IoContext<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, IoError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T, IoError> {
        self.map_err(|source| IoError::new(action, path, source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_action_and_path_and_the_cause_comes_once() {
        let e = std::fs::read("/nonexistent/staticpack")
            .at("reading", "/nonexistent/staticpack")
            .unwrap_err();
        assert_eq!(e.to_string(), "reading /nonexistent/staticpack");
        let cause = std::error::Error::source(&e).unwrap().to_string();
        assert!(cause.contains("No such file"), "{cause}");
        assert!(!e.to_string().contains(&cause));
    }
}
