//! `cold bench`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_runtime::bench::{self, BenchConfig};
use cold_runtime::engine::Algorithm;

use crate::args::ModelArgs;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    batch: Vec<usize>,
    /// Start level (default T).
    #[arg(long)]
    t: Option<usize>,
    #[arg(long, value_enum, default_value = "2")]
    algorithm: Algorithm,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    let cfg = BenchConfig {
        batches: a.batch.clone(),
        t: a.t,
        algorithm: a.algorithm,
        warmup: a.warmup,
        repeats: a.repeats,
    };
    let providers: Vec<_> = a
        .model
        .ep
        .iter()
        .map(|&ep| a.model.options_for(ep))
        .collect();
    let out = bench::run_providers(&a.model.model, &providers, &cfg, a.json.as_deref())?;
    print!("{}", bench::table(&out.results));
    Ok(ExitCode::SUCCESS)
}
