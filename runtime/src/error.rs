//! The runtime library's error type: the core's errors, and ONNX Runtime's. Each variant's message
//! says what the user can do about it.

use std::path::PathBuf;

/// Errors of the cold-diffusion runtime library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Files, data sets, images, degradations, downloads.
    #[error(transparent)]
    Core(#[from] cold_core::Error),

    #[error("ONNX Runtime: {0}")]
    OnnxRuntime(String),

    #[error("execution provider {ep}: {reason}")]
    ExecutionProvider { ep: String, reason: String },
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Core(cold_core::Error::io(path, source))
    }

    /// A bad argument or input, with what to do about it.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Core(cold_core::Error::InvalidArgument(message.into()))
    }
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Self {
        Error::OnnxRuntime(e.to_string())
    }
}
