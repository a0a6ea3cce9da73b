//! What the cold-diffusion trainer (Burn) and runtime (ONNX Runtime) share, with neither of them
//! in its dependency tree: one definition of each file that passes between them and of each
//! computation both need.
//!
//! - Files, typed and versioned ([`files`]): the bundle manifest ([`bundle`], with the network's
//!   size from [`network`] and the generation mixture from [`generation`]), the degraded
//!   folder's sidecar ([`sidecar`]), the training config and summary ([`training`]) and the
//!   evaluation report ([`report`]); written whole or not at all ([`atomic`]).
//! - [`degradation`]: the degradation kinds, each its description, validation, per-image
//!   parameters and host D.
//! - [`sampler`]: the level schedules of Algorithms 1 and 2 and the direct reconstruction;
//!   [`update`]: their update rules, written once for the step graph, the trainer and the host.
//! - [`data`], [`imageio`], [`folder`], [`degrade`]: data sets, images, folder jobs and the one
//!   degrade job of both binaries.
//! - [`metrics`]: RMSE and SSIM, the paper's protocol.
//! - [`packed`]: the manifest's big numeric arrays as base64 float32.
//! - [`onnx`]: a small ONNX graph writer (the trainer's exporter, the FID network).
//! - [`shard`], [`task`]: one task's share of a folder job (Slurm arrays, Kubernetes Indexed
//!   Jobs) and its report under `OUT_DIR/.cold/`.
//! - [`fetch`], [`progress`]: the pinned, hash-checked downloads and progress bars.

pub mod atomic;
pub mod bundle;
pub mod classifier;
pub mod data;
pub mod degradation;
pub mod degrade;
mod error;
pub mod fetch;
pub mod files;
pub mod folder;
pub mod generation;
pub mod imageio;
pub mod levels;
pub mod metrics;
pub mod network;
pub mod onnx;
pub mod packed;
pub mod progress;
pub mod report;
pub mod sampler;
pub mod shard;
pub mod sidecar;
pub mod summary;
pub mod task;
pub mod training;
pub mod update;

pub use error::{Error, Result};
