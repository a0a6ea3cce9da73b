//! `cold generate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_runtime::engine::Engine;
use cold_runtime::generation::{self, GenerateOptions};

use crate::args::{ModelArgs, ShardArgs};

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
    /// Generate images of this class, by name or index (a class-conditioned model: `cold info`
    /// lists its classes); without it, unconditionally.
    #[arg(long, value_name = "NAME|INDEX")]
    class: Option<String>,
    /// With --class: classifier-free guidance weight W (x0 = u + W (c - u), c the class's
    /// restoration, u the unconditional one): 1 uses the class alone, above 1 pushes further
    /// from the unconditional (costs twice the network runs).
    #[arg(long, value_name = "W", default_value_t = 1.0)]
    guidance: f32,
    /// Replace images already in OUT_DIR (a rerun of the same job skips the samples already
    /// there without it).
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    shard: ShardArgs,
    out_dir: PathBuf,
}

pub fn run(a: GenerateArgs) -> Result<ExitCode> {
    let shard = a.shard.resolve()?;
    let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
    let class = a
        .class
        .as_deref()
        .map(|c| engine.bundle.manifest.network.config.class_index(c))
        .transpose()
        .map_err(anyhow::Error::msg)?
        .map(|c| c as usize);
    let o = GenerateOptions {
        count: a.count,
        seed: a.seed,
        noise: a.noise,
        batch: a.batch,
        overwrite: a.overwrite,
        shard,
        class,
        guidance: a.guidance,
    };
    let g = generation::generate(&mut engine, &a.out_dir, &o)?;
    let share = o.shard.as_ref().map_or(String::new(), |s| {
        format!(" (shard {}/{})", s.index, s.count)
    });
    let grid = if g.grid {
        format!("the first 64 in {}", a.out_dir.join("grid.png").display())
    } else {
        "grid.png waits for the first 64 samples (`cold report` writes it)".into()
    };
    println!(
        "generate: {} written, {} already done to {}{share}; {grid}",
        g.written,
        g.skipped,
        a.out_dir.join(generation::SAMPLES_DIR).display(),
    );
    Ok(ExitCode::SUCCESS)
}
