//! `cold-train export`, `reexport` and `mixture`: writing bundles.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_trainer::export::{self, MixtureOptions};
use cold_trainer::train::RunDir;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Training run folder.
    #[arg(long)]
    run: PathBuf,
    /// Bundle folder to write, e.g. models/mnist-blur.
    #[arg(long)]
    out: PathBuf,
    /// Replace a different bundle already in --out.
    #[arg(long)]
    force: bool,
    /// Components of the generation mixture over channel means (0: none).
    #[arg(long, default_value_t = 1)]
    mixture_components: usize,
    /// Fit the mixture on the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    mixture_images: usize,
}

pub fn export(a: ExportArgs) -> Result<ExitCode> {
    let mixture = MixtureOptions {
        components: a.mixture_components,
        images: a.mixture_images,
        ..MixtureOptions::default()
    };
    let bundle = export::export_run(&RunDir::new(&a.run), &a.out, a.force, mixture)?;
    println!("{}", bundle.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ReexportArgs {
    /// The bundle to write again in place.
    #[arg(long)]
    model: PathBuf,
}

pub fn reexport(a: ReexportArgs) -> Result<ExitCode> {
    println!("{}", export::reexport(&a.model)?.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct MixtureArgs {
    /// The bundle to add the mixture to.
    #[arg(long)]
    model: PathBuf,
    /// Its training data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value_t = 1)]
    components: usize,
    /// Fit on the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    images: usize,
    /// Fit the mixture over the principal components of the degraded images D(x, LEVEL)
    /// (`--dims` of them) instead of their channel means: `cold generate` then starts from an
    /// image drawn in that subspace and restores from LEVEL. Degradations without per-image
    /// parameters only.
    #[arg(long, requires = "dims")]
    level: Option<usize>,
    /// With --level: how many principal components.
    #[arg(long, requires = "level")]
    dims: Option<usize>,
}

pub fn mixture(a: MixtureArgs) -> Result<ExitCode> {
    let data = cold_core::data::load_named(&a.dataset, cold_core::data::Split::Train)?;
    let opts = MixtureOptions {
        components: a.components,
        images: a.images,
        subspace: a.level.zip(a.dims),
    };
    let g = export::add_mixture(&a.model, &data, opts)?;
    println!("{}", serde_json::to_string_pretty(&g)?);
    Ok(ExitCode::SUCCESS)
}
