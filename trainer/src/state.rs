//! The training state (model, EMA, optimiser, step) and one optimisation step.

use std::path::Path;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

use crate::batches::Batch;
use crate::config::TrainConfig;
use crate::ema::ema_update;
use crate::error::{Result, TrainError};
use crate::loss::loss;
use crate::model::{InitUNet, UNet};
use crate::ops::TrainBackend;

/// Model, EMA, optimiser and step: what a checkpoint holds.
pub struct TrainState<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub ema: UNet<B::InnerBackend>,
    pub optim: OptimizerAdaptor<Adam, UNet<B>, B>,
    /// Optimiser steps done.
    pub step: usize,
    /// Training seconds spent to reach this state, over every invocation of the run (kept in
    /// checkpoints, so a killed process loses at most the time since its last checkpoint).
    pub seconds: f64,
}

impl<B: AutodiffBackend> TrainState<B> {
    /// A fresh model seeded from the config.
    pub fn new(cfg: &TrainConfig, device: &B::Device) -> Self {
        B::seed(device, cfg.seed);
        let model = cfg.model.init::<B>(device);
        let ema = model.valid();
        TrainState {
            model,
            ema,
            optim: crate::config::optimizer(cfg),
            step: 0,
            seconds: 0.0,
        }
    }

    /// The network (and its EMA) of a bundle, to fine-tune; a fresh optimiser, step 0.
    pub(crate) fn from_bundle(cfg: &TrainConfig, dir: &Path, device: &B::Device) -> Result<Self> {
        B::seed(device, cfg.seed);
        // The bundle is read (and its hashes checked) once, whichever network is built from it.
        let (narrow, params) = crate::import::bundle_params(dir)?;
        let (net, model) = if cfg.model != narrow && cfg.model == crate::widen::widened(&narrow) {
            tracing::info!(
                "widening the bundle's network to base width {}",
                cfg.model.dim
            );
            let opts = crate::widen::WidenOptions {
                max_level: cfg.top_level(),
                noise: crate::widen::NOISE,
                seed: cfg.seed,
            };
            crate::import::widen_model::<B>(&narrow, &params, opts, device).map_err(|e| {
                TrainError::Export(format!("widening bundle {}: {e}", dir.display()))
            })?
        } else {
            let net = crate::import::model_from_params::<B>(&narrow, &params, dir, device)?;
            (narrow, net)
        };
        if net != cfg.model {
            return Err(TrainError::Config(format!(
                "--init {}: its network is {net:?} but this run's is {:?}; leave out --model to \
                 take the bundle's",
                dir.display(),
                cfg.model
            )));
        }
        let ema = model.valid();
        Ok(TrainState {
            model,
            ema,
            optim: crate::config::optimizer(cfg),
            step: 0,
            seconds: 0.0,
        })
    }
}

/// One optimiser step (and the EMA schedule); returns the loss before the step.
pub fn train_step<B: AutodiffBackend + TrainBackend>(
    cfg: &TrainConfig,
    state: TrainState<B>,
    batch: &Batch<B>,
) -> (TrainState<B>, f32) {
    let TrainState {
        model,
        ema,
        mut optim,
        step,
        seconds,
    } = state;
    let l = loss(&model, batch, cfg.ssim_weight);
    let value: f32 = l.clone().into_scalar().elem();
    let grads = GradientsParams::from_grads(l.backward(), &model);
    let model = optim.step(cfg.learning_rate_at(step), model, grads);
    let step = step + 1;
    let ema = if step % cfg.ema_every == 0 {
        if step < cfg.ema_start {
            model.valid()
        } else {
            ema_update(ema, &model.valid(), cfg.ema_decay)
        }
    } else {
        ema
    };
    (
        TrainState {
            model,
            ema,
            optim,
            step,
            seconds,
        },
        value,
    )
}
