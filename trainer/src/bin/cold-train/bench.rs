//! `cold-train bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use cold_trainer::backend::{self, BackendKind};
use cold_trainer::bench::Suite;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long, default_value = "mnist")]
    preset: String,
    /// Network sizes, comma-separated.
    #[arg(long, default_value = "compact")]
    model: String,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "16")]
    batch: String,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Use random images of this side instead of the data set (e.g. 32 for the paper's 32x32
    /// MNIST setting, which the 4-level paper network needs).
    #[arg(long)]
    synthetic: Option<usize>,
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let batches = a
        .batch
        .split(',')
        .map(|b| b.trim().parse())
        .collect::<std::result::Result<Vec<usize>, _>>()
        .context("--batch takes comma-separated integers")?;
    let suite = Suite {
        dataset: a.dataset,
        preset: a.preset,
        models: a.model.split(',').map(|m| m.trim().to_string()).collect(),
        batches,
        warmup: a.warmup,
        steps: a.steps,
        synthetic: a.synthetic,
    };
    let results = backend::bench(a.backend, a.device, &suite)?;
    let js = serde_json::to_string_pretty(&results)?;
    if let Some(p) = &a.json {
        cold_core::atomic::write_atomic(p, js.as_bytes())?;
    }
    println!("{js}");
    Ok(ExitCode::SUCCESS)
}
