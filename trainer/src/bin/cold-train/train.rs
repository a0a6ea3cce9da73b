//! `cold-train train`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_trainer::backend::{self, BackendKind};
use cold_trainer::config::Overrides;
use cold_trainer::train::{RunDir, RunOptions};

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// Run folder (config.json, loss.csv, loss.png, samples/, checkpoints/).
    #[arg(long)]
    out: PathBuf,
    /// A config JSON (as written to a run folder); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR (DIR/<class>/*
    /// or flat; PNG, JPEG, WebP, BMP, TIFF, GIF; with --size, of any size).
    #[arg(long)]
    dataset: Option<String>,
    /// Train at S x S: every image scaled so that its shorter side is int(1.12 S) (the aspect
    /// ratio kept, the centred square), then a random S x S crop in training (the centre in
    /// evaluation), as the paper's loaders. Without it, images are used at their own size.
    #[arg(long, value_name = "S")]
    size: Option<usize>,
    /// 1 (grey) or 3 (RGB), whatever the data set holds (default: grey when every image is).
    #[arg(long, value_name = "1|3")]
    channels: Option<usize>,
    /// The degradation by its parameters, for any data set and size: a schedule's name
    /// (`cold-train schedules` lists them: mnist-blur, cifar10-blur, celeba-blur, inpaint, ...),
    /// NAME:key=value,... to change some of its fields (cifar10-blur:T=25), KIND:key=value,...
    /// (blur:kernel_size=15,schedule.routine=exponential,schedule.rate=0.01,padding=reflect,T=200)
    /// or a .toml / .json file. Default: cifar10-blur for colour, mnist-blur for grey.
    #[arg(long, value_name = "SPEC", conflicts_with = "preset")]
    degradation: Option<String>,
    /// A data set's preset (its degradation at its size): mnist, cifar10 (blur), mnist-inpaint, mnist-inpaint-centred,
    /// mnist-superres, mnist32-superres (MNIST padded to 32x32), cifar10-inpaint,
    /// cifar10-inpaint-centred, cifar10-superres, the three super-resolutions with `-clipped` (D
    /// clipped to [-1, 1], as image files hold it), mnist-snow, cifar10-snow, mnist-noise,
    /// cifar10-noise, mnist-animorph, cifar10-decolor.
    #[arg(long)]
    preset: Option<String>,
    /// Network size: tiny, compact, small or paper.
    #[arg(long)]
    model: Option<String>,
    /// Train up to this step (a new run's default: 2,000; a resumed run keeps its own). With
    /// --max-seconds, set it high and let the time decide.
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long)]
    batch: Option<usize>,
    #[arg(long)]
    lr: Option<f64>,
    /// Learning-rate schedule: constant (the reference's) or cosine (from --lr down to --lr-min
    /// at step --steps, the run's horizon: give --steps, not only --max-seconds).
    #[arg(long, value_name = "constant|cosine")]
    lr_schedule: Option<cold_trainer::config::LrSchedule>,
    /// Where a decaying schedule ends (default 0).
    #[arg(long)]
    lr_min: Option<f64>,
    #[arg(long)]
    ema_decay: Option<f64>,
    #[arg(long)]
    ema_every: Option<usize>,
    #[arg(long)]
    ema_start: Option<usize>,
    /// Clip the global gradient norm.
    #[arg(long)]
    grad_clip: Option<f32>,
    /// Random horizontal flips (true/false).
    #[arg(long)]
    flip: Option<bool>,
    /// Random shifts of up to N pixels each way (edge pixels repeated), for more varied data.
    #[arg(long, value_name = "N")]
    shift: Option<usize>,
    /// Round the degraded inputs to the levels of N-bit image files (8 for PNG/JPEG), so the
    /// restorer learns from what it will read; default: float inputs, as the reference.
    #[arg(long, value_name = "N")]
    input_bits: Option<u32>,
    /// Mix SSIM into the loss: (1 - W) L1 + W (1 - SSIM), SSIM as `cold eval` measures it
    /// (0.84 is Zhao et al.'s mix). Default 0: L1 alone, the reference's loss.
    #[arg(long, value_name = "W")]
    ssim_weight: Option<f64>,
    /// How the training levels t are drawn: uniform (the reference's) or linear (in proportion
    /// to t, more training where the degradation is strongest).
    #[arg(long, value_name = "uniform|linear")]
    levels: Option<cold_trainer::config::Levels>,
    /// Train on levels 1..=K only (default: every level, 1..=T): for a generation network that
    /// starts from a low level (`cold-train mixture --level L`, L <= K). The bundle records K and
    /// `cold` refuses to restore from above it.
    #[arg(long, value_name = "K")]
    max_level: Option<usize>,
    /// Start a new run from this bundle's network (fine-tuning) instead of a fresh one; its
    /// network, degradation and data set are the run's unless --model / --preset / --dataset say
    /// otherwise.
    #[arg(long, value_name = "BUNDLE")]
    init: Option<PathBuf>,
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    sample_every: Option<usize>,
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Train on the first N images only.
    #[arg(long)]
    max_images: Option<usize>,
    /// Condition the network on the data set's classes (MNIST's digits, CIFAR-10's classes, a
    /// folder's subfolders): `cold generate --class C` then samples by class, and without
    /// --class as before (the null class, trained by dropping labels: --label-dropout).
    #[arg(long)]
    classes: bool,
    /// With --classes: the share of training images whose label is dropped (default 0.1).
    #[arg(long, value_name = "P")]
    label_dropout: Option<f64>,
    /// Stop cleanly (with a checkpoint) after this many seconds of training (counted from the end
    /// of the first step, which on a GPU includes kernel compilation).
    #[arg(long)]
    max_seconds: Option<f64>,
    /// With --init: start from the bundle's network at twice its base width, computing the same
    /// function (Net2Net: channels copied, their inputs halved; the time embedding refitted; a
    /// little noise to let the copies differ), for more capacity without training again.
    #[arg(long, requires = "init")]
    widen: bool,
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
    /// GPU index for --backend cuda.
    #[arg(long, default_value_t = 0)]
    device: usize,
}

pub fn run(a: TrainArgs) -> Result<ExitCode> {
    let run = RunDir::new(&a.out);
    let cfg = Overrides {
        config: a.config,
        resume: a.resume,
        dataset: a.dataset,
        preset: a.preset,
        degradation: a.degradation,
        size: a.size,
        channels: a.channels,
        model: a.model,
        init: a.init,
        steps: a.steps,
        batch_size: a.batch,
        learning_rate: a.lr,
        lr_schedule: a.lr_schedule,
        lr_min: a.lr_min,
        ema_decay: a.ema_decay,
        ema_every: a.ema_every,
        ema_start: a.ema_start,
        grad_clip: a.grad_clip,
        flip: a.flip,
        shift: a.shift,
        input_bits: a.input_bits,
        ssim_weight: a.ssim_weight,
        levels: a.levels,
        max_level: a.max_level,
        seed: a.seed,
        sample_every: a.sample_every,
        checkpoint_every: a.checkpoint_every,
        max_images: a.max_images,
        classes: a.classes,
        label_dropout: a.label_dropout,
        widen: a.widen,
    }
    .build(&run.config())?;
    let opts = RunOptions {
        resume: a.resume,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        stop: backend::ctrl_c_flag(),
        backend: a.backend.name().into(),
        max_seconds: a.max_seconds,
    };
    let summary = backend::train(a.backend, a.device, &cfg, &run, &opts)?;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.interrupted {
        eprintln!("stopped at step {}; continue with --resume", summary.steps);
    }
    Ok(ExitCode::SUCCESS)
}
