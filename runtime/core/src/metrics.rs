//! Restoration metrics with the reference's protocol: images mapped from [-1, 1] to [0, 1]
//! without clamping; RMSE over all pixels; SSIM as `pytorch_msssim.ssim(data_range=1)` (11x11
//! Gaussian window, sigma 1.5, K1 0.01, K2 0.03, valid positions only, mean over channels and
//! images). FID is not computed here yet: [`MetricSet`] is where it joins.

use ndarray::{Array2, ArrayView2, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

/// SSIM settings (the reference's defaults).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SsimConfig {
    pub window: usize,
    pub sigma: f64,
    pub k1: f64,
    pub k2: f64,
    pub data_range: f64,
}

impl Default for SsimConfig {
    fn default() -> Self {
        SsimConfig {
            window: 11,
            sigma: 1.5,
            k1: 0.01,
            k2: 0.03,
            data_range: 1.0,
        }
    }
}

fn gaussian_window(size: usize, sigma: f64) -> Vec<f64> {
    let c = (size / 2) as f64;
    let g: Vec<f64> = (0..size)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| v / s).collect()
}

/// Valid separable filtering of an image with a 1-D window along both axes.
fn filter_valid(x: &Array2<f64>, g: &[f64]) -> Array2<f64> {
    let (h, w) = x.dim();
    let k = g.len();
    let (oh, ow) = (h + 1 - k, w + 1 - k);
    let mut rows = Array2::<f64>::zeros((h, ow));
    for i in 0..h {
        for j in 0..ow {
            rows[[i, j]] = (0..k).map(|a| g[a] * x[[i, j + a]]).sum();
        }
    }
    let mut out = Array2::<f64>::zeros((oh, ow));
    for i in 0..oh {
        for j in 0..ow {
            out[[i, j]] = (0..k).map(|a| g[a] * rows[[i + a, j]]).sum();
        }
    }
    out
}

/// SSIM of one channel pair, both in [0, data_range].
pub(crate) fn ssim_channel(x: ArrayView2<f64>, y: ArrayView2<f64>, cfg: &SsimConfig) -> f64 {
    let g = gaussian_window(cfg.window, cfg.sigma);
    let (x, y) = (x.to_owned(), y.to_owned());
    let c1 = (cfg.k1 * cfg.data_range).powi(2);
    let c2 = (cfg.k2 * cfg.data_range).powi(2);
    let mu_x = filter_valid(&x, &g);
    let mu_y = filter_valid(&y, &g);
    let xx = filter_valid(&(&x * &x), &g);
    let yy = filter_valid(&(&y * &y), &g);
    let xy = filter_valid(&(&x * &y), &g);
    let mut total = 0.0;
    for (((mx, my), (sxx, syy)), sxy) in mu_x.iter().zip(&mu_y).zip(xx.iter().zip(&yy)).zip(&xy) {
        let (vx, vy, cov) = (sxx - mx * mx, syy - my * my, sxy - mx * my);
        let cs = (2.0 * cov + c2) / (vx + vy + c2);
        let l = (2.0 * mx * my + c1) / (mx * mx + my * my + c1);
        total += l * cs;
    }
    total / mu_x.len() as f64
}

/// Maps [-1, 1] images to [0, 1] (no clamping), as float64.
fn to_unit(x: ArrayView2<f32>) -> Array2<f64> {
    x.mapv(|v| (f64::from(v) + 1.0) / 2.0)
}

/// Per-image SSIM of two `[B, C, H, W]` batches in [-1, 1] (mean over channels).
pub(crate) fn ssim_per_image(a: ArrayView4<f32>, b: ArrayView4<f32>, cfg: &SsimConfig) -> Vec<f64> {
    assert_eq!(a.dim(), b.dim(), "SSIM needs batches of one shape");
    a.outer_iter()
        .zip(b.outer_iter())
        .map(|(ia, ib)| {
            let c = ia.len_of(Axis(0));
            (0..c)
                .map(|ch| {
                    let x = to_unit(ia.index_axis(Axis(0), ch));
                    let y = to_unit(ib.index_axis(Axis(0), ch));
                    ssim_channel(x.view(), y.view(), cfg)
                })
                .sum::<f64>()
                / c as f64
        })
        .collect()
}

/// Sum of squared differences in [0, 1] units and the number of values.
pub(crate) fn squared_error(a: ArrayView4<f32>, b: ArrayView4<f32>) -> (f64, usize) {
    assert_eq!(a.dim(), b.dim(), "RMSE needs batches of one shape");
    let s = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| ((f64::from(*x) - f64::from(*y)) / 2.0).powi(2))
        .sum();
    (s, a.len())
}

/// Running RMSE and SSIM over a data set, batch by batch.
#[derive(Clone, Debug, Default)]
pub struct MetricSet {
    sq: f64,
    n: usize,
    ssim_sum: f64,
    images: usize,
}

/// Final metric values.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Scores {
    pub rmse: f64,
    pub ssim: f64,
    pub images: usize,
}

impl MetricSet {
    /// Adds a batch of outputs compared with their originals.
    pub fn add(&mut self, output: ArrayView4<f32>, original: ArrayView4<f32>) {
        let (s, n) = squared_error(output, original);
        self.sq += s;
        self.n += n;
        let ss = ssim_per_image(output, original, &SsimConfig::default());
        self.images += ss.len();
        self.ssim_sum += ss.iter().sum::<f64>();
    }

    pub fn scores(&self) -> Scores {
        Scores {
            rmse: if self.n == 0 {
                f64::NAN
            } else {
                (self.sq / self.n as f64).sqrt()
            },
            ssim: if self.images == 0 {
                f64::NAN
            } else {
                self.ssim_sum / self.images as f64
            },
            images: self.images,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    #[test]
    fn identical_images_have_ssim_one_and_rmse_zero() {
        let a = Array4::from_shape_fn((2, 3, 16, 20), |(b, c, i, j)| {
            ((b + c * 3 + i * j) % 7) as f32 / 3.5 - 1.0
        });
        for s in ssim_per_image(a.view(), a.view(), &SsimConfig::default()) {
            assert!((s - 1.0).abs() < 1e-12);
        }
        assert_eq!(squared_error(a.view(), a.view()).0, 0.0);
    }

    #[test]
    fn constant_images_match_the_closed_form() {
        // For constant images the variances vanish: SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1).
        let a = Array4::<f32>::from_elem((1, 1, 12, 12), 0.0); // 0.5 in [0, 1]
        let b = Array4::<f32>::from_elem((1, 1, 12, 12), -0.5); // 0.25
        let c1 = 0.01f64.powi(2);
        let want = (2.0 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1);
        let got = ssim_per_image(a.view(), b.view(), &SsimConfig::default())[0];
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let mut m = MetricSet::default();
        m.add(a.view(), b.view());
        assert!((m.scores().rmse - 0.25).abs() < 1e-12);
    }

    #[test]
    fn real_digits_match_scikit_image() {
        // Values from scikit-image 0.25.2, `structural_similarity(a, b, data_range=1.0,
        // gaussian_weights=True, sigma=1.5, use_sample_covariance=False, win_size=11)`: the same
        // window, constants and valid region as pytorch_msssim, on the first two MNIST test digits.
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist");
        let d = crate::data::Dataset::load(
            &crate::data::Source::Mnist(Some(dir)),
            crate::data::Split::Test,
        )
        .expect("fixture");
        let x = d.batch(&[0, 1]);
        let (a, b) = (
            x.slice(ndarray::s![0..1, .., .., ..]),
            x.slice(ndarray::s![1..2, .., .., ..]),
        );
        let s01 = ssim_per_image(a, b, &SsimConfig::default())[0];
        assert!((s01 - (-0.008_811_209_122_456_974)).abs() < 1e-9, "{s01}");
        let half = a.mapv(|v| v * 0.5);
        let s_half = ssim_per_image(a, half.view(), &SsimConfig::default())[0];
        assert!((s_half - 0.456_087_180_425_443_5).abs() < 1e-9, "{s_half}");
    }

    #[test]
    fn window_is_the_reference_gaussian() {
        let g = gaussian_window(11, 1.5);
        assert!((g.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((g[5] - 0.266_011_724_861_794).abs() < 1e-12, "{}", g[5]);
    }
}
