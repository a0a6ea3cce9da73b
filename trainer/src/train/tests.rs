//! The training loop end to end on the MNIST fixture: steps, schedules, batches, shifts,
//! fine-tunes, exact resume and clean stops.

use super::*;
use crate::ema::flat_params;
use crate::run_dir::write_losses;
use crate::{CpuAutodiff as AD, CpuBackend as B};
use burn::module::AutodiffModule;
use cold_core::data::Split;
use std::path::Path;

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
    let mut cfg =
        TrainConfig::new(&format!("mnist:{}", fixture.display()), "mnist", "tiny").expect("cfg");
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
fn a_class_conditioned_network_trains_and_its_class_changes_its_output() {
    let mut cfg = tiny_config();
    let dev = Default::default();
    let data = cfg.load_data(Split::Test).expect("data");
    cfg.model.classes = Some(data.class_names.clone());
    cfg.check_classes(&data).expect("the fixture's classes");
    let deg = cfg.degradation.prepare().expect("deg");
    let state = TrainState::<AD>::new(&cfg, &dev);
    let batch = make_batch::<AD>(&cfg, &data, &deg, 0, &dev);
    let (state, before) = train_step(&cfg, state, &batch);
    let after: f32 = loss(&state.model, &batch, cfg.ssim_weight)
        .into_scalar()
        .elem();
    assert!(
        before.is_finite() && after < before,
        "loss {before} -> {after}"
    );
    // The class changes the output.
    let net = state.model.valid();
    let x = batch.xt.clone().inner();
    let t = batch.t.clone().inner();
    let class = |c: i64| Some(Tensor::<B, 1, Int>::full([cfg.batch_size], c, &dev));
    let a = net.forward_with(x.clone(), t.clone(), class(1));
    let b = net.forward_with(x, t, class(7));
    let d: f32 = (a - b).abs().max().into_scalar().elem();
    assert!(d > 1e-6, "{d}");
    // A data set with other classes is refused with both lists.
    let mut other = cfg.clone();
    other.model.classes = Some(vec!["cat".into(), "dog".into()]);
    let e = other.check_classes(&data).expect_err("other classes");
    assert!(e.to_string().contains("cat, dog"), "{e}");
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
    let after: f32 = loss(&state.model, &batch, cfg.ssim_weight)
        .into_scalar()
        .elem();
    assert!(
        before.is_finite() && after < before,
        "loss {before} -> {after}"
    );
}

#[test]
fn the_ssim_loss_mixes_l1_with_the_metrics_ssim_and_a_step_lowers_it() {
    let mut cfg = tiny_config();
    cfg.ssim_weight = 0.84;
    cfg.validate().expect("valid");
    let dev = Default::default();
    let data = cfg.load_data(Split::Test).expect("data");
    let deg = cfg.degradation.prepare().expect("deg");
    let state = TrainState::<AD>::new(&cfg, &dev);
    let batch = make_batch::<AD>(&cfg, &data, &deg, 0, &dev);
    let value =
        |w: f64, net: &crate::model::UNet<AD>| -> f32 { loss(net, &batch, w).into_scalar().elem() };
    let (l1, dissim, mixed) = (
        value(0.0, &state.model),
        value(1.0, &state.model),
        value(0.84, &state.model),
    );
    assert!(
        (mixed - (0.16 * l1 + 0.84 * dissim)).abs() < 1e-5,
        "{mixed} {l1} {dissim}"
    );
    // 1 - SSIM is the metric's: cold eval's SSIM of the same outputs.
    let out = state
        .model
        .forward_with(batch.xt.clone(), batch.t.clone(), batch.class.clone())
        .inner();
    let mut m = cold_core::metrics::MetricSet::default();
    m.add(
        crate::tensor_io::to_array(out).view(),
        crate::tensor_io::to_array(batch.x0.clone().inner()).view(),
    );
    let want = 1.0 - m.scores().ssim;
    assert!(
        (f64::from(dissim) - want).abs() < 1e-4,
        "{dissim} vs {want}"
    );
    let (state, before) = train_step(&cfg, state, &batch);
    assert!(
        (before - mixed).abs() < 1e-5,
        "train_step's loss is the mixed one"
    );
    let after = value(0.84, &state.model);
    assert!(after < before, "loss {before} -> {after}");
    // Out of range is refused.
    cfg.ssim_weight = 1.5;
    assert!(cfg.validate().is_err());
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
    crate::export::export_model(&net, &cfg, Default::default(), None, &dir, false).expect("export");
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
    // Twice the width (`--widen`): the bundle's network widened, nearly the same function (the
    // exact case, without noise, is `widen`'s own test).
    let mut wide = cfg.clone();
    wide.model = crate::widen::widened(&cfg.model);
    let state = TrainState::<AD>::from_bundle(&wide, &dir, &dev).expect("widened");
    let wnet = state.model.valid();
    assert_eq!(
        wnet.num_params(),
        crate::model::InitUNet::init::<B>(&wide.model, &dev).num_params()
    );
    let x = batch.xt.clone().inner();
    let t = batch.t.clone().inner();
    let y0 = net.forward(x.clone(), t.clone());
    let scale = y0.clone().abs().mean().into_scalar();
    let rel = (wnet.forward(x, t) - y0).abs().max().into_scalar() / scale;
    assert!(rel > 0.0 && rel < 0.2, "widened: relative change {rel}");
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
    // The base restores with 1 step by default (`cold-train steps`).
    crate::steps::recommend(&base_dir, 1, true, "a steps curve").expect("the base's default");
    // Fine-tune it for 6 steps, then remove the base: the run folder alone must know it.
    cfg.init = Some(base_dir.clone());
    let run = RunDir::new(tmp.path().join("run"));
    let s = train::<AD>(&cfg, &run, &dev, &quiet_options()).expect("fine-tune");
    fs::remove_dir_all(&base_dir).expect("remove the base");
    let out = tmp.path().join("tuned");
    let mixture = crate::export::MixtureOptions {
        components: 0,
        images: 0,
        subspace: None,
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
    // The base's sampling default carries over (same degradation), saying where it comes from.
    let sampling = b
        .manifest
        .sampling
        .as_ref()
        .expect("inherited sampling defaults");
    assert_eq!(sampling.recommended_steps, 1);
    assert!(
        sampling.self_ensemble,
        "the self-ensemble default is not inherited"
    );
    assert!(
        sampling.chosen_by.contains("inherited from base")
            && sampling.chosen_by.contains("a steps curve"),
        "{}",
        sampling.chosen_by
    );
    // A run that changed the degradation does not inherit it: it was chosen for another D.
    let mut changed = cfg.clone();
    changed.degradation.steps -= 1;
    cold_core::files::write(&run.config(), &changed).expect("config");
    let out = tmp.path().join("tuned-other-d");
    crate::export::export_run(&run, &out, false, mixture).expect("export");
    let b = cold_core::bundle::Bundle::open(&out, true).expect("open");
    assert!(b.manifest.sampling.is_none());
    cold_core::files::write(&run.config(), &cfg).expect("config");
    // Without its record (a run from before it was kept) the export has this run's alone.
    fs::remove_dir_all(run.base()).expect("remove the record");
    let out = tmp.path().join("tuned-alone");
    crate::export::export_run(&run, &out, false, mixture).expect("export");
    let b = cold_core::bundle::Bundle::open(&out, true).expect("open");
    assert!(b.manifest.training.started_from.is_none());
    assert!(b.manifest.sampling.is_none());
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
        subspace: None,
    };
    crate::export::export_run(&straight, &out, false, none).expect("export");
    assert_eq!(
        read_losses(&out.join("loss.csv")),
        read_losses(&straight.loss_csv())
    );
    let copied: TrainConfig =
        serde_json::from_slice(&std::fs::read(out.join("training-config.json")).expect("config"))
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
