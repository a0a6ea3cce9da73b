//! `cold degrade`: the bundle's D graph over a folder (`cold-train degrade` runs the same job with
//! the exact D of a description).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::degrade::DegradeOptions;
use cold_core::imageio::BitDepth;
use cold_runtime::engine::Engine;
use cold_runtime::jobs;

use crate::args::{ModelArgs, ShardArgs, SizeArgs, finish};

#[derive(Args, Debug)]
pub struct DegradeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Degradation level, 0..=T.
    #[arg(long)]
    t: usize,
    in_dir: PathBuf,
    out_dir: PathBuf,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[command(flatten)]
    size: SizeArgs,
    #[arg(long)]
    overwrite: bool,
    /// Bits per channel of the output PNGs. Use 16 for deep levels: at t = T of the mnist preset a
    /// digit spans about one 8-bit grey level, so 8 bits keep almost nothing to restore from.
    #[arg(long, value_enum, default_value = "8")]
    depth: BitDepth,
    /// Seed of the per-image parameters (inpainting centres, snow layers, noise), recorded in
    /// degradation.json.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    shard: ShardArgs,
}

pub fn run(a: DegradeArgs) -> Result<ExitCode> {
    let shard = a.shard.resolve()?;
    let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
    let o = DegradeOptions {
        t: a.t,
        batch: a.batch,
        resize: a.size.resize,
        max_pixels: a.size.max_pixels,
        overwrite: a.overwrite,
        depth: a.depth,
        seed: a.seed,
        shard,
    };
    let report = jobs::degrade_folder(&mut engine, &a.in_dir, &a.out_dir, &o)?;
    Ok(finish(report, "degrade"))
}
