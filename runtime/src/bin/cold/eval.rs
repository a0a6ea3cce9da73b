//! `cold eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::imageio::BitDepth;
use cold_runtime::engine::Engine;
use cold_runtime::eval::{self, EvalConfig};

use crate::args::ModelArgs;

#[derive(Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Test set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Start levels, comma-separated (default: T).
    #[arg(long, value_delimiter = ',')]
    t: Vec<usize>,
    /// Only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Round the degraded inputs to 8- or 16-bit levels, as restoring from PNG files would see
    /// them (default: float, the reference's protocol).
    #[arg(long, value_enum)]
    input_depth: Option<BitDepth>,
    /// Seed of the per-image degradation parameters (inpainting centres, snow layers, noise).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip FID (it runs the Inception network on every output: slow on a CPU).
    #[arg(long)]
    no_fid: bool,
    /// Also measure Algorithm 2 with each of these numbers of sampling steps K from the first
    /// level: RMSE, SSIM, FID and images/s (the quality/speed curve of `restore --steps K`).
    #[arg(long, value_delimiter = ',')]
    steps_curve: Vec<usize>,
    /// Folder for eval.json, eval.md and comparison.png.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: EvalArgs) -> Result<ExitCode> {
    let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
    let data = eval::test_set(&a.data, &engine.bundle.manifest.degradation)?;
    let levels = if a.t.is_empty() {
        vec![engine.bundle.manifest.degradation.steps]
    } else {
        a.t.clone()
    };
    let cfg = EvalConfig {
        levels,
        limit: a.limit,
        batch: a.batch,
        input_depth: a.input_depth,
        seed: a.seed,
        fid: !a.no_fid,
        steps_curve: a.steps_curve.clone(),
    };
    let report = eval::evaluate_into(&mut engine, &data, &cfg, a.out.as_deref())?;
    println!(
        "{} on {} test images of {}, {} inputs ({} EP, {:.0} s)\n\n{}",
        report.model,
        report.images,
        a.data,
        report.inputs,
        report.ep,
        report.seconds,
        eval::markdown(&report)
    );
    Ok(ExitCode::SUCCESS)
}
