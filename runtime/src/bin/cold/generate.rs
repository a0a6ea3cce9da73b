//! `cold generate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_runtime::engine::Engine;
use cold_runtime::generation::{self, GenerateOptions};

use crate::args::ModelArgs;

#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images to generate.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// The same seed gives the same images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standard deviation of the per-pixel noise added to the constant start images ("broken
    /// symmetry"); 0 gives the paper's "perfect symmetry" case.
    #[arg(long, default_value_t = cold_core::generation::DEFAULT_NOISE)]
    noise: f64,
    /// Images per model call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Replace images already in OUT_DIR.
    #[arg(long)]
    overwrite: bool,
    out_dir: PathBuf,
}

pub fn run(a: GenerateArgs) -> Result<ExitCode> {
    let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
    let o = GenerateOptions {
        count: a.count,
        seed: a.seed,
        noise: a.noise,
        batch: a.batch,
        overwrite: a.overwrite,
    };
    let n = generation::generate(&mut engine, &a.out_dir, &o)?;
    println!(
        "{n} images written to {} (the first 64 in {})",
        a.out_dir.join(generation::SAMPLES_DIR).display(),
        a.out_dir.join("grid.png").display()
    );
    Ok(ExitCode::SUCCESS)
}
