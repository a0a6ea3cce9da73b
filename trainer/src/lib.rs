//! Training and export of the cold-diffusion attention U-Net with Burn.

pub mod model;

/// The CPU backend used for training and tests.
pub type CpuBackend = burn::backend::Flex;
/// [`CpuBackend`] with automatic differentiation.
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;
