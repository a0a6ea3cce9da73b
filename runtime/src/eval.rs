//! `cold eval`: the paper's restoration metrics for a bundle on a test set: RMSE and SSIM of the
//! degraded input, the direct reconstruction, Algorithm 1 and Algorithm 2, at several levels,
//! plus a comparison grid.

use std::path::Path;

use ndarray::{Array4, Axis};
use serde::Serialize;

use crate::data::Dataset;
use crate::engine::{Algorithm, Engine};
use crate::error::Result;
use crate::folder::progress_bar;
use crate::imageio::{self, BitDepth};
use crate::metrics::{MetricSet, Scores};

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
}

/// One line of the table.
#[derive(Clone, Debug, Serialize)]
pub struct EvalRow {
    pub t: usize,
    pub method: String,
    #[serde(flatten)]
    pub scores: Scores,
}

/// The whole evaluation.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub model: String,
    pub dataset: String,
    pub images: usize,
    pub ep: String,
    /// `float`, `16-bit` or `8-bit`: how the degraded inputs reached the restorer.
    pub inputs: String,
    pub seconds: f64,
    pub rows: Vec<EvalRow>,
}

pub const METHODS: [&str; 4] = ["degraded", "direct", "algorithm1", "algorithm2"];

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
    let all_params = deg.sample_params(&mut rng, n);
    for &t in &cfg.levels {
        let mut sets: Vec<MetricSet> = vec![MetricSet::default(); 4];
        let pb = progress_bar(n as u64, &format!("t = {t}"));
        for start in (0..n).step_by(cfg.batch.max(1)) {
            let idx: Vec<usize> = (start..(start + cfg.batch).min(n)).collect();
            let x0 = data.batch(&idx);
            let levels = vec![t; idx.len()];
            let params = all_params.select(Axis(0), &idx);
            let mut xt = engine.degrade(x0.view(), &levels, params.view())?;
            if let Some(depth) = cfg.input_depth {
                xt.mapv_inplace(|v| imageio::quantize(v, depth));
            }
            let direct = engine
                .restore(
                    xt.view(),
                    &levels,
                    params.view(),
                    Algorithm::Direct,
                    None,
                    false,
                )?
                .output;
            let a1 = engine
                .restore(
                    xt.view(),
                    &levels,
                    params.view(),
                    Algorithm::One,
                    None,
                    false,
                )?
                .output;
            let a2 = engine
                .restore(
                    xt.view(),
                    &levels,
                    params.view(),
                    Algorithm::Two,
                    None,
                    false,
                )?
                .output;
            for (set, out) in sets.iter_mut().zip([&xt, &direct, &a1, &a2]) {
                set.add(out.view(), x0.view());
            }
            if start == 0
                && t == cfg.levels[0]
                && let Some(p) = grid
            {
                write_grid(p, &[&xt, &direct, &a1, &a2, &x0])?;
            }
            pb.inc(idx.len() as u64);
        }
        pb.finish_and_clear();
        for (m, set) in METHODS.iter().zip(&sets) {
            rows.push(EvalRow {
                t,
                method: (*m).into(),
                scores: set.scores(),
            });
        }
    }
    Ok(EvalReport {
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
    let im = imageio::grid(&rows)?;
    let im = im.resize(
        im.width() * 4,
        im.height() * 4,
        image::imageops::FilterType::Nearest,
    );
    imageio::save_png(path, &im)
}

/// A Markdown table of the report.
pub fn markdown(r: &EvalReport) -> String {
    let mut s = String::from("| t | method | RMSE | SSIM |\n|---|---|---|---|\n");
    for row in &r.rows {
        s.push_str(&format!(
            "| {} | {} | {:.4} | {:.4} |\n",
            row.t, row.method, row.scores.rmse, row.scores.ssim
        ));
    }
    s
}
