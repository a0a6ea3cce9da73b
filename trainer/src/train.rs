//! The training loop: t ~ U{1..T}, x_t = D(x0, t), loss L1(R(x_t, t), x0), Adam, EMA of the weights,
//! sample grids, loss log and curve, atomic checkpoints with exact resume, clean Ctrl-C stop.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use cold_runtime::data::{Dataset, Source, Split};
use cold_runtime::degradation::Degradation;
use cold_runtime::folder::progress_bar;
use cold_runtime::{fetch, imageio};
use ndarray::{Array4, Axis};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::checkpoint;
use crate::degrade::DeviceDegradation;
use crate::ema::ema_update;
use crate::error::{Result, TrainError};
use crate::model::{UNet, UNetConfig};
use crate::ops::TrainBackend;
use crate::sample::restore_all;
use crate::{plot, tensor_io};

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
    pub learning_rate: f64,
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
    pub seed: u64,
    /// Write a sample grid every this many steps (0 = only at the end).
    pub sample_every: usize,
    pub checkpoint_every: usize,
    /// How many checkpoints to keep.
    pub keep_checkpoints: usize,
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
            degradation,
            model: model_cfg,
            batch_size: 32,
            learning_rate: 2e-4,
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
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::Config(format!(
                "learning rate {} must be positive",
                self.learning_rate
            )));
        }
        Ok(())
    }

    /// The optimiser, to receive a checkpoint's state.
    pub(crate) fn optimizer_for_resume<B: AutodiffBackend>(
        &self,
    ) -> OptimizerAdaptor<Adam, UNet<B>, B> {
        self.optimizer()
    }

    fn optimizer<B: AutodiffBackend>(&self) -> OptimizerAdaptor<Adam, UNet<B>, B> {
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
        if (d.channels, d.height, d.width) != (g.channels, g.height, g.width) {
            return Err(TrainError::Config(format!(
                "data set {} is {}x{}x{} but the degradation expects {}x{}x{}",
                self.dataset, d.channels, d.height, d.width, g.channels, g.height, g.width
            )));
        }
        Ok(d)
    }
}

/// Model, EMA, optimiser and step: what a checkpoint holds.
pub struct TrainState<B: AutodiffBackend> {
    pub model: UNet<B>,
    pub ema: UNet<B::InnerBackend>,
    pub optim: OptimizerAdaptor<Adam, UNet<B>, B>,
    /// Optimiser steps done.
    pub step: usize,
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
            optim: cfg.optimizer(),
            step: 0,
        }
    }
}

/// One training batch: clean images, degraded images and their levels.
pub struct Batch<B: Backend> {
    pub x0: Tensor<B, 4>,
    pub xt: Tensor<B, 4>,
    pub t: Tensor<B, 1>,
}

/// The random choices of one step depend only on (seed, step), so a resumed run replays them.
fn step_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Draws the batch of step `step`: images with replacement, optional flips, t ~ U{1..T}.
pub fn make_batch<B: Backend>(
    cfg: &TrainConfig,
    data: &Dataset,
    deg: &DeviceDegradation<B>,
    step: usize,
    device: &B::Device,
) -> Batch<B> {
    let mut rng = step_rng(cfg.seed, step);
    let n = cfg.batch_size;
    let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..data.len())).collect();
    let mut x = data.batch(&idx);
    if cfg.flip {
        for mut im in x.axis_iter_mut(Axis(0)) {
            if rng.random_bool(0.5) {
                let flipped = im.slice(ndarray::s![.., .., ..;-1]).to_owned();
                im.assign(&flipped);
            }
        }
    }
    let levels: Vec<i64> = (0..n)
        .map(|_| rng.random_range(1..=cfg.degradation.steps as i64))
        .collect();
    let x0 = tensor_io::to_tensor::<B>(&x, device);
    let ti = Tensor::<B, 1, Int>::from_data(TensorData::new(levels.clone(), [n]), device);
    let xt = deg.apply(x0.clone(), ti);
    let t = Tensor::<B, 1>::from_data(
        TensorData::new(levels.iter().map(|&v| v as f32).collect::<Vec<_>>(), [n]),
        device,
    );
    Batch { x0, xt, t }
}

/// The L1 loss of the model on a batch.
pub fn loss<B: TrainBackend>(model: &UNet<B>, batch: &Batch<B>) -> Tensor<B, 1> {
    (model.forward(batch.xt.clone(), batch.t.clone()) - batch.x0.clone())
        .abs()
        .mean()
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
    } = state;
    let l = loss(&model, batch);
    let value: f32 = l.clone().into_scalar().elem();
    let grads = GradientsParams::from_grads(l.backward(), &model);
    let model = optim.step(cfg.learning_rate, model, grads);
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
        },
        value,
    )
}

/// A run folder: `config.json`, `loss.csv`, `loss.png`, `samples/`, `checkpoints/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn loss_csv(&self) -> PathBuf {
        self.root.join("loss.csv")
    }
    pub fn loss_png(&self) -> PathBuf {
        self.root.join("loss.png")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }

    /// Reads the saved config.
    pub fn load_config(&self) -> Result<TrainConfig> {
        let p = self.config();
        let s = fs::read_to_string(&p).map_err(|e| TrainError::io(&p, e))?;
        serde_json::from_str(&s).map_err(|e| TrainError::Config(format!("{}: {e}", p.display())))
    }
}

/// How a run ended.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainSummary {
    pub steps: usize,
    /// Mean loss over the last 100 steps (none before the first step).
    pub final_loss: Option<f64>,
    /// Seconds of this invocation.
    pub seconds: f64,
    /// Seconds over all invocations of the run (resumes included).
    #[serde(default)]
    pub total_seconds: f64,
    pub steps_per_second: f64,
    pub images_per_second: f64,
    /// Seconds until the first step had finished (includes kernel compilation on a GPU).
    pub first_step_seconds: f64,
    pub interrupted: bool,
    pub backend: String,
}

fn read_losses(path: &Path) -> Vec<(usize, f64)> {
    let Ok(s) = fs::read_to_string(path) else {
        return Vec::new();
    };
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect()
}

fn write_losses(path: &Path, rows: &[(usize, f64)]) -> Result<()> {
    let mut s = String::from("step,loss\n");
    for (st, l) in rows {
        s.push_str(&format!("{st},{l}\n"));
    }
    fetch::write_atomic(path, s.as_bytes())?;
    Ok(())
}

/// Fixed images for sample grids: the first `n` of the test split (or of the training data).
fn grid_images(cfg: &TrainConfig, train: &Dataset, n: usize) -> Array4<f32> {
    let test = cfg.load_data(Split::Test).ok().filter(|d| d.len() >= n);
    let d = test.as_ref().unwrap_or(train);
    let idx: Vec<usize> = (0..n.min(d.len())).collect();
    d.batch(&idx)
}

/// Writes the sample grid: rows degraded x_T, direct R(x_T, T), Algorithm 1, Algorithm 2, original.
pub fn write_sample_grid<B: TrainBackend>(
    model: &UNet<B>,
    deg: &DeviceDegradation<B>,
    x0: &Array4<f32>,
    path: &Path,
) -> Result<()> {
    let device = model.final_conv.weight.device();
    let b = x0.len_of(Axis(0));
    let t = deg.steps;
    let x0t = tensor_io::to_tensor::<B>(x0, &device);
    let xt = deg.apply(x0t, Tensor::<B, 1, Int>::full([b], t as i64, &device));
    let r = restore_all(model, deg, xt.clone(), t);
    let rows: Vec<Array4<f32>> = [xt, r.direct, r.algorithm1, r.algorithm2]
        .into_iter()
        .map(|t| tensor_io::to_array(t))
        .chain(std::iter::once(x0.clone()))
        .collect();
    let views: Vec<Vec<_>> = rows.iter().map(|a| a.outer_iter().collect()).collect();
    let im = imageio::grid(&views)?;
    let im = im.resize(
        im.width() * 3,
        im.height() * 3,
        image::imageops::FilterType::Nearest,
    );
    imageio::save_png(path, &im)?;
    Ok(())
}

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

/// Trains according to `cfg` in `run`, resuming from its latest checkpoint if asked.
pub fn train<B: AutodiffBackend + TrainBackend>(
    cfg: &TrainConfig,
    run: &RunDir,
    device: &B::Device,
    opts: &RunOptions,
) -> Result<TrainSummary>
where
    B::InnerBackend: TrainBackend,
{
    cfg.validate()?;
    fs::create_dir_all(&run.root).map_err(|e| TrainError::io(&run.root, e))?;
    let data = cfg.load_data(cfg.split.parse()?)?;
    tracing::info!(
        "data: {} ({} images of {}x{}x{}); degradation: {}",
        cfg.dataset,
        data.len(),
        data.channels,
        data.height,
        data.width,
        cfg.degradation.describe()
    );
    let deg = DeviceDegradation::<B>::new(&cfg.degradation, device)?;
    let deg_inner = DeviceDegradation::<B::InnerBackend>::new(&cfg.degradation, device)?;

    let mut state = if opts.resume {
        let saved = run.load_config()?;
        if saved.model != cfg.model || saved.degradation != cfg.degradation {
            return Err(TrainError::Config(format!(
                "--resume: the run in {} was trained with another model or degradation",
                run.root.display()
            )));
        }
        let ck = checkpoint::load_latest::<B>(&run.checkpoints(), cfg, device)?;
        tracing::info!("resuming from step {}", ck.step);
        ck
    } else {
        if checkpoint::latest_name(&run.checkpoints()).is_some() {
            return Err(TrainError::Config(format!(
                "{} already holds checkpoints: pass --resume to continue it, or choose another --out",
                run.root.display()
            )));
        }
        TrainState::new(cfg, device)
    };
    let config_json =
        serde_json::to_string_pretty(cfg).map_err(|e| TrainError::Config(e.to_string()))?;
    fetch::write_atomic(&run.config(), config_json.as_bytes())?;
    let mut losses: Vec<(usize, f64)> = read_losses(&run.loss_csv())
        .into_iter()
        .filter(|(s, _)| *s <= state.step)
        .collect();
    let grid_x0 = grid_images(cfg, &data, 8);
    let n_params = state.model.num_params();
    tracing::info!("model: {n_params} parameters, {:?}", cfg.model);

    let start_step = state.step;
    let pb = progress_bar((cfg.steps.saturating_sub(start_step)) as u64, "training");
    if !opts.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let t0 = Instant::now();
    let mut first_step_seconds = 0.0;
    let mut last_good =
        checkpoint::latest_name(&run.checkpoints()).unwrap_or_else(|| "none".into());
    let mut interrupted = false;

    let save = |state: &TrainState<B>, losses: &[(usize, f64)]| -> Result<String> {
        let name = checkpoint::save(&run.checkpoints(), state, cfg.keep_checkpoints)?;
        write_losses(&run.loss_csv(), losses)?;
        plot::loss_curve(
            losses,
            &format!("{} / {}", cfg.dataset, cfg.degradation.describe()),
            &run.loss_png(),
        )?;
        Ok(name)
    };

    while state.step < cfg.steps {
        if opts.stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if opts.max_seconds.is_some_and(|m| {
            state.step > start_step && t0.elapsed().as_secs_f64() - first_step_seconds >= m
        }) {
            tracing::info!(
                "time budget of {:.0} s reached at step {}",
                opts.max_seconds.unwrap_or(0.0),
                state.step
            );
            interrupted = true;
            break;
        }
        let batch = make_batch(cfg, &data, &deg, state.step, device);
        let (next, l) = train_step(cfg, state, &batch);
        if !l.is_finite() {
            pb.finish_and_clear();
            return Err(TrainError::NonFiniteLoss {
                step: next.step,
                value: l,
                last_good,
            });
        }
        state = next;
        losses.push((state.step, f64::from(l)));
        if state.step == start_step + 1 {
            first_step_seconds = t0.elapsed().as_secs_f64();
        }
        pb.inc(1);
        if state.step % 10 == 0 || state.step == cfg.steps {
            let done = (state.step - start_step) as f64;
            let msg = format!(
                "step {} loss {l:.4} ({:.2} steps/s)",
                state.step,
                done / t0.elapsed().as_secs_f64()
            );
            if opts.progress {
                pb.set_message(msg);
            } else if state.step % 100 == 0 {
                tracing::info!("{msg}");
            }
        }
        if cfg.sample_every > 0 && state.step % cfg.sample_every == 0 {
            let p = run.samples().join(format!("step-{:07}.png", state.step));
            write_sample_grid(&state.ema, &deg_inner, &grid_x0, &p)?;
            fs::copy(&p, run.samples().join("latest.png")).map_err(|e| TrainError::io(&p, e))?;
        }
        if state.step % cfg.checkpoint_every == 0 && state.step < cfg.steps {
            last_good = save(&state, &losses)?;
        }
    }
    pb.finish_and_clear();
    if state.step > start_step || !interrupted {
        save(&state, &losses)?;
        let p = run.samples().join(format!("step-{:07}.png", state.step));
        write_sample_grid(&state.ema, &deg_inner, &grid_x0, &p)?;
        fs::copy(&p, run.samples().join("latest.png")).map_err(|e| TrainError::io(&p, e))?;
    }
    let seconds = t0.elapsed().as_secs_f64();
    let previous_seconds = if opts.resume {
        fs::read(run.summary())
            .ok()
            .and_then(|b| serde_json::from_slice::<TrainSummary>(&b).ok())
            .map(|s| s.total_seconds)
            .unwrap_or(0.0)
    } else {
        0.0
    };
    let done = (state.step - start_step) as f64;
    let tail: Vec<f64> = losses.iter().rev().take(100).map(|x| x.1).collect();
    let summary = TrainSummary {
        steps: state.step,
        final_loss: (!tail.is_empty()).then(|| tail.iter().sum::<f64>() / tail.len() as f64),
        seconds,
        total_seconds: previous_seconds + seconds,
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
    let js =
        serde_json::to_string_pretty(&summary).map_err(|e| TrainError::Config(e.to_string()))?;
    fetch::write_atomic(&run.summary(), js.as_bytes())?;
    Ok(summary)
}

/// Loads the EMA weights of a run's latest checkpoint for inference.
pub fn load_ema<B: Backend>(
    run: &RunDir,
    device: &B::Device,
) -> Result<(TrainConfig, UNet<B>, usize)> {
    let cfg = run.load_config()?;
    let (ema, step) = checkpoint::load_latest_ema::<B>(&run.checkpoints(), &cfg, device)?;
    Ok((cfg, ema, step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ema::flat_params;
    use crate::{CpuAutodiff as AD, CpuBackend as B};

    fn tiny_config() -> TrainConfig {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mnist");
        let mut cfg = TrainConfig::new(&format!("mnist:{}", fixture.display()), "mnist", "tiny")
            .expect("cfg");
        cfg.split = "test".into();
        cfg.batch_size = 4;
        cfg.learning_rate = 1e-3;
        cfg.steps = 6;
        cfg.ema_every = 1;
        cfg.ema_start = 2;
        cfg.sample_every = 0;
        cfg.checkpoint_every = 3;
        cfg
    }

    #[test]
    fn one_step_lowers_the_loss_on_a_fixed_batch() {
        let cfg = tiny_config();
        let dev = Default::default();
        let data = cfg.load_data(Split::Test).expect("data");
        let deg = DeviceDegradation::<AD>::new(&cfg.degradation, &dev).expect("deg");
        let state = TrainState::<AD>::new(&cfg, &dev);
        let batch = make_batch(&cfg, &data, &deg, 0, &dev);
        let (state, before) = train_step(&cfg, state, &batch);
        let after: f32 = loss(&state.model, &batch).into_scalar().elem();
        assert!(
            before.is_finite() && after < before,
            "loss {before} -> {after}"
        );
    }

    #[test]
    fn batches_replay_from_seed_and_step() {
        let cfg = tiny_config();
        let dev = Default::default();
        let data = cfg.load_data(Split::Test).expect("data");
        let deg = DeviceDegradation::<B>::new(&cfg.degradation, &dev).expect("deg");
        let a = make_batch(&cfg, &data, &deg, 5, &dev);
        let b = make_batch(&cfg, &data, &deg, 5, &dev);
        let c = make_batch(&cfg, &data, &deg, 6, &dev);
        assert_eq!(a.xt.clone().into_data(), b.xt.into_data());
        assert_ne!(a.xt.into_data(), c.xt.into_data());
        let t = a.t.into_data().to_vec::<f32>().expect("t");
        assert!(
            t.iter()
                .all(|&v| (1.0..=20.0).contains(&v) && v.fract() == 0.0)
        );
    }

    #[test]
    fn resume_continues_bit_identically() {
        let cfg = tiny_config();
        let dev = Default::default();
        let tmp = tempfile::tempdir().expect("tmp");
        let opts = RunOptions {
            resume: false,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            backend: "flex".into(),
            max_seconds: None,
        };
        // Straight through: 6 steps, with a checkpoint at step 3.
        let straight = RunDir::new(tmp.path().join("straight"));
        let s = train::<AD>(&cfg, &straight, &dev, &opts).expect("train");
        assert_eq!(s.steps, 6);
        assert!(straight.loss_png().is_file() && straight.samples().join("latest.png").is_file());
        let (_, ema_a, step) = load_ema::<B>(&straight, &dev).expect("ema");
        assert_eq!(step, 6);

        // Stopped after 3 steps, then resumed to 6.
        let split = RunDir::new(tmp.path().join("split"));
        let mut first = cfg.clone();
        first.steps = 3;
        train::<AD>(&first, &split, &dev, &opts).expect("first half");
        assert!(
            train::<AD>(&cfg, &split, &dev, &opts).is_err(),
            "a second run without --resume must refuse"
        );
        let resumed = RunOptions {
            resume: true,
            ..opts.clone()
        };
        train::<AD>(&cfg, &split, &dev, &resumed).expect("resume");
        let (_, ema_b, _) = load_ema::<B>(&split, &dev).expect("ema");
        assert_eq!(flat_params(&ema_a), flat_params(&ema_b));
        let ck_a = checkpoint::load_latest::<AD>(&straight.checkpoints(), &cfg, &dev).expect("ck");
        let ck_b = checkpoint::load_latest::<AD>(&split.checkpoints(), &cfg, &dev).expect("ck");
        assert_eq!(
            flat_params(&ck_a.model.valid()),
            flat_params(&ck_b.model.valid())
        );
        // The loss log of the resumed run has each step once.
        let rows = read_losses(&split.loss_csv());
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6]
        );
        assert_eq!(rows, read_losses(&straight.loss_csv()));
    }

    #[test]
    fn a_stop_request_keeps_the_last_checkpoint() {
        let mut cfg = tiny_config();
        cfg.steps = 3;
        let dev = Default::default();
        let tmp = tempfile::tempdir().expect("tmp");
        let run = RunDir::new(tmp.path());
        let opts = RunOptions {
            resume: false,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            backend: "flex".into(),
            max_seconds: None,
        };
        train::<AD>(&cfg, &run, &dev, &opts).expect("train");
        // Ctrl-C before the first resumed step: nothing is lost, the step-3 checkpoint stays latest.
        cfg.steps = 6;
        let stopped = RunOptions {
            resume: true,
            stop: Arc::new(AtomicBool::new(true)),
            ..opts
        };
        let s = train::<AD>(&cfg, &run, &dev, &stopped).expect("train");
        assert!(s.interrupted);
        assert_eq!(s.steps, 3);
        assert_eq!(
            checkpoint::latest_name(&run.checkpoints()).as_deref(),
            Some("step-0000003")
        );
    }
}
