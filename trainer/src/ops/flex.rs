//! [`TrainBackend`] on the CPU backend: the backward kernels of [`super::kernels`] on the tensors'
//! buffers, parallel over the batch (rayon). Anything the kernels do not cover (dilation, groups
//! other than 1 or depthwise, other dtypes) takes the generic path.

use burn::backend::Flex;
use burn::tensor::ops::{
    ActivationOps, ConvOptions, ConvTransposeOptions, FloatTensor, FloatTensorOps, ModuleOps,
};
use burn::tensor::{DType, TensorData, TensorMetadata};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::kernels::{self, Geometry, Mat};
use super::{LayerNormState, TrainBackend, fused, generic};

/// The tensor's values as a contiguous `f32` buffer (no copy when it already is one).
fn values(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 tensor (checked by the caller)")
}

fn from_vec(v: Vec<f32>, shape: impl Into<burn::tensor::Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

fn is_f32(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

fn dims(t: &FlexTensor) -> [usize; 4] {
    t.shape().dims()
}

/// Images per partial sum of [`batch_sum`]. Fixed, so that the order of the floating-point sums
/// (and the result, to the bit) does not depend on the number of threads: exact resume holds.
const IMAGES_PER_PARTIAL: usize = 4;

/// The sum over the batch of `f(image, accumulator, scratch)`: partial sums over fixed groups of
/// images run in parallel, then add up in order.
fn batch_sum<F>(batch: usize, len: usize, scratch: usize, f: F) -> Vec<f32>
where
    F: Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
{
    let partials: Vec<Vec<f32>> = (0..batch.div_ceil(IMAGES_PER_PARTIAL))
        .into_par_iter()
        .map_init(
            || vec![0f32; scratch],
            |buf, k| {
                let mut acc = vec![0f32; len];
                let end = ((k + 1) * IMAGES_PER_PARTIAL).min(batch);
                for b in k * IMAGES_PER_PARTIAL..end {
                    f(b, &mut acc, buf);
                }
                acc
            },
        )
        .collect();
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_else(|| vec![0f32; len]);
    for p in parts {
        total.iter_mut().zip(&p).for_each(|(x, y)| *x += y);
    }
    total
}

impl TrainBackend for Flex {
    fn train_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let [co, ci_g, kh, kw] = dims(&weight);
        let [b, c, h, w] = dims(&x);
        let depthwise = ci_g == 1 && co == c && options.groups == c && options.stride == [1, 1];
        if options.dilation != [1, 1]
            || !(options.groups == 1 || depthwise)
            || !is_f32(&[&x, &weight])
            || bias.as_ref().is_some_and(|b| !is_f32(&[b]))
        {
            return Self::conv2d(x, weight, bias, options);
        }
        let geo = Geometry::new(c, [h, w], [kh, kw], options.stride, options.padding);
        let (xv, wv) = (values(&x), values(&weight));
        let bias = bias.map(|t| values(&t));
        let bias = bias.as_ref().map(slice);
        let y = if depthwise {
            kernels::depthwise_conv(slice(&xv), slice(&wv), bias, b, &geo)
        } else {
            kernels::conv2d(slice(&xv), slice(&wv), bias, b, co, &geo)
        };
        from_vec(y, [b, co, geo.output[0], geo.output[1]])
    }

    fn conv2d_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_hw: [usize; 2],
        options: &ConvOptions<2>,
    ) -> FloatTensor<Self> {
        // Stride 1: one forward convolution with the flipped kernel.
        if let Some((w, opts)) = generic::flipped_kernel::<Self>(weight.clone(), options) {
            return Self::train_conv2d(grad, w, None, opts);
        }
        if options.groups != 1 || options.dilation != [1, 1] || !is_f32(&[&weight, &grad]) {
            return generic::conv2d_input_grad::<Self>(weight, grad, x_hw, options);
        }
        // Strided: per image, col = W^T G (gemm), then scatter it back (col2im).
        let [co, ci, kh, kw] = dims(&weight);
        let [b, _, oh, ow] = dims(&grad);
        let geo = Geometry::new(ci, x_hw, [kh, kw], options.stride, options.padding);
        assert_eq!(geo.output, [oh, ow], "output gradient size");
        let (w, g) = (values(&weight), values(&grad));
        let (w, g) = (slice(&w), slice(&g));
        let (r, q) = (geo.rows(), geo.cols());
        let mut dx = vec![0f32; b * geo.input_len()];
        dx.par_chunks_mut(geo.input_len())
            .enumerate()
            .for_each_init(
                || vec![0f32; r * q],
                |col, (i, dxi)| {
                    let gi = Mat::rows(&g[i * co * q..][..co * q], co, q);
                    kernels::matmul(col, Mat::rows(w, co, r).t(), gi, false, false);
                    kernels::col2im(col, &geo, dxi);
                },
            );
        from_vec(dx, [b, ci, x_hw[0], x_hw[1]])
    }

    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        options: &ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let [co, ci_g, kh, kw] = weight_shape;
        let [b, c, h, w] = dims(&x);
        let depthwise = ci_g == 1 && co == c && options.groups == c && options.stride == [1, 1];
        if options.dilation != [1, 1]
            || !(options.groups == 1 || depthwise)
            || !is_f32(&[&x, &grad])
        {
            return generic::conv2d_weight_grad::<Self>(x, grad, weight_shape, options);
        }
        let geo = Geometry::new(c, [h, w], [kh, kw], options.stride, options.padding);
        assert_eq!(&dims(&grad)[2..], &geo.output, "output gradient size");
        let (xv, gv) = (values(&x), values(&grad));
        let (xs, gs) = (slice(&xv), slice(&gv));
        if depthwise {
            let dw = kernels::depthwise_weight_grad(xs, gs, b, &geo);
            return from_vec(dw, weight_shape);
        }
        // dW [co, r] = sum_b G_b [co, q] * col(x_b)^T [q, r]
        let (r, q) = (geo.rows(), geo.cols());
        let pointwise = (kh, kw) == (1, 1) && options.stride == [1, 1] && options.padding == [0, 0];
        let flat = kernels::FlatColumns::new(&geo).filter(|_| !pointwise);
        let scratch = match (pointwise, &flat) {
            (true, _) => 0,
            (false, Some(f)) => f.scratch() + co * f.span,
            (false, None) => r * q,
        };
        let dw = batch_sum(b, co * r, scratch, |i, acc, buf| {
            let xi = &xs[i * geo.input_len()..][..geo.input_len()];
            let gi = &gs[i * co * q..][..co * q];
            if let Some(f) = &flat {
                let (cols, gflat) = buf.split_at_mut(f.scratch());
                let col = f.columns(xi, cols);
                f.scatter(gi, gflat);
                let gm = Mat::rows(gflat, co, f.span);
                kernels::matmul(acc, gm, Mat::rows(col, r, f.span).t(), true, false);
            } else if pointwise {
                let gm = Mat::rows(gi, co, q);
                kernels::matmul(acc, gm, Mat::rows(xi, r, q).t(), true, false);
            } else {
                kernels::im2col(xi, &geo, buf);
                let gm = Mat::rows(gi, co, q);
                kernels::matmul(acc, gm, Mat::rows(buf, r, q).t(), true, false);
            }
        });
        from_vec(dw, weight_shape)
    }

    fn train_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        let simple = options.groups == 1
            && options.dilation == [1, 1]
            && options.padding_out[0] < options.stride[0]
            && options.padding_out[1] < options.stride[1];
        if !simple || !is_f32(&[&x, &weight]) || bias.as_ref().is_some_and(|b| !is_f32(&[b])) {
            return Self::conv_transpose2d(x, weight, bias, options);
        }
        // Per image: col = W^T x_b (gemm), then col2im onto the (larger) output.
        let [b, ci, h, w] = dims(&x);
        let [_, co, kh, kw] = dims(&weight);
        let out_hw = [0, 1].map(|d| {
            (x.shape().dims::<4>()[2 + d] - 1) * options.stride[d]
                + [kh, kw][d]
                + options.padding_out[d]
                - 2 * options.padding[d]
        });
        let geo = Geometry::new(co, out_hw, [kh, kw], options.stride, options.padding);
        assert_eq!(geo.output, [h, w], "transposed convolution geometry");
        let (xv, wv) = (values(&x), values(&weight));
        let (xs, ws) = (slice(&xv), slice(&wv));
        let bias = bias.map(|t| values(&t));
        let bias = bias.as_ref().map(slice);
        let (r, q) = (geo.rows(), geo.cols());
        let mut y = vec![0f32; b * geo.input_len()];
        let plane = out_hw[0] * out_hw[1];
        y.par_chunks_mut(geo.input_len()).enumerate().for_each_init(
            || vec![0f32; r * q],
            |col, (i, yi)| {
                let xi = Mat::rows(&xs[i * ci * q..][..ci * q], ci, q);
                kernels::matmul(col, Mat::rows(ws, ci, r).t(), xi, false, false);
                kernels::col2im(col, &geo, yi);
                if let Some(bias) = bias {
                    for (c, p) in yi.chunks_mut(plane).enumerate() {
                        p.iter_mut().for_each(|v| *v += bias[c]);
                    }
                }
            },
        );
        from_vec(y, [b, co, out_hw[0], out_hw[1]])
    }

    fn conv_transpose2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: &ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        if options.groups != 1 || options.dilation != [1, 1] || !is_f32(&[&x, &grad]) {
            return Self::conv_transpose2d_weight_backward(x, weight, grad, options.clone());
        }
        // dW [ci, co k k] = sum_b x_b [ci, q] * col(grad_b)^T [q, co k k]: the grad is the input
        // of the equivalent strided convolution whose output has x's size.
        let [b, ci, h, w] = dims(&x);
        let wshape = dims(&weight);
        let [_, co, kh, kw] = wshape;
        let [_, _, gh, gw] = dims(&grad);
        let geo = Geometry::new(co, [gh, gw], [kh, kw], options.stride, options.padding);
        assert_eq!(geo.output, [h, w], "transposed convolution geometry");
        let (xv, gv) = (values(&x), values(&grad));
        let (xs, gs) = (slice(&xv), slice(&gv));
        let (r, q) = (geo.rows(), geo.cols());
        let dw = batch_sum(b, ci * r, r * q, |i, acc, col| {
            kernels::im2col(&gs[i * geo.input_len()..][..geo.input_len()], &geo, col);
            let xi = Mat::rows(&xs[i * ci * q..][..ci * q], ci, q);
            kernels::matmul(acc, xi, Mat::rows(col, r, q).t(), true, false);
        });
        from_vec(dw, wshape)
    }

    fn bias_grad(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_f32(&[&grad]) {
            let [_, c, _, _] = dims(&grad);
            let g = Self::float_sum_dim(Self::float_sum_dim(Self::float_sum_dim(grad, 3), 2), 0);
            return Self::float_reshape(g, [c].into());
        }
        let [b, c, _, _] = dims(&grad);
        let g = values(&grad);
        let sums = kernels::channel_sums(slice(&g), b, c);
        FlexTensor::from_data(TensorData::new(sums, [c]))
    }

    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gain: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> LayerNormState<Self> {
        if !is_f32(&[&x, &gain, &bias]) {
            return generic::layer_norm_forward::<Self>(x, gain, bias, eps);
        }
        let [b, c, h, w] = dims(&x);
        let (xv, gv, bv) = (values(&x), values(&gain), values(&bias));
        let out =
            fused::layer_norm_forward(slice(&xv), slice(&gv), slice(&bv), c, h * w, eps as f32);
        LayerNormState {
            y: from_vec(out.y, [b, c, h, w]),
            xhat: from_vec(out.xhat, [b, c, h, w]),
            rstd: from_vec(out.rstd, [b, 1, h, w]),
        }
    }

    fn layer_norm_backward(
        grad: FloatTensor<Self>,
        state: LayerNormState<Self>,
        gain: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        if !is_f32(&[&grad, &state.xhat, &state.rstd, &gain]) {
            return generic::layer_norm_backward::<Self>(grad, state, gain);
        }
        let [b, c, h, w] = dims(&grad);
        let gain_shape = gain.shape();
        let (g, xh, rs, gn) = (
            values(&grad),
            values(&state.xhat),
            values(&state.rstd),
            values(&gain),
        );
        let (dx, dgain, dbias) =
            fused::layer_norm_backward(slice(&g), slice(&xh), slice(&rs), slice(&gn), c, h * w);
        [
            from_vec(dx, [b, c, h, w]),
            from_vec(dgain, gain_shape.clone()),
            from_vec(dbias, gain_shape),
        ]
    }

    fn train_add_channel_bias(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_f32(&[&x, &bias]) {
            return generic::add_channel_bias::<Self>(x, bias);
        }
        let [b, c, h, w] = dims(&x);
        let (xv, bv) = (values(&x), values(&bias));
        from_vec(
            fused::add_channel_bias(slice(&xv), slice(&bv), h * w),
            [b, c, h, w],
        )
    }

    fn plane_sums(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_f32(&[&grad]) {
            return generic::plane_sums::<Self>(grad);
        }
        let [b, c, h, w] = dims(&grad);
        let g = values(&grad);
        from_vec(fused::plane_sums(slice(&g), h * w), [b, c])
    }

    fn softmax_last_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_f32(&[&y, &grad]) {
            return generic::softmax_last_backward::<Self>(y, grad);
        }
        let shape = y.shape();
        let n = shape[shape.num_dims() - 1];
        let (yv, gv) = (values(&y), values(&grad));
        from_vec(fused::softmax_backward(slice(&yv), slice(&gv), n), shape)
    }

    fn train_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_f32(&[&x]) {
            return Self::gelu(x);
        }
        let xv = values(&x);
        from_vec(fused::gelu(slice(&xv)), x.shape())
    }

    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        if !is_f32(&[&x, &grad]) {
            return Self::gelu_backward(x, grad);
        }
        let (xv, gv) = (values(&x), values(&grad));
        from_vec(fused::gelu_backward(slice(&xv), slice(&gv)), x.shape())
    }
}
