//! Training throughput: optimiser steps per second for a model size and batch size.

use std::sync::OnceLock;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use cold_core::data::Dataset;
use serde::Serialize;

use crate::error::Result;
use crate::ops::TrainBackend;
use crate::train::{TrainConfig, TrainState, make_batch, train_step};

/// When the process started (as near as `main` can tell): `cold-train`'s `main` sets it first thing,
/// so a bench's first step can be timed from process start, device and model set-up included.
pub static PROCESS_START: OnceLock<Instant> = OnceLock::new();

/// One throughput measurement.
#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    pub backend: String,
    pub model: String,
    pub parameters: usize,
    pub batch_size: usize,
    pub image: [usize; 3],
    /// Seconds from the start of the first step to its end (kernel compilation on GPUs).
    pub first_step_seconds: f64,
    /// Seconds from process start to the end of the first step (device set-up, model build and
    /// kernel compilation included); absent when [`PROCESS_START`] was not set.
    pub first_step_from_start_seconds: Option<f64>,
    pub warmup_steps: usize,
    pub measured_steps: usize,
    pub steps_per_second: f64,
    pub images_per_second: f64,
}

/// Times `steps` training steps after `warmup` steps, on synthetic-free real batches of `data`.
pub(crate) fn bench_training<B: AutodiffBackend + TrainBackend>(
    cfg: &TrainConfig,
    model_name: &str,
    data: &Dataset,
    warmup: usize,
    steps: usize,
    device: &B::Device,
    backend: &str,
) -> Result<TrainBench> {
    cfg.validate()?;
    let deg = cfg.degradation.prepare()?;
    let mut state = TrainState::<B>::new(cfg, device);
    let parameters = burn::module::Module::num_params(&state.model);
    let t0 = Instant::now();
    let mut first = 0.0;
    let mut first_from_start = None;
    for i in 0..warmup.max(1) {
        let batch = make_batch(cfg, data, &deg, state.step, device);
        let (s, loss) = train_step(cfg, state, &batch);
        state = s;
        if i == 0 {
            let _ = loss;
            B::sync(device).ok();
            first = t0.elapsed().as_secs_f64();
            first_from_start = PROCESS_START.get().map(|s| s.elapsed().as_secs_f64());
        }
    }
    B::sync(device).ok();
    let t1 = Instant::now();
    for _ in 0..steps {
        let batch = make_batch(cfg, data, &deg, state.step, device);
        let (s, _) = train_step(cfg, state, &batch);
        state = s;
    }
    B::sync(device).ok();
    let secs = t1.elapsed().as_secs_f64();
    let sps = steps as f64 / secs;
    Ok(TrainBench {
        backend: backend.into(),
        model: model_name.into(),
        parameters,
        batch_size: cfg.batch_size,
        image: [
            cfg.degradation.channels,
            cfg.degradation.height,
            cfg.degradation.width,
        ],
        first_step_seconds: first,
        first_step_from_start_seconds: first_from_start,
        warmup_steps: warmup.max(1),
        measured_steps: steps,
        steps_per_second: sps,
        images_per_second: sps * cfg.batch_size as f64,
    })
}

/// What `cold-train bench` measures: every network size with every batch size.
#[derive(Clone, Debug)]
pub struct Suite {
    pub dataset: String,
    pub preset: String,
    /// Network sizes (`tiny`, `compact`, ...).
    pub models: Vec<String>,
    pub batches: Vec<usize>,
    pub warmup: usize,
    pub steps: usize,
    /// Random images of this side instead of the data set (e.g. 32 for the paper's 32x32 MNIST
    /// setting, which the 4-level paper network needs).
    pub synthetic: Option<usize>,
}

/// Runs the suite on backend `B`, logging each result as it comes.
pub(crate) fn run_suite<B: AutodiffBackend + TrainBackend>(
    suite: &Suite,
    device: &B::Device,
    backend: &str,
) -> Result<Vec<TrainBench>> {
    let base = TrainConfig::new(&suite.dataset, &suite.preset, "tiny")?;
    let data = match suite.synthetic {
        Some(side) => {
            let c = base.degradation.channels;
            let n = 1024;
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
            let pixels: Vec<u8> = (0..n * c * side * side)
                .map(|_| rand::Rng::random(&mut rng))
                .collect();
            Dataset::from_parts(
                "synthetic",
                (c, side, side),
                pixels,
                vec![0; n],
                vec!["noise".into()],
            )?
        }
        None => base
            .load_data(cold_core::data::Split::Train)
            .or_else(|_| base.load_data(cold_core::data::Split::Test))?,
    };
    let mut out = Vec::new();
    for model in &suite.models {
        for &batch in &suite.batches {
            let mut cfg = TrainConfig::new(&suite.dataset, &suite.preset, model)?;
            if let Some(side) = suite.synthetic {
                cfg.degradation.height = side;
                cfg.degradation.width = side;
            }
            cfg.batch_size = batch;
            let r = bench_training::<B>(
                &cfg,
                model,
                &data,
                suite.warmup,
                suite.steps,
                device,
                backend,
            )?;
            tracing::info!(
                "{:>6} {:>8} params batch {:>4}: first step {:>7.2} s, {:>7.3} steps/s, {:>8.1} images/s",
                r.model,
                r.parameters,
                r.batch_size,
                r.first_step_seconds,
                r.steps_per_second,
                r.images_per_second
            );
            out.push(r);
        }
    }
    Ok(out)
}
