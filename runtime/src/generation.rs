//! Unconditional generation (the paper's blur-based generation): a Gaussian mixture over the
//! per-channel means of the training images, stored in the bundle's manifest at export; a drawn
//! mean becomes a constant image, plus `N(0, noise^2)` per pixel ("broken symmetry"; 0 reproduces
//! the "perfect symmetry" failure the paper shows), and Algorithm 2 restores it from t = T.
//! Models of noise (and animorphosis) start from their z at T instead and sample with the
//! estimated noise, as hot diffusion generates.

use std::path::Path;

use faer::{Mat, Side};
use ndarray::{Array2, Array4, Axis};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::bundle::Manifest;
use crate::engine::{Algorithm, Engine};
use crate::error::{Error, Result};
use crate::imageio;

/// The paper's broken-symmetry noise.
pub const DEFAULT_NOISE: f64 = 0.002;

/// One component of the mixture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub weight: f64,
    /// Per-channel mean, in the model's value range.
    pub mean: Vec<f64>,
    /// Full covariance, channels x channels.
    pub covariance: Vec<Vec<f64>>,
}

/// The manifest's `generation` field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// Gaussian mixture over per-channel image means (full covariances).
    pub components: Vec<Component>,
    /// The data set and the number of its images the mixture was fitted on.
    pub fitted_on: String,
    pub images: usize,
}

impl Generation {
    /// The bundle's mixture; an error that says how to add one when there is none.
    pub fn of(manifest: &Manifest) -> Result<Self> {
        let Some(v) = &manifest.generation else {
            return Err(Error::InvalidArgument(format!(
                "model {} has no Gaussian mixture for generation: export it again with \
                 `cold-train export` (which fits one), or add one to this bundle with \
                 `cold-train mixture --model <bundle> --dataset <its data set>`",
                manifest.name
            )));
        };
        let g: Generation = serde_json::from_value(v.clone()).map_err(|e| {
            Error::InvalidArgument(format!(
                "model {}: the generation mixture in manifest.json is invalid ({e}); fit it again \
                 with `cold-train mixture`",
                manifest.name
            ))
        })?;
        g.validate(manifest.image.channels)?;
        Ok(g)
    }

    /// Checks weights, shapes and that every covariance has a Cholesky factor.
    pub fn validate(&self, channels: usize) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidArgument(format!("generation mixture: {why}")));
        if self.components.is_empty() {
            return bad("no components".into());
        }
        let total: f64 = self.components.iter().map(|c| c.weight).sum();
        if !(total.is_finite() && (total - 1.0).abs() < 1e-6)
            || self.components.iter().any(|c| c.weight < 0.0)
        {
            return bad(format!(
                "weights must be non-negative and sum to 1, got {total}"
            ));
        }
        for c in &self.components {
            if c.mean.len() != channels
                || c.covariance.len() != channels
                || c.covariance.iter().any(|r| r.len() != channels)
            {
                return bad(format!("a component is not {channels}-dimensional"));
            }
            cholesky(&c.covariance)?;
        }
        Ok(())
    }

    /// Draws `n` starting images `[n, C, H, W]`: a mean per image from the mixture, constant
    /// over the image, plus independent `N(0, noise^2)` per pixel.
    pub fn starts(
        &self,
        rng: &mut impl Rng,
        n: usize,
        (c, h, w): (usize, usize, usize),
        noise: f64,
    ) -> Result<Array4<f32>> {
        self.validate(c)?;
        let factors: Vec<Mat<f64>> = self
            .components
            .iter()
            .map(|k| cholesky(&k.covariance))
            .collect::<Result<_>>()?;
        let mut out = Array4::<f32>::zeros((n, c, h, w));
        for mut img in out.outer_iter_mut() {
            let u: f64 = rng.random();
            let mut acc = 0.0;
            let mut k = self.components.len() - 1;
            for (i, comp) in self.components.iter().enumerate() {
                acc += comp.weight;
                if u < acc {
                    k = i;
                    break;
                }
            }
            let z: Vec<f64> = (0..c).map(|_| StandardNormal.sample(rng)).collect();
            let l = &factors[k];
            for (ch, mut plane) in img.outer_iter_mut().enumerate() {
                let m =
                    self.components[k].mean[ch] + (0..=ch).map(|j| l[(ch, j)] * z[j]).sum::<f64>();
                plane.mapv_inplace(|_| {
                    let e: f64 = StandardNormal.sample(rng);
                    (m + noise * e) as f32
                });
            }
        }
        Ok(out)
    }
}

/// The lower Cholesky factor of a covariance, faer's LLT.
fn cholesky(cov: &[Vec<f64>]) -> Result<Mat<f64>> {
    let n = cov.len();
    let m = Mat::from_fn(n, n, |i, j| cov[i][j]);
    let llt = m.llt(Side::Lower).map_err(|e| {
        Error::InvalidArgument(format!(
            "generation mixture: a covariance is not positive definite ({e:?})"
        ))
    })?;
    Ok(llt.L().to_owned())
}

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
    let g = if mix { None } else { Some(Generation::of(&m)?) };
    if o.count == 0 {
        return Err(Error::InvalidArgument("--count must be at least 1".into()));
    }
    if !(o.noise.is_finite() && o.noise >= 0.0) {
        return Err(Error::InvalidArgument(format!(
            "--noise {} must be a non-negative standard deviation",
            o.noise
        )));
    }
    let samples = out_dir.join(SAMPLES_DIR);
    let name = |i: usize| samples.join(format!("{i:05}.png"));
    if !o.overwrite && (0..o.count).any(|i| name(i).exists()) {
        return Err(Error::InvalidArgument(format!(
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
    let pb = crate::folder::progress_bar(o.count as u64, "generating");
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
    let all =
        ndarray::concatenate(Axis(0), &views).map_err(|e| Error::InvalidArgument(e.to_string()))?;
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
    imageio::save_png(path, &im)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixture() -> Generation {
        Generation {
            components: vec![
                Component {
                    weight: 0.25,
                    mean: vec![-0.8, 0.1],
                    covariance: vec![vec![0.01, 0.0], vec![0.0, 0.04]],
                },
                Component {
                    weight: 0.75,
                    mean: vec![0.5, -0.2],
                    covariance: vec![vec![0.04, 0.02], vec![0.02, 0.09]],
                },
            ],
            fitted_on: "test".into(),
            images: 0,
        }
    }

    #[test]
    fn starts_follow_the_mixture_and_the_noise() {
        let g = mixture();
        g.validate(2).expect("valid");
        let mut rng = StdRng::seed_from_u64(5);
        let x = g.starts(&mut rng, 4000, (2, 3, 3), 0.0).expect("starts");
        // perfect symmetry: every image is constant per channel
        for img in x.outer_iter() {
            for plane in img.outer_iter() {
                let v = plane[[0, 0]];
                assert!(plane.iter().all(|&p| p == v));
            }
        }
        // the share of the first component and the means
        let first = x.outer_iter().filter(|im| im[[0, 0, 0]] < -0.4).count() as f64 / 4000.0;
        assert!((first - 0.25).abs() < 0.03, "{first}");
        let mean1: f64 = x
            .outer_iter()
            .map(|im| f64::from(im[[1, 0, 0]]))
            .sum::<f64>()
            / 4000.0;
        let want = 0.25 * 0.1 + 0.75 * -0.2;
        assert!((mean1 - want).abs() < 0.02, "{mean1} vs {want}");
        // broken symmetry: pixel noise of the asked standard deviation
        let mut rng = StdRng::seed_from_u64(6);
        let y = g.starts(&mut rng, 200, (1, 8, 8), 0.002);
        assert!(
            y.is_err(),
            "a 2-channel mixture on 1-channel images is refused"
        );
        let one = Generation {
            components: vec![Component {
                weight: 1.0,
                mean: vec![0.0],
                covariance: vec![vec![1e-6]],
            }],
            fitted_on: String::new(),
            images: 0,
        };
        let y = one.starts(&mut rng, 200, (1, 8, 8), 0.002).expect("starts");
        let within: Vec<f64> = y
            .outer_iter()
            .flat_map(|im| {
                let m = im.mean().unwrap_or(0.0);
                im.iter()
                    .map(move |&v| f64::from(v - m))
                    .collect::<Vec<_>>()
            })
            .collect();
        let sd = (within.iter().map(|v| v * v).sum::<f64>() / within.len() as f64).sqrt();
        assert!((sd - 0.002).abs() < 0.0002, "{sd}");
        // the same seed, the same draws
        let a = one
            .starts(&mut StdRng::seed_from_u64(9), 3, (1, 2, 2), 0.002)
            .expect("a");
        let b = one
            .starts(&mut StdRng::seed_from_u64(9), 3, (1, 2, 2), 0.002)
            .expect("b");
        assert_eq!(a, b);
    }

    #[test]
    fn invalid_mixtures_are_refused() {
        let mut g = mixture();
        g.components[0].weight = 0.5;
        assert!(g.validate(2).is_err(), "weights must sum to 1");
        let mut g = mixture();
        g.components[1].covariance = vec![vec![1.0, 2.0], vec![2.0, 1.0]];
        assert!(g.validate(2).is_err(), "not positive definite");
        assert!(mixture().validate(3).is_err(), "wrong channel count");
    }
}
