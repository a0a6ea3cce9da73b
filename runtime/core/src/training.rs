//! The training files: what defines a run ([`TrainConfig`]: data set, degradation, network,
//! optimiser and schedule; `config.json` in the run folder, `training-config.json` in a bundle)
//! and how a model was trained ([`TrainingSummary`]: the manifest's `training` section and
//! `training-summary.json`).

use serde::{Deserialize, Serialize};

use crate::data::{Dataset, Fit, Source, Split};
use crate::degradation::Degradation;
use crate::error::{Error, Result};
use crate::files::Versioned;
pub use crate::levels::Levels;
use crate::network::{MODEL_PRESETS, UNetConfig};
use crate::summary::one;
pub use crate::summary::{RUN_SUMMARY_VERSION, RunSummary, SUMMARY_VERSION, TrainingSummary};

/// The training config's format version (1: the first typed one; files without the field are 1).
pub(crate) const CONFIG_VERSION: u32 = 1;

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

/// Everything that defines a training run. Saved as `config.json` in the run folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// The file's format version ([`CONFIG_VERSION`]).
    #[serde(default = "one")]
    pub version: u32,
    /// Data set, as on the command line (`mnist`, `cifar10:DIR`, `folder:DIR`, ...).
    pub dataset: String,
    /// Which split to train on.
    #[serde(default = "default_split")]
    pub split: String,
    /// Use only the first N images (0 = all).
    #[serde(default)]
    pub max_images: usize,
    pub degradation: Degradation,
    /// Images scaled so that their shorter side is [`loaded_side`] (`int(1.12 S)`, the
    /// aspect ratio kept, the centred square), then cropped to `S x S`: random crops in training,
    /// the centre in evaluation, as the paper's loaders do. `None`: the data set's images as they
    /// are (the degradation's size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// Round the degraded inputs x_t to this many bits per channel (clipped to [-1, 1] first), as
    /// the image files a deployed model reads hold them: a restorer trained on exact float D
    /// never sees the quantisation error of an 8-bit file, which inverting a strong blur
    /// amplifies. `None`: float inputs (the reference's training).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bits: Option<u32>,
    /// The share of the loss given to SSIM: `(1 - w) L1 + w (1 - SSIM)`, SSIM as the metric
    /// computes it (11x11 Gaussian window, sigma 1.5, on [0, 1]). 0: L1 alone, the reference's
    /// loss (the default, and what configs without the field mean).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ssim_weight: f64,
    /// How the training levels t in 1..=T are drawn: uniformly (the reference's, and what
    /// configs without the field mean) or in proportion to t, which spends a small network's
    /// capacity on the strong degradations where restoration is hardest.
    #[serde(default, skip_serializing_if = "Levels::is_uniform")]
    pub levels: Levels,
    /// The highest level trained on: t is drawn from 1..=max_level instead of 1..=T, so a
    /// network that only ever restores from low levels (generation from a subspace of D(x, L),
    /// L small) spends all its capacity there. None: T (the reference's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<usize>,
    pub model: UNetConfig,
    pub batch_size: usize,
    /// The learning rate (the peak one under a decaying schedule).
    pub learning_rate: f64,
    /// How the learning rate changes over the run (constant, as the reference, by default).
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Where a decaying schedule ends, at step `steps`.
    #[serde(default)]
    pub lr_min: f64,
    /// Total optimiser steps.
    pub steps: usize,
    /// Adam epsilon (PyTorch's default, as the reference).
    #[serde(default = "default_eps")]
    pub adam_epsilon: f32,
    /// Clip the gradient's global L2 norm to this (none by default, as the reference).
    #[serde(default)]
    pub grad_clip: Option<f32>,
    pub ema_decay: f64,
    /// Update the EMA every this many steps.
    pub ema_every: usize,
    /// Before this step the EMA is a plain copy of the model.
    pub ema_start: usize,
    /// Random horizontal flips (off for digits, on for natural images).
    pub flip: bool,
    /// Random translations of up to this many pixels in each direction (0: none), the edge pixels
    /// repeated into the uncovered border: the reference's random crops without its resize.
    #[serde(default)]
    pub shift: usize,
    /// For a class-conditioned network (`model.classes`): the share of training images whose
    /// label is replaced by the null class, so that one network also generates without a class
    /// (classifier-free guidance).
    #[serde(default = "default_label_dropout")]
    pub label_dropout: f64,
    /// A bundle whose network this run starts from (fine-tuning) instead of a seeded fresh one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<std::path::PathBuf>,
    pub seed: u64,
    /// Write a sample grid every this many steps (0 = only at the end).
    pub sample_every: usize,
    pub checkpoint_every: usize,
    /// How many checkpoints to keep.
    pub keep_checkpoints: usize,
}

/// The learning rate over a run.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `learning_rate` at every step (the reference's).
    #[default]
    Constant,
    /// Half a cosine from `learning_rate` at step 0 down to `lr_min` at step `steps`, the
    /// run's horizon (so a resumed run that changes `steps` reshapes what is left of it).
    Cosine,
}

impl std::str::FromStr for LrSchedule {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "constant" => Ok(LrSchedule::Constant),
            "cosine" => Ok(LrSchedule::Cosine),
            _ => Err(format!(
                "unknown learning-rate schedule '{s}': choose constant or cosine"
            )),
        }
    }
}

fn default_split() -> String {
    "train".into()
}
fn default_label_dropout() -> f64 {
    0.1
}

fn default_eps() -> f32 {
    1e-8
}

impl TrainConfig {
    /// Defaults for a data set preset and model size.
    pub fn new(dataset: &str, preset: &str, model: &str) -> Result<Self> {
        Self::with_degradation(dataset, Degradation::preset(preset)?, model)
    }

    /// Defaults for a degradation (of its size) and model size.
    pub fn with_degradation(dataset: &str, degradation: Degradation, model: &str) -> Result<Self> {
        let model_cfg = UNetConfig::preset(model, degradation.channels).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "unknown model '{model}': choose one of {}",
                MODEL_PRESETS.join(", ")
            ))
        })?;
        Ok(TrainConfig {
            version: CONFIG_VERSION,
            dataset: dataset.into(),
            split: default_split(),
            max_images: 0,
            flip: degradation.channels == 3,
            shift: 0,
            label_dropout: default_label_dropout(),
            init: None,
            image_size: None,
            input_bits: None,
            ssim_weight: 0.0,
            levels: Levels::Uniform,
            max_level: None,
            degradation,
            model: model_cfg,
            batch_size: 32,
            learning_rate: 2e-4,
            lr_schedule: LrSchedule::Constant,
            lr_min: 0.0,
            steps: 2000,
            adam_epsilon: default_eps(),
            grad_clip: None,
            ema_decay: 0.995,
            ema_every: 10,
            ema_start: 2000,
            seed: 42,
            sample_every: 500,
            checkpoint_every: 500,
            keep_checkpoints: 3,
        })
    }

    pub fn validate(&self) -> Result<()> {
        self.degradation.validate()?;
        if self.model.channels != self.degradation.channels {
            return Err(Error::InvalidArgument(format!(
                "the model has {} channels but the degradation {}",
                self.model.channels, self.degradation.channels
            )));
        }
        self.model
            .check_image_size(self.degradation.height, self.degradation.width)
            .map_err(Error::InvalidArgument)?;
        if self.batch_size == 0
            || self.steps == 0
            || self.ema_every == 0
            || self.checkpoint_every == 0
        {
            return Err(Error::InvalidArgument(
                "batch_size, steps, ema_every and checkpoint_every must be positive".into(),
            ));
        }
        if let Some(b) = self.input_bits
            && !(1..=16).contains(&b)
        {
            return Err(Error::InvalidArgument(format!(
                "input_bits {b} must be between 1 and 16 (8 for 8-bit image files)"
            )));
        }
        let side = self.degradation.height.min(self.degradation.width);
        if !(0.0..=1.0).contains(&self.ssim_weight) {
            return Err(Error::InvalidArgument(format!(
                "ssim_weight (--ssim-weight) {} must be in [0, 1]",
                self.ssim_weight
            )));
        }
        if self.ssim_weight > 0.0 && side < 11 {
            return Err(Error::InvalidArgument(format!(
                "ssim_weight needs training images of at least 11 pixels (SSIM's window), not \
                 {side}"
            )));
        }
        if self.shift >= side {
            return Err(Error::InvalidArgument(format!(
                "shift {} must be smaller than the images ({side} pixels)",
                self.shift
            )));
        }
        if !(0.0..1.0).contains(&self.label_dropout) {
            return Err(Error::InvalidArgument(format!(
                "label_dropout (--label-dropout) {} must be in [0, 1)",
                self.label_dropout
            )));
        }
        if self.model.classes.as_ref().is_some_and(|c| c.is_empty()) {
            return Err(Error::InvalidArgument(
                "a class-conditioned network needs at least one class".into(),
            ));
        }
        if let Some(k) = self.max_level
            && !(1..=self.degradation.steps).contains(&k)
        {
            return Err(Error::InvalidArgument(format!(
                "max_level (--max-level) {k} must be between 1 and the degradation's T = {}",
                self.degradation.steps
            )));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::InvalidArgument(format!(
                "learning rate {} must be positive",
                self.learning_rate
            )));
        }
        if self.lr_schedule != LrSchedule::Constant
            && !(self.lr_min >= 0.0 && self.lr_min < self.learning_rate)
        {
            return Err(Error::InvalidArgument(format!(
                "lr_min (--lr-min) {} must be at least 0 and below the learning rate {}",
                self.lr_min, self.learning_rate
            )));
        }
        Ok(())
    }

    /// The highest level training draws: `max_level`, else T.
    pub fn top_level(&self) -> usize {
        self.max_level.unwrap_or(self.degradation.steps)
    }

    /// The learning rate of the optimiser step taken from `step` (0 for the run's first).
    pub fn learning_rate_at(&self, step: usize) -> f64 {
        match self.lr_schedule {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine => {
                let done = (step as f64 / self.steps as f64).min(1.0);
                self.lr_min
                    + 0.5
                        * (self.learning_rate - self.lr_min)
                        * (1.0 + (std::f64::consts::PI * done).cos())
            }
        }
    }

    /// Loads the data set as evaluation sees it (with `image_size`: scaled, the centre square
    /// cropped) and checks it matches the degradation's image size.
    pub fn load_data(&self, split: Split) -> Result<Dataset> {
        let d = self.load_training_data(split)?;
        match self.image_size {
            Some(s) => d.centre_crop(s),
            None => Ok(d),
        }
    }

    /// Loads the data set as training draws from it: with `image_size`, the scaled squares of
    /// side [`loaded_side`] that the batches crop at random; else as [`TrainConfig::load_data`].
    /// A class-conditioned network trains on a data set with the same classes, every image
    /// labelled.
    pub fn check_classes(&self, d: &Dataset) -> Result<()> {
        let Some(names) = &self.model.classes else {
            return Ok(());
        };
        if &d.class_names != names {
            return Err(Error::InvalidArgument(format!(
                "the network is conditioned on the classes {} but data set {} has {}",
                names.join(", "),
                self.dataset,
                if d.class_names.is_empty() {
                    "none (a flat folder: put each class's images in a subfolder of its name)"
                        .to_string()
                } else {
                    d.class_names.join(", ")
                }
            )));
        }
        if let Some(bad) = d.labels.iter().find(|&&l| l as usize >= names.len()) {
            return Err(Error::InvalidArgument(format!(
                "data set {} has an image labelled {bad}, beyond its {} classes",
                self.dataset,
                names.len()
            )));
        }
        Ok(())
    }

    pub fn load_training_data(&self, split: Split) -> Result<Dataset> {
        let source: Source = self.dataset.parse()?;
        if let Source::Mnist(None) = source {
            crate::data::fetch_mnist(None)?;
        }
        let g = &self.degradation;
        let fit = match self.image_size {
            Some(s) => {
                if (g.height, g.width) != (s, s) {
                    return Err(Error::InvalidArgument(format!(
                        "image_size {s} but the degradation is built for {}x{}",
                        g.width, g.height
                    )));
                }
                Fit::Square {
                    side: loaded_side(s),
                    channels: Some(g.channels),
                }
            }
            None => Fit::AsTheyAre,
        };
        let mut d = Dataset::load_fitted(&source, split, fit)?;
        if self.max_images > 0 {
            d = d.truncate(self.max_images);
        }
        self.check_classes(&d)?;
        if self.image_size.is_some() {
            return Ok(d);
        }
        let d = d.fit_to(g.channels, g.height, g.width)?;
        if (d.channels, d.height, d.width) != (g.channels, g.height, g.width) {
            return Err(Error::InvalidArgument(format!(
                "data set {} is {}x{}x{} but the degradation expects {}x{}x{}{}",
                self.dataset,
                d.channels,
                d.height,
                d.width,
                g.channels,
                g.height,
                g.width,
                if matches!(source, Source::Folder(_)) {
                    " (train with --size S to scale and crop every image to S x S)"
                } else {
                    ""
                }
            )));
        }
        Ok(d)
    }
}

/// The side images are scaled to before an `S x S` crop: `int(1.12 S)`, as the paper's loaders.
pub fn loaded_side(s: usize) -> usize {
    (1.12 * s as f64) as usize
}

impl Versioned for TrainConfig {
    const WHAT: &'static str = "training config";
    const FORMAT: Option<&'static str> = None;
    const VERSION: u32 = CONFIG_VERSION;
    const UNVERSIONED: Option<u32> = Some(1);
    const REMEDY: &'static str = "write it again with `cold-train train` (or edit it to match)";

    fn precheck(value: &serde_json::Value) -> std::result::Result<(), String> {
        crate::degradation::check_kind_of_file(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::{newer_is_refused, round_trip};

    #[test]
    fn linear_levels_draw_t_in_proportion_to_t_and_uniform_ones_as_before() {
        for steps in [1, 2, 7, 50] {
            for (levels, weight) in [
                (Levels::Uniform, (|_| 1) as fn(usize) -> usize),
                (Levels::Linear, |t| t),
            ] {
                let mut count = vec![0; steps + 1];
                for u in 0..levels.draws(steps) {
                    count[levels.level(u, steps)] += 1;
                }
                assert_eq!(count[0], 0);
                for (t, &c) in count.iter().enumerate().skip(1) {
                    assert_eq!(c, weight(t), "{levels:?} T={steps} t={t}");
                }
            }
        }
        assert_eq!("linear".parse::<Levels>(), Ok(Levels::Linear));
        let e = "square".parse::<Levels>().expect_err("unknown");
        assert!(e.contains("uniform or linear"), "{e}");
        // Configs without the field are uniform, and uniform ones are written without it.
        let cfg = TrainConfig::new("mnist", "mnist", "compact").expect("config");
        let json = serde_json::to_value(&cfg).expect("json");
        assert!(json.get("levels").is_none());
        let mut lin = cfg.clone();
        lin.levels = Levels::Linear;
        let back: TrainConfig =
            serde_json::from_value(serde_json::to_value(&lin).expect("json")).expect("back");
        assert_eq!(back.levels, Levels::Linear);
    }

    #[test]
    fn max_level_is_checked_against_t_and_absent_means_every_level() {
        let cfg = TrainConfig::new("mnist", "mnist", "compact").expect("config");
        let json = serde_json::to_value(&cfg).expect("json");
        assert!(json.get("max_level").is_none());
        assert_eq!(cfg.top_level(), cfg.degradation.steps);
        let mut capped = cfg.clone();
        capped.max_level = Some(5);
        capped.validate().expect("5 <= T");
        assert_eq!(capped.top_level(), 5);
        let back: TrainConfig =
            serde_json::from_value(serde_json::to_value(&capped).expect("json")).expect("back");
        assert_eq!(back.max_level, Some(5));
        for bad in [0, cfg.degradation.steps + 1] {
            capped.max_level = Some(bad);
            let e = capped.validate().expect_err("out of 1..=T").to_string();
            assert!(e.contains("--max-level"), "{e}");
        }
    }

    #[test]
    fn the_training_files_round_trip_and_newer_versions_are_refused() {
        let mut cfg = TrainConfig::new("mnist", "mnist", "compact").expect("config");
        cfg.lr_schedule = LrSchedule::Cosine;
        cfg.init = Some("models/mnist-blur".into());
        round_trip(&cfg);
        newer_is_refused(&cfg);
        let base = TrainingSummary {
            dataset: "mnist".into(),
            steps: 40,
            final_loss: Some(0.25),
            batch_size: 16,
            learning_rate: 3e-4,
            ema_decay: 0.995,
            seconds: 12.5,
            backend: "flex".into(),
            weights_sha256: Some("ab".repeat(32)),
            ..Default::default()
        };
        let summary = TrainingSummary {
            steps: 6,
            seconds: 2.0,
            started_from: Some(Box::new(base)),
            ..Default::default()
        };
        round_trip(&summary);
        newer_is_refused(&summary);
        let run = RunSummary {
            version: RUN_SUMMARY_VERSION,
            steps: 100,
            final_loss: Some(0.5),
            seconds: 10.0,
            total_seconds: 30.0,
            steps_per_second: 10.0,
            images_per_second: 160.0,
            first_step_seconds: 0.25,
            interrupted: false,
            backend: "flex".into(),
        };
        round_trip(&run);
        newer_is_refused(&run);
        assert_eq!((summary.total_steps(), summary.total_seconds()), (46, 14.5));
    }

    #[test]
    fn configs_from_before_versions_read_as_version_1() {
        let mut v = serde_json::to_value(TrainConfig::new("mnist", "mnist", "tiny").expect("c"))
            .expect("json");
        v.as_object_mut().expect("object").remove("version");
        let cfg: TrainConfig = crate::files::from_value(v).expect("unversioned");
        assert_eq!(cfg.version, 1);
        // A kind this build does not know is named as such.
        let mut v = serde_json::to_value(cfg).expect("json");
        v["degradation"]["transform"]["kind"] = serde_json::json!("warp");
        let e = crate::files::from_value::<TrainConfig>(v).expect_err("unknown kind");
        assert!(e.contains("'warp' is not known"), "{e}");
    }
}
