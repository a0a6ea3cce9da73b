//! Gaussian blur: each step a depthwise convolution with a normalised 2-D Gaussian. The 2-D kernel
//! is the outer product of a normalised 1-D kernel with itself and circular / reflect padding act
//! per axis, so one step is `M_h X M_w^T` ([`super::operators`]). With `discrete` (the reference's
//! generation schedules) the last level T is the per-channel mean of the T-times blurred image, a
//! constant image: still separable, `L_T = (1/H) 1 1^T M_h(T-1)...`, and likewise for the columns.

use ndarray::{Array2, ArrayView1, ArrayView2, Axis, s};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::Degradation;
use super::kind::{Kind, Lowering, TableInput, Tables};
use super::operators::{self, Operators, compose};
use crate::error::{Error, Result};
use crate::onnx::GraphBuilder;

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

    fn describe(&self) -> String {
        match *self {
            BlurSchedule::Constant { sigma } => format!("constant sigma {sigma}"),
            BlurSchedule::Incremental { sigma } => format!("incremental sigma {sigma}*(i+1)"),
            BlurSchedule::Exponential { rate } => format!("exponential sigma exp({rate}*i)"),
            BlurSchedule::Cifar => "cifar sigma i/100+0.35".to_string(),
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
    /// The last level replaces the image by its per-channel mean (the reference's `--discrete`,
    /// used for generation: x_T is exactly a constant image).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discrete: bool,
}

impl Kind for Blur {
    /// A convolution per level (the last, with `discrete`, a channel mean): linear.
    fn is_affine(&self) -> bool {
        true
    }

    fn validate(&self, d: &Degradation) -> Result<()> {
        self.check(d.steps, d.height, d.width)
    }

    fn describe(&self, _d: &Degradation) -> String {
        let pad = match self.padding {
            Padding::Circular => "circular",
            Padding::Reflect => "reflect",
        };
        format!(
            "gaussian blur, kernel {k}x{k}, {}, {pad} padding{}",
            self.schedule.describe(),
            if self.discrete {
                ", the last level the channel means"
            } else {
                ""
            },
            k = self.kernel_size
        )
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        Ok(Box::new(self.operators(d.steps, d.height, d.width)))
    }

    fn table_inputs(&self, d: &Degradation) -> Vec<TableInput> {
        operators::table_inputs(d.steps)
    }

    fn lower(&self, _d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        operators::lower(g, io, false)
    }

    fn apply_direct(
        &self,
        d: &Degradation,
        x: ArrayView2<f32>,
        levels: &[usize],
        _params: ArrayView1<f32>,
    ) -> Option<Result<Vec<Array2<f32>>>> {
        // The steps in turn, each level's result kept as the loop passes it.
        let top = levels.iter().copied().max().unwrap_or(0);
        let mut out: Vec<Option<Array2<f32>>> = vec![None; levels.len()];
        let mut cur = x.to_owned();
        for i in 0..=top {
            if self.discrete && i == d.steps && i > 0 {
                let mean = cur.mean().unwrap_or(0.0);
                cur.fill(mean);
            }
            for (slot, _) in out.iter_mut().zip(levels).filter(|(_, l)| **l == i) {
                *slot = Some(cur.clone());
            }
            if i < top {
                cur = self.step(cur.view(), i);
            }
        }
        Some(Ok(out
            .into_iter()
            .map(|o| o.expect("every level visited"))
            .collect()))
    }
}

impl Blur {
    fn check(&self, steps: usize, height: usize, width: usize) -> Result<()> {
        if self.kernel_size == 0 || self.kernel_size.is_multiple_of(2) {
            return Err(Error::InvalidArgument(format!(
                "blur kernel size must be odd, got {}",
                self.kernel_size
            )));
        }
        let r = self.kernel_size / 2;
        if self.padding == Padding::Reflect && (r >= height || r >= width) {
            return Err(Error::InvalidArgument(format!(
                "reflect padding of {r} pixels needs images larger than {r}x{r}, got {height}x{width}"
            )));
        }
        for i in 0..steps {
            let sigma = self.schedule.sigma(i);
            if !(sigma.is_finite() && sigma > 0.0) {
                return Err(Error::InvalidArgument(format!(
                    "blur step {i} has sigma {sigma}: sigmas must be finite and positive"
                )));
            }
        }
        Ok(())
    }

    /// The per-level operators `L_t`, `R_t` of an image of `height x width`.
    pub fn operators(&self, steps: usize, height: usize, width: usize) -> Operators {
        let axis = |n: usize| {
            let mut ops = compose(steps, n, |i| {
                let k = gaussian_kernel_1d(self.kernel_size, self.schedule.sigma(i));
                blur_step_matrix(&k, n, self.padding)
            });
            if self.discrete && steps > 0 {
                // Every row of L_T becomes the mean of its rows: (1/n) 1 1^T L_T.
                let mean = ops
                    .slice(s![steps, .., ..])
                    .mean_axis(Axis(0))
                    .expect("n > 0");
                for mut row in ops.slice_mut(s![steps, .., ..]).outer_iter_mut() {
                    row.assign(&mean);
                }
            }
            ops
        };
        Operators::new(axis(height), axis(width))
    }
}

impl Blur {
    /// Blur step `i` of one channel: the 1-D kernel along rows, then along columns, padded per
    /// axis (a convolution and a correlation are the same for the symmetric Gaussian).
    fn step(&self, x: ArrayView2<f32>, i: usize) -> Array2<f32> {
        let k: Vec<f32> = gaussian_kernel_1d(self.kernel_size, self.schedule.sigma(i))
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let r = k.len() / 2;
        let (h, w) = x.dim();
        let x = x.as_standard_layout();
        let src = x.as_slice().expect("standard layout");
        // Along each row.
        let mut y = vec![0f32; h * w];
        y.par_chunks_mut(w).enumerate().for_each(|(row, out)| {
            let line = &src[row * w..(row + 1) * w];
            for (c, o) in out.iter_mut().enumerate() {
                *o = if c >= r && c + r < w {
                    k.iter().zip(&line[c - r..=c + r]).map(|(a, b)| a * b).sum()
                } else {
                    k.iter()
                        .enumerate()
                        .map(|(j, a)| {
                            a * line
                                [pad_index(c as isize + j as isize - r as isize, w, self.padding)]
                        })
                        .sum()
                };
            }
        });
        // Along each column: output row `row` sums the kernel-weighted rows around it.
        let mut z = vec![0f32; h * w];
        z.par_chunks_mut(w).enumerate().for_each(|(row, out)| {
            for (j, a) in k.iter().enumerate() {
                let from = pad_index(row as isize + j as isize - r as isize, h, self.padding);
                for (o, v) in out.iter_mut().zip(&y[from * w..(from + 1) * w]) {
                    *o += a * v;
                }
            }
        });
        Array2::from_shape_vec((h, w), z).expect("h x w values")
    }
}

/// Normalised 1-D Gaussian taps, centred on `size / 2` (torchgeometry's `get_gaussian_kernel`).
pub(crate) fn gaussian_kernel_1d(size: usize, sigma: f64) -> Vec<f64> {
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
pub(crate) fn pad_index(i: isize, n: usize, padding: Padding) -> usize {
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

/// D the way the reference computes it: `t` direct 2-D convolutions of one channel, in float64,
/// and with `discrete`, at `t = steps` (T) the mean of the result everywhere (its `q_sample`).
/// O(t k^2 H W); the ground truth for the operators in tests and the baseline in benchmarks.
pub fn iterated_blur_to(x: &Array2<f64>, b: &Blur, t: usize, steps: usize) -> Array2<f64> {
    let mut y = iterated_blur(x, b, t);
    if b.discrete && t == steps && t > 0 {
        let mean = y.mean().unwrap_or(0.0);
        y.fill(mean);
    }
    y
}

/// `t` direct 2-D convolutions of one channel in float64 (the reference's blur loop).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
