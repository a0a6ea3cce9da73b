//! CPU kernels on contiguous `f32` slices (NCHW) for the convolution backward passes: im2col,
//! col2im, a strided matrix product (the `gemm` crate), the depthwise convolution and its weight
//! gradient ([`super::depthwise`]) and the per-channel bias gradient. Shapes are checked with assertions: a wrong shape is a bug in the
//! caller, never user input.

pub use super::depthwise::{depthwise_conv, depthwise_weight_grad};

/// The geometry of a 2-D convolution over one image `[channels, height, width]` (dilation 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    pub channels: usize,
    pub input: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl Geometry {
    pub fn new(
        channels: usize,
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Self {
        let out = |d: usize| {
            assert!(
                input[d] + 2 * padding[d] >= kernel[d],
                "kernel larger than the padded input"
            );
            (input[d] + 2 * padding[d] - kernel[d]) / stride[d] + 1
        };
        Geometry {
            channels,
            input,
            kernel,
            stride,
            padding,
            output: [out(0), out(1)],
        }
    }

    /// Rows of the column matrix: `channels * kh * kw`.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    /// Columns of the column matrix: output pixels.
    pub fn cols(&self) -> usize {
        self.output[0] * self.output[1]
    }

    pub(crate) fn input_len(&self) -> usize {
        self.channels * self.input[0] * self.input[1]
    }

    /// The output positions `o` along axis `d` whose input position `o * s + k - p` is inside
    /// the image, for kernel offset `k`.
    fn valid(&self, d: usize, k: usize) -> std::ops::Range<usize> {
        let (s, p, n, o) = (
            self.stride[d],
            self.padding[d],
            self.input[d],
            self.output[d],
        );
        // o * s + k >= p  and  o * s + k - p < n
        let lo = if k >= p { 0 } else { (p - k).div_ceil(s) };
        let hi = if n + p > k {
            (n + p - k).div_ceil(s).min(o)
        } else {
            0
        };
        lo..hi.max(lo)
    }
}

/// `col[(c, i, j), (oy, ox)] = x[c, oy*s + i - p, ox*s + j - p]`, zero outside the image.
pub(crate) fn im2col(x: &[f32], g: &Geometry, col: &mut [f32]) {
    assert_eq!(x.len(), g.input_len());
    assert_eq!(col.len(), g.rows() * g.cols());
    let [h, w] = g.input;
    let [oh, ow] = g.output;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    for c in 0..g.channels {
        let plane = &x[c * h * w..(c + 1) * h * w];
        for i in 0..kh {
            let ys = g.valid(0, i);
            for j in 0..kw {
                let xs = g.valid(1, j);
                let r = (c * kh + i) * kw + j;
                let row = &mut col[r * oh * ow..(r + 1) * oh * ow];
                for oy in 0..oh {
                    let dst = &mut row[oy * ow..(oy + 1) * ow];
                    if !ys.contains(&oy) || xs.is_empty() {
                        dst.fill(0.0);
                        continue;
                    }
                    let iy = oy * sh + i - g.padding[0];
                    let src = &plane[iy * w..(iy + 1) * w];
                    dst[..xs.start].fill(0.0);
                    dst[xs.end..].fill(0.0);
                    let x0 = xs.start * sw + j - g.padding[1];
                    if sw == 1 {
                        dst[xs.clone()].copy_from_slice(&src[x0..x0 + xs.len()]);
                    } else {
                        for (k, d) in dst[xs.clone()].iter_mut().enumerate() {
                            *d = src[x0 + k * sw];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: `x[c, oy*s + i - p, ox*s + j - p] += col[(c, i, j), (oy, ox)]`.
/// `x` is overwritten (not accumulated into).
pub(crate) fn col2im(col: &[f32], g: &Geometry, x: &mut [f32]) {
    assert_eq!(x.len(), g.input_len());
    assert_eq!(col.len(), g.rows() * g.cols());
    x.fill(0.0);
    let [h, w] = g.input;
    let [oh, ow] = g.output;
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.stride;
    for c in 0..g.channels {
        let plane = &mut x[c * h * w..(c + 1) * h * w];
        for i in 0..kh {
            let ys = g.valid(0, i);
            for j in 0..kw {
                let xs = g.valid(1, j);
                if xs.is_empty() {
                    continue;
                }
                let r = (c * kh + i) * kw + j;
                let row = &col[r * oh * ow..(r + 1) * oh * ow];
                for oy in ys.clone() {
                    let iy = oy * sh + i - g.padding[0];
                    let dst = &mut plane[iy * w..(iy + 1) * w];
                    let src = &row[oy * ow..(oy + 1) * ow];
                    let x0 = xs.start * sw + j - g.padding[1];
                    if sw == 1 {
                        for (d, s) in dst[x0..x0 + xs.len()].iter_mut().zip(&src[xs.clone()]) {
                            *d += s;
                        }
                    } else {
                        for (k, s) in src[xs.clone()].iter().enumerate() {
                            dst[x0 + k * sw] += s;
                        }
                    }
                }
            }
        }
    }
}

/// A matrix in a slice: element `(r, c)` at `r * row_stride + c * col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    fn check(&self) {
        if self.rows > 0 && self.cols > 0 {
            let last = (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }
}

/// `dst (row-major m x n) = [dst +] a (m x k) * b (k x n)`, multithreaded over the rayon pool when
/// `parallel`.
pub fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, parallel: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "inner dimensions differ");
    assert_eq!(dst.len(), m * n, "destination size");
    a.check();
    b.check();
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every index the product touches is inside its slice (checked above for a and b;
    // dst is m x n row-major and exactly that long), and dst does not alias a or b (&mut).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// The column matrix of a stride-1 convolution on the flat padded grid (see `depthwise::FlatPlane`):
/// row `(c, i, j)` is the padded plane `c` shifted by `i * stride + j`, so every row is one
/// contiguous copy, and output pixel `(y, x)` is column `y * stride + x` (columns with
/// `x >= ow` are computed and discarded).
#[derive(Clone, Copy, Debug)]
pub(crate) struct FlatColumns {
    geo: Geometry,
    /// Row length of the padded planes.
    stride: usize,
    /// Length of one padded plane, with slack for the discarded columns' reads.
    plane: usize,
    /// Columns: `oh * stride`.
    pub span: usize,
}

impl FlatColumns {
    /// `None` unless the convolution has stride 1.
    pub fn new(g: &Geometry) -> Option<Self> {
        if g.stride != [1, 1] {
            return None;
        }
        let stride = g.input[1] + 2 * g.padding[1];
        Some(FlatColumns {
            geo: *g,
            stride,
            plane: (g.input[0] + 2 * g.padding[0]) * stride + g.kernel[1],
            span: g.output[0] * stride,
        })
    }

    /// Scratch needed by [`Self::columns`]: padded planes then the column matrix.
    pub(crate) fn scratch(&self) -> usize {
        self.geo.channels * self.plane + self.geo.rows() * self.span
    }

    /// Fills the column matrix `[rows, span]` of one image; returns it (inside `scratch`).
    pub fn columns<'s>(&self, x: &[f32], scratch: &'s mut [f32]) -> &'s [f32] {
        let g = &self.geo;
        let [h, w] = g.input;
        let (padded, col) = scratch.split_at_mut(g.channels * self.plane);
        padded.fill(0.0);
        for c in 0..g.channels {
            let dst = &mut padded[c * self.plane..][..self.plane];
            for y in 0..h {
                dst[(y + g.padding[0]) * self.stride + g.padding[1]..][..w]
                    .copy_from_slice(&x[(c * h + y) * w..][..w]);
            }
        }
        let [kh, kw] = g.kernel;
        for c in 0..g.channels {
            for i in 0..kh {
                for j in 0..kw {
                    let r = (c * kh + i) * kw + j;
                    col[r * self.span..][..self.span].copy_from_slice(
                        &padded[c * self.plane + i * self.stride + j..][..self.span],
                    );
                }
            }
        }
        &col[..g.rows() * self.span]
    }

    /// Copies the valid columns of `flat` `[c, span]` into `out` `[c, oh, ow]`, adding `bias`.
    pub(crate) fn gather(&self, flat: &[f32], out: &mut [f32], bias: Option<&[f32]>) {
        let [oh, ow] = self.geo.output;
        for (c, o) in out.chunks_exact_mut(oh * ow).enumerate() {
            let b = bias.map_or(0.0, |b| b[c]);
            for y in 0..oh {
                let src = &flat[c * self.span + y * self.stride..][..ow];
                for (d, v) in o[y * ow..][..ow].iter_mut().zip(src) {
                    *d = v + b;
                }
            }
        }
    }

    /// Lays `grad` `[c, oh, ow]` out on the flat grid `[c, span]`, zero in the discarded columns.
    pub(crate) fn scatter(&self, grad: &[f32], flat: &mut [f32]) {
        let [oh, ow] = self.geo.output;
        flat.fill(0.0);
        for (c, gc) in grad.chunks_exact(oh * ow).enumerate() {
            for y in 0..oh {
                flat[c * self.span + y * self.stride..][..ow].copy_from_slice(&gc[y * ow..][..ow]);
            }
        }
    }
}

/// A dense convolution (groups 1, dilation 1) of `x` `[batch, g.channels, h, w]` with `w`
/// `[c_out, g.rows()]`, plus `bias[c_out]`: per image (in parallel) `y_b = W col(x_b)`, where a
/// 1x1 stride-1 unpadded convolution needs no im2col and other stride-1 convolutions use
/// [`FlatColumns`].
pub fn conv2d(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    batch: usize,
    c_out: usize,
    g: &Geometry,
) -> Vec<f32> {
    use rayon::prelude::*;
    let (r, q) = (g.rows(), g.cols());
    assert_eq!(x.len(), batch * g.input_len());
    assert_eq!(w.len(), c_out * r);
    let pointwise = g.kernel == [1, 1] && g.stride == [1, 1] && g.padding == [0, 0];
    let flat = FlatColumns::new(g).filter(|_| !pointwise);
    let scratch = match (pointwise, &flat) {
        (true, _) => 0,
        (false, Some(f)) => f.scratch() + c_out * f.span,
        (false, None) => r * q,
    };
    let mut y = vec![0f32; batch * c_out * q];
    y.par_chunks_mut(c_out * q)
        .zip(x.par_chunks(g.input_len()))
        .for_each_init(
            || vec![0f32; scratch],
            |buf, (yb, xb)| {
                let wm = Mat::rows(w, c_out, r);
                if let Some(f) = &flat {
                    let (cols, out) = buf.split_at_mut(f.scratch());
                    let col = f.columns(xb, cols);
                    matmul(out, wm, Mat::rows(col, r, f.span), false, false);
                    f.gather(out, yb, bias);
                    return;
                }
                let rhs = if pointwise {
                    Mat::rows(xb, r, q)
                } else {
                    im2col(xb, g, buf);
                    Mat::rows(buf, r, q)
                };
                matmul(yb, wm, rhs, false, false);
                if let Some(bias) = bias {
                    for (row, b) in yb.chunks_exact_mut(q).zip(bias) {
                        row.iter_mut().for_each(|v| *v += b);
                    }
                }
            },
        );
    y
}

/// `out[c] = sum_b sum_p grad[b, c, p]` for `grad` of shape `[batch, channels, plane]`.
pub(crate) fn channel_sums(grad: &[f32], batch: usize, channels: usize) -> Vec<f32> {
    let plane = grad.len() / (batch * channels).max(1);
    assert_eq!(grad.len(), batch * channels * plane);
    let mut out = vec![0f32; channels];
    for b in 0..batch {
        for (c, o) in out.iter_mut().enumerate() {
            *o += grad[(b * channels + c) * plane..][..plane]
                .iter()
                .sum::<f32>();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect()
    }

    /// im2col against the formula, and col2im as its exact adjoint: <im2col(x), y> = <x, col2im(y)>.
    #[test]
    fn im2col_matches_the_formula_and_col2im_is_its_adjoint() {
        for (c, hw, k, s, p) in [
            (2, [7, 6], [3, 3], [1, 1], [1, 1]),
            (3, [8, 8], [4, 4], [2, 2], [1, 1]),
            (1, [5, 9], [7, 7], [1, 1], [3, 3]),
            (2, [6, 5], [1, 1], [1, 1], [0, 0]),
            (2, [9, 7], [3, 2], [2, 3], [0, 1]),
        ] {
            let g = Geometry::new(c, hw, k, s, p);
            let x = random(g.input_len(), 1);
            let mut col = vec![f32::NAN; g.rows() * g.cols()];
            im2col(&x, &g, &mut col);
            for ci in 0..c {
                for i in 0..k[0] {
                    for j in 0..k[1] {
                        for oy in 0..g.output[0] {
                            for ox in 0..g.output[1] {
                                let iy = (oy * s[0] + i) as isize - p[0] as isize;
                                let ix = (ox * s[1] + j) as isize - p[1] as isize;
                                let want = if iy < 0
                                    || ix < 0
                                    || iy >= hw[0] as isize
                                    || ix >= hw[1] as isize
                                {
                                    0.0
                                } else {
                                    x[(ci * hw[0] + iy as usize) * hw[1] + ix as usize]
                                };
                                let r = (ci * k[0] + i) * k[1] + j;
                                assert_eq!(col[r * g.cols() + oy * g.output[1] + ox], want);
                            }
                        }
                    }
                }
            }
            let y = random(col.len(), 2);
            let mut back = vec![f32::NAN; x.len()];
            col2im(&y, &g, &mut back);
            let lhs: f64 = col.iter().zip(&y).map(|(a, b)| (a * b) as f64).sum();
            let rhs: f64 = x.iter().zip(&back).map(|(a, b)| (a * b) as f64).sum();
            assert!(
                (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
                "{lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn matmul_with_transposed_views_matches_a_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a = random(m * k, 3);
        let bt = random(n * k, 4); // b stored transposed: n x k
        for accumulate in [false, true] {
            let mut dst = vec![1.0f32; m * n];
            matmul(
                &mut dst,
                Mat::rows(&a, m, k),
                Mat::rows(&bt, n, k).t(),
                accumulate,
                false,
            );
            for r in 0..m {
                for c in 0..n {
                    let want: f32 = (0..k).map(|i| a[r * k + i] * bt[c * k + i]).sum::<f32>()
                        + if accumulate { 1.0 } else { 0.0 };
                    assert!((dst[r * n + c] - want).abs() < 1e-5);
                }
            }
        }
    }

    #[test]
    fn depthwise_weight_grad_matches_the_formula() {
        let (b, c, hw, k, p) = (3, 2, [6, 5], [3, 3], [1, 1]);
        let g = Geometry::new(c, hw, k, [1, 1], p);
        let x = random(b * g.input_len(), 5);
        let gr = random(b * c * g.cols(), 6);
        let got = depthwise_weight_grad(&x, &gr, b, &g);
        for ci in 0..c {
            for i in 0..3 {
                for j in 0..3 {
                    let mut want = 0f64;
                    for bi in 0..b {
                        for oy in 0..g.output[0] {
                            for ox in 0..g.output[1] {
                                let iy = oy as isize + i as isize - 1;
                                let ix = ox as isize + j as isize - 1;
                                if iy >= 0 && ix >= 0 && iy < hw[0] as isize && ix < hw[1] as isize
                                {
                                    want += (gr
                                        [((bi * c + ci) * g.output[0] + oy) * g.output[1] + ox]
                                        * x[((bi * c + ci) * hw[0] + iy as usize) * hw[1]
                                            + ix as usize])
                                        as f64;
                                }
                            }
                        }
                    }
                    let v = got[(ci * 3 + i) * 3 + j] as f64;
                    assert!((v - want).abs() < 1e-4, "{v} vs {want}");
                }
            }
        }
        // the forward against the formula
        let wk = random(c * 9, 7);
        let y = depthwise_conv(&x, &wk, Some(&[0.5, -0.5]), b, &g);
        for bi in 0..b {
            for ci in 0..c {
                for oy in 0..g.output[0] {
                    for ox in 0..g.output[1] {
                        let mut want = [0.5f64, -0.5][ci];
                        for i in 0..3 {
                            for j in 0..3 {
                                let iy = oy as isize + i as isize - 1;
                                let ix = ox as isize + j as isize - 1;
                                if iy >= 0 && ix >= 0 && iy < hw[0] as isize && ix < hw[1] as isize
                                {
                                    want += (wk[(ci * 3 + i) * 3 + j]
                                        * x[((bi * c + ci) * hw[0] + iy as usize) * hw[1]
                                            + ix as usize])
                                        as f64;
                                }
                            }
                        }
                        let got = y[((bi * c + ci) * g.output[0] + oy) * g.output[1] + ox] as f64;
                        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                    }
                }
            }
        }
        assert_eq!(channel_sums(&[1.0, 2.0, 3.0, 4.0], 2, 1), vec![10.0]);
        assert_eq!(channel_sums(&[1.0, 2.0, 3.0, 4.0], 1, 2), vec![3.0, 7.0]);
    }
}
