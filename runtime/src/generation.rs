//! Unconditional generation (the paper's blur-based generation): starting images drawn from the
//! bundle's Gaussian mixture over channel means ([`cold_core::generation`]), restored by
//! Algorithm 2 from t = T. Models of noise (and animorphosis) start from their z at T instead and
//! sample with the estimated noise, as hot diffusion generates.

use std::path::Path;

use cold_core::imageio;
use ndarray::{Array2, Array4, Axis};
use rand::{SeedableRng, rngs::StdRng};

use crate::engine::{Algorithm, Engine};
use crate::error::{Error, Result};

/// Options of `cold generate`.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub count: usize,
    pub seed: u64,
    pub noise: f64,
    pub batch: usize,
    pub overwrite: bool,
}

/// Generates `count` images into `out_dir/samples/` (`00000.png`, ...) and a grid of the first 64
/// as `out_dir/grid.png` (apart, so that `cold fid OUT/samples` sees only the samples); the same
/// seed gives the same images. Existing outputs are only replaced with `overwrite`.
pub fn generate(engine: &mut Engine, out_dir: &Path, o: &GenerateOptions) -> Result<usize> {
    let m = engine.bundle.manifest.clone();
    // Mixes start from their own z (pure noise, or an image of the other data set) at T, where
    // the image's share sqrt(abar_T) is nearly 0, and sample with the estimated noise (the
    // paper's hot-diffusion generation); the other kinds from the mixture over channel means.
    let mix = m.degradation.transform.is_mix();
    let g = if mix { None } else { Some(m.mixture()?) };
    if o.count == 0 {
        return Err(Error::invalid("--count must be at least 1"));
    }
    if !(o.noise.is_finite() && o.noise >= 0.0) {
        return Err(Error::invalid(format!(
            "--noise {} must be a non-negative standard deviation",
            o.noise
        )));
    }
    let samples = out_dir.join(SAMPLES_DIR);
    let name = |i: usize| samples.join(format!("{i:05}.png"));
    if !o.overwrite && (0..o.count).any(|i| name(i).exists()) {
        return Err(Error::invalid(format!(
            "{} already holds generated images: choose another folder or pass --overwrite",
            out_dir.display()
        )));
    }
    std::fs::create_dir_all(&samples).map_err(|e| Error::io(&samples, e))?;
    let shape = (m.image.channels, m.image.height, m.image.width);
    let t = m.degradation.steps;
    let mut rng = StdRng::seed_from_u64(o.seed);
    let (starts, params, algorithm) = match &g {
        Some(g) => {
            let starts = g.starts(&mut rng, o.count, shape, o.noise)?;
            let params: Array2<f32> = m.degradation.sample_params(&mut rng, o.count)?;
            (starts, params, Algorithm::Two)
        }
        None => {
            let params: Array2<f32> = m.degradation.sample_params(&mut rng, o.count)?;
            let zeros = Array4::<f32>::zeros((o.count, shape.0, shape.1, shape.2));
            let starts = m
                .degradation
                .prepare()?
                .apply_uniform(zeros.view(), t, params.view())?;
            (starts, params, Algorithm::Estimated)
        }
    };
    let pb = cold_core::progress::progress_bar(o.count as u64, "generating");
    let mut grid_rows: Vec<Array4<f32>> = Vec::new();
    for start in (0..o.count).step_by(o.batch.max(1)) {
        let end = (start + o.batch.max(1)).min(o.count);
        let x = starts.slice(ndarray::s![start..end, .., .., ..]);
        let p = params.slice(ndarray::s![start..end, ..]);
        let out = engine
            .restore(x, &vec![t; end - start], p, algorithm, None, false)?
            .output;
        for (i, im) in out.outer_iter().enumerate() {
            imageio::save_unit_png(&name(start + i), im)?;
        }
        if grid_rows.iter().map(|a| a.len_of(Axis(0))).sum::<usize>() < 64 {
            grid_rows.push(out);
        }
        pb.inc((end - start) as u64);
    }
    pb.finish_and_clear();
    let views: Vec<_> = grid_rows.iter().map(|a| a.view()).collect();
    let all = ndarray::concatenate(Axis(0), &views).map_err(|e| Error::invalid(e.to_string()))?;
    write_grid(&out_dir.join("grid.png"), &all)?;
    Ok(o.count)
}

/// The folder under `cold generate`'s output that holds the samples.
pub const SAMPLES_DIR: &str = "samples";

/// Up to 64 images in an 8-wide grid, scaled 3x.
fn write_grid(path: &Path, images: &Array4<f32>) -> Result<()> {
    let n = images.len_of(Axis(0)).min(64);
    let cols = 8.min(n);
    let rows: Vec<Vec<_>> = (0..n.div_ceil(cols))
        .map(|r| {
            (r * cols..((r + 1) * cols).min(n))
                .map(|i| images.index_axis(Axis(0), i))
                .collect()
        })
        .collect();
    let im = imageio::grid(&rows)?;
    let im = im.resize(
        im.width() * 3,
        im.height() * 3,
        image::imageops::FilterType::Nearest,
    );
    Ok(imageio::save_png(path, &im)?)
}
