//! The depthwise convolution and its weight gradient on flattened padded planes: one long
//! vectorised loop per tap (AVX-512 or AVX2 chosen at run time).

use multiversion::multiversion;

use super::kernels::Geometry;

/// Lanes of the flattened-plane kernels: every inner loop runs over whole chunks of this many
/// values, which the compiler turns into full-width vector instructions.
const LANES: usize = 16;

/// A depthwise plane laid out flat: rows of `stride = w + 2 pw` values, the image in the middle,
/// zeros around it and after it. With this layout output pixel `(y, x)` of a stride-1 convolution
/// reads input `(y + i) * stride + x + j` for tap `(i, j)`, so the whole plane is one long
/// vectorisable loop per tap (the columns `x >= ow` of each row are computed and discarded).
struct FlatPlane {
    stride: usize,
    /// Output values computed per plane: `oh * stride` rounded up to [`LANES`].
    span: usize,
}

impl FlatPlane {
    fn new(g: &Geometry) -> Self {
        let stride = g.input[1] + 2 * g.padding[1];
        FlatPlane {
            stride,
            span: (g.output[0] * stride).div_ceil(LANES) * LANES,
        }
    }

    /// Buffer length: the span plus the furthest tap offset.
    fn len(&self, g: &Geometry) -> usize {
        self.span + (g.kernel[0] - 1) * self.stride + g.kernel[1] - 1
    }

    /// Copies an image plane into `buf` (zero padded).
    fn fill(&self, plane: &[f32], g: &Geometry, buf: &mut Vec<f32>) {
        let [h, w] = g.input;
        buf.clear();
        buf.resize(self.len(g), 0.0);
        for y in 0..h {
            buf[(y + g.padding[0]) * self.stride + g.padding[1]..][..w]
                .copy_from_slice(&plane[y * w..][..w]);
        }
    }
}

/// `acc[..] += a * x[..]` over whole lanes (`acc.len()` a multiple of [`LANES`]).
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn axpy(acc: &mut [f32], a: f32, x: &[f32]) {
    for (o, v) in acc.iter_mut().zip(x) {
        *o += a * v;
    }
}

/// Lane-wise partial sums of `a[..] * b[..]` added to `lanes`.
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn dot_lanes(lanes: &mut [f32; LANES], a: &[f32], b: &[f32]) {
    for (x, y) in a.chunks_exact(LANES).zip(b.chunks_exact(LANES)) {
        for l in 0..LANES {
            lanes[l] += x[l] * y[l];
        }
    }
}

/// A depthwise convolution (stride 1, dilation 1): plane `(b, c)` of `x` `[batch, c, h, w]` is
/// correlated with kernel `w[c]` `[kh, kw]`, plus `bias[c]`. Parallel over the planes.
pub fn depthwise_conv(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    batch: usize,
    g: &Geometry,
) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(g.stride, [1, 1], "depthwise convolution: stride 1 only");
    let c = g.channels;
    let [h, wd] = g.input;
    let [oh, ow] = g.output;
    let [kh, kw] = g.kernel;
    assert_eq!(x.len(), batch * c * h * wd);
    assert_eq!(w.len(), c * kh * kw);
    let flat = FlatPlane::new(g);
    let mut y = vec![0f32; batch * c * oh * ow];
    y.par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * wd))
        .enumerate()
        .for_each_init(
            || (Vec::new(), vec![0f32; flat.span]),
            |(buf, acc), (plane, (out, src))| {
                let ci = plane % c;
                flat.fill(src, g, buf);
                acc.fill(bias.map_or(0.0, |b| b[ci]));
                let k = &w[ci * kh * kw..][..kh * kw];
                for i in 0..kh {
                    for j in 0..kw {
                        axpy(acc, k[i * kw + j], &buf[i * flat.stride + j..][..flat.span]);
                    }
                }
                for oy in 0..oh {
                    out[oy * ow..][..ow].copy_from_slice(&acc[oy * flat.stride..][..ow]);
                }
            },
        );
    y
}

/// The weight gradient of a depthwise convolution (stride 1, dilation 1), `[c, kh, kw]`:
/// `dw[c, i, j] = sum_b sum_(oy, ox) grad[b, c, oy, ox] * x[b, c, oy + i - p, ox + j - p]`.
/// `x` is `[batch, g.channels, h, w]`, `grad` `[batch, g.channels, oh, ow]`. Parallel over the
/// channels; per tap, lane-wise partial sums over the whole batch, summed once at the end.
pub fn depthwise_weight_grad(x: &[f32], grad: &[f32], batch: usize, g: &Geometry) -> Vec<f32> {
    use rayon::prelude::*;
    assert_eq!(g.stride, [1, 1], "depthwise weight gradient: stride 1 only");
    let c = g.channels;
    let [h, w] = g.input;
    let [oh, ow] = g.output;
    let [kh, kw] = g.kernel;
    assert_eq!(x.len(), batch * c * h * w);
    assert_eq!(grad.len(), batch * c * oh * ow);
    let flat = FlatPlane::new(g);
    let mut out = vec![0f32; c * kh * kw];
    out.par_chunks_mut(kh * kw).enumerate().for_each_init(
        || {
            (
                Vec::new(),
                vec![0f32; flat.span],
                vec![[0f32; LANES]; kh * kw],
            )
        },
        |(buf, gflat, lanes), (ci, dw)| {
            lanes.iter_mut().for_each(|l| *l = [0.0; LANES]);
            for b in 0..batch {
                flat.fill(&x[(b * c + ci) * h * w..][..h * w], g, buf);
                // the output gradient on the same flat grid, zero in the discarded columns
                gflat.fill(0.0);
                let gp = &grad[(b * c + ci) * oh * ow..][..oh * ow];
                for oy in 0..oh {
                    gflat[oy * flat.stride..][..ow].copy_from_slice(&gp[oy * ow..][..ow]);
                }
                for i in 0..kh {
                    for j in 0..kw {
                        let src = &buf[i * flat.stride + j..][..flat.span];
                        dot_lanes(&mut lanes[i * kw + j], gflat, src);
                    }
                }
            }
            for (d, l) in dw.iter_mut().zip(lanes.iter()) {
                *d = l.iter().sum();
            }
        },
    );
    out
}
