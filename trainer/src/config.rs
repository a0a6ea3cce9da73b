//! What defines a training run: data set, degradation, network, optimiser and schedule.
//! Saved as `config.json` in the run folder.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig};
use burn::tensor::backend::AutodiffBackend;
use cold_runtime::data::{Dataset, Source, Split};
use cold_runtime::degradation::Degradation;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};
use crate::model::{UNet, UNetConfig};

/// Everything that defines a training run. Saved as `config.json` in the run folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    /// Data set, as on the command line (`mnist`, `cifar10:DIR`, `folder:DIR`, ...).
    pub dataset: String,
    /// Which split to train on.
    #[serde(default = "default_split")]
    pub split: String,
    /// Use only the first N images (0 = all).
    #[serde(default)]
    pub max_images: usize,
    pub degradation: Degradation,
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
fn default_eps() -> f32 {
    1e-8
}

impl TrainConfig {
    /// Defaults for a data set preset and model size.
    pub fn new(dataset: &str, preset: &str, model: &str) -> Result<Self> {
        let degradation = Degradation::preset(preset)?;
        let model_cfg = UNetConfig::preset(model, degradation.channels).ok_or_else(|| {
            TrainError::Config(format!(
                "unknown model '{model}': choose one of {}",
                crate::model::MODEL_PRESETS.join(", ")
            ))
        })?;
        Ok(TrainConfig {
            dataset: dataset.into(),
            split: default_split(),
            max_images: 0,
            flip: degradation.channels == 3,
            shift: 0,
            init: None,
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
            return Err(TrainError::Config(format!(
                "the model has {} channels but the degradation {}",
                self.model.channels, self.degradation.channels
            )));
        }
        self.model
            .check_image_size(self.degradation.height, self.degradation.width)
            .map_err(TrainError::Config)?;
        if self.batch_size == 0
            || self.steps == 0
            || self.ema_every == 0
            || self.checkpoint_every == 0
        {
            return Err(TrainError::Config(
                "batch_size, steps, ema_every and checkpoint_every must be positive".into(),
            ));
        }
        let side = self.degradation.height.min(self.degradation.width);
        if self.shift >= side {
            return Err(TrainError::Config(format!(
                "shift {} must be smaller than the images ({side} pixels)",
                self.shift
            )));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::Config(format!(
                "learning rate {} must be positive",
                self.learning_rate
            )));
        }
        if self.lr_schedule != LrSchedule::Constant
            && !(self.lr_min >= 0.0 && self.lr_min < self.learning_rate)
        {
            return Err(TrainError::Config(format!(
                "lr_min (--lr-min) {} must be at least 0 and below the learning rate {}",
                self.lr_min, self.learning_rate
            )));
        }
        Ok(())
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

    /// The optimiser (fresh, or to receive a checkpoint's state).
    pub fn optimizer<B: AutodiffBackend>(&self) -> OptimizerAdaptor<Adam, UNet<B>, B> {
        let mut c = AdamConfig::new().with_epsilon(self.adam_epsilon);
        if let Some(clip) = self.grad_clip {
            c = c.with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
                clip,
            )));
        }
        c.init()
    }

    /// Loads the data set and checks it matches the degradation's image size.
    pub fn load_data(&self, split: Split) -> Result<Dataset> {
        let source: Source = self.dataset.parse()?;
        if let Source::Mnist(None) = source {
            cold_runtime::data::fetch_mnist(None)?;
        }
        let mut d = Dataset::load(&source, split)?;
        if self.max_images > 0 {
            d = d.truncate(self.max_images);
        }
        let g = &self.degradation;
        let d = d.fit_to(g.channels, g.height, g.width)?;
        if (d.channels, d.height, d.width) != (g.channels, g.height, g.width) {
            return Err(TrainError::Config(format!(
                "data set {} is {}x{}x{} but the degradation expects {}x{}x{}",
                self.dataset, d.channels, d.height, d.width, g.channels, g.height, g.width
            )));
        }
        Ok(d)
    }
}
