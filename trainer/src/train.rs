//! The training loop: batches ([`crate::batches`]) through optimiser steps ([`crate::state`]),
//! sample grids, loss log and curve, atomic checkpoints with exact resume, clean Ctrl-C stop.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use cold_core::data::{Dataset, Split};
use cold_core::degradation::Prepared;
use cold_core::imageio;
use cold_core::progress::progress_bar;
use ndarray::{Array2, Array4, Axis};
use rand::SeedableRng;

pub use crate::batches::{Batch, make_batch};
use crate::checkpoint;
pub use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::model::UNet;
use crate::ops::TrainBackend;
pub use crate::run_dir::RunDir;
use crate::run_dir::{read_losses, write_losses};
use crate::sample::restore_all;
pub use crate::state::{TrainState, loss, train_step};
use crate::{plot, tensor_io};
pub use cold_core::training::RunSummary;

/// Fixed images for sample grids: the first `n` of the test split (or of the training data).
fn grid_images(cfg: &TrainConfig, train: &Dataset, n: usize) -> Array4<f32> {
    let test = cfg.load_data(Split::Test).ok().filter(|d| d.len() >= n);
    let d = test.as_ref().unwrap_or(train);
    let idx: Vec<usize> = (0..n.min(d.len())).collect();
    d.batch(&idx)
}

/// Per-image degradation parameters of the sample grid's images (fixed by the run's seed). The
/// first draw: an animorphosis whose source images are missing fails here, before training.
fn grid_params(cfg: &TrainConfig, n: usize) -> Result<Array2<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    Ok(cfg.degradation.sample_params(&mut rng, n)?)
}

/// Writes the sample grid: rows degraded x_T, direct R(x_T, T), Algorithm 1, Algorithm 2, original.
pub fn write_sample_grid<B: TrainBackend>(
    model: &UNet<B>,
    deg: &Prepared,
    x0: &Array4<f32>,
    params: &Array2<f32>,
    path: &Path,
) -> Result<()> {
    let device = model.final_conv.weight.device();
    let t = deg.steps();
    let xt = deg.apply_uniform(x0.view(), t, params.view())?;
    let r = restore_all(
        model,
        deg,
        tensor_io::to_tensor::<B>(&xt, &device),
        t,
        params.view(),
    );
    let rows: Vec<Array4<f32>> = [r.direct, r.algorithm1, r.algorithm2]
        .into_iter()
        .map(|t| tensor_io::to_array(t))
        .chain([x0.clone()])
        .collect();
    let rows: Vec<Array4<f32>> = std::iter::once(xt).chain(rows).collect();
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
) -> Result<RunSummary>
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
    let deg = cfg.degradation.prepare()?;

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
        match &cfg.init {
            Some(dir) => {
                tracing::info!("starting from the network of {}", dir.display());
                let state = TrainState::from_bundle(cfg, dir, device)?;
                crate::run_dir::record_base(run, dir)?;
                state
            }
            None => TrainState::new(cfg, device),
        }
    };
    cold_core::files::write(&run.config(), cfg)?;
    let mut losses: Vec<(usize, f64)> = read_losses(&run.loss_csv())
        .into_iter()
        .filter(|(s, _)| *s <= state.step)
        .collect();
    let grid_x0 = grid_images(cfg, &data, 8);
    let grid_p = grid_params(cfg, grid_x0.len_of(Axis(0)))?;
    let n_params = state.model.num_params();
    tracing::info!("model: {n_params} parameters, {:?}", cfg.model);

    let start_step = state.step;
    let pb = progress_bar((cfg.steps.saturating_sub(start_step)) as u64, "training");
    if !opts.progress {
        pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let t0 = Instant::now();
    let base_seconds = state.seconds;
    let mut first_step_seconds = 0.0;
    let mut last_good =
        checkpoint::latest_name(&run.checkpoints()).unwrap_or_else(|| "none".into());
    let mut interrupted = false;

    let save = |state: &TrainState<B>, losses: &[(usize, f64)]| -> Result<String> {
        let name = checkpoint::save(
            &run.checkpoints(),
            state,
            &opts.backend,
            cfg.keep_checkpoints,
        )?;
        write_losses(&run.loss_csv(), losses)?;
        plot::loss_curve(
            losses,
            &crate::run_dir::loss_title(cfg),
            None,
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
            let lr = match cfg.lr_schedule {
                crate::config::LrSchedule::Constant => String::new(),
                _ => format!(" lr {:.2e}", cfg.learning_rate_at(state.step)),
            };
            let msg = format!(
                "step {} loss {l:.4}{lr} ({:.2} steps/s since the start)",
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
            write_sample_grid(&state.ema, &deg, &grid_x0, &grid_p, &p)?;
            fs::copy(&p, run.samples().join("latest.png")).map_err(|e| TrainError::io(&p, e))?;
        }
        if state.step % cfg.checkpoint_every == 0 && state.step < cfg.steps {
            state.seconds = base_seconds + t0.elapsed().as_secs_f64();
            last_good = save(&state, &losses)?;
        }
    }
    pb.finish_and_clear();
    if state.step > start_step || !interrupted {
        state.seconds = base_seconds + t0.elapsed().as_secs_f64();
        save(&state, &losses)?;
        let p = run.samples().join(format!("step-{:07}.png", state.step));
        write_sample_grid(&state.ema, &deg, &grid_x0, &grid_p, &p)?;
        fs::copy(&p, run.samples().join("latest.png")).map_err(|e| TrainError::io(&p, e))?;
    }
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

/// Loads the EMA weights of a run's latest checkpoint for inference.
pub fn load_ema<B: Backend>(
    run: &RunDir,
    device: &B::Device,
) -> Result<(TrainConfig, UNet<B>, checkpoint::Checkpoint)> {
    let cfg = run.load_config()?;
    let (ema, state) = checkpoint::load_latest_ema::<B>(&run.checkpoints(), &cfg, device)?;
    Ok((cfg, ema, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ema::flat_params;
    use crate::{CpuAutodiff as AD, CpuBackend as B};
    use burn::module::AutodiffModule;

    /// A new run (no resume), no progress bar, no time limit.
    fn quiet_options() -> RunOptions {
        RunOptions {
            resume: false,
            progress: false,
            stop: Arc::new(AtomicBool::new(false)),
            backend: "flex".into(),
            max_seconds: None,
        }
    }

    /// The largest absolute difference between two parameter lists.
    fn diff(x: &[f32], y: &[f32]) -> f32 {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    }

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
        let deg = cfg.degradation.prepare().expect("deg");
        let state = TrainState::<AD>::new(&cfg, &dev);
        let batch = make_batch::<AD>(&cfg, &data, &deg, 0, &dev);
        let (state, before) = train_step(&cfg, state, &batch);
        let after: f32 = loss(&state.model, &batch).into_scalar().elem();
        assert!(
            before.is_finite() && after < before,
            "loss {before} -> {after}"
        );
    }

    #[test]
    fn a_cosine_schedule_decays_the_steps_to_lr_min() {
        let mut cfg = tiny_config();
        cfg.steps = 100;
        cfg.lr_schedule = crate::config::LrSchedule::Cosine;
        cfg.lr_min = 1e-5;
        let lr = |s| cfg.learning_rate_at(s);
        assert_eq!(lr(0), 1e-3);
        assert!((lr(50) - (1e-3 + 1e-5) / 2.0).abs() < 1e-12, "{}", lr(50));
        assert!((lr(25) - (1e-5 + 0.99e-3 * 0.853_553_390_593_273_8)).abs() < 1e-12);
        assert!((lr(100) - 1e-5).abs() < 1e-15 && lr(250) == lr(100));
        assert!((1..=100).all(|s| lr(s) < lr(s - 1)));
        // The steps use it: from the horizon on, with lr_min 0, a step leaves the network where
        // it was; with the constant schedule the same step moves it.
        cfg.lr_min = 0.0;
        cfg.validate().expect("valid");
        let dev = Default::default();
        let data = cfg.load_data(Split::Test).expect("data");
        let deg = cfg.degradation.prepare().expect("deg");
        let batch = make_batch::<AD>(&cfg, &data, &deg, 0, &dev);
        let moved = |cfg: &TrainConfig| {
            let mut state = TrainState::<AD>::new(cfg, &dev);
            state.step = cfg.steps;
            let before = flat_params(&state.model.valid());
            let (state, _) = train_step(cfg, state, &batch);
            diff(&flat_params(&state.model.valid()), &before)
        };
        assert!(moved(&cfg) < 1e-9, "moved {}", moved(&cfg));
        let mut constant = cfg.clone();
        constant.lr_schedule = crate::config::LrSchedule::Constant;
        assert!(moved(&constant) > 1e-4);
        // A floor at or above the peak is refused.
        cfg.lr_min = cfg.learning_rate;
        let e = cfg.validate().expect_err("lr_min at the peak");
        assert!(e.to_string().contains("lr_min"), "{e}");
    }

    #[test]
    fn mnist_at_32_is_padded_and_other_sizes_are_refused() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mnist");
        let src = format!("mnist:{}", fixture.display());
        let mut cfg = TrainConfig::new(&src, "mnist32-superres", "tiny").expect("cfg");
        cfg.split = "test".into();
        cfg.batch_size = 4;
        let data = cfg.load_data(Split::Test).expect("data");
        assert_eq!((data.channels, data.height, data.width), (1, 32, 32));
        let deg = cfg.degradation.prepare().expect("deg");
        let batch = make_batch::<B>(&cfg, &data, &deg, 0, &Default::default());
        assert_eq!(batch.x0.dims(), [4, 1, 32, 32]);
        // The 2-pixel border of every clean image is black (-1).
        let x0 = batch.x0.into_data().to_vec::<f32>().expect("x0");
        for img in x0.chunks_exact(32 * 32) {
            assert!(img[..64].iter().all(|&v| v == -1.0));
            assert!(img[32 * 30..].iter().all(|&v| v == -1.0));
        }
        // Grey digits for an RGB model: the size check still refuses them.
        let rgb = TrainConfig::new(&src, "cifar10", "tiny").expect("cfg");
        let e = rgb.load_data(Split::Test).expect_err("3 channels");
        assert!(e.to_string().contains("1x28x28"), "{e}");
    }

    #[test]
    fn batches_replay_from_seed_and_step() {
        let cfg = tiny_config();
        let dev = Default::default();
        let data = cfg.load_data(Split::Test).expect("data");
        let deg = cfg.degradation.prepare().expect("deg");
        let a = make_batch::<B>(&cfg, &data, &deg, 5, &dev);
        let b = make_batch::<B>(&cfg, &data, &deg, 5, &dev);
        let c = make_batch::<B>(&cfg, &data, &deg, 6, &dev);
        assert_eq!(a.xt.clone().into_data(), b.xt.into_data());
        assert_ne!(a.xt.into_data(), c.xt.into_data());
        let t = a.t.into_data().to_vec::<f32>().expect("t");
        assert!(
            t.iter()
                .all(|&v| (1.0..=20.0).contains(&v) && v.fract() == 0.0)
        );
    }

    #[test]
    fn shifted_moves_pixels_and_repeats_the_edges() {
        let im = ndarray::Array3::from_shape_fn((1, 3, 4), |(_, y, x)| (10 * y + x) as f32);
        let out = crate::batches::shifted(im.view(), 1, -1);
        // out[y][x] = im[clamp(y - 1)][clamp(x + 1)]
        assert_eq!(out[(0, 0, 0)], 1.0);
        assert_eq!(out[(0, 1, 1)], 2.0);
        assert_eq!(out[(0, 2, 2)], 13.0);
        assert_eq!(out[(0, 2, 3)], 13.0);
        assert_eq!(crate::batches::shifted(im.view(), 0, 0), im);
    }

    #[test]
    fn shifts_move_each_training_image_by_at_most_the_configured_pixels() {
        let mut cfg = tiny_config();
        cfg.batch_size = 8;
        let dev = Default::default();
        let data = cfg.load_data(Split::Test).expect("data");
        let deg = cfg.degradation.prepare().expect("deg");
        let x0 = |cfg: &TrainConfig| {
            let b = make_batch::<B>(cfg, &data, &deg, 3, &dev);
            b.x0.into_data().to_vec::<f32>().expect("x0")
        };
        let plain = x0(&cfg);
        cfg.shift = 2;
        let moved = x0(&cfg);
        let mut n_moved = 0;
        for (p, m) in plain.chunks_exact(28 * 28).zip(moved.chunks_exact(28 * 28)) {
            let p = ndarray::ArrayView3::from_shape((1, 28, 28), p).expect("shape");
            let found = (-2..=2)
                .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
                .any(|(dy, dx)| crate::batches::shifted(p, dy, dx).as_slice() == Some(m));
            assert!(
                found,
                "an image is not a shift of its source by at most 2 pixels"
            );
            n_moved += usize::from(p.as_slice() != Some(m));
        }
        assert!(n_moved >= 4, "only {n_moved} of 8 images moved");
        cfg.shift = 28;
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn a_run_can_start_from_a_bundle() {
        let mut cfg = tiny_config();
        let dev = Default::default();
        let tmp = tempfile::tempdir().expect("tmp");
        // A bundle of a network that is not the seed's fresh one.
        let mut other = cfg.clone();
        other.seed = 99;
        let net = TrainState::<AD>::new(&other, &dev).model.valid();
        let dir = tmp.path().join("bundle");
        crate::export::export_model(&net, &cfg, Default::default(), None, &dir, false)
            .expect("export");
        // The loaded network trains: one step at the config's learning rate moves it.
        let data = cfg.load_data(Split::Test).expect("data");
        let deg = cfg.degradation.prepare().expect("deg");
        let state = TrainState::<AD>::from_bundle(&cfg, &dir, &dev).expect("from the bundle");
        assert_eq!(flat_params(&state.model.valid()), flat_params(&net));
        let batch = make_batch::<AD>(&cfg, &data, &deg, 0, &dev);
        let (state, _) = train_step(&cfg, state, &batch);
        let moved = diff(&flat_params(&state.model.valid()), &flat_params(&net));
        assert!(
            moved > 1e-4,
            "one step moved the loaded network by only {moved}"
        );
        // A run from it trains on from its weights: with a vanishing learning rate, the model
        // after one step is still the bundle's.
        cfg.init = Some(dir.clone());
        cfg.steps = 1;
        cfg.learning_rate = 1e-12;
        let opts = quiet_options();
        let run = RunDir::new(tmp.path().join("run"));
        train::<AD>(&cfg, &run, &dev, &opts).expect("train from the bundle");
        let (saved, ema, _) = load_ema::<B>(&run, &dev).expect("ema");
        assert_eq!(saved.init.as_deref(), Some(dir.as_path()));
        let (a, b) = (flat_params(&ema), flat_params(&net));
        let fresh = flat_params(&TrainState::<AD>::new(&cfg, &dev).model.valid());
        assert!(
            diff(&a, &b) < 1e-6,
            "moved {} from the bundle",
            diff(&a, &b)
        );
        assert!(
            diff(&a, &fresh) > 1e-2,
            "the run started from a fresh network"
        );
        // Another network size is refused with what to do.
        let mut small = cfg.clone();
        small.model = crate::model::UNetConfig::preset("compact", 1).expect("compact");
        let e = TrainState::<AD>::from_bundle(&small, &dir, &dev)
            .err()
            .expect("another network");
        assert!(e.to_string().contains("leave out --model"), "{e}");
    }

    #[test]
    fn a_fine_tune_bundle_records_the_training_it_started_from() {
        let mut cfg = tiny_config();
        let dev = Default::default();
        let tmp = tempfile::tempdir().expect("tmp");
        // A base bundle with a known training summary and a 40-step loss log.
        let net = TrainState::<AD>::new(&cfg, &dev).model.valid();
        let base_dir = tmp.path().join("base");
        let base = cold_core::training::TrainingSummary {
            dataset: "mnist".into(),
            steps: 40,
            seconds: 12.5,
            ..Default::default()
        };
        crate::export::export_model(&net, &cfg, base.clone(), None, &base_dir, false)
            .expect("export the base");
        let base_losses: Vec<(usize, f64)> = (1..=40).map(|s| (s, 1.0 / s as f64)).collect();
        write_losses(&base_dir.join("loss.csv"), &base_losses).expect("base loss log");
        let weights = cold_core::bundle::Bundle::open(&base_dir, true)
            .expect("open the base")
            .manifest
            .sha256["weights.bin"]
            .clone();
        // Fine-tune it for 6 steps, then remove the base: the run folder alone must know it.
        cfg.init = Some(base_dir.clone());
        let run = RunDir::new(tmp.path().join("run"));
        let s = train::<AD>(&cfg, &run, &dev, &quiet_options()).expect("fine-tune");
        fs::remove_dir_all(&base_dir).expect("remove the base");
        let out = tmp.path().join("tuned");
        let mixture = crate::export::MixtureOptions {
            components: 0,
            images: 0,
        };
        crate::export::export_run(&run, &out, false, mixture).expect("export the fine-tune");
        let b = cold_core::bundle::Bundle::open(&out, true).expect("open");
        let t = &b.manifest.training;
        assert_eq!(t.steps, 6);
        // The base's summary, naming the exact weights it started from.
        let named = cold_core::training::TrainingSummary {
            weights_sha256: Some(weights),
            ..base.clone()
        };
        assert_eq!(t.started_from.as_deref(), Some(&named));
        assert_eq!(t.total_steps(), 46);
        assert!((t.total_seconds() - (12.5 + s.total_seconds)).abs() < 1e-9);
        // The loss log continues the base's: its 40 steps, then the run's as steps 41..=46.
        let log = read_losses(&out.join("loss.csv"));
        assert_eq!(log.len(), 46);
        assert_eq!(&log[..40], &base_losses[..]);
        let run_log = read_losses(&run.loss_csv());
        let shifted: Vec<(usize, f64)> = run_log.iter().map(|&(s, l)| (s + 40, l)).collect();
        assert_eq!(&log[40..], &shifted[..]);
        // Without its record (a run from before it was kept) the export has this run's alone.
        fs::remove_dir_all(run.base()).expect("remove the record");
        let out = tmp.path().join("tuned-alone");
        crate::export::export_run(&run, &out, false, mixture).expect("export");
        let b = cold_core::bundle::Bundle::open(&out, true).expect("open");
        assert!(b.manifest.training.started_from.is_none());
        assert_eq!(read_losses(&out.join("loss.csv")), run_log);
        // A run from scratch records none.
        let scratch = RunDir::new(tmp.path().join("scratch"));
        cfg.init = None;
        cfg.steps = 1;
        train::<AD>(&cfg, &scratch, &dev, &quiet_options()).expect("train");
        let out = tmp.path().join("plain");
        crate::export::export_run(&scratch, &out, false, mixture).expect("export");
        let b = cold_core::bundle::Bundle::open(&out, true).expect("open");
        assert!(b.manifest.training.started_from.is_none());
        assert_eq!(read_losses(&out.join("loss.csv")).len(), 1);
    }

    #[test]
    fn resume_continues_bit_identically() {
        let cfg = tiny_config();
        let dev = Default::default();
        let tmp = tempfile::tempdir().expect("tmp");
        let opts = quiet_options();
        // Straight through: 6 steps, with a checkpoint at step 3.
        let straight = RunDir::new(tmp.path().join("straight"));
        let s = train::<AD>(&cfg, &straight, &dev, &opts).expect("train");
        assert_eq!(s.steps, 6);
        assert!(straight.loss_png().is_file() && straight.samples().join("latest.png").is_file());
        let (_, ema_a, state) = load_ema::<B>(&straight, &dev).expect("ema");
        let step = state.step;
        assert_eq!(step, 6);
        // Export copies the run's record into the bundle for its model card.
        let out = tmp.path().join("bundle");
        let none = crate::export::MixtureOptions {
            components: 0,
            images: 0,
        };
        crate::export::export_run(&straight, &out, false, none).expect("export");
        assert_eq!(
            read_losses(&out.join("loss.csv")),
            read_losses(&straight.loss_csv())
        );
        let copied: TrainConfig = serde_json::from_slice(
            &std::fs::read(out.join("training-config.json")).expect("config"),
        )
        .expect("parse");
        assert_eq!(copied.steps, cfg.steps);
        for f in ["loss.png", "training-summary.json", "samples.png"] {
            assert!(out.join(f).is_file(), "{f}");
        }
        cold_core::bundle::Bundle::open(&out, true).expect("the bundle still checks");
        assert!(crate::run_dir::loss_title(&cfg).starts_with("MNIST / blur, T 20, 1x28x28"));
        let mut jpeg = cfg.clone();
        jpeg.dataset = "folder:../shared/datasets/cifar10-jpeg/".into();
        assert!(crate::run_dir::loss_title(&jpeg).starts_with("CIFAR-10 (JPEG copy) / blur"));

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
        let opts = quiet_options();
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
