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
    pub batch: usize,
    pub t: usize,
    pub algorithm: Algorithm,
    /// Graph runs per restoration.
    pub steps: usize,
    pub repeats: usize,
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
        for _ in 0..cfg.warmup {
            engine.restore(x.view(), &levels, params.view(), cfg.algorithm, None, false)?;
        }
        let mut times = Vec::with_capacity(cfg.repeats);
        for _ in 0..cfg.repeats.max(1) {
            let s = Instant::now();
            let r = engine.restore(x.view(), &levels, params.view(), cfg.algorithm, None, false)?;
            times.push(s.elapsed().as_secs_f64());
            std::hint::black_box(r);
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
            batch,
            t,
            algorithm: cfg.algorithm,
            steps,
            repeats: times.len(),
            median_seconds: med,
            min_seconds: min,
            max_seconds: max,
            images_per_second: batch as f64 / med,
            startup_seconds: startup,
            session_seconds: engine.session_seconds,
            rss_after_startup_mb: rss_startup,
            peak_rss_mb: memory_mb().1,
        });
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
    let mut out = Providers::default();
    for options in providers {
        match run(model, options.clone(), cfg) {
            Ok(r) => {
                for x in &r {
                    out.rows.push(
                        serde_json::to_value(x)
                            .map_err(|e| crate::Error::invalid(e.to_string()))?,
                    );
                }
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
    if let Some(p) = json {
        let js = serde_json::to_vec_pretty(&out.rows)
            .map_err(|e| crate::Error::invalid(e.to_string()))?;
        cold_core::atomic::write_atomic(p, &js)?;
    }
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
