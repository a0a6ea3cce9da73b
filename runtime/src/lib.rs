//! The lean cold-diffusion runtime: ONNX Runtime over a bundle, no Burn. What it shares with the
//! trainer (files, degradations, data sets, images, metrics, the sampler's schedules) is
//! `cold_core`.
//!
//! - [`engine`]: ONNX Runtime sessions over a bundle (memory-mapped weights; CPU, CUDA and
//!   TensorRT execution providers) and batched cold sampling with the fused step graph.
//! - [`jobs`]: restoring and degrading image folders with a bundle.
//! - [`bench`], [`eval`], [`fid`]: throughput and the paper's quality metrics (RMSE, SSIM, FID).
//! - [`generation`]: unconditional generation from the bundle's Gaussian mixture over channel
//!   means.
//! - [`info`]: a bundle described for people (`cold info`).
//! - [`ortlib`], [`setup`]: the pinned, hash-checked ONNX Runtime library and FID network.

pub mod bench;
pub mod classify;
#[cfg(feature = "cuda")]
mod device_loop;
pub mod engine;
mod error;
pub mod eval;
pub mod fid;
pub mod generation;
pub mod info;
pub mod jobs;
pub mod nearest;
pub mod ortlib;
pub mod setup;

pub use error::{Error, Result};
