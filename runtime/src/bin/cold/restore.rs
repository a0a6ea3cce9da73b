//! `cold restore`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_runtime::engine::{Algorithm, Engine, TileSize, Tiling, tiles};
use cold_runtime::jobs::{self, RestoreOptions};

use crate::args::{ModelArgs, ShardArgs, SizeArgs, finish};

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
    #[command(flatten)]
    size: SizeArgs,
    /// Images of another size than the model's: the side of the square tiles the restorer sees
    /// (rounded up to a multiple of the network's stride), `whole` for the whole image in one
    /// piece, or `auto`: whole up to 512x512 pixels, tiles of 512 above.
    #[arg(long, default_value = "auto", value_parser = parse_tile)]
    tile: TileSize,
    /// Pixels neighbouring tiles share, blended linearly.
    #[arg(long, default_value_t = tiles::DEFAULT_OVERLAP)]
    tile_overlap: usize,
    /// Tiles per call of the restorer, taken from every image of a batch, whatever their sizes
    /// (several large images are then loaded together). Default 0: as many as make 256x256
    /// pixels, one 512 tile (the CPU's best); raise it on a GPU.
    #[arg(long, default_value_t = 0, value_name = "N")]
    tile_batch: usize,
    /// Average the restorer's estimate over the eight flips and transposes of its input
    /// (test-time augmentation): a little sharper and cleaner, eight times the restorer's time.
    /// D and the sampler's update are unchanged. Bundles of format version 2.
    /// A bundle that self-ensembles by default (`cold info` says so) does this without the flag.
    #[arg(long, alias = "tta")]
    self_ensemble: bool,
    /// One pass of the restorer per step, even where the bundle self-ensembles by default.
    #[arg(long, conflicts_with = "self_ensemble")]
    no_self_ensemble: bool,
    /// Redo outputs that already exist.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    shard: ShardArgs,
}

fn parse_tile(s: &str) -> std::result::Result<TileSize, String> {
    match s {
        "auto" => Ok(TileSize::Auto),
        "whole" => Ok(TileSize::Whole),
        n => match n.parse::<usize>() {
            Ok(v) if v >= 8 => Ok(TileSize::Side(v)),
            _ => Err(format!(
                "--tile takes auto, whole or a side of at least 8 pixels, not '{n}'"
            )),
        },
    }
}

pub fn run(a: RestoreArgs) -> Result<ExitCode> {
    let shard = a.shard.resolve()?;
    let mut options = a.model.options()?;
    options.tiling = Tiling {
        tile: a.tile,
        overlap: a.tile_overlap,
        batch: a.tile_batch,
    };
    options.self_ensemble = a.self_ensemble;
    let mut engine = Engine::open(&a.model.model, options)?;
    let manifest = &engine.bundle.manifest;
    if !a.self_ensemble
        && !a.no_self_ensemble
        && manifest.format_version >= 2
        && manifest.sampling.as_ref().is_some_and(|s| s.self_ensemble)
    {
        tracing::info!(
            "self-ensemble on, the bundle's default (--no-self-ensemble: one pass of the \
             restorer per step, an eighth of its work)"
        );
        engine.options.self_ensemble = true;
    }
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
        resize: a.size.resize,
        max_pixels: a.size.max_pixels,
        overwrite: a.overwrite,
        shard,
    };
    let report = jobs::restore_folder(&mut engine, &a.in_dir, &a.out_dir, &o)?;
    Ok(finish(report, "restore"))
}
