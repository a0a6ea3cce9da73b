//! `cold bench`: full restorations per second with warm-up and repeats, plus start-up time and
//! resident memory.

use std::path::Path;
use std::time::Instant;

use ndarray::Array4;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Serialize;

use crate::engine::{Algorithm, Engine, EngineOptions, WeightLoading};
use crate::error::Result;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    pub batches: Vec<usize>,
    /// Start level (default T).
    pub t: Option<usize>,
    pub algorithm: Algorithm,
    pub warmup: usize,
    pub repeats: usize,
}

/// One measurement (a batch size).
#[derive(Clone, Debug, Serialize)]
pub struct BenchResult {
    pub model: String,
    pub ep: String,
    pub weights: WeightLoading,
    pub threads: usize,
    /// CUDA: steps captured as CUDA graphs, and no synchronisation between steps.
    pub cuda_graph: bool,
    pub no_sync: bool,
    pub batch: usize,
    pub t: usize,
    pub algorithm: Algorithm,
    /// Graph runs per restoration.
    pub steps: usize,
    pub repeats: usize,
    /// The largest absolute difference between any later run's images and the first run's.
    pub replay_max_abs_diff: f32,
    pub median_seconds: f64,
    pub min_seconds: f64,
    pub max_seconds: f64,
    /// Restored images per second at the median time.
    pub images_per_second: f64,
    /// Opening the bundle (hash check included) until the sampling session is ready.
    pub startup_seconds: f64,
    pub session_seconds: f64,
    /// Resident memory after start-up and its peak over the run, MB.
    pub rss_after_startup_mb: f64,
    pub peak_rss_mb: f64,
}

/// `VmRSS` and `VmHWM` of this process in MB (Linux; zero elsewhere).
pub(crate) fn memory_mb() -> (f64, f64) {
    let Ok(s) = std::fs::read_to_string("/proc/self/status") else {
        return (0.0, 0.0);
    };
    let field = |name: &str| {
        s.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the benchmark for every batch size.
pub fn run(model: &Path, options: EngineOptions, cfg: &BenchConfig) -> Result<Vec<BenchResult>> {
    run_each(model, options, cfg, &mut |_| Ok(()))
}

/// [`run`], handing each result to `done` as soon as it is measured.
pub fn run_each(
    model: &Path,
    options: EngineOptions,
    cfg: &BenchConfig,
    done: &mut dyn FnMut(&BenchResult) -> Result<()>,
) -> Result<Vec<BenchResult>> {
    let t0 = Instant::now();
    let mut engine = Engine::open(model, options.clone())?;
    engine.warm_up()?;
    let startup = t0.elapsed().as_secs_f64();
    let (rss_startup, _) = memory_mb();
    let m = engine.bundle.manifest.clone();
    let t = cfg
        .t
        .unwrap_or(m.degradation.steps)
        .min(m.degradation.steps);
    let threads = if options.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        options.threads
    };
    let mut out = Vec::new();
    for &batch in &cfg.batches {
        let mut rng = StdRng::seed_from_u64(batch as u64);
        let clean = Array4::from_shape_fn(
            (batch, m.image.channels, m.image.height, m.image.width),
            |_| rng.random_range(-1.0f32..1.0),
        );
        let params = m.degradation.sample_params(&mut rng, batch)?;
        let x = engine.degrade(clean.view(), &vec![t; batch], params.view())?;
        let levels = vec![t; batch];
        // CUDA graphs: the step session at this batch is made before the timed runs.
        engine.fix_step_batch(batch)?;
        // Every run restores the same batch: the largest difference of a later run from the
        // first shows that replays (CUDA graphs, unsynchronised steps) compute what a plain run
        // does.
        let mut first: Option<Array4<f32>> = None;
        let mut replay_diff = 0.0f32;
        let mut compare = |r: Array4<f32>| match &first {
            None => first = Some(r),
            Some(f) => {
                let d = f
                    .iter()
                    .zip(r.iter())
                    .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
                replay_diff = replay_diff.max(if d.is_nan() { f32::INFINITY } else { d });
            }
        };
        for _ in 0..cfg.warmup {
            let r = engine.restore(x.view(), &levels, params.view(), cfg.algorithm, None, false)?;
            compare(r.output);
        }
        let mut times = Vec::with_capacity(cfg.repeats);
        for _ in 0..cfg.repeats.max(1) {
            let s = Instant::now();
            let r = engine.restore(x.view(), &levels, params.view(), cfg.algorithm, None, false)?;
            times.push(s.elapsed().as_secs_f64());
            compare(r.output);
        }
        let (min, max) = (
            times.iter().copied().fold(f64::INFINITY, f64::min),
            times.iter().copied().fold(0.0, f64::max),
        );
        let med = median(&mut times);
        let steps = if cfg.algorithm == Algorithm::Direct {
            1
        } else {
            t
        };
        out.push(BenchResult {
            model: m.name.clone(),
            ep: engine.active_ep.name().into(),
            weights: options.weights,
            threads,
            cuda_graph: options.cuda_graph,
            no_sync: options.no_sync,
            batch,
            t,
            algorithm: cfg.algorithm,
            steps,
            repeats: times.len(),
            replay_max_abs_diff: replay_diff,
            median_seconds: med,
            min_seconds: min,
            max_seconds: max,
            images_per_second: batch as f64 / med,
            startup_seconds: startup,
            session_seconds: engine.session_seconds,
            rss_after_startup_mb: rss_startup,
            peak_rss_mb: memory_mb().1,
        });
        done(out.last().expect("pushed above"))?;
    }
    Ok(out)
}

/// A plain-text table of results.
/// The results of [`run`] on several execution providers: one JSON row per measurement, and one
/// per provider that is not there (skipped with its reason rather than stopping the others).
#[derive(Debug, Default)]
pub struct Providers {
    pub results: Vec<BenchResult>,
    pub rows: Vec<serde_json::Value>,
}

/// Runs the benchmark on each provider's options in turn (`cold bench --ep cpu,cuda,...`), and
/// writes the rows as JSON to `json` when given.
pub fn run_providers(
    model: &Path,
    providers: &[EngineOptions],
    cfg: &BenchConfig,
    json: Option<&Path>,
) -> Result<Providers> {
    if cfg.batches.is_empty() || cfg.batches.contains(&0) {
        return Err(crate::Error::invalid(
            "--batch takes positive batch sizes, e.g. --batch 64,256",
        ));
    }
    // The JSON is written again after every measurement, so that a run stopped by a time limit
    // keeps what it measured.
    let write = |rows: &[serde_json::Value]| -> Result<()> {
        if let Some(p) = json {
            let js = serde_json::to_vec_pretty(rows)
                .map_err(|e| crate::Error::invalid(e.to_string()))?;
            cold_core::atomic::write_atomic(p, &js)?;
        }
        Ok(())
    };
    let mut out = Providers::default();
    for options in providers {
        let mut rows = out.rows.clone();
        let r = run_each(model, options.clone(), cfg, &mut |x| {
            rows.push(serde_json::to_value(x).map_err(|e| crate::Error::invalid(e.to_string()))?);
            write(&rows)
        });
        match r {
            Ok(r) => {
                out.rows = rows;
                out.results.extend(r);
            }
            Err(e @ crate::Error::ExecutionProvider { .. }) => {
                let reason = e.to_string();
                tracing::warn!("skipped {}: {reason}", options.ep.name());
                out.rows
                    .push(serde_json::json!({"ep": options.ep.name(), "skipped": reason}));
            }
            Err(e) => return Err(e),
        }
    }
    write(&out.rows)?;
    Ok(out)
}

/// The results as a table for the terminal.
pub fn table(results: &[BenchResult]) -> String {
    let mut s = format!(
        "{:<12} {:<6} {:<6} {:>6} {:>4} {:>5} {:>11} {:>11} {:>11} {:>10} {:>9} {:>9}\n",
        "model",
        "ep",
        "weights",
        "batch",
        "t",
        "steps",
        "median s",
        "min s",
        "max s",
        "images/s",
        "start s",
        "RSS MB"
    );
    for r in results {
        s.push_str(&format!(
            "{:<12} {:<6} {:<6} {:>6} {:>4} {:>5} {:>11.4} {:>11.4} {:>11.4} {:>10.1} {:>9.3} {:>9.1}\n",
            r.model,
            r.ep,
            format!("{:?}", r.weights).to_lowercase(),
            r.batch,
            r.t,
            r.steps,
            r.median_seconds,
            r.min_seconds,
            r.max_seconds,
            r.images_per_second,
            r.startup_seconds,
            r.peak_rss_mb
        ));
    }
    s
}
