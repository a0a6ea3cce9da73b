//! `cold classify`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_runtime::classify::Classifier;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// Classifier folder (written by `cold-train classifier`).
    #[arg(long, default_value = "models/mnist-classifier")]
    classifier: PathBuf,
    /// A sample counts as recognised when its most probable class has at least this probability.
    #[arg(long, default_value_t = 0.9)]
    confidence: f64,
    /// Print the whole result (summary, failures, each image's class) as JSON.
    #[arg(long)]
    json: bool,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Folder of images at the classifier's size (e.g. the samples of `cold generate`).
    in_dir: PathBuf,
}

pub fn run(a: ClassifyArgs) -> Result<ExitCode> {
    if !(0.0..=1.0).contains(&a.confidence) {
        anyhow::bail!("--confidence must be between 0 and 1, got {}", a.confidence);
    }
    let mut c = Classifier::open(&a.classifier, a.threads)?;
    let r = c.classify_folder(&a.in_dir, a.confidence)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        let s = &r.summary;
        println!(
            "{} images classified by {} ({:.2}% on its test set)",
            s.images,
            r.classifier,
            100.0 * r.classifier_test_accuracy
        );
        for (class, share) in &s.shares {
            println!("  {class:>10}: {:5.1}%", 100.0 * share);
        }
        println!(
            "recognised with probability >= {}: {:.1}%",
            s.confidence,
            100.0 * s.confident
        );
    }
    for (f, why) in r.failed.iter().take(10) {
        eprintln!("skipped {}: {why}", f.display());
    }
    if r.failed.len() > 10 {
        eprintln!(
            "... and {} more skipped (--json lists them all)",
            r.failed.len() - 10
        );
    }
    Ok(if r.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
