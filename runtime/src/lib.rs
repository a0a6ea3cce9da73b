//! The lean cold-diffusion runtime.
//!
//! - [`degradation`]: the degradation description shared with the trainer, and exact per-level
//!   operators that make D(x, t) cost the same for every t.
//! - [`data`]: MNIST / Fashion-MNIST / CIFAR-10 / image-folder data sets.
//! - [`imageio`] and [`folder`]: image files in and out, batch folder processing.
//! - [`fetch`]: the pinned, hash-checked downloads (MNIST, ONNX Runtime) and the cache folder.

pub mod bundle;
pub mod data;
pub mod engine;
pub mod ortlib;
pub mod degradation;
pub mod error;
pub mod fetch;
pub mod folder;
pub mod imageio;

pub use error::{Error, Result};
