//! The manifest's `generation` section: a Gaussian mixture over the per-channel means of the
//! training images (fitted at export), and the starting images drawn from it. A drawn mean
//! becomes a constant image, plus `N(0, noise^2)` per pixel ("broken symmetry"; 0 reproduces the
//! "perfect symmetry" failure the paper shows), which Algorithm 2 then restores from t = T.
//!
//! Beyond the paper, a mixture may instead be over the first principal components of the
//! degraded training images at a level `L < T` ([`Subspace`]): a start is the mean image of
//! `D(x, L)` plus a drawn combination of those components, restored from t = L. For a grey
//! image the channel mean is one number, so the paper's start holds one degree of freedom per
//! sample; a strongly blurred image is still almost entirely a few low frequencies, which the
//! components capture.

use faer::{Mat, Side};
use ndarray::Array4;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The paper's broken-symmetry noise.
pub const DEFAULT_NOISE: f64 = 0.002;

/// One component of the mixture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Component {
    pub weight: f64,
    /// Per-channel mean, in the model's value range.
    pub mean: Vec<f64>,
    /// Full covariance, channels x channels (stored as its lower triangle, packed).
    #[serde(with = "crate::packed::symmetric")]
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
    /// For class-conditioned networks: one mixture per class (in the network's class order),
    /// fitted on that class's images, for `cold generate --class`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_class: Vec<Generation>,
    /// The classifier-free guidance weight `cold generate` uses by default with a class (chosen
    /// by measurement for the model, `cold-train steps --guidance`; 1 where absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<GuidanceDefault>,
    /// The temperature `cold generate` draws starts with by default (chosen by measurement for
    /// the mixture, `cold-train steps --temperature`; 1 where absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<TemperatureDefault>,
    /// When set, the mixtures (this one and the per-class ones) are over the coefficients of
    /// this subspace of `D(x, level)`, not over channel means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subspace: Option<Subspace>,
}

/// Principal components of the degraded training images `D(x, level)`, flattened C x H x W.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subspace {
    /// The level starts are drawn at (and restored from), 1..=T.
    pub level: usize,
    /// The mean of `D(x, level)` over the images fitted on, C * H * W values.
    #[serde(with = "crate::packed::floats")]
    pub mean: Vec<f32>,
    /// Orthonormal principal directions, the largest variance first, each C * H * W values.
    #[serde(with = "crate::packed::rows")]
    pub basis: Vec<Vec<f32>>,
    /// The share of the variance of `D(x, level)` the directions hold.
    pub explained: f64,
}

impl Subspace {
    /// Checks the shapes against images of `c x h x w` and a degradation of `steps` levels.
    pub fn validate(&self, (c, h, w): (usize, usize, usize), steps: usize) -> Result<()> {
        let n = c * h * w;
        let why = if !(1..=steps).contains(&self.level) {
            format!("level {} is not in 1..={steps}", self.level)
        } else if self.mean.len() != n {
            format!(
                "its mean image has {} values, not {c}x{h}x{w} = {n}: it was fitted at another \
                 size",
                self.mean.len()
            )
        } else if self.basis.is_empty() || self.basis.iter().any(|b| b.len() != n) {
            format!("it needs at least one direction of {n} values")
        } else {
            return Ok(());
        };
        Err(Error::InvalidArgument(format!(
            "generation subspace: {why}"
        )))
    }

    /// The image of coefficients `z` (C x H x W values): the mean plus `sum_j z_j basis_j`.
    pub fn image(&self, z: &[f64]) -> Vec<f64> {
        let mut out: Vec<f64> = self.mean.iter().map(|&m| f64::from(m)).collect();
        for (zj, b) in z.iter().zip(&self.basis) {
            for (o, &v) in out.iter_mut().zip(b) {
                *o += zj * f64::from(v);
            }
        }
        out
    }
}

/// A class-conditioned model's default guidance weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuidanceDefault {
    pub weight: f32,
    /// Why: the measurement it was chosen by.
    #[serde(default)]
    pub chosen_by: String,
}

/// A mixture's default temperature: starts are drawn from each component with its covariance
/// scaled by `value^2` (the spread around the component's mean times `value`): below 1, samples
/// nearer the typical images of their class, less varied (the "truncation" of GAN sampling).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TemperatureDefault {
    pub value: f64,
    /// Why: the measurement it was chosen by.
    #[serde(default)]
    pub chosen_by: String,
}

/// Checks a temperature: finite and non-negative (0 draws each component's mean).
pub fn check_temperature(t: f64) -> Result<()> {
    if t.is_finite() && t >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "temperature {t} must be a finite number >= 0 (1: the mixture as fitted)"
        )))
    }
}

impl Generation {
    /// The temperature starts are drawn with unless one is asked for: the bundle's, else 1.
    pub fn default_temperature(&self) -> f64 {
        self.temperature.as_ref().map_or(1.0, |t| t.value)
    }

    /// The number of values a component is over: the subspace's directions when there is
    /// one, else the channels.
    pub fn dims(&self, channels: usize) -> usize {
        self.subspace.as_ref().map_or(channels, |s| s.basis.len())
    }

    /// The level starts are restored from: the subspace's, else T.
    pub fn start_level(&self, steps: usize) -> usize {
        self.subspace.as_ref().map_or(steps, |s| s.level)
    }

    /// Checks weights, shapes and that every covariance has a Cholesky factor. `channels` is
    /// the images' (the components' size unless there is a subspace).
    pub fn validate(&self, channels: usize) -> Result<()> {
        let dims = self.dims(channels);
        for g in &self.by_class {
            if g.subspace.is_some() {
                return Err(Error::InvalidArgument(
                    "generation mixture: a per-class mixture has its own subspace (they share \
                     the overall one)"
                        .into(),
                ));
            }
            g.validate_dims(dims)?;
        }
        self.validate_dims(dims)
    }

    fn validate_dims(&self, channels: usize) -> Result<()> {
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

    /// The mixture to draw a start of `class` from: the class's own when fitted, else this one.
    pub fn for_class(&self, class: Option<usize>) -> &Generation {
        class.and_then(|c| self.by_class.get(c)).unwrap_or(self)
    }

    /// The share of each of `classes` classes in the training data (the image counts the
    /// per-class mixtures were fitted on), for drawing a class per sample; equal shares where
    /// the counts are missing (no per-class mixtures, or none of their counts).
    pub fn class_prior(&self, classes: usize) -> Vec<f64> {
        let counts: Vec<f64> = (0..classes)
            .map(|c| self.by_class.get(c).map_or(0.0, |g| g.images as f64))
            .collect();
        let total: f64 = counts.iter().sum();
        if self.by_class.len() != classes || total <= 0.0 {
            return vec![1.0 / classes.max(1) as f64; classes];
        }
        counts.iter().map(|n| n / total).collect()
    }

    /// Draws a class from `prior` (shares summing to 1) with one uniform number.
    pub fn draw_class(prior: &[f64], rng: &mut impl Rng) -> usize {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        for (c, p) in prior.iter().enumerate() {
            acc += p;
            if u < acc {
                return c;
            }
        }
        prior.len().saturating_sub(1)
    }

    /// Draws `n` starting images `[n, C, H, W]`: from the mixture, a mean per channel constant
    /// over the image, or with `subspace` (the overall mixture's, which the per-class ones share)
    /// the coefficients of an image of it; plus independent `N(0, noise^2)` per pixel. A
    /// component's draw is its mean plus `temperature` times a draw of its covariance.
    pub fn starts(
        &self,
        subspace: Option<&Subspace>,
        rng: &mut impl Rng,
        n: usize,
        (c, h, w): (usize, usize, usize),
        noise: f64,
        temperature: f64,
    ) -> Result<Array4<f32>> {
        check_temperature(temperature)?;
        let dims = match subspace {
            Some(s) => {
                s.validate((c, h, w), usize::MAX)?;
                s.basis.len()
            }
            None => c,
        };
        self.validate_dims(dims)?;
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
            let z: Vec<f64> = (0..dims).map(|_| StandardNormal.sample(rng)).collect();
            let l = &factors[k];
            let drawn: Vec<f64> = (0..dims)
                .map(|i| {
                    self.components[k].mean[i]
                        + temperature * (0..=i).map(|j| l[(i, j)] * z[j]).sum::<f64>()
                })
                .collect();
            let base: Vec<f64> = match subspace {
                Some(s) => s.image(&drawn),
                None => (0..c * h * w).map(|i| drawn[i / (h * w)]).collect(),
            };
            for (v, b) in img.iter_mut().zip(base) {
                let e: f64 = StandardNormal.sample(rng);
                *v = (b + noise * e) as f32;
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

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
            by_class: Vec::new(),
            guidance: None,
            temperature: None,
            subspace: None,
        }
    }

    #[test]
    fn classes_are_drawn_in_the_training_proportions() {
        let mut g = mixture();
        assert_eq!(
            g.class_prior(4),
            vec![0.25; 4],
            "no per-class mixtures: equal shares"
        );
        for (k, n) in [100usize, 300, 600].into_iter().enumerate() {
            let mut c = mixture();
            c.fitted_on = format!("class {k}");
            c.images = n;
            g.by_class.push(c);
        }
        let prior = g.class_prior(3);
        assert!((prior[0] - 0.1).abs() < 1e-12 && (prior[2] - 0.6).abs() < 1e-12);
        assert_eq!(
            g.class_prior(4),
            vec![0.25; 4],
            "counts for 3 of 4 classes: equal shares"
        );
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = [0usize; 3];
        for _ in 0..20_000 {
            seen[Generation::draw_class(&prior, &mut rng)] += 1;
        }
        for (k, want) in prior.iter().enumerate() {
            let got = seen[k] as f64 / 20_000.0;
            assert!((got - want).abs() < 0.015, "class {k}: {got} vs {want}");
        }
    }

    #[test]
    fn starts_follow_the_mixture_and_the_noise() {
        let g = mixture();
        g.validate(2).expect("valid");
        let mut rng = StdRng::seed_from_u64(5);
        let x = g
            .starts(None, &mut rng, 4000, (2, 3, 3), 0.0, 1.0)
            .expect("starts");
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
        let y = g.starts(None, &mut rng, 200, (1, 8, 8), 0.002, 1.0);
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
            by_class: Vec::new(),
            guidance: None,
            temperature: None,
            subspace: None,
        };
        let y = one
            .starts(None, &mut rng, 200, (1, 8, 8), 0.002, 1.0)
            .expect("starts");
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
        let draw = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            one.starts(None, &mut rng, 3, (1, 2, 2), 0.002, 1.0)
                .expect("draw")
        };
        assert_eq!(draw(9), draw(9));
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

    #[test]
    fn temperature_scales_the_spread_around_each_component_mean() {
        let mut g = mixture();
        g.components = vec![Component {
            weight: 1.0,
            mean: vec![0.3],
            covariance: vec![vec![0.04]],
        }];
        let draw = |t: f64| {
            let x = g
                .starts(None, &mut StdRng::seed_from_u64(7), 4000, (1, 2, 2), 0.0, t)
                .expect("starts");
            let v: Vec<f64> = x.outer_iter().map(|im| f64::from(im[[0, 0, 0]])).collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (mean, sd)
        };
        let (m1, sd1) = draw(1.0);
        let (m5, sd5) = draw(0.5);
        assert!(
            (sd1 - 0.2).abs() < 0.01 && (m1 - 0.3).abs() < 0.01,
            "{m1} {sd1}"
        );
        assert!(
            (sd5 - 0.1).abs() < 0.005 && (m5 - 0.3).abs() < 0.005,
            "{m5} {sd5}"
        );
        let (m0, sd0) = draw(0.0);
        assert!(
            sd0 < 1e-9 && (m0 - 0.3).abs() < 1e-6,
            "0: every start is the mean"
        );
        for bad in [-0.5, f64::NAN, f64::INFINITY] {
            let e = g
                .starts(None, &mut StdRng::seed_from_u64(7), 1, (1, 2, 2), 0.0, bad)
                .expect_err("refused");
            assert!(
                e.to_string().contains("must be a finite number >= 0"),
                "{e}"
            );
        }
    }
}
