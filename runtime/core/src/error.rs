//! The core library's error type. Each variant's message says what the user can do about it.

use std::path::PathBuf;

/// Errors of the shared core: files, data sets, images, degradations, downloads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidArgument(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("data set not found: {0}")]
    DatasetMissing(String),

    #[error("{path}: not a valid data set file: {reason}")]
    DatasetFormat { path: PathBuf, reason: String },

    #[error("{path}: {reason}")]
    Image { path: PathBuf, reason: String },

    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },

    #[error(
        "{what}: sha256 mismatch (expected {expected}, got {actual}); the file is corrupt or was replaced. \
         Delete it and fetch it again"
    )]
    HashMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("model bundle {path}: {reason}")]
    Bundle { path: PathBuf, reason: String },

    /// A typed file (manifest, sidecar, training config or summary, eval report) that cannot be
    /// read as what it claims to be: not JSON, another kind of file, a newer version, a bad field.
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

/// Result with the core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
