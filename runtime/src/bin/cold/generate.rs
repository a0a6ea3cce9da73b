//! `cold generate`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_runtime::engine::Engine;
use cold_runtime::generation::{self, ClassChoice, GenerateOptions};

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
    /// A class-conditioned model (`cold info` lists its classes): generate this class, by name
    /// or index; `drawn` (the default for such a model): a class per sample, drawn in the training
    /// data's proportions, each sample generated as its class; `none`: the null class, the
    /// network's unconditional path. A class named `drawn` or `none` is meant by its name.
    #[arg(long, value_name = "NAME|INDEX|drawn|none")]
    class: Option<String>,
    /// Classifier-free guidance weight W for a class (x0 = u + W (c - u), c the class's
    /// restoration, u the null class's): 1 uses the class alone, above 1 pushes further from the
    /// unconditional (costs twice the network runs). Default: the model's own (its manifest's
    /// `generation.guidance`; not with `--class none`), else 1.
    #[arg(long, value_name = "W")]
    guidance: Option<f32>,
    /// The spread T of the starts around their mixture component's mean: 1 draws from the
    /// mixture as fitted, below 1 nearer its components' means (more typical, less varied
    /// samples), 0 the means themselves. Default: the model's own (its manifest's
    /// `generation.temperature`), else 1. Not for models that start from noise.
    #[arg(long, value_name = "T", allow_hyphen_values = true)]
    temperature: Option<f64>,
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
    let cfg = &engine.bundle.manifest.network.config;
    let class = a
        .class
        .as_deref()
        .map(|c| match (cfg.class_index(c), c) {
            (Ok(i), _) => Ok(ClassChoice::One(i as usize)),
            (Err(_), "drawn") if cfg.classes.is_some() => Ok(ClassChoice::Drawn),
            (Err(_), "none") if cfg.classes.is_some() => Ok(ClassChoice::Null),
            (Err(e), _) => Err(anyhow::Error::msg(e)),
        })
        .transpose()?;
    // The bundle's default weighs a class against none: `--class none` has no class to weigh.
    let default_guidance = class != Some(ClassChoice::Null);
    let guidance = a
        .guidance
        .or_else(|| {
            default_guidance.then_some(())?;
            engine
                .bundle
                .manifest
                .generation
                .as_ref()
                .and_then(|g| g.guidance.as_ref())
                .map(|g| g.weight)
        })
        .unwrap_or(1.0);
    let temperature = a.temperature.unwrap_or_else(|| {
        let g = engine.bundle.manifest.generation.as_ref();
        g.map_or(1.0, cold_core::generation::Generation::default_temperature)
    });
    let o = GenerateOptions {
        count: a.count,
        seed: a.seed,
        noise: a.noise,
        batch: a.batch,
        overwrite: a.overwrite,
        shard,
        class,
        guidance,
        temperature,
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
