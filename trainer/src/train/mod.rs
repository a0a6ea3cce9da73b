//! The training loop: batches ([`crate::batches`]) through optimiser steps ([`crate::state`]),
//! watched by observers ([`observer`]: [`checkpoints`], [`loss_log`], [`samples`],
//! [`progress`]) and stopped by the [`stop`] conditions (Ctrl-C, a time budget, a non-finite
//! loss); exact resume from the latest checkpoint.

pub mod checkpoints;
pub mod loss_log;
pub mod observer;
pub mod progress;
pub mod samples;
pub mod stop;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;

pub use crate::batches::{Batch, make_batch};
use crate::checkpoint;
pub use crate::checkpoint::load_ema;
pub use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
pub use crate::loss::loss;
use crate::ops::TrainBackend;
pub use crate::run_dir::RunDir;
use crate::run_dir::read_losses;
pub use crate::state::{TrainState, train_step};
pub use cold_core::training::RunSummary;
use observer::{Observer, Step};
pub use samples::write_sample_grid;
use stop::{StopCondition, Verdict};

/// Options of a training run that are not part of its definition.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub resume: bool,
    pub progress: bool,
    /// Set by Ctrl-C: stop after the current step and keep a checkpoint.
    pub stop: Arc<AtomicBool>,
    /// A name for the backend in logs and the summary.
    pub backend: String,
    /// Stop (with a checkpoint) once this many seconds have passed after the first step (which on
    /// a GPU includes compiling the kernels).
    pub max_seconds: Option<f64>,
}

/// The state a run starts from: its latest checkpoint (`--resume`), a bundle's network
/// (`--init`), or a seeded fresh network.
fn start<B: AutodiffBackend + TrainBackend>(
    cfg: &TrainConfig,
    run: &RunDir,
    device: &B::Device,
    resume: bool,
) -> Result<TrainState<B>>
where
    B::InnerBackend: TrainBackend,
{
    if resume {
        let saved = run.load_config()?;
        if saved.model != cfg.model || saved.degradation != cfg.degradation {
            return Err(TrainError::Config(format!(
                "--resume: the run in {} was trained with another model or degradation",
                run.root.display()
            )));
        }
        let ck = checkpoint::load_latest::<B>(&run.checkpoints(), cfg, device)?;
        tracing::info!("resuming from step {}", ck.step);
        return Ok(ck);
    }
    if checkpoint::latest_name(&run.checkpoints()).is_some() {
        return Err(TrainError::Config(format!(
            "{} already holds checkpoints: pass --resume to continue it, or choose another --out",
            run.root.display()
        )));
    }
    match &cfg.init {
        Some(dir) => {
            tracing::info!("starting from the network of {}", dir.display());
            let state = TrainState::from_bundle(cfg, dir, device)?;
            crate::run_dir::record_base(run, dir)?;
            Ok(state)
        }
        None => Ok(TrainState::new(cfg, device)),
    }
}

/// Trains according to `cfg` in `run`, resuming from its latest checkpoint if asked.
pub fn train<B: AutodiffBackend + TrainBackend>(
    cfg: &TrainConfig,
    run: &RunDir,
    device: &B::Device,
    opts: &RunOptions,
) -> Result<RunSummary>
where
    B::InnerBackend: TrainBackend,
{
    cfg.validate()?;
    fs::create_dir_all(&run.root).map_err(|e| TrainError::io(&run.root, e))?;
    let data = cfg.load_training_data(cfg.split.parse()?)?;
    tracing::info!(
        "data: {} ({} images of {}x{}x{}{}); degradation: {}",
        cfg.dataset,
        data.len(),
        data.channels,
        data.height,
        data.width,
        match cfg.image_size {
            Some(s) => format!(", random {s}x{s} crops"),
            None => String::new(),
        },
        cfg.degradation.describe()
    );
    let deg = cfg.degradation.prepare()?;
    let mut state = start::<B>(cfg, run, device, opts.resume)?;
    cold_core::files::write(&run.config(), cfg)?;
    let mut losses: Vec<(usize, f64)> = read_losses(&run.loss_csv())
        .into_iter()
        .filter(|(s, _)| *s <= state.step)
        .collect();
    tracing::info!(
        "model: {} parameters, {:?}",
        state.model.num_params(),
        cfg.model
    );
    let start_step = state.step;
    let mut observers: Vec<Box<dyn Observer<B>>> = vec![
        Box::new(samples::SampleGrids::new(run, cfg, &data, deg.clone())?),
        Box::new(checkpoints::Checkpoints {
            run: run.clone(),
            every: cfg.checkpoint_every,
            last: cfg.steps,
            keep: cfg.keep_checkpoints,
            backend: opts.backend.clone(),
        }),
        Box::new(loss_log::LossLog::new(run, cfg)),
        Box::new(progress::Progress::new(cfg, start_step, opts.progress)),
    ];
    let mut stops: Vec<Box<dyn StopCondition>> = vec![
        Box::new(stop::CtrlC(opts.stop.clone())),
        Box::new(stop::FiniteLoss {
            checkpoints: run.checkpoints(),
        }),
    ];
    if let Some(m) = opts.max_seconds {
        stops.push(Box::new(stop::TimeBudget(m)));
    }

    let t0 = Instant::now();
    let base_seconds = state.seconds;
    let mut first_step_seconds = 0.0;
    let mut interrupted = false;
    let mut last_loss = f32::NAN;
    while state.step < cfg.steps {
        let (step, done, elapsed) = (
            state.step,
            state.step - start_step,
            t0.elapsed().as_secs_f64(),
        );
        if stops
            .iter_mut()
            .any(|s| s.before_step(step, done, elapsed, first_step_seconds) == Verdict::Stop)
        {
            interrupted = true;
            break;
        }
        let batch = make_batch(cfg, &data, &deg, state.step, device);
        let (next, l) = train_step(cfg, state, &batch);
        for s in &mut stops {
            s.after_step(next.step, l)?;
        }
        state = next;
        last_loss = l;
        losses.push((state.step, f64::from(l)));
        if state.step == start_step + 1 {
            first_step_seconds = t0.elapsed().as_secs_f64();
        }
        state.seconds = base_seconds + t0.elapsed().as_secs_f64();
        let s = Step {
            state: &state,
            loss: l,
            losses: &losses,
            start_step,
            elapsed: t0.elapsed().as_secs_f64(),
        };
        for o in &mut observers {
            o.step(&s)?;
        }
    }
    if state.step > start_step || !interrupted {
        state.seconds = base_seconds + t0.elapsed().as_secs_f64();
        let s = Step {
            state: &state,
            loss: last_loss,
            losses: &losses,
            start_step,
            elapsed: t0.elapsed().as_secs_f64(),
        };
        for o in &mut observers {
            o.end(&s)?;
        }
    }
    drop(observers);
    let seconds = t0.elapsed().as_secs_f64();
    let done = (state.step - start_step) as f64;
    let tail: Vec<f64> = losses.iter().rev().take(100).map(|x| x.1).collect();
    let summary = RunSummary {
        version: cold_core::training::RUN_SUMMARY_VERSION,
        steps: state.step,
        final_loss: (!tail.is_empty()).then(|| tail.iter().sum::<f64>() / tail.len() as f64),
        seconds,
        total_seconds: base_seconds + seconds,
        steps_per_second: if seconds > 0.0 { done / seconds } else { 0.0 },
        images_per_second: if seconds > 0.0 {
            done * cfg.batch_size as f64 / seconds
        } else {
            0.0
        },
        first_step_seconds,
        interrupted,
        backend: opts.backend.clone(),
    };
    cold_core::files::write(&run.summary(), &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
