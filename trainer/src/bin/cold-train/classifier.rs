//! `cold-train classifier`: trains the small classifier `cold classify` uses, reports its test
//! accuracy and writes its folder.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use cold_core::bundle::ImageSpec;
use cold_core::classifier::ClassifierTraining;
use cold_core::data::{self, Split};
use cold_trainer::classifier::{self, ClassifierConfig};

#[derive(Args, Debug)]
pub struct ClassifierArgs {
    /// Labelled data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR (DIR/<class>/*).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Optimiser steps.
    #[arg(long, default_value_t = 3000)]
    steps: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Random shifts of up to N pixels each way in training.
    #[arg(long, default_value_t = 2, value_name = "N")]
    shift: usize,
    /// Train on only the first N training images (tests, quick looks).
    #[arg(long)]
    max_images: Option<usize>,
    /// Replace an existing classifier folder.
    #[arg(long)]
    force: bool,
    /// The classifier folder to write (e.g. models/mnist-classifier).
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: ClassifierArgs) -> Result<ExitCode> {
    let mut train = data::load_named(&a.dataset, Split::Train)?;
    if let Some(n) = a.max_images {
        train = train.truncate(n);
    }
    let test = data::load_named(&a.dataset, Split::Test)?;
    if train.height % 4 != 0 || train.width % 4 != 0 {
        bail!(
            "the classifier needs sides that are multiples of 4; {} is {}x{}",
            a.dataset,
            train.height,
            train.width
        );
    }
    if train.class_names.len() < 2 {
        bail!(
            "{} has {} class(es): a classifier needs labelled classes (DIR/<class>/*)",
            a.dataset,
            train.class_names.len()
        );
    }
    let cfg = ClassifierConfig {
        steps: a.steps,
        batch: a.batch,
        learning_rate: a.lr,
        seed: a.seed,
        shift: a.shift,
    };
    tracing::info!(
        "classifier on {} ({} training images of {}x{}x{}, {} classes), {} steps of {}",
        a.dataset,
        train.len(),
        train.channels,
        train.height,
        train.width,
        train.class_names.len(),
        cfg.steps,
        cfg.batch
    );
    let (net, seconds) = classifier::train_on_cpu(&train, train.class_names.len(), &cfg);
    let acc = classifier::accuracy(&net, &test, &Default::default());
    let image = ImageSpec {
        channels: train.channels,
        height: train.height,
        width: train.width,
        value_range: [-1.0, 1.0],
    };
    let training = ClassifierTraining {
        dataset: a.dataset.clone(),
        steps: cfg.steps,
        batch_size: cfg.batch,
        learning_rate: cfg.learning_rate,
        seed: cfg.seed,
        seconds,
        test_accuracy: acc,
        test_images: test.len(),
    };
    let out = classifier::write(
        &net,
        image,
        train.class_names.clone(),
        training,
        &a.out,
        a.force,
    )?;
    println!(
        "test accuracy {:.2}% on {} images ({} parameters, {seconds:.0} s); classifier in {}",
        100.0 * acc,
        test.len(),
        net.parameters(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}
