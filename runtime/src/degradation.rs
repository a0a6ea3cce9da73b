//! Degradations D(x, t): one serialisable description that the trainer, the exported ONNX graph
//! and the runtime are all built from.
//!
//! A Gaussian blur step is a depthwise convolution with a normalised 2-D Gaussian. The 2-D kernel
//! is the outer product of a normalised 1-D kernel with itself and circular / reflect padding act
//! per axis, so one blur step is `M_h X M_w^T` for an H x H matrix `M_h` and a W x W matrix `M_w`.
//! Composing t steps gives `D(x, t) = L_t X R_t` with `L_t = M_h(t-1) ... M_h(0)` and
//! `R_t = M_w(0)^T ... M_w(t-1)^T`, precomputed once in float64. Applying D therefore costs two
//! small matrix products per channel for every t, where the reference recomposes t convolutions.

use ndarray::{Array2, Array3, Array4, ArrayView4, Axis, s};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How a convolution reads pixels outside the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Padding {
    /// Wrap around (PyTorch `padding_mode="circular"`).
    Circular,
    /// Mirror without repeating the edge pixel (PyTorch `padding_mode="reflect"`).
    Reflect,
}

/// The standard deviation of the Gaussian used at blur step `i` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "routine", rename_all = "snake_case")]
pub enum BlurSchedule {
    /// `sigma_i = sigma` (the reference's "Constant").
    Constant { sigma: f64 },
    /// `sigma_i = sigma * (i + 1)` (the reference's "Incremental").
    Incremental { sigma: f64 },
    /// `sigma_i = exp(rate * i)` (the reference's "Exponential").
    Exponential { rate: f64 },
    /// `sigma_i = i / 100 + 0.35` (the reference's CIFAR-10 "Special_6_routine").
    Cifar,
}

impl BlurSchedule {
    /// Sigma of step `i` (0-based).
    pub fn sigma(&self, i: usize) -> f64 {
        let i = i as f64;
        match *self {
            BlurSchedule::Constant { sigma } => sigma,
            BlurSchedule::Incremental { sigma } => sigma * (i + 1.0),
            BlurSchedule::Exponential { rate } => (rate * i).exp(),
            BlurSchedule::Cifar => i / 100.0 + 0.35,
        }
    }
}

/// A Gaussian blur process.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Blur {
    /// Side of the square kernel (odd).
    pub kernel_size: usize,
    pub schedule: BlurSchedule,
    pub padding: Padding,
}

/// The kind of transform a degradation applies. Degradations are data: new kinds are new variants
/// that still reduce to per-t operators.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transform {
    Blur(Blur),
}

/// A complete degradation description: the transform, the number of steps T and the image size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Degradation {
    pub transform: Transform,
    /// T: the most degraded level. Levels run 0 (clean) ..= T.
    pub steps: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// Names of the built-in presets.
pub const PRESETS: &[&str] = &["mnist", "cifar10"];

impl Degradation {
    /// A named preset: `mnist` (kernel 11, sigma 7, Constant, circular, T 20, 1x28x28) or
    /// `cifar10` (kernel 11, sigma_i = i/100 + 0.35, reflect, T 50, 3x32x32), as in the paper.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "mnist" => Ok(Degradation {
                transform: Transform::Blur(Blur {
                    kernel_size: 11,
                    schedule: BlurSchedule::Constant { sigma: 7.0 },
                    padding: Padding::Circular,
                }),
                steps: 20,
                channels: 1,
                height: 28,
                width: 28,
            }),
            "cifar10" => Ok(Degradation {
                transform: Transform::Blur(Blur {
                    kernel_size: 11,
                    schedule: BlurSchedule::Cifar,
                    padding: Padding::Reflect,
                }),
                steps: 50,
                channels: 3,
                height: 32,
                width: 32,
            }),
            other => Err(Error::InvalidArgument(format!(
                "unknown degradation preset '{other}': choose one of {}",
                PRESETS.join(", ")
            ))),
        }
    }

    /// Checks that the description can be turned into operators.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(Error::InvalidArgument(
                "a degradation needs T >= 1 steps".into(),
            ));
        }
        if self.channels == 0 || self.height == 0 || self.width == 0 {
            return Err(Error::InvalidArgument(format!(
                "image size {}x{}x{} is empty",
                self.channels, self.height, self.width
            )));
        }
        match self.transform {
            Transform::Blur(b) => {
                if b.kernel_size == 0 || b.kernel_size % 2 == 0 {
                    return Err(Error::InvalidArgument(format!(
                        "blur kernel size must be odd, got {}",
                        b.kernel_size
                    )));
                }
                let r = b.kernel_size / 2;
                if b.padding == Padding::Reflect && (r >= self.height || r >= self.width) {
                    return Err(Error::InvalidArgument(format!(
                        "reflect padding of {r} pixels needs images larger than {r}x{r}, got {}x{}",
                        self.height, self.width
                    )));
                }
                for i in 0..self.steps {
                    let sigma = b.schedule.sigma(i);
                    if !(sigma.is_finite() && sigma > 0.0) {
                        return Err(Error::InvalidArgument(format!(
                            "blur step {i} has sigma {sigma}: sigmas must be finite and positive"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// The per-level operators `L_t`, `R_t` for t = 0..=T.
    pub fn operators(&self) -> Result<Operators> {
        self.validate()?;
        let (rows, cols) = match self.transform {
            Transform::Blur(b) => (
                blur_axis_operators(&b, self.steps, self.height),
                blur_axis_operators(&b, self.steps, self.width),
            ),
        };
        // cols holds C_t with x -> C_t x acting on a column vector along W; the right factor is C_t^T.
        let right = Array3::from_shape_fn((self.steps + 1, self.width, self.width), |(t, i, j)| {
            cols[[t, j, i]]
        });
        Ok(Operators {
            left: rows.mapv(|v| v as f32),
            right: right.mapv(|v| v as f32),
            left64: rows,
            right64: right,
        })
    }

    /// The sigma of each blur step (for reports).
    pub fn describe(&self) -> String {
        match self.transform {
            Transform::Blur(b) => {
                let sched = match b.schedule {
                    BlurSchedule::Constant { sigma } => format!("constant sigma {sigma}"),
                    BlurSchedule::Incremental { sigma } => {
                        format!("incremental sigma {sigma}*(i+1)")
                    }
                    BlurSchedule::Exponential { rate } => {
                        format!("exponential sigma exp({rate}*i)")
                    }
                    BlurSchedule::Cifar => "cifar sigma i/100+0.35".to_string(),
                };
                let pad = match b.padding {
                    Padding::Circular => "circular",
                    Padding::Reflect => "reflect",
                };
                format!(
                    "gaussian blur, kernel {k}x{k}, {sched}, {pad} padding, T {t}, image {c}x{h}x{w}",
                    k = b.kernel_size,
                    t = self.steps,
                    c = self.channels,
                    h = self.height,
                    w = self.width
                )
            }
        }
    }
}

/// Normalised 1-D Gaussian taps, centred on `size / 2` (torchgeometry's `get_gaussian_kernel`).
pub fn gaussian_kernel_1d(size: usize, sigma: f64) -> Vec<f64> {
    let c = (size / 2) as f64;
    let g: Vec<f64> = (0..size)
        .map(|i| {
            let x = i as f64 - c;
            (-(x * x) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f64 = g.iter().sum();
    g.into_iter().map(|v| v / sum).collect()
}

/// Index of the pixel that padded position `i` (which may lie outside 0..n) reads.
pub fn pad_index(i: isize, n: usize, padding: Padding) -> usize {
    let n = n as isize;
    let j = match padding {
        Padding::Circular => i.rem_euclid(n),
        Padding::Reflect => {
            let period = 2 * (n - 1);
            if period == 0 {
                0
            } else {
                let m = i.rem_euclid(period);
                if m < n { m } else { period - m }
            }
        }
    };
    j as usize
}

/// One blur step along an axis of length n as an n x n matrix (cross-correlation, as PyTorch).
fn blur_step_matrix(kernel: &[f64], n: usize, padding: Padding) -> Array2<f64> {
    let r = (kernel.len() / 2) as isize;
    let mut m = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for (k, w) in kernel.iter().enumerate() {
            let src = pad_index(i as isize + k as isize - r, n, padding);
            m[[i, src]] += w;
        }
    }
    m
}

/// `[T+1, n, n]`: the composed operator of t steps along one axis, t = 0..=T.
fn blur_axis_operators(b: &Blur, steps: usize, n: usize) -> Array3<f64> {
    let mut out = Array3::<f64>::zeros((steps + 1, n, n));
    let mut acc = Array2::<f64>::eye(n);
    out.slice_mut(s![0, .., ..]).assign(&acc);
    for i in 0..steps {
        let k = gaussian_kernel_1d(b.kernel_size, b.schedule.sigma(i));
        let m = blur_step_matrix(&k, n, b.padding);
        acc = m.dot(&acc);
        out.slice_mut(s![i + 1, .., ..]).assign(&acc);
    }
    out
}

/// D the way the reference computes it: `t` direct 2-D convolutions of one channel, in float64.
/// O(t k^2 H W); the ground truth for [`Operators`] in tests and the baseline in benchmarks.
pub fn iterated_blur(x: &Array2<f64>, b: &Blur, t: usize) -> Array2<f64> {
    let (h, w) = x.dim();
    let r = (b.kernel_size / 2) as isize;
    let mut cur = x.clone();
    for step in 0..t {
        let g = gaussian_kernel_1d(b.kernel_size, b.schedule.sigma(step));
        let mut next = Array2::<f64>::zeros((h, w));
        for i in 0..h {
            for j in 0..w {
                let mut acc = 0.0;
                for (ki, gi) in g.iter().enumerate() {
                    let si = pad_index(i as isize + ki as isize - r, h, b.padding);
                    for (kj, gj) in g.iter().enumerate() {
                        let sj = pad_index(j as isize + kj as isize - r, w, b.padding);
                        acc += gi * gj * cur[[si, sj]];
                    }
                }
                next[[i, j]] = acc;
            }
        }
        cur = next;
    }
    cur
}

/// Precomputed per-level operators: `D(x, t)[c] = left[t] . x[c] . right[t]`.
#[derive(Clone, Debug)]
pub struct Operators {
    /// `[T+1, H, H]`, float32 (what graphs and the runtime use).
    pub left: Array3<f32>,
    /// `[T+1, W, W]`, float32.
    pub right: Array3<f32>,
    /// The float64 originals.
    pub left64: Array3<f64>,
    pub right64: Array3<f64>,
}

impl Operators {
    /// T, the highest level.
    pub fn steps(&self) -> usize {
        self.left.len_of(Axis(0)) - 1
    }

    /// Applies D to a batch `[B, C, H, W]` with one level per sample.
    pub fn apply(&self, x: ArrayView4<f32>, t: &[usize]) -> Result<Array4<f32>> {
        let (b, c, h, w) = x.dim();
        if t.len() != b {
            return Err(Error::InvalidArgument(format!(
                "{} levels given for a batch of {b}",
                t.len()
            )));
        }
        if h != self.left.len_of(Axis(1)) || w != self.right.len_of(Axis(1)) {
            return Err(Error::InvalidArgument(format!(
                "image is {h}x{w} but the degradation is built for {}x{}",
                self.left.len_of(Axis(1)),
                self.right.len_of(Axis(1))
            )));
        }
        if let Some(&bad) = t.iter().find(|&&t| t > self.steps()) {
            return Err(Error::InvalidArgument(format!(
                "level {bad} is beyond T = {}",
                self.steps()
            )));
        }
        let mut out = Array4::<f32>::zeros((b, c, h, w));
        for (i, &ti) in t.iter().enumerate() {
            let l = self.left.index_axis(Axis(0), ti);
            let r = self.right.index_axis(Axis(0), ti);
            for ch in 0..c {
                let xc = x.slice(s![i, ch, .., ..]);
                let y = if ti == 0 {
                    xc.to_owned()
                } else {
                    l.dot(&xc).dot(&r)
                };
                out.slice_mut(s![i, ch, .., ..]).assign(&y);
            }
        }
        Ok(out)
    }

    /// Applies D with the same level to every sample.
    pub fn apply_uniform(&self, x: ArrayView4<f32>, t: usize) -> Result<Array4<f32>> {
        let b = x.len_of(Axis(0));
        self.apply(x, &vec![t; b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn pad_index_matches_pytorch_modes() {
        // n = 5: reflect of -1 is 1, of -2 is 2, of 5 is 3, of 6 is 2; circular wraps.
        assert_eq!(pad_index(-1, 5, Padding::Reflect), 1);
        assert_eq!(pad_index(-2, 5, Padding::Reflect), 2);
        assert_eq!(pad_index(5, 5, Padding::Reflect), 3);
        assert_eq!(pad_index(6, 5, Padding::Reflect), 2);
        assert_eq!(pad_index(-1, 5, Padding::Circular), 4);
        assert_eq!(pad_index(7, 5, Padding::Circular), 2);
    }

    #[test]
    fn kernel_is_normalised_and_symmetric() {
        let k = gaussian_kernel_1d(11, 7.0);
        assert!((k.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for i in 0..11 {
            assert!((k[i] - k[10 - i]).abs() < 1e-15);
        }
        assert!(k[5] > k[4] && k[4] > k[0]);
    }

    #[test]
    fn fast_operator_equals_iterated_convolutions() {
        let schedules = [
            BlurSchedule::Constant { sigma: 7.0 },
            BlurSchedule::Incremental { sigma: 0.3 },
            BlurSchedule::Exponential { rate: 0.05 },
            BlurSchedule::Cifar,
        ];
        let mut rng = StdRng::seed_from_u64(7);
        for padding in [Padding::Circular, Padding::Reflect] {
            for schedule in schedules {
                for (h, w) in [(13, 13), (12, 16), (11, 10)] {
                    let kernel_size = if h.min(w) > 11 { 11 } else { 7 };
                    let blur = Blur {
                        kernel_size,
                        schedule,
                        padding,
                    };
                    let d = Degradation {
                        transform: Transform::Blur(blur),
                        steps: 9,
                        channels: 2,
                        height: h,
                        width: w,
                    };
                    let ops = d.operators().expect("valid degradation");
                    let levels = [0usize, 1, 4, 9];
                    let x = Array4::from_shape_fn((levels.len(), 2, h, w), |_| {
                        rng.random_range(-1.0f32..1.0)
                    });
                    let y = ops.apply(x.view(), &levels).expect("apply");
                    for (bi, &t) in levels.iter().enumerate() {
                        for c in 0..2 {
                            let xc = x.slice(s![bi, c, .., ..]).mapv(f64::from);
                            let want = iterated_blur(&xc, &blur, t);
                            let got = y.slice(s![bi, c, .., ..]);
                            let err = want
                                .iter()
                                .zip(got.iter())
                                .map(|(a, b)| (a - f64::from(*b)).abs())
                                .fold(0.0, f64::max);
                            assert!(
                                err <= 1e-5,
                                "{padding:?} {schedule:?} {h}x{w} t={t}: max error {err}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn level_zero_is_identity_and_blur_preserves_mean_for_circular() {
        let d = Degradation::preset("mnist").expect("preset");
        let ops = d.operators().expect("ops");
        let mut rng = StdRng::seed_from_u64(1);
        let x = Array4::from_shape_fn((2, 1, 28, 28), |_| rng.random_range(-1.0f32..1.0));
        let y0 = ops.apply_uniform(x.view(), 0).expect("apply");
        assert_eq!(x, y0);
        let y = ops.apply_uniform(x.view(), 20).expect("apply");
        // A circular normalised blur keeps the image mean exactly.
        let (mx, my) = (x.mean().unwrap_or(0.0), y.mean().unwrap_or(0.0));
        assert!((mx - my).abs() < 1e-5, "{mx} vs {my}");
        // and flattens it: the spread shrinks a lot after 20 steps of sigma 7.
        let spread = |a: &Array4<f32>| a.iter().map(|v| (v - mx).abs()).fold(0.0f32, f32::max);
        assert!(spread(&y) < 0.2 * spread(&x));
    }

    #[test]
    fn description_round_trips_through_json() {
        for name in PRESETS {
            let d = Degradation::preset(name).expect("preset");
            let json = serde_json::to_string(&d).expect("serialise");
            let back: Degradation = serde_json::from_str(&json).expect("parse");
            assert_eq!(d, back);
        }
        assert!(Degradation::preset("imagenet").is_err());
    }

    #[test]
    fn invalid_descriptions_are_refused() {
        let mut d = Degradation::preset("mnist").expect("preset");
        d.steps = 0;
        assert!(d.operators().is_err());
        let mut d = Degradation::preset("cifar10").expect("preset");
        d.height = 4;
        assert!(
            d.operators().is_err(),
            "reflect pad 5 on 4 rows must be refused"
        );
        let ops = Degradation::preset("mnist")
            .expect("p")
            .operators()
            .expect("ops");
        let x = Array4::<f32>::zeros((1, 1, 28, 28));
        assert!(ops.apply(x.view(), &[21]).is_err());
        assert!(ops.apply(x.view(), &[1, 2]).is_err());
        let wrong = Array4::<f32>::zeros((1, 1, 32, 32));
        assert!(ops.apply(wrong.view(), &[1]).is_err());
    }
}
