//! Separable linear degradations: every step acts on the rows and on the columns of each channel
//! through one matrix per axis, the same for every image (Gaussian blur, bicubic/nearest
//! resampling). Composing t steps gives `D(x, t) = L_t X R_t` with `L_t = M_h(t-1) ... M_h(0)` and
//! `R_t = M_w(0)^T ... M_w(t-1)^T`, precomputed once in float64, so D costs two small matrix
//! products per channel for every t, where the reference recomposes t steps. A clipped variant
//! ([`Operators::clipped`], super-resolution as image files hold it) clips every level >= 1 to
//! [-1, 1] after the products.

use std::any::Any;

use ndarray::{Array2, Array3, Array4, ArrayView2, ArrayView4, ArrayViewD, Axis, s};

use super::kind::{Lowering, TableInput, Tables, nodes};
use crate::error::{Error, Result};
use crate::onnx::{Dim, GraphBuilder};

/// The graph inputs of the separable kinds' operators.
pub(crate) const LEFT: &str = "degradation.left";
pub(crate) const RIGHT: &str = "degradation.right";

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
    /// Clip the result of every level >= 1 to [-1, 1].
    pub clip: bool,
}

/// `[T+1, n, n]`: the products of the step matrices `m(i)` (each acting on a column vector),
/// `out[t] = m(t-1) ... m(0)`, `out[0] = I`.
pub fn compose(steps: usize, n: usize, mut m: impl FnMut(usize) -> Array2<f64>) -> Array3<f64> {
    let mut out = Array3::<f64>::zeros((steps + 1, n, n));
    out.slice_mut(s![0, .., ..]).assign(&Array2::<f64>::eye(n));
    for i in 0..steps {
        // Step matrices are banded (a kernel's taps, a resampler's): out[i+1] = m(i) out[i],
        // summed over each row's non-zero entries, costs their count times n^2 instead of n^3.
        let step = m(i);
        let (prev, mut next) = out.multi_slice_mut((s![i, .., ..], s![i + 1, .., ..]));
        for (r, mut row) in next.outer_iter_mut().enumerate() {
            for (j, &v) in step.row(r).iter().enumerate() {
                if v != 0.0 {
                    row.scaled_add(v, &prev.row(j));
                }
            }
        }
    }
    out
}

impl Operators {
    /// From the composed row operators `rows[t]` (H x H) and column operators `cols[t]` (W x W),
    /// both acting on column vectors; the right factor is `cols[t]^T`.
    pub fn new(rows: Array3<f64>, cols: Array3<f64>) -> Self {
        let (t1, w, _) = cols.dim();
        let right = Array3::from_shape_fn((t1, w, w), |(t, i, j)| cols[[t, j, i]]);
        Operators {
            left: rows.mapv(|v| v as f32),
            right: right.mapv(|v| v as f32),
            left64: rows,
            right64: right,
            clip: false,
        }
    }

    /// The same operators, with levels >= 1 clipped to [-1, 1] when `clip`.
    pub fn clipped(self, clip: bool) -> Self {
        Operators { clip, ..self }
    }

    /// T, the highest level.
    pub fn steps(&self) -> usize {
        self.left.len_of(Axis(0)) - 1
    }

    /// Applies D to a batch `[B, C, H, W]` with one level per sample (levels checked by the
    /// caller).
    pub fn apply(&self, x: ArrayView4<f32>, t: &[usize]) -> Result<Array4<f32>> {
        let (b, c, h, w) = x.dim();
        if h != self.left.len_of(Axis(1)) || w != self.right.len_of(Axis(1)) {
            return Err(Error::InvalidArgument(format!(
                "image is {h}x{w} but the degradation is built for {}x{}",
                self.left.len_of(Axis(1)),
                self.right.len_of(Axis(1))
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
                } else if self.clip {
                    l.dot(&xc).dot(&r).mapv_into(|v| v.clamp(-1.0, 1.0))
                } else {
                    l.dot(&xc).dot(&r)
                };
                out.slice_mut(s![i, ch, .., ..]).assign(&y);
            }
        }
        Ok(out)
    }
}

impl Tables for Operators {
    fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        _params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        Operators::apply(self, x, t)
    }

    fn inputs(&self) -> Vec<(&'static str, ArrayViewD<'_, f32>)> {
        vec![
            (LEFT, self.left.view().into_dyn()),
            (RIGHT, self.right.view().into_dyn()),
        ]
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The operator inputs of a separable kind with T steps: `left [T+1, H, H]`, `right [T+1, W, W]`.
pub fn table_inputs(steps: usize) -> Vec<TableInput> {
    let levels = Dim::Fixed(steps as i64 + 1);
    vec![
        TableInput {
            name: LEFT,
            dims: vec![levels.clone(), Dim::Named("height"), Dim::Named("height")],
        },
        TableInput {
            name: RIGHT,
            dims: vec![levels, Dim::Named("width"), Dim::Named("width")],
        },
    ]
}

/// `L_t X R_t` as nodes: the level's operators gathered from the inputs by t and applied to every
/// channel; with `clip`, levels >= 1 clipped to [-1, 1] (level 0, the identity, passes through).
pub fn lower(g: &mut GraphBuilder, io: Lowering, clip: bool) -> String {
    g.scoped("degradation", |g| {
        let l = nodes::per_image_matrix(g, LEFT, io.t);
        let r = nodes::per_image_matrix(g, RIGHT, io.t);
        let y = g.op1("MatMul", &[&l, io.x], vec![]);
        let y = g.op1("MatMul", &[&y, &r], vec![]);
        if clip {
            let (lo, hi) = (g.const_f32(&[-1.0], &[]), g.const_f32(&[1.0], &[]));
            let clipped = g.op1("Clip", &[&y, &lo, &hi], vec![]);
            nodes::where_active(g, io.t, &clipped, io.x)
        } else {
            y
        }
    })
}
