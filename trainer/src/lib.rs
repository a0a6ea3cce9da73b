//! Training and export of the cold-diffusion attention U-Net with Burn.
//!
//! - [`model`]: the attention U-Net, one file per part.
//! - [`ops`]: convolutions with backward passes of our own (fast CPU kernels, generic elsewhere).
//! - [`degrade`]: D(x, t) on a Burn device, from the shared degradation description.
//! - [`train`], [`checkpoint`], [`ema`], [`sample`], [`plot`]: the training run and its outputs.

pub mod bench;
pub mod checkpoint;
pub mod degrade;
pub mod ema;
pub mod error;
pub mod export;
pub mod model;
pub mod ops;
pub mod plot;
pub mod sample;
pub mod tensor_io;
pub mod train;

pub use error::{Result, TrainError};

/// The CPU backend used for training and tests.
pub type CpuBackend = burn::backend::Flex;
/// [`CpuBackend`] with automatic differentiation.
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;
