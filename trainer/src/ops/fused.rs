//! Fused CPU kernels on contiguous `f32` slices for the elementwise parts of the U-Net, each one
//! pass over the data and parallel over the batch (rayon): the channel LayerNorm forward and
//! backward, a per-image channel bias (the time embedding), the softmax backward and GELU.
//!
//! Burn composes these from broadcast binary ops, which the CPU backend runs one element at a time
//! through a strided index iterator on a single thread.

use rayon::prelude::*;

/// Elements per parallel chunk of the purely elementwise kernels.
const CHUNK: usize = 8192;

/// The outputs of [`layer_norm_forward`].
#[derive(Debug)]
pub(crate) struct LayerNormOut {
    /// `xhat * gain + bias`, `[batch, c, p]`.
    pub y: Vec<f32>,
    /// `(x - mean) * rstd`, `[batch, c, p]`.
    pub xhat: Vec<f32>,
    /// `1 / sqrt(var + eps)` per pixel, `[batch, p]`.
    pub rstd: Vec<f32>,
}

/// LayerNorm over the channel axis of `x` `[batch, c, p]` (p = pixels) at every pixel, with
/// biased variance: `y[c] = (x[c] - mean) / sqrt(var + eps) * gain[c] + bias[c]`.
pub(crate) fn layer_norm_forward(
    x: &[f32],
    gain: &[f32],
    bias: &[f32],
    c: usize,
    p: usize,
    eps: f32,
) -> LayerNormOut {
    assert!(c > 0 && p > 0 && x.len().is_multiple_of(c * p));
    assert_eq!((gain.len(), bias.len()), (c, c));
    let batch = x.len() / (c * p);
    let mut out = LayerNormOut {
        y: vec![0f32; x.len()],
        xhat: vec![0f32; x.len()],
        rstd: vec![0f32; batch * p],
    };
    out.y
        .par_chunks_mut(c * p)
        .zip(out.xhat.par_chunks_mut(c * p))
        .zip(out.rstd.par_chunks_mut(p))
        .zip(x.par_chunks(c * p))
        .for_each(|(((y, xhat), rstd), x)| {
            let inv_c = 1.0 / c as f32;
            let mut mean = vec![0f32; p];
            for row in x.chunks_exact(p) {
                mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
            }
            mean.iter_mut().for_each(|m| *m *= inv_c);
            let mut var = vec![0f32; p];
            for (row, xh) in x.chunks_exact(p).zip(xhat.chunks_exact_mut(p)) {
                for ((d, v), (m, s)) in xh.iter_mut().zip(row).zip(mean.iter().zip(&mut var)) {
                    *d = v - m;
                    *s += *d * *d;
                }
            }
            for (r, v) in rstd.iter_mut().zip(&var) {
                *r = 1.0 / (v * inv_c + eps).sqrt();
            }
            for (ci, (xh, yr)) in xhat
                .chunks_exact_mut(p)
                .zip(y.chunks_exact_mut(p))
                .enumerate()
            {
                let (g, b) = (gain[ci], bias[ci]);
                for ((d, o), r) in xh.iter_mut().zip(yr).zip(rstd.iter()) {
                    *d *= r;
                    *o = *d * g + b;
                }
            }
        });
    out
}

/// The gradients of [`layer_norm_forward`]: `(dx, dgain, dbias)` from the output gradient and the
/// forward's `xhat` and `rstd`.
pub(crate) fn layer_norm_backward(
    grad: &[f32],
    xhat: &[f32],
    rstd: &[f32],
    gain: &[f32],
    c: usize,
    p: usize,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(grad.len(), xhat.len());
    assert_eq!(gain.len(), c);
    assert_eq!(rstd.len() * c, grad.len());
    let mut dx = vec![0f32; grad.len()];
    // Per-image partial sums of dgain and dbias, added in image order (bit-reproducible).
    let partials: Vec<(Vec<f32>, Vec<f32>)> = dx
        .par_chunks_mut(c * p)
        .zip(grad.par_chunks(c * p))
        .zip(xhat.par_chunks(c * p))
        .zip(rstd.par_chunks(p))
        .map(|(((dx, g), xh), rs)| {
            let (mut dg, mut db) = (vec![0f32; c], vec![0f32; c]);
            let inv_c = 1.0 / c as f32;
            // mean over channels of dxhat and of dxhat * xhat, per pixel
            let mut m1 = vec![0f32; p];
            let mut m2 = vec![0f32; p];
            for ci in 0..c {
                let (gr, xr) = (&g[ci * p..][..p], &xh[ci * p..][..p]);
                let w = gain[ci];
                let (mut sg, mut sgx) = (0f32, 0f32);
                for k in 0..p {
                    let d = gr[k] * w;
                    m1[k] += d;
                    m2[k] += d * xr[k];
                    sg += gr[k];
                    sgx += gr[k] * xr[k];
                }
                dg[ci] += sgx;
                db[ci] += sg;
            }
            for ci in 0..c {
                let (gr, xr) = (&g[ci * p..][..p], &xh[ci * p..][..p]);
                let w = gain[ci];
                let out = &mut dx[ci * p..][..p];
                for k in 0..p {
                    out[k] = rs[k] * (gr[k] * w - (m1[k] + xr[k] * m2[k]) * inv_c);
                }
            }
            (dg, db)
        })
        .collect();
    let (mut dgain, mut dbias) = (vec![0f32; c], vec![0f32; c]);
    for (dg, db) in partials {
        dgain.iter_mut().zip(&dg).for_each(|(a, b)| *a += b);
        dbias.iter_mut().zip(&db).for_each(|(a, b)| *a += b);
    }
    (dx, dgain, dbias)
}

/// `y[b, c, :] = x[b, c, :] + bias[b, c]` for `x` `[batch, c, p]`, `bias` `[batch, c]`.
pub(crate) fn add_channel_bias(x: &[f32], bias: &[f32], p: usize) -> Vec<f32> {
    assert_eq!(x.len(), bias.len() * p);
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(p)
        .zip(x.par_chunks(p))
        .zip(bias.par_iter())
        .for_each(|((y, x), b)| y.iter_mut().zip(x).for_each(|(o, v)| *o = v + b));
    y
}

/// `out[b, c] = sum_p grad[b, c, p]`.
pub(crate) fn plane_sums(grad: &[f32], p: usize) -> Vec<f32> {
    assert!(p > 0 && grad.len().is_multiple_of(p));
    grad.par_chunks(p).map(|r| r.iter().sum::<f32>()).collect()
}

/// The softmax backward along rows of length `n`: `dx = y * (g - sum(g * y))`.
pub(crate) fn softmax_backward(y: &[f32], grad: &[f32], n: usize) -> Vec<f32> {
    assert_eq!(y.len(), grad.len());
    assert!(n > 0 && y.len().is_multiple_of(n));
    let mut dx = vec![0f32; y.len()];
    dx.par_chunks_mut(n)
        .zip(y.par_chunks(n).zip(grad.par_chunks(n)))
        .for_each(|(dx, (y, g))| {
            let s: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
            for ((d, yv), gv) in dx.iter_mut().zip(y).zip(g) {
                *d = yv * (gv - s);
            }
        });
    dx
}

/// GELU, the erf form: `x / 2 * (1 + erf(x / sqrt 2))` (as Burn and ONNX `Gelu`).
pub fn gelu(x: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = 0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
            }
        });
    y
}

/// The GELU backward: `grad * (cdf(x) + x * pdf(x))`.
pub(crate) fn gelu_backward(x: &[f32], grad: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), grad.len());
    let inv_sqrt_2pi = 0.5 * std::f32::consts::FRAC_2_SQRT_PI * std::f32::consts::FRAC_1_SQRT_2;
    let mut dx = vec![0f32; x.len()];
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(grad.par_chunks(CHUNK)))
        .for_each(|(dx, (x, g))| {
            for ((d, &v), gv) in dx.iter_mut().zip(x).zip(g) {
                let cdf = 0.5 * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = inv_sqrt_2pi * (-0.5 * v * v).exp();
                *d = gv * (cdf + v * pdf);
            }
        });
    dx
}

/// The CPU backend's own erf, so that our GELU equals its GELU.
fn erf(x: f32) -> f32 {
    burn_flex::ops::unary::erf_f32(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_matches_the_formula_in_f64() {
        let (b, c, p) = (2, 3, 5);
        let x: Vec<f32> = (0..b * c * p)
            .map(|i| ((i * 37 % 17) as f32) * 0.3 - 2.0)
            .collect();
        let gain = [0.5f32, 1.5, -1.0];
        let bias = [0.1f32, 0.0, -0.2];
        let out = layer_norm_forward(&x, &gain, &bias, c, p, 1e-5);
        for bi in 0..b {
            for k in 0..p {
                let v: Vec<f64> = (0..c).map(|ci| x[(bi * c + ci) * p + k] as f64).collect();
                let mean = v.iter().sum::<f64>() / c as f64;
                let var = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / c as f64;
                for ci in 0..c {
                    let want =
                        (v[ci] - mean) / (var + 1e-5).sqrt() * gain[ci] as f64 + bias[ci] as f64;
                    let got = out.y[(bi * c + ci) * p + k] as f64;
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }

    #[test]
    fn softmax_backward_gelu_and_biases_match_their_formulas() {
        let y = [0.2f32, 0.3, 0.5, 0.1, 0.1, 0.8];
        let g = [1.0f32, -1.0, 0.5, 0.0, 2.0, 1.0];
        let dx = softmax_backward(&y, &g, 3);
        let s0 = 0.2 - 0.3 + 0.25;
        assert!((dx[0] - 0.2 * (1.0 - s0)).abs() < 1e-6);
        assert!((dx[5] - 0.8 * (1.0 - (0.2 + 0.8))).abs() < 1e-6);
        let x = [-3.0f32, -0.5, 0.0, 0.7, 4.0];
        let y = gelu(&x);
        assert_eq!(y[2], 0.0);
        assert!((y[3] - 0.530_625_4_f32).abs() < 1e-6, "{}", y[3]); // 0.7 * Phi(0.7)
        // derivative by central differences
        let d = gelu_backward(&x, &[1.0; 5]);
        for (i, &v) in x.iter().enumerate() {
            let h = 1e-2f32;
            let num = (gelu(&[v + h])[0] - gelu(&[v - h])[0]) / (2.0 * h);
            assert!((d[i] - num).abs() < 1e-3, "{} vs {num}", d[i]);
        }
        assert_eq!(
            add_channel_bias(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0], 2),
            vec![11.0, 12.0, 23.0, 24.0]
        );
        assert_eq!(plane_sums(&[1.0, 2.0, 3.0, 4.0], 2), vec![3.0, 7.0]);
    }
}
