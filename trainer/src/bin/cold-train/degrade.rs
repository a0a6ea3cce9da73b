//! `cold-train degrade`: the exact D of a preset over a folder (the same job as `cold degrade`,
//! which applies a bundle's D graph).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::degradation::Degradation;
use cold_core::degrade::{DegradeOptions, degrade_folder_exact};
use cold_core::folder::Resize;

#[derive(Args, Debug)]
pub struct DegradeArgs {
    /// Degradation preset (see `train --preset`).
    #[arg(long, default_value = "mnist")]
    preset: String,
    /// Degradation level, 0..=T.
    #[arg(long)]
    t: usize,
    /// Seed of the per-image parameters (inpainting centres, snow layers, noise), recorded in
    /// degradation.json.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Redo outputs that already exist.
    #[arg(long)]
    overwrite: bool,
    /// Bits per channel of the output PNGs (16 keeps the faint contrast of deep levels).
    #[arg(long, value_enum, default_value = "8")]
    depth: cold_core::imageio::BitDepth,
    /// Refuse images of more pixels than this (each image is degraded at its own size).
    #[arg(long, default_value_t = cold_core::folder::DEFAULT_MAX_PIXELS)]
    max_pixels: u64,
    in_dir: PathBuf,
    out_dir: PathBuf,
}

pub fn run(a: DegradeArgs) -> Result<ExitCode> {
    let o = DegradeOptions {
        t: a.t,
        batch: 256,
        resize: Resize::Keep,
        max_pixels: a.max_pixels,
        shard: None,
        overwrite: a.overwrite,
        depth: a.depth,
        seed: a.seed,
    };
    let report = degrade_folder_exact(&Degradation::preset(&a.preset)?, &a.in_dir, &a.out_dir, &o)?;
    report.log("degrade");
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
