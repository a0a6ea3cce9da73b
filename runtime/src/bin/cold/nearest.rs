//! `cold nearest`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::data::{Split, load_named};
use cold_runtime::nearest::nearest_report;

#[derive(Args, Debug)]
pub struct NearestArgs {
    /// The data set the model was trained on (its training split is searched; its test split
    /// gives the baseline): mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Centre the data set's images on a black SIDE x SIDE canvas (MNIST for `mnist32-*` models).
    #[arg(long, value_name = "SIDE")]
    pad: Option<usize>,
    /// Compare the first N images of the folder (sorted).
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Nearest training images per sample.
    #[arg(long, default_value_t = 4)]
    k: usize,
    /// Write a PNG here: a row per sample, the sample then its nearest training images.
    #[arg(long, value_name = "PNG")]
    grid: Option<PathBuf>,
    /// Print the whole report (every sample's neighbours and distances) as JSON.
    #[arg(long)]
    json: bool,
    /// Folder of samples (e.g. OUT/samples of `cold generate`) at the data set's size.
    in_dir: PathBuf,
}

pub fn run(a: NearestArgs) -> Result<ExitCode> {
    let load = |split| -> Result<_> {
        let d = load_named(&a.dataset, split)?;
        Ok(match a.pad {
            Some(s) => d.pad_to(s, s)?,
            None => d,
        })
    };
    let (train, test) = (load(Split::Train)?, load(Split::Test)?);
    let r = nearest_report(&a.in_dir, &train, &test, a.count, a.k, a.grid.as_deref())?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} samples against the {} training images of {}: nearest at a median RMS of {:.4} per \
             pixel (held-out test images: {:.4}); {:.1}% of samples nearer to a training image \
             than any held-out image comes",
            r.samples.len(),
            r.training_images,
            r.dataset,
            r.samples_median,
            r.held_out_median,
            100.0 * r.nearer_than_any_held_out
        );
        if let Some(g) = &a.grid {
            println!("strips (sample, then its {} nearest): {}", a.k, g.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
