//! Training and export of the cold-diffusion attention U-Net with Burn.
//!
//! - [`model`]: the attention U-Net, one file per part.
//! - [`ops`]: convolutions with backward passes of our own (fast CPU kernels, generic elsewhere).
//! - [`config`], [`train`], [`ema`], [`sample`]: the training run and its outputs (the batches,
//!   the run folder, checkpoints, the training state and the plots are the crate's own, behind
//!   [`train`]). D(x, t) comes from the one implementation both crates share
//!   (`cold_core::degradation`).
//! - [`export`], [`import`]: bundles written from a run and read back; [`steps`], [`bench`],
//!   [`backend`]: the steps curve, the training benchmarks and the backend dispatch.

pub mod backend;
mod batches;
pub mod bench;
mod checkpoint;
pub mod classifier;
pub mod config;
pub mod ema;
mod error;
pub mod export;
pub mod import;
pub mod loss;
mod mixture;
pub mod model;
pub mod ops;
mod plot;
mod run_dir;
pub mod sample;
mod state;
pub mod steps;
pub mod tensor_io;
pub mod train;
pub mod widen;

pub use error::{Result, TrainError};

/// The CPU backend used for training and tests.
pub type CpuBackend = burn::backend::Flex;
/// [`CpuBackend`] with automatic differentiation.
pub(crate) type CpuAutodiff = burn::backend::Autodiff<CpuBackend>;

/// Keeps freed memory in the process (glibc): a training step allocates and frees many tensors of
/// a few MB, which glibc would otherwise map and unmap every time (page faults, zeroing). Measured
/// about 8% faster CPU training steps (BENCHMARKS.md). Call once at start-up, before other threads.
pub(crate) fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_TOP_PAD, 64 << 20);
    }
}

/// MXCSR bits: flush-to-zero (15) and denormals-are-zero (6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

/// Makes this thread treat subnormal floats as zero (x86-64: the MXCSR's flush-to-zero and
/// denormals-are-zero bits; a no-op elsewhere). Arithmetic that produces or reads a subnormal
/// (below 1.2e-38) takes a slow microcode path, and a trained network makes many in its
/// activations or gradients: resumed from the same checkpoints, `small` trains 21% faster at step
/// 11,401 and `compact` 8% at 74,384 with the flags, fresh networks the same (BENCHMARKS.md,
/// "Subnormals"). Values that small are zero for training's purposes.
pub(crate) fn flush_subnormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register; setting FTZ (bit
    // 15) and DAZ (bit 6) changes only how subnormal results and inputs are rounded.
    unsafe {
        let mut csr: u32 = 0;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        csr |= FTZ_DAZ;
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
    }
}

/// Whether this thread flushes subnormal floats to zero (see [`flush_subnormals`]).
pub fn flushes_subnormals() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr only stores this thread's SSE control register.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Sets up the process for CPU training: [`tune_allocator`], then the global rayon pool (its size
/// from `RAYON_NUM_THREADS` as usual) with every worker and this thread flushing subnormals to zero
/// ([`flush_subnormals`]). Call once at start-up, before other threads.
pub fn setup_cpu() {
    tune_allocator();
    flush_subnormals();
    // New threads inherit the flags on Linux; the start handler sets them whatever spawns the
    // workers. An error means the global pool was already built (by an earlier call).
    let _ = rayon::ThreadPoolBuilder::new()
        .start_handler(|_| flush_subnormals())
        .build_global();
}
