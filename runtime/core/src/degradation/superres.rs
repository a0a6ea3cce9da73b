//! Super-resolution (the reference's `Incremental_factor_2`): step i down-samples to
//! `S / 2^(i+1)` with bicubic interpolation (a = -0.75, half-pixel centres, border-clamped taps,
//! no antialiasing: PyTorch's `interpolate(mode="bicubic", align_corners=False)`) and
//! up-samples back to `S` with `nearest-exact`; steps compose. Both resamplings are linear and act
//! per axis, so the process is separable ([`super::operators`]).

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::Degradation;
use super::kind::{Kind, Lowering, TableInput, Tables};
use super::operators::{self, Operators, compose};
use crate::error::{Error, Result};
use crate::onnx::GraphBuilder;

/// The cubic convolution kernel's `a` (PyTorch's bicubic).
const CUBIC_A: f64 = -0.75;

/// A super-resolution process: every step halves the resolution again.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuperRes {
    /// The resolution divides by this at every step (the reference: 2).
    pub factor: usize,
    /// Clip D's output to [-1, 1], what an image file can hold (levels >= 1). Bicubic
    /// down-sampling overshoots beside strokes; the reference keeps those values, a PNG cannot,
    /// so a restorer trained on the reference's D sees different inputs when it restores files.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clip: bool,
}

impl SuperRes {
    /// Side after the down-sampling of step `i` (0-based) of a side `n`.
    pub fn size(&self, n: usize, i: usize) -> usize {
        n / self.factor.pow(i as u32 + 1)
    }

    fn check(&self, steps: usize, height: usize, width: usize) -> Result<()> {
        if self.factor < 2 {
            return Err(Error::InvalidArgument(format!(
                "super-resolution factor must be at least 2, got {}",
                self.factor
            )));
        }
        let last = steps.saturating_sub(1);
        if steps > 0
            && (self.factor.checked_pow(steps as u32).is_none()
                || self.size(height.min(width), last) == 0)
        {
            return Err(Error::InvalidArgument(format!(
                "{height}x{width} images cannot be divided by {} {steps} times: use fewer steps",
                self.factor
            )));
        }
        Ok(())
    }

    /// The per-level operators `L_t`, `R_t` of an image of `height x width`.
    pub fn operators(&self, steps: usize, height: usize, width: usize) -> Operators {
        let axis = |n: usize| {
            compose(steps, n, |i| {
                let m = self.size(n, i);
                nearest_exact_matrix(m, n).dot(&bicubic_matrix(n, m))
            })
        };
        Operators::new(axis(height), axis(width)).clipped(self.clip)
    }
}

impl Kind for SuperRes {
    /// Down- and up-sampling are linear; the clipped variant is not.
    fn is_affine(&self) -> bool {
        !self.clip
    }

    fn validate(&self, d: &Degradation) -> Result<()> {
        self.check(d.steps, d.height, d.width)
    }

    fn describe(&self, d: &Degradation) -> String {
        let sizes: Vec<String> = (0..d.steps)
            .map(|i| self.size(d.height, i).to_string())
            .collect();
        format!(
            "super-resolution, bicubic down-sampling to {} then nearest-exact up-sampling{}",
            sizes.join(", "),
            if self.clip {
                ", clipped to [-1, 1]"
            } else {
                ""
            }
        )
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        Ok(Box::new(self.operators(d.steps, d.height, d.width)))
    }

    fn table_inputs(&self, d: &Degradation) -> Vec<TableInput> {
        operators::table_inputs(d.steps)
    }

    fn lower(&self, _d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        operators::lower(g, io, self.clip)
    }
}

fn cubic1(x: f64) -> f64 {
    ((CUBIC_A + 2.0) * x - (CUBIC_A + 3.0)) * x * x + 1.0
}

fn cubic2(x: f64) -> f64 {
    ((CUBIC_A * x - 5.0 * CUBIC_A) * x + 8.0 * CUBIC_A) * x - 4.0 * CUBIC_A
}

/// The four bicubic taps `(input index, weight)` of output pixel `o` when resampling `n_in`
/// pixels to `n_out` (indices clamped to the border, as PyTorch).
pub(crate) fn bicubic_taps(n_in: usize, n_out: usize, o: usize) -> [(usize, f64); 4] {
    let scale = n_in as f64 / n_out as f64;
    let src = scale * (o as f64 + 0.5) - 0.5;
    let i0 = src.floor();
    let t = src - i0;
    let w = [cubic2(t + 1.0), cubic1(t), cubic1(1.0 - t), cubic2(2.0 - t)];
    let clamp = |k: f64| (k.max(0.0) as usize).min(n_in - 1);
    [
        (clamp(i0 - 1.0), w[0]),
        (clamp(i0), w[1]),
        (clamp(i0 + 1.0), w[2]),
        (clamp(i0 + 2.0), w[3]),
    ]
}

/// The source pixel of output pixel `o` of a `nearest-exact` resampling from `n_in` to `n_out`.
pub(crate) fn nearest_exact_index(n_in: usize, n_out: usize, o: usize) -> usize {
    let scale = n_in as f64 / n_out as f64;
    (((o as f64 + 0.5) * scale).floor() as usize).min(n_in - 1)
}

/// `n_out x n_in`: bicubic resampling of a column vector.
fn bicubic_matrix(n_in: usize, n_out: usize) -> Array2<f64> {
    let mut m = Array2::zeros((n_out, n_in));
    for o in 0..n_out {
        for (i, w) in bicubic_taps(n_in, n_out, o) {
            m[[o, i]] += w;
        }
    }
    m
}

/// `n_out x n_in`: nearest-exact resampling of a column vector.
fn nearest_exact_matrix(n_in: usize, n_out: usize) -> Array2<f64> {
    let mut m = Array2::zeros((n_out, n_in));
    for o in 0..n_out {
        m[[o, nearest_exact_index(n_in, n_out, o)]] = 1.0;
    }
    m
}

/// D the way the reference computes it, in float64 on one channel: `t` times a 2-D bicubic
/// down-sampling (every output pixel from its 4x4 taps) followed by a 2-D nearest-exact
/// up-sampling. The ground truth for the operators in tests.
#[cfg(test)]
pub(crate) fn iterated_superres(x: &Array2<f64>, sr: &SuperRes, t: usize) -> Array2<f64> {
    let (h, w) = x.dim();
    let mut cur = x.clone();
    for i in 0..t {
        let (mh, mw) = (sr.size(h, i), sr.size(w, i));
        let small = Array2::from_shape_fn((mh, mw), |(oy, ox)| {
            let mut acc = 0.0;
            for (iy, wy) in bicubic_taps(h, mh, oy) {
                for (ix, wx) in bicubic_taps(w, mw, ox) {
                    acc += wy * wx * cur[[iy, ix]];
                }
            }
            acc
        });
        cur = Array2::from_shape_fn((h, w), |(y, x)| {
            small[[nearest_exact_index(mh, h, y), nearest_exact_index(mw, w, x)]]
        });
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bicubic_taps_sum_to_one_and_halving_averages_pairs() {
        for (n_in, n_out) in [(28, 14), (32, 16), (14, 7), (7, 3), (32, 4)] {
            for o in 0..n_out {
                let s: f64 = bicubic_taps(n_in, n_out, o).iter().map(|t| t.1).sum();
                assert!((s - 1.0).abs() < 1e-12);
            }
        }
        // Halving: the source point falls between two pixels (t = 0.5): weights
        // -0.09375, 0.59375, 0.59375, -0.09375 with a = -0.75.
        let taps = bicubic_taps(8, 4, 1);
        let idx: Vec<usize> = taps.iter().map(|t| t.0).collect();
        assert_eq!(idx, vec![1, 2, 3, 4]);
        assert!((taps[0].1 + 0.09375).abs() < 1e-12 && (taps[1].1 - 0.59375).abs() < 1e-12);
    }

    #[test]
    fn nearest_exact_up_sampling_repeats_pixels() {
        let src: Vec<usize> = (0..6).map(|o| nearest_exact_index(3, 6, o)).collect();
        assert_eq!(src, vec![0, 0, 1, 1, 2, 2]);
        // 28 from 3: floor((o + 0.5) * 3 / 28)
        assert_eq!(nearest_exact_index(3, 28, 27), 2);
        assert_eq!(nearest_exact_index(3, 28, 4), 0);
        assert_eq!(nearest_exact_index(3, 28, 5), 0);
        assert_eq!(nearest_exact_index(3, 28, 10), 1);
    }
}
