//! Training and export of the cold-diffusion attention U-Net with Burn.
//!
//! - [`model`]: the attention U-Net, one file per part.
//! - [`ops`]: convolutions with backward passes of our own (fast CPU kernels, generic elsewhere).
//! - [`config`], [`batches`], [`state`], [`train`], [`run_dir`], [`checkpoint`], [`ema`],
//!   [`sample`], [`plot`]: the training run and its outputs. D(x, t) comes from the runtime's
//!   one implementation (`cold_runtime::degradation`).

pub mod batches;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod ema;
pub mod error;
pub mod export;
pub mod mixture;
pub mod model;
pub mod ops;
pub mod plot;
pub mod run_dir;
pub mod sample;
pub mod state;
pub mod tensor_io;
pub mod train;

pub use error::{Result, TrainError};

/// The CPU backend used for training and tests.
pub type CpuBackend = burn::backend::Flex;
/// [`CpuBackend`] with automatic differentiation.
pub type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;

/// Keeps freed memory in the process (glibc): a training step allocates and frees many tensors of
/// a few MB, which glibc would otherwise map and unmap every time (page faults, zeroing). Measured
/// about 8% faster CPU training steps (BENCHMARKS.md). Call once at start-up, before other threads.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}
