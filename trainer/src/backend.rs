//! Where training runs: Burn's CPU backend (`flex`) or CUDA (built with `--features cuda`), with
//! the checks that make a missing GPU, driver or toolkit an error that says what to do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::bench::{Suite, TrainBench};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::run_dir::RunDir;
use crate::train::{RunOptions, RunSummary};

/// A training backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Pure-Rust CPU backend.
    Flex,
    /// NVIDIA GPU (build with `--features cuda`).
    Cuda,
}

impl BackendKind {
    /// The name logs and summaries use.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Flex => "flex",
            BackendKind::Cuda => "cuda",
        }
    }
}

/// Trains on `kind` (GPU `device` for CUDA).
pub fn train(
    kind: BackendKind,
    device: usize,
    cfg: &TrainConfig,
    run: &RunDir,
    opts: &RunOptions,
) -> Result<RunSummary> {
    match kind {
        BackendKind::Flex => {
            crate::train::train::<crate::CpuAutodiff>(cfg, run, &Default::default(), opts)
        }
        BackendKind::Cuda => cuda::train(cfg, run, opts, device),
    }
}

/// Measures training throughput on `kind`.
pub fn bench(kind: BackendKind, device: usize, suite: &Suite) -> Result<Vec<TrainBench>> {
    match kind {
        BackendKind::Flex => {
            crate::bench::run_suite::<crate::CpuAutodiff>(suite, &Default::default(), kind.name())
        }
        BackendKind::Cuda => cuda::bench(suite, device),
    }
}

/// A flag that the first Ctrl-C sets (training stops after the step and keeps a checkpoint); a
/// second Ctrl-C aborts at once.
pub fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if s.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: aborting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: stopping after this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    });
    stop
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::*;

    type B = burn::backend::Autodiff<burn::backend::Cuda>;

    /// Checks the NVIDIA driver and the CUDA toolkit are there before Burn's CUDA backend starts
    /// (it panics deep inside otherwise), and points `CUDA_PATH` at /usr/local/cuda when unset.
    pub fn device(index: usize) -> Result<burn::backend::cuda::CudaDevice> {
        // SAFETY: loading the driver library runs its initialisers, as the CUDA backend would.
        if let Err(e) = unsafe { libloading::Library::new("libcuda.so.1") } {
            return Err(TrainError::Config(format!(
                "--backend cuda needs an NVIDIA GPU and its driver, but libcuda.so.1 could not be loaded ({e}); use --backend flex on the CPU"
            )));
        }
        if std::env::var_os("CUDA_PATH").is_none() {
            let default = std::path::Path::new("/usr/local/cuda");
            if !default.join("include").is_dir() {
                return Err(TrainError::Config(
                    "--backend cuda compiles kernels with NVRTC and needs the CUDA toolkit: set CUDA_PATH to its root (the folder with include/)".into(),
                ));
            }
            // SAFETY: called before any thread of the CUDA backend exists.
            unsafe { std::env::set_var("CUDA_PATH", default) };
        }
        Ok(burn::backend::cuda::CudaDevice::new(index))
    }

    pub fn train(
        cfg: &TrainConfig,
        run: &RunDir,
        opts: &RunOptions,
        index: usize,
    ) -> Result<RunSummary> {
        crate::train::train::<B>(cfg, run, &device(index)?, opts)
    }

    pub fn bench(suite: &Suite, index: usize) -> Result<Vec<TrainBench>> {
        crate::bench::run_suite::<B>(suite, &device(index)?, "cuda")
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use super::*;

    fn missing() -> TrainError {
        TrainError::Config(
            "this cold-train was built without CUDA: rebuild with `cargo build --release -p cold-trainer --features cuda`"
                .into(),
        )
    }

    pub(crate) fn train(
        _: &TrainConfig,
        _: &RunDir,
        _: &RunOptions,
        _: usize,
    ) -> Result<RunSummary> {
        Err(missing())
    }

    pub(crate) fn bench(_: &Suite, _: usize) -> Result<Vec<TrainBench>> {
        Err(missing())
    }
}
