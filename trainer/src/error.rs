//! The trainer library's error type.

use std::path::PathBuf;

/// Errors of training, checkpointing and export.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Core(#[from] cold_core::Error),

    #[error("{0}")]
    Config(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },

    #[error(
        "the loss became {value} at step {step}; training stopped. The last good checkpoint is kept \
         ({last_good}). Lower --lr or set --grad-clip, then --resume"
    )]
    NonFiniteLoss {
        step: usize,
        value: f32,
        last_good: String,
    },

    #[error("plot: {0}")]
    Plot(String),

    #[error("export: {0}")]
    Export(String),
}

/// Result with [`TrainError`].
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl TrainError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.into(),
            source,
        }
    }
}
