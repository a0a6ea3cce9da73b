//! `cold`: restore, degrade, evaluate and benchmark with an exported model bundle.
//!
//! Exit codes: 0 success; 1 error (nothing or not everything could be done); 2 some input files
//! were skipped (each one is reported).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Parser, Subcommand};
use cold_core::atomic;
use cold_core::bundle::Bundle;
use cold_core::data::{Dataset, Source, Split};
use cold_core::degrade::DegradeOptions;
use cold_core::folder::{Report, Resize};
use cold_core::imageio::BitDepth;
use cold_runtime::bench::{self, BenchConfig};
use cold_runtime::engine::{Algorithm, ConvSearch, Engine, EngineOptions, Ep, WeightLoading};
use cold_runtime::eval::{self, EvalConfig};
use cold_runtime::jobs::{self, RestoreOptions};
use cold_runtime::{fid, ortlib};

#[derive(Parser, Debug)]
#[command(
    name = "cold",
    version,
    about = "Cold Diffusion runtime: restore images with an exported model bundle."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Restore every image in IN_DIR (recursively) into OUT_DIR at the same relative paths.
    Restore(RestoreArgs),
    /// Apply the bundle's degradation D(x, t) to every image in IN_DIR.
    Degrade(DegradeArgs),
    /// Describe a model bundle.
    Info(InfoArgs),
    /// Measure full restorations per second.
    Bench(BenchArgs),
    /// RMSE and SSIM of degraded, direct, Algorithm 1 and Algorithm 2 on a test set.
    Eval(EvalArgs),
    /// Fréchet Inception Distance between two folders of images (or saved statistics).
    Fid(FidArgs),
    /// Generate images from nothing: Algorithm 2 from constant images drawn from the bundle's
    /// Gaussian mixture over channel means.
    Generate(GenerateArgs),
    /// Fetch ONNX Runtime and the FID network into the cache now (otherwise on first use).
    Setup,
}

#[derive(Args, Debug)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Images to generate.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// The same seed gives the same images.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Standard deviation of the per-pixel noise added to the constant start images ("broken
    /// symmetry"); 0 gives the paper's "perfect symmetry" case.
    #[arg(long, default_value_t = cold_core::generation::DEFAULT_NOISE)]
    noise: f64,
    /// Images per model call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Replace images already in OUT_DIR.
    #[arg(long)]
    overwrite: bool,
    out_dir: PathBuf,
}

#[derive(Args, Debug)]
struct FidArgs {
    /// A folder of images (any size; grey or colour), or a .fidstats file.
    a: PathBuf,
    /// The other folder or .fidstats file (optional with --save-stats).
    b: Option<PathBuf>,
    /// Print {"fid", "files_a", "files_b"} as JSON.
    #[arg(long)]
    json: bool,
    /// Also save the feature statistics of A here (a .fidstats file to compare against later).
    #[arg(long)]
    save_stats: Option<PathBuf>,
    /// Images per network run.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Args, Debug, Clone)]
struct ModelArgs {
    /// Model bundle folder (models/<name>).
    #[arg(long, default_value = "models/mnist-blur")]
    model: PathBuf,
    /// Execution provider: cpu, cuda, tensorrt or auto (`bench` takes a list, e.g. cpu,cuda).
    #[arg(long, value_enum, default_value = "cpu", value_delimiter = ',')]
    ep: Vec<Ep>,
    /// GPU index (cuda, tensorrt).
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// TensorRT: build FP16 engines.
    #[arg(long)]
    trt_fp16: bool,
    /// TensorRT: engine cache folder.
    #[arg(long)]
    trt_cache: Option<PathBuf>,
    /// How the weights reach ONNX Runtime (see BENCHMARKS.md for start-up time and memory).
    #[arg(long, value_enum, default_value = "path")]
    weights: WeightLoading,
    /// CUDA: cuDNN convolution algorithm search (exhaustive: slower first run, faster kernels).
    #[arg(long, value_enum, default_value = "heuristic")]
    cudnn_search: ConvSearch,
    /// CUDA: prefer the NHWC layout for convolutions.
    #[arg(long)]
    prefer_nhwc: bool,
}

impl ModelArgs {
    /// The options of a single-provider command.
    fn options(&self) -> Result<EngineOptions> {
        if self.ep.len() != 1 {
            bail!("--ep takes one execution provider here (only `bench` takes a list)");
        }
        Ok(self.options_for(self.ep[0]))
    }

    fn options_for(&self, ep: Ep) -> EngineOptions {
        EngineOptions {
            ep,
            device_id: self.device,
            trt_fp16: self.trt_fp16,
            trt_cache: self.trt_cache.clone(),
            threads: self.threads,
            weights: self.weights,
            verify: true,
            conv_search: self.cudnn_search,
            prefer_nhwc: self.prefer_nhwc,
        }
    }
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    in_dir: PathBuf,
    out_dir: PathBuf,
    /// Degradation level of the inputs (default: the model's T).
    #[arg(long)]
    t: Option<usize>,
    /// Sampler (default: 2; `estimated` for noise and animorphosis models, whose image files are
    /// clipped).
    #[arg(long, value_enum)]
    algorithm: Option<Algorithm>,
    /// Images per model call.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Levels the sampler visits from t to 0 (default: the bundle's recommended number, else every
    /// level; 0: every level).
    #[arg(long)]
    steps: Option<usize>,
    /// Also write <name>_progression.png: the states x_t ... x_0 side by side.
    #[arg(long)]
    save_progression: bool,
    /// Inputs of another size: refuse (default) or scale to the model's size and back.
    #[arg(long, value_enum, default_value = "refuse")]
    resize: Resize,
    /// Redo outputs that already exist.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args, Debug)]
struct DegradeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Degradation level, 0..=T.
    #[arg(long)]
    t: usize,
    in_dir: PathBuf,
    out_dir: PathBuf,
    #[arg(long, default_value_t = 256)]
    batch: usize,
    #[arg(long, value_enum, default_value = "refuse")]
    resize: Resize,
    #[arg(long)]
    overwrite: bool,
    /// Bits per channel of the output PNGs. Use 16 for deep levels: at t = T of the mnist preset a
    /// digit spans about one 8-bit grey level, so 8 bits keep almost nothing to restore from.
    #[arg(long, value_enum, default_value = "8")]
    depth: BitDepth,
    /// Seed of the per-image parameters (inpainting centres, snow layers, noise), recorded in
    /// degradation.json.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
struct InfoArgs {
    #[arg(long, default_value = "models/mnist-blur")]
    model: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Batch sizes, comma-separated.
    #[arg(long, default_value = "64", value_delimiter = ',')]
    batch: Vec<usize>,
    /// Start level (default T).
    #[arg(long)]
    t: Option<usize>,
    #[arg(long, value_enum, default_value = "2")]
    algorithm: Algorithm,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Test set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Start levels, comma-separated (default: T).
    #[arg(long, value_delimiter = ',')]
    t: Vec<usize>,
    /// Only the first N test images.
    #[arg(long)]
    limit: Option<usize>,
    #[arg(long, default_value_t = 250)]
    batch: usize,
    /// Round the degraded inputs to 8- or 16-bit levels, as restoring from PNG files would see
    /// them (default: float, the reference's protocol).
    #[arg(long, value_enum)]
    input_depth: Option<BitDepth>,
    /// Seed of the per-image degradation parameters (inpainting centres, snow layers, noise).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Skip FID (it runs the Inception network on every output: slow on a CPU).
    #[arg(long)]
    no_fid: bool,
    /// Also measure Algorithm 2 with each of these numbers of sampling steps K from the first
    /// level: RMSE, SSIM, FID and images/s (the quality/speed curve of `restore --steps K`).
    #[arg(long, value_delimiter = ',')]
    steps_curve: Vec<usize>,
    /// Folder for eval.json, eval.md and comparison.png.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn finish(report: Report, what: &str) -> ExitCode {
    report.log(what);
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Restore(a) => {
            let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
            tracing::info!(
                "model {} on {}",
                engine.bundle.manifest.name,
                engine.active_ep.name()
            );
            let algorithm = a.algorithm.unwrap_or(Algorithm::default_for(
                &engine.bundle.manifest.degradation.transform,
            ));
            let o = RestoreOptions {
                t: a.t,
                algorithm,
                steps: a.steps,
                batch: a.batch,
                progression: a.save_progression,
                resize: a.resize,
                overwrite: a.overwrite,
            };
            let report = jobs::restore_folder(&mut engine, &a.in_dir, &a.out_dir, &o)?;
            Ok(finish(report, "restore"))
        }
        Command::Degrade(a) => {
            let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
            let o = DegradeOptions {
                t: a.t,
                batch: a.batch,
                resize: a.resize,
                overwrite: a.overwrite,
                depth: a.depth,
                seed: a.seed,
            };
            let report = jobs::degrade_folder(&mut engine, &a.in_dir, &a.out_dir, &o)?;
            Ok(finish(report, "degrade"))
        }
        Command::Info(a) => {
            let b = Bundle::open(&a.model, true)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&b.manifest)?);
            } else {
                print!("{}", describe(&b)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(a) => {
            if a.batch.is_empty() || a.batch.contains(&0) {
                bail!("--batch takes positive batch sizes, e.g. --batch 64,256");
            }
            let cfg = BenchConfig {
                batches: a.batch.clone(),
                t: a.t,
                algorithm: a.algorithm,
                warmup: a.warmup,
                repeats: a.repeats,
            };
            let mut results = Vec::new();
            let mut rows = Vec::new();
            for &ep in &a.model.ep {
                match bench::run(&a.model.model, a.model.options_for(ep), &cfg) {
                    Ok(r) => {
                        rows.extend(
                            r.iter()
                                .map(|x| serde_json::to_value(x).unwrap_or_default()),
                        );
                        results.extend(r);
                    }
                    // A provider that is not there is skipped with its reason, not an abort.
                    Err(e @ cold_runtime::Error::ExecutionProvider { .. }) => {
                        let reason = e.to_string();
                        eprintln!("skipped {}: {reason}", ep.name());
                        rows.push(serde_json::json!({"ep": ep.name(), "skipped": reason}));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            print!("{}", bench::table(&results));
            let js = serde_json::to_string_pretty(&rows)?;
            if let Some(p) = &a.json {
                atomic::write_atomic(p, js.as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Eval(a) => {
            let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
            let source: Source = a.data.parse()?;
            if let Source::Mnist(None) = source {
                cold_core::data::fetch_mnist(None)?;
            }
            let g = &engine.bundle.manifest.degradation;
            let data =
                Dataset::load(&source, Split::Test)?.fit_to(g.channels, g.height, g.width)?;
            let levels = if a.t.is_empty() {
                vec![engine.bundle.manifest.degradation.steps]
            } else {
                a.t.clone()
            };
            let cfg = EvalConfig {
                levels,
                limit: a.limit,
                batch: a.batch,
                input_depth: a.input_depth,
                seed: a.seed,
                fid: !a.no_fid,
                steps_curve: a.steps_curve.clone(),
            };
            let grid = a.out.as_ref().map(|d| d.join("comparison.png"));
            if let Some(d) = &a.out {
                std::fs::create_dir_all(d)?;
            }
            let report = eval::evaluate(&mut engine, &data, &cfg, grid.as_deref())?;
            let md = eval::markdown(&report);
            println!(
                "{} on {} test images of {}, {} inputs ({} EP, {:.0} s)\n\n{md}",
                report.model, report.images, a.data, report.inputs, report.ep, report.seconds
            );
            if let Some(d) = &a.out {
                cold_core::files::write(&d.join(cold_core::report::FILE), &report)?;
                atomic::write_atomic(&d.join("eval.md"), md.as_bytes())?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Fid(a) => fid_cmd(a),
        Command::Generate(a) => {
            let mut engine = Engine::open(&a.model.model, a.model.options()?)?;
            let o = cold_runtime::generation::GenerateOptions {
                count: a.count,
                seed: a.seed,
                noise: a.noise,
                batch: a.batch,
                overwrite: a.overwrite,
            };
            let n = cold_runtime::generation::generate(&mut engine, &a.out_dir, &o)?;
            println!(
                "{n} images written to {} (the first 64 in {})",
                a.out_dir
                    .join(cold_runtime::generation::SAMPLES_DIR)
                    .display(),
                a.out_dir.join("grid.png").display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Setup => {
            println!("{}", ortlib::library_path()?.display());
            println!(
                "{}",
                cold_runtime::fid::inception::ensure(&cold_runtime::fid::cache_dir()?)?.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Statistics of a folder or a saved `.fidstats` file; logs skipped images.
fn fid_stats(
    net: &mut Option<fid::FidNetwork>,
    a: &FidArgs,
    p: &std::path::Path,
) -> Result<(fid::Stats, usize)> {
    if p.is_file() {
        let s = fid::Stats::load(p)?;
        return Ok((s.clone(), s.n));
    }
    if net.is_none() {
        let mut n = fid::FidNetwork::open(a.threads)?;
        n.batch = a.batch.max(1);
        *net = Some(n);
    }
    let pb = cold_core::progress::progress_bar(0, &format!("features of {}", p.display()));
    let (stats, failed) = fid::folder_stats(net.as_mut().expect("opened above"), p, &pb)?;
    pb.finish_and_clear();
    for (f, why) in &failed {
        tracing::warn!("skipped {}: {why}", f.display());
    }
    tracing::info!(
        "{}: {} images used, {} unreadable skipped",
        p.display(),
        stats.n,
        failed.len()
    );
    let n = stats.n;
    Ok((stats, n))
}

fn fid_cmd(a: FidArgs) -> Result<ExitCode> {
    if a.b.is_none() && a.save_stats.is_none() {
        bail!("give two folders (or .fidstats files) to compare, or --save-stats FILE for one");
    }
    let mut net = None;
    let (sa, na) = fid_stats(&mut net, &a, &a.a)?;
    if let Some(p) = &a.save_stats {
        sa.save(p)?;
        tracing::info!("statistics of {} saved to {}", a.a.display(), p.display());
    }
    let Some(b) = &a.b else {
        return Ok(ExitCode::SUCCESS);
    };
    let (sb, nb) = fid_stats(&mut net, &a, b)?;
    let d = fid::frechet_distance(&sa, &sb)?;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"fid": d, "files_a": na, "files_b": nb})
        );
    } else {
        println!("FID {d:.4} ({na} images in A, {nb} in B)");
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(b: &Bundle) -> Result<String> {
    let m = &b.manifest;
    let mut s = String::new();
    s.push_str(&format!(
        "model        {} ({}, format v{})\n",
        m.name,
        b.dir.display(),
        m.format_version
    ));
    s.push_str(&format!(
        "image        {}x{}x{} (channels x height x width), values in [{}, {}]\n",
        m.image.channels,
        m.image.height,
        m.image.width,
        m.image.value_range[0],
        m.image.value_range[1]
    ));
    s.push_str(&format!("degradation  {}\n", m.degradation.describe()));
    if m.degradation.param_count() > 0 {
        s.push_str(&format!(
            "             per-image parameters: {} (degrade writes them to degradation.json)\n",
            m.degradation.param_names().join(", ")
        ));
    }
    if let Some(sm) = &m.sampling {
        s.push_str(&format!(
            "sampling     {} steps by default ({})\n",
            sm.recommended_steps, sm.chosen_by
        ));
    }
    match cold_core::generation::Generation::of(m) {
        _ if m.degradation.transform.is_mix() => s.push_str(
            "generation   from z at T with the estimated-noise sampler (cold generate)\n",
        ),
        Ok(g) => s.push_str(&format!(
            "generation   Gaussian mixture of {} component(s) over channel means, fitted on {} images of {}\n",
            g.components.len(),
            g.images,
            g.fitted_on
        )),
        Err(_) => s.push_str("generation   none (cold-train mixture adds one)\n"),
    }
    s.push_str(&format!("network      {}\n", m.network.describe()));
    let t = &m.training;
    s.push_str(&format!(
        "training     {} steps on {} (batch {}, lr {}, EMA {}), final loss {}, {:.0} s on {}\n",
        t.steps,
        t.dataset,
        t.batch_size,
        t.learning_rate,
        t.ema_decay,
        t.final_loss
            .map(|l| format!("{l:.4}"))
            .unwrap_or_else(|| "n/a".into()),
        t.seconds,
        if t.backend.is_empty() {
            "?"
        } else {
            &t.backend
        }
    ));
    if let Some(base) = &t.started_from {
        let weights = base
            .weights_sha256
            .as_deref()
            .map(|h| format!(" (weights.bin sha256 {})", h.get(..12).unwrap_or(h)))
            .unwrap_or_default();
        s.push_str(&format!(
            "             fine-tuned from a bundle{weights} trained {} steps ({:.0} s): {} steps, {:.0} s in all\n",
            base.total_steps(),
            base.total_seconds(),
            t.total_steps(),
            t.total_seconds()
        ));
    }
    s.push_str(&format!(
        "graphs       opset {}; files (sha256 checked):\n",
        m.opset
    ));
    for name in b.file_names() {
        let size = std::fs::metadata(b.path(&name))
            .map(|md| md.len())
            .unwrap_or(0);
        s.push_str(&format!("  {name:<18} {:>10} bytes\n", size));
    }
    s.push_str(&format!("created by   {}\n", m.created_by));
    Ok(s)
}
