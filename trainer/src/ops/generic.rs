//! The backward compositions every backend can run: the [`TrainBackend`] defaults, built from
//! Burn's backend ops.

use burn::prelude::*;
use burn::tensor::TensorMetadata;
use burn::tensor::ops::{ConvOptions, FloatTensor};

/// The kernel and options that turn a stride-1 convolution's input gradient into a convolution of
/// the output gradient: the kernel flipped (and its channel axes swapped unless depthwise), padded
/// by `k - 1 - p`. `None` for strided, dilated or grouped (not depthwise) convolutions.
pub(crate) fn flipped_kernel<B: Backend>(
    weight: FloatTensor<B>,
    options: &ConvOptions<2>,
) -> Option<(FloatTensor<B>, ConvOptions<2>)> {
    let [co, ci_g, kh, kw] = weight.shape().dims();
    let g = options.groups;
    let flippable = options.stride == [1, 1]
        && options.dilation == [1, 1]
        && options.padding[0] < kh
        && options.padding[1] < kw
        && (g == 1 || (ci_g == 1 && co == g));
    if !flippable {
        return None;
    }
    let flipped = B::float_flip(weight, &[2, 3]);
    let w = if g == 1 {
        B::float_swap_dims(flipped, 0, 1)
    } else {
        flipped
    };
    let pad = [kh - 1 - options.padding[0], kw - 1 - options.padding[1]];
    Some((w, ConvOptions::new([1, 1], pad, [1, 1], g)))
}

/// A stride-1 convolution's input gradient is a convolution with the [`flipped_kernel`]; other
/// strides use the backend's transposed convolution.
pub fn conv2d_input_grad<B: Backend>(
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    x_hw: [usize; 2],
    options: &ConvOptions<2>,
) -> FloatTensor<B> {
    if let Some((w, opts)) = flipped_kernel::<B>(weight.clone(), options) {
        return B::conv2d(grad, w, None, opts);
    }
    let [_, ci_g, _, _] = weight.shape().dims();
    let [b, _, _, _] = grad.shape().dims();
    let x_shape = [b, ci_g * options.groups, x_hw[0], x_hw[1]];
    let x = B::float_zeros(x_shape.into(), &B::float_device(&grad), grad.dtype().into());
    B::conv2d_x_backward(x, weight, grad, options.clone())
}

/// Weight gradient: for a depthwise convolution one grouped convolution over the batch
/// (each (image, channel) plane correlated with its output gradient, then summed over the
/// batch); otherwise the backend's own.
pub fn conv2d_weight_grad<B: Backend>(
    x: FloatTensor<B>,
    grad: FloatTensor<B>,
    weight_shape: [usize; 4],
    options: &ConvOptions<2>,
) -> FloatTensor<B> {
    let [co, ci_g, kh, kw] = weight_shape;
    let [b, c, h, w] = x.shape().dims();
    let [_, _, oh, ow] = grad.shape().dims();
    let depthwise = ci_g == 1 && co == c && options.groups == c;
    if depthwise && options.stride == [1, 1] && options.dilation == [1, 1] {
        let x = B::float_reshape(x, [1, b * c, h, w].into());
        let g = B::float_reshape(grad, [b * c, 1, oh, ow].into());
        let pad = options.padding;
        let dw = B::conv2d(x, g, None, ConvOptions::new([1, 1], pad, [1, 1], b * c));
        // [1, b*c, kh', kw'] with kh' >= kh when the padding is asymmetric in effect.
        let [_, _, rh, rw] = dw.shape().dims();
        let dw = B::float_reshape(dw, [b, c, rh, rw].into());
        let dw = B::float_sum_dim(dw, 0);
        let dw = if (rh, rw) != (kh, kw) {
            B::float_slice(
                dw,
                &[
                    burn::tensor::Slice::from(0..1),
                    burn::tensor::Slice::from(0..c),
                    burn::tensor::Slice::from(0..kh),
                    burn::tensor::Slice::from(0..kw),
                ],
            )
        } else {
            dw
        };
        return B::float_reshape(dw, weight_shape.into());
    }
    let weight = B::float_zeros(
        weight_shape.into(),
        &B::float_device(&grad),
        grad.dtype().into(),
    );
    B::conv2d_weight_backward(x, weight, grad, options.clone())
}

fn t<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(p))
}

fn p<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// The channel LayerNorm as Burn ops: statistics over axis 1 (biased variance).
pub(crate) fn layer_norm_forward<B: Backend>(
    x: FloatTensor<B>,
    gain: FloatTensor<B>,
    bias: FloatTensor<B>,
    eps: f64,
) -> super::LayerNormState<B> {
    let x = t::<B, 4>(x);
    let mean = x.clone().mean_dim(1);
    let centred = x - mean;
    let var = centred.clone().powi_scalar(2).mean_dim(1);
    let rstd = (var + eps).sqrt().recip();
    let xhat = centred * rstd.clone();
    let y = xhat.clone() * t::<B, 4>(gain) + t::<B, 4>(bias);
    super::LayerNormState {
        y: p(y),
        xhat: p(xhat),
        rstd: p(rstd),
    }
}

/// `dx = rstd (d - mean_c(d) - xhat mean_c(d xhat))` with `d = grad * gain`; `dgain` and `dbias`
/// sum `grad * xhat` and `grad` over batch and pixels.
pub(crate) fn layer_norm_backward<B: Backend>(
    grad: FloatTensor<B>,
    state: super::LayerNormState<B>,
    gain: FloatTensor<B>,
) -> [FloatTensor<B>; 3] {
    let gain_shape = gain.shape();
    let (grad, xhat, rstd) = (
        t::<B, 4>(grad),
        t::<B, 4>(state.xhat),
        t::<B, 4>(state.rstd),
    );
    let d = grad.clone() * t::<B, 4>(gain);
    let m1 = d.clone().mean_dim(1);
    let m2 = (d.clone() * xhat.clone()).mean_dim(1);
    let dx = rstd * (d - m1 - xhat.clone() * m2);
    let sum_bhw = |v: Tensor<B, 4>| v.sum_dim(0).sum_dim(2).sum_dim(3);
    let dgain = B::float_reshape(p(sum_bhw(grad.clone() * xhat)), gain_shape.clone());
    let dbias = B::float_reshape(p(sum_bhw(grad)), gain_shape);
    [p(dx), dgain, dbias]
}

/// `x + bias.reshape([B, C, 1, 1])`.
pub(crate) fn add_channel_bias<B: Backend>(
    x: FloatTensor<B>,
    bias: FloatTensor<B>,
) -> FloatTensor<B> {
    let x = t::<B, 4>(x);
    let [b, c, _, _] = x.dims();
    p(x + t::<B, 2>(bias).reshape([b, c, 1, 1]))
}

/// `[B, C, H, W] -> [B, C]` plane sums.
pub(crate) fn plane_sums<B: Backend>(grad: FloatTensor<B>) -> FloatTensor<B> {
    let g = t::<B, 4>(grad);
    let [b, c, _, _] = g.dims();
    p(g.sum_dim(3).sum_dim(2).reshape([b, c]))
}

/// `y * (grad - sum_last(grad * y))`.
pub(crate) fn softmax_last_backward<B: Backend>(
    y: FloatTensor<B>,
    grad: FloatTensor<B>,
) -> FloatTensor<B> {
    let (y, g) = (t::<B, 4>(y), t::<B, 4>(grad));
    let s = (g.clone() * y.clone()).sum_dim(3);
    p(y * (g - s))
}
