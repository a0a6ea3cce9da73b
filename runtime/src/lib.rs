//! The lean cold-diffusion runtime: no Burn, only ONNX Runtime and small crates.
//!
//! - [`engine`]: ONNX Runtime sessions over a bundle (memory-mapped weights; CPU, CUDA and
//!   TensorRT execution providers) and batched cold sampling with the fused step graph.
//! - [`sampler`]: the level schedule of Algorithms 1 and 2 and the direct reconstruction, shared by
//!   the host loop and the GPU loop.
//! - [`bundle`]: the model bundle format (manifest, hashes, atomic writing).
//! - [`jobs`], [`folder`], [`imageio`], [`sidecar`]: restoring and degrading image folders safely;
//!   `degradation.json` carries a degraded folder's level and per-image parameters.
//! - [`bench`], [`eval`], [`metrics`], [`fid`]: throughput and the paper's quality metrics (RMSE,
//!   SSIM, FID).
//! - [`degradation`]: the degradation description shared with the trainer and the one
//!   implementation of D (blur, inpainting, super-resolution).
//! - [`generation`]: unconditional generation from the bundle's Gaussian mixture over channel means.
//! - [`data`]: MNIST / Fashion-MNIST / CIFAR-10 / image-folder data sets.
//! - [`fetch`], [`ortlib`]: the pinned, hash-checked downloads (MNIST, ONNX Runtime).
//! - [`onnx`]: a small ONNX graph writer (the trainer's exporter and the FID network use it).

pub mod bench;
pub mod bundle;
pub mod data;
pub mod degradation;
#[cfg(feature = "cuda")]
mod device_loop;
pub mod engine;
pub mod error;
pub mod eval;
pub mod fetch;
pub mod fid;
pub mod folder;
pub mod generation;
pub mod imageio;
pub mod jobs;
pub mod metrics;
pub mod onnx;
pub mod ortlib;
pub mod sampler;
pub mod sidecar;

pub use error::{Error, Result};
