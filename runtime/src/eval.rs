//! `cold eval`: the paper's restoration metrics for a bundle on a test set: RMSE and SSIM of the
//! degraded input, the direct reconstruction, Algorithm 1 and Algorithm 2, at several levels,
//! plus a comparison grid.

use std::path::Path;

use ndarray::{Array2, Array4, Axis};

use crate::engine::{Algorithm, Engine};
use crate::error::Result;
use crate::fid::{Accumulator, FidNetwork, Stats, frechet_distance};
use cold_core::data::Dataset;
use cold_core::imageio::{self, BitDepth};
use cold_core::metrics::MetricSet;
use cold_core::progress::progress_bar;
use cold_core::report::{EvalReport, EvalRow, REPORT_VERSION, StepsRow};

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct EvalConfig {
    /// Degradation levels to start from.
    pub levels: Vec<usize>,
    /// Only the first N test images.
    pub limit: Option<usize>,
    pub batch: usize,
    /// Round the degraded inputs as a PNG of this depth would (None: float, the paper's protocol).
    pub input_depth: Option<BitDepth>,
    /// Seed of the per-image degradation parameters (inpainting centres, ...).
    pub seed: u64,
    /// Also compute FID against the originals (slow on a CPU: the Inception network runs on
    /// every output at 299x299).
    pub fid: bool,
    /// Numbers of sampling steps K to measure Algorithm 2 with, from the first level (the
    /// quality/speed curve of `--steps K`); empty: none.
    pub steps_curve: Vec<usize>,
}

/// One batch of test images and its degraded inputs at level `t`, as the restorer receives them.
struct Degraded {
    x0: Array4<f32>,
    xt: Array4<f32>,
    levels: Vec<usize>,
    params: Array2<f32>,
}

fn degraded_batch(
    engine: &mut Engine,
    data: &Dataset,
    cfg: &EvalConfig,
    all_params: &Array2<f32>,
    idx: &[usize],
    t: usize,
) -> Result<Degraded> {
    let x0 = data.batch(idx);
    let levels = vec![t; idx.len()];
    let params = all_params.select(Axis(0), idx);
    let mut xt = engine.degrade(x0.view(), &levels, params.view())?;
    if let Some(depth) = cfg.input_depth {
        xt.mapv_inplace(|v| imageio::quantize(v, depth));
    }
    Ok(Degraded {
        x0,
        xt,
        levels,
        params,
    })
}

/// Runs the evaluation; `grid` receives a comparison grid of the first 8 images at the first level.
pub fn evaluate(
    engine: &mut Engine,
    data: &Dataset,
    cfg: &EvalConfig,
    grid: Option<&Path>,
) -> Result<EvalReport> {
    let t0 = std::time::Instant::now();
    let n = cfg.limit.unwrap_or(data.len()).min(data.len());
    let mut rows = Vec::new();
    let deg = engine.bundle.manifest.degradation.clone();
    // One parameter row per test image, the same at every level.
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(cfg.seed);
    let all_params = deg.sample_params(&mut rng, n)?;
    let mut fid_net = if cfg.fid {
        Some(FidNetwork::open(engine.options.threads)?)
    } else {
        None
    };
    // The originals' statistics are the same at every level (and cached between runs).
    let mut originals: Option<Stats> = match &fid_net {
        Some(_) => cached_stats(data, n)?,
        None => None,
    };
    let mut original_acc = (fid_net.is_some() && originals.is_none()).then(Accumulator::default);
    // Mixes (noise) also have the estimated-noise sampler.
    let mut algorithms = vec![Algorithm::Direct, Algorithm::One, Algorithm::Two];
    if deg.transform.is_mix() {
        algorithms.push(Algorithm::Estimated);
    }
    let methods: Vec<&str> = std::iter::once("degraded")
        .chain(algorithms.iter().map(|a| a.label()))
        .collect();
    for &t in &cfg.levels {
        let mut sets: Vec<MetricSet> = vec![MetricSet::default(); methods.len()];
        let mut accs: Vec<Accumulator> = match &fid_net {
            Some(_) => (0..methods.len()).map(|_| Accumulator::default()).collect(),
            None => Vec::new(),
        };
        let pb = progress_bar(n as u64, &format!("t = {t}"));
        for start in (0..n).step_by(cfg.batch.max(1)) {
            let idx: Vec<usize> = (start..(start + cfg.batch).min(n)).collect();
            let Degraded {
                x0,
                xt,
                levels,
                params,
            } = degraded_batch(engine, data, cfg, &all_params, &idx, t)?;
            let mut outs = Vec::with_capacity(methods.len());
            for &a in &algorithms {
                outs.push(
                    engine
                        .restore(xt.view(), &levels, params.view(), a, None, false)?
                        .output,
                );
            }
            let outs: Vec<&Array4<f32>> = std::iter::once(&xt).chain(outs.iter()).collect();
            for (set, out) in sets.iter_mut().zip(&outs) {
                set.add(out.view(), x0.view());
            }
            if let Some(net) = fid_net.as_mut() {
                let unit = |a: &Array4<f32>| a.mapv(|v| (v + 1.0) / 2.0);
                for (acc, out) in accs.iter_mut().zip(&outs) {
                    acc.add(&net.features(unit(out).view())?);
                }
                if let Some(acc) = original_acc.as_mut() {
                    acc.add(&net.features(unit(&x0).view())?);
                }
            }
            if start == 0
                && t == cfg.levels[0]
                && let Some(p) = grid
            {
                let mut columns = outs.clone();
                columns.push(&x0);
                write_grid(p, &columns)?;
            }
            pb.inc(idx.len() as u64);
        }
        pb.finish_and_clear();
        if let Some(acc) = original_acc.take() {
            let s = acc.finish()?;
            save_cached_stats(data, n, &s);
            originals = Some(s);
        }
        let mut fids = vec![None; methods.len()];
        if let Some(orig) = &originals {
            for (f, acc) in fids.iter_mut().zip(accs) {
                *f = Some(frechet_distance(&acc.finish()?, orig)?);
            }
        }
        for ((m, set), fid) in methods.iter().zip(&sets).zip(fids) {
            rows.push(EvalRow {
                t,
                method: (*m).into(),
                scores: set.scores(),
                fid,
            });
        }
    }
    let mut steps_curve = Vec::new();
    if let Some(&t) = cfg.levels.first() {
        for &k in &cfg.steps_curve {
            let mut set = MetricSet::default();
            let mut acc = fid_net.as_ref().map(|_| Accumulator::default());
            let mut secs = 0.0;
            let pb = progress_bar(n as u64, &format!("t = {t}, {k} steps"));
            for start in (0..n).step_by(cfg.batch.max(1)) {
                let idx: Vec<usize> = (start..(start + cfg.batch).min(n)).collect();
                let Degraded {
                    x0,
                    xt,
                    levels,
                    params,
                } = degraded_batch(engine, data, cfg, &all_params, &idx, t)?;
                let s0 = std::time::Instant::now();
                let out = engine
                    .restore(
                        xt.view(),
                        &levels,
                        params.view(),
                        Algorithm::Two,
                        Some(k),
                        false,
                    )?
                    .output;
                secs += s0.elapsed().as_secs_f64();
                set.add(out.view(), x0.view());
                if let (Some(net), Some(acc)) = (fid_net.as_mut(), acc.as_mut()) {
                    acc.add(&net.features(out.mapv(|v| (v + 1.0) / 2.0).view())?);
                }
                pb.inc(idx.len() as u64);
            }
            pb.finish_and_clear();
            let fid = match (acc, &originals) {
                (Some(acc), Some(orig)) => Some(frechet_distance(&acc.finish()?, orig)?),
                _ => None,
            };
            steps_curve.push(StepsRow {
                t,
                steps: k,
                scores: set.scores(),
                fid,
                images_per_second: n as f64 / secs.max(1e-9),
            });
        }
    }
    Ok(EvalReport {
        version: REPORT_VERSION,
        steps_curve,
        model: engine.bundle.manifest.name.clone(),
        dataset: data.name.clone(),
        images: n,
        ep: engine.active_ep.name().into(),
        inputs: match cfg.input_depth {
            None => "float".into(),
            Some(BitDepth::Sixteen) => "16-bit".into(),
            Some(BitDepth::Eight) => "8-bit".into(),
        },
        seconds: t0.elapsed().as_secs_f64(),
        rows,
    })
}

/// Rows are images; columns degraded | direct | Algorithm 1 | Algorithm 2 | original.
fn write_grid(path: &Path, columns: &[&Array4<f32>]) -> Result<()> {
    let n = columns[0].len_of(Axis(0)).min(8);
    let rows: Vec<Vec<_>> = (0..n)
        .map(|i| columns.iter().map(|c| c.index_axis(Axis(0), i)).collect())
        .collect();
    Ok(imageio::save_grid(path, &rows, 4)?)
}

/// The test set of `cold eval`: `source` as on the command line (`mnist` is fetched into the
/// cache when no folder is given), fitted to the model's image size.
pub fn test_set(source: &str, d: &cold_core::degradation::Degradation) -> Result<Dataset> {
    let source: cold_core::data::Source = source.parse()?;
    if let cold_core::data::Source::Mnist(None) = source {
        cold_core::data::fetch_mnist(None)?;
    }
    let data = Dataset::load(&source, cold_core::data::Split::Test)?;
    Ok(data.fit_to(d.channels, d.height, d.width)?)
}

/// [`evaluate`], and with `out` the report written there: `eval.json`, `eval.md` and
/// `comparison.png` (the folder is made).
pub fn evaluate_into(
    engine: &mut Engine,
    data: &Dataset,
    cfg: &EvalConfig,
    out: Option<&Path>,
) -> Result<EvalReport> {
    if let Some(d) = out {
        std::fs::create_dir_all(d).map_err(|e| crate::Error::io(d, e))?;
    }
    let grid = out.map(|d| d.join("comparison.png"));
    let report = evaluate(engine, data, cfg, grid.as_deref())?;
    if let Some(d) = out {
        cold_core::files::write(&d.join(cold_core::report::FILE), &report)?;
        cold_core::atomic::write_atomic(&d.join("eval.md"), markdown(&report).as_bytes())?;
    }
    Ok(report)
}

/// A Markdown table of the report.
pub fn markdown(r: &EvalReport) -> String {
    let with_fid = r.rows.iter().any(|row| row.fid.is_some());
    let mut s = if with_fid {
        String::from("| t | method | RMSE | SSIM | FID |\n|---|---|---|---|---|\n")
    } else {
        String::from("| t | method | RMSE | SSIM |\n|---|---|---|---|\n")
    };
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {:.4} | {:.4} |",
            row.t, row.method, row.scores.rmse, row.scores.ssim
        ));
        if with_fid {
            match row.fid {
                Some(f) => s.push_str(&format!(" {f:.2} |")),
                None => s.push_str(" - |"),
            }
        }
        s.push('\n');
    }
    if !r.steps_curve.is_empty() {
        s.push_str("\nAlgorithm 2 with K sampling steps:\n\n| t | K | RMSE | SSIM | FID | images/s |\n|---|---|---|---|---|---|\n");
        for row in &r.steps_curve {
            s.push_str(&format!(
                "| {} | {} | {:.4} | {:.4} | {} | {:.1} |\n",
                row.t,
                row.steps,
                row.scores.rmse,
                row.scores.ssim,
                row.fid.map_or("-".to_string(), |f| format!("{f:.2}")),
                row.images_per_second
            ));
        }
    }
    s
}

/// The cache file of a test set's FID statistics: keyed by the images' pixels.
fn stats_cache_path(data: &Dataset, n: usize) -> Option<std::path::PathBuf> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(format!(
        "v1 {} {}x{}x{} {n}",
        data.name, data.channels, data.height, data.width
    ));
    for start in (0..n).step_by(1000) {
        let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
        for v in data.batch(&idx).iter() {
            h.update(v.to_le_bytes());
        }
    }
    let key = hex::encode(h.finalize());
    Some(
        crate::fid::cache_dir()
            .ok()?
            .join("stats")
            .join(format!("{}.fidstats", &key[..32])),
    )
}

fn cached_stats(data: &Dataset, n: usize) -> Result<Option<Stats>> {
    Ok(stats_cache_path(data, n)
        .filter(|p| p.is_file())
        .and_then(|p| Stats::load(&p).ok()))
}

fn save_cached_stats(data: &Dataset, n: usize, s: &Stats) {
    if let Some(p) = stats_cache_path(data, n) {
        let _ = std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")));
        if let Err(e) = s.save(&p) {
            tracing::warn!("could not cache the FID statistics of the originals: {e}");
        }
    }
}
