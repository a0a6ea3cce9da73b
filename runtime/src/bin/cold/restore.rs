//! `cold restore`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::folder::Resize;
use cold_runtime::engine::{Algorithm, Engine};
use cold_runtime::jobs::{self, RestoreOptions};

use crate::args::{ModelArgs, finish};

#[derive(Args, Debug)]
pub struct RestoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    in_dir: PathBuf,
    out_dir: PathBuf,
    /// Degradation level of the inputs (default: the model's T).
    #[arg(long)]
    t: Option<usize>,
    /// Sampler (default: 2; `estimated` for noise and animorphosis models, whose image files are
    /// clipped).
    #[arg(long, value_enum)]
    algorithm: Option<Algorithm>,
    /// Images per model call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Levels the sampler visits from t to 0 (default: the bundle's recommended number, else every
    /// level; 0: every level).
    #[arg(long)]
    steps: Option<usize>,
    /// Also write <name>_progression.png: the states x_t ... x_0 side by side.
    #[arg(long)]
    save_progression: bool,
    /// Inputs of another size: refuse (default) or scale to the model's size and back.
    #[arg(long, value_enum, default_value = "refuse")]
    resize: Resize,
    /// Redo outputs that already exist.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(a: RestoreArgs) -> Result<ExitCode> {
    let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
    tracing::info!(
        "model {} on {}",
        engine.bundle.manifest.name,
        engine.active_ep.name()
    );
    let algorithm = a.algorithm.unwrap_or(Algorithm::default_for(
        &engine.bundle.manifest.degradation.transform,
    ));
    let o = RestoreOptions {
        t: a.t,
        algorithm,
        steps: a.steps,
        batch: a.batch,
        progression: a.save_progression,
        resize: a.resize,
        overwrite: a.overwrite,
    };
    let report = jobs::restore_folder(&mut engine, &a.in_dir, &a.out_dir, &o)?;
    Ok(finish(report, "restore"))
}
