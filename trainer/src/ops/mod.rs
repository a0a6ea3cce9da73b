//! Training ops with backward passes of our own: convolutions and transposed convolutions.
//!
//! Burn 0.21 gives every backend the same generic convolution backward: the input gradient of any
//! convolution is a transposed convolution (a single-threaded col2im scatter on the CPU), the weight
//! gradient permutes both operands and runs a convolution with an image-sized kernel, and the
//! depthwise weight gradient loops over the channels (slice, convolution, slice_assign). Those
//! dominated a CPU training step (BENCHMARKS.md). Here:
//!
//! - [`TrainBackend`] names the backward kernels. Its default methods compose them from Burn ops
//!   that run on every backend (the input gradient of a stride-1 convolution is a convolution with
//!   the flipped kernel; the depthwise weight gradient is one grouped convolution over the batch);
//!   the CPU backend ([`burn::backend::Flex`]) overrides them with im2col/col2im and `gemm` kernels
//!   on the raw buffers ([`kernels`]).
//! - [`conv2d`] and [`conv_transpose2d`] are the model's entry points: on an autodiff backend they
//!   record a node whose backward calls those kernels ([`autodiff`]); elsewhere they are the
//!   backend's own forward.
//!
//! Gradients equal Burn's own autodiff to float rounding (tested below and in `tests`).

mod autodiff;
#[cfg(feature = "cuda")]
mod cuda;
mod depthwise;
mod flex;
pub mod fused;
pub mod generic;
pub mod kernels;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, FloatTensor};
use burn::tensor::{TensorMetadata, TensorPrimitive};

/// A backend the trainer can run on: Burn's backend plus the convolution backward kernels.
///
/// Every method has a default built from Burn ops; a backend overrides what it can do faster.
pub trait TrainBackend: Backend {
    /// The forward convolution, recording the custom backward on autodiff backends.
    fn train_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, bias, options)
    }

    /// The forward transposed convolution, recording the custom backward on autodiff backends.
    fn train_conv_transpose2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        options: ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d(x, weight, bias, options)
    }

    /// Gradient of `conv2d(x, weight)` with respect to `x` (of height and width `x_hw`).
    fn conv2d_input_grad(
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        x_hw: [usize; 2],
        options: &ConvOptions<2>,
    ) -> FloatTensor<Self> {
        generic::conv2d_input_grad::<Self>(weight, grad, x_hw, options)
    }

    /// Gradient of `conv2d(x, weight)` with respect to `weight` (of shape `weight_shape`).
    fn conv2d_weight_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        weight_shape: [usize; 4],
        options: &ConvOptions<2>,
    ) -> FloatTensor<Self> {
        generic::conv2d_weight_grad::<Self>(x, grad, weight_shape, options)
    }

    /// Gradient of `conv_transpose2d(x, weight)` with respect to `weight`.
    fn conv_transpose2d_weight_grad(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        options: &ConvTransposeOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv_transpose2d_weight_backward(x, weight, grad, options.clone())
    }

    /// Gradient with respect to a per-channel bias: `grad` summed over batch, height and width.
    fn bias_grad(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [_, c, _, _] = grad.shape().dims();
        let g = Self::float_sum_dim(Self::float_sum_dim(Self::float_sum_dim(grad, 3), 2), 0);
        Self::float_reshape(g, [c].into())
    }

    /// LayerNorm over the channel axis, recording the custom backward on autodiff backends.
    fn train_layer_norm(
        x: FloatTensor<Self>,
        gain: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        Self::layer_norm_forward(x, gain, bias, eps).y
    }

    /// The channel LayerNorm's output and what its backward needs.
    fn layer_norm_forward(
        x: FloatTensor<Self>,
        gain: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        eps: f64,
    ) -> LayerNormState<Self> {
        generic::layer_norm_forward::<Self>(x, gain, bias, eps)
    }

    /// Gradients of the channel LayerNorm: `(dx, dgain, dbias)`, shaped as x, gain and bias.
    fn layer_norm_backward(
        grad: FloatTensor<Self>,
        state: LayerNormState<Self>,
        gain: FloatTensor<Self>,
    ) -> [FloatTensor<Self>; 3] {
        generic::layer_norm_backward::<Self>(grad, state, gain)
    }

    /// `x + bias[b, c]` broadcast over height and width, recording the backward on autodiff
    /// backends.
    fn train_add_channel_bias(x: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        generic::add_channel_bias::<Self>(x, bias)
    }

    /// `[B, C, H, W] -> [B, C]`: the sum over each image plane (the channel bias's gradient).
    fn plane_sums(grad: FloatTensor<Self>) -> FloatTensor<Self> {
        generic::plane_sums::<Self>(grad)
    }

    /// Softmax over the last axis, recording the backward on autodiff backends.
    fn train_softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }

    /// Gradient of the last-axis softmax from its output `y`: `y * (grad - sum(grad * y))`.
    fn softmax_last_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        generic::softmax_last_backward::<Self>(y, grad)
    }

    /// GELU (erf form), recording the backward on autodiff backends.
    fn train_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu(x)
    }

    /// Gradient of GELU at `x`.
    fn gelu_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::gelu_backward(x, grad)
    }
}

/// What the channel LayerNorm's backward needs from its forward.
#[derive(Debug)]
pub struct LayerNormState<B: Backend> {
    /// The output `xhat * gain + bias`.
    pub y: FloatTensor<B>,
    /// `(x - mean) / sqrt(var + eps)`, `[B, C, H, W]`.
    pub xhat: FloatTensor<B>,
    /// `1 / sqrt(var + eps)`, `[B, 1, H, W]`.
    pub rstd: FloatTensor<B>,
}

impl<B: Backend> Clone for LayerNormState<B> {
    fn clone(&self) -> Self {
        LayerNormState {
            y: self.y.clone(),
            xhat: self.xhat.clone(),
            rstd: self.rstd.clone(),
        }
    }
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

fn tensor<B: Backend, const D: usize>(p: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// `conv2d` with the trainer's backward.
///
/// # Shapes
/// - x: `[B, C_in, H, W]`, weight: `[C_out, C_in / groups, kh, kw]`, bias: `[C_out]`
///   -> `[B, C_out, H_out, W_out]`
pub fn conv2d<B: TrainBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<2>,
) -> Tensor<B, 4> {
    tensor(B::train_conv2d(
        prim(x),
        prim(weight),
        bias.map(prim),
        options,
    ))
}

/// `conv_transpose2d` with the trainer's backward.
///
/// # Shapes
/// - x: `[B, C_in, H, W]`, weight: `[C_in, C_out / groups, kh, kw]`, bias: `[C_out]`
///   -> `[B, C_out, H_out, W_out]`
pub(crate) fn conv_transpose2d<B: TrainBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: ConvTransposeOptions<2>,
) -> Tensor<B, 4> {
    tensor(B::train_conv_transpose2d(
        prim(x),
        prim(weight),
        bias.map(prim),
        options,
    ))
}

/// LayerNorm over the channel axis at every pixel (biased variance), with the trainer's backward.
///
/// # Shapes
/// - x: `[B, C, H, W]`, gain and bias: `[1, C, 1, 1]` -> `[B, C, H, W]`
pub(crate) fn channel_layer_norm<B: TrainBackend>(
    x: Tensor<B, 4>,
    gain: Tensor<B, 4>,
    bias: Tensor<B, 4>,
    eps: f64,
) -> Tensor<B, 4> {
    tensor(B::train_layer_norm(prim(x), prim(gain), prim(bias), eps))
}

/// `x + bias` with one bias per image and channel, broadcast over the plane.
///
/// # Shapes
/// - x: `[B, C, H, W]`, bias: `[B, C]` -> `[B, C, H, W]`
pub(crate) fn add_channel_bias<B: TrainBackend>(
    x: Tensor<B, 4>,
    bias: Tensor<B, 2>,
) -> Tensor<B, 4> {
    tensor(B::train_add_channel_bias(prim(x), prim(bias)))
}

/// Softmax over the last axis.
pub(crate) fn softmax_last<B: TrainBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    tensor(B::train_softmax_last(prim(x)))
}

/// GELU, the erf form (as `burn::tensor::activation::gelu` and ONNX `Gelu`).
pub fn gelu<B: TrainBackend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    tensor(B::train_gelu(prim(x)))
}

/// A [`Conv2d`] module's forward through [`conv2d`] (symmetric explicit or no padding; other
/// padding goes through the module's own forward).
pub(crate) fn conv2d_module<B: TrainBackend>(m: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let padding = match m.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return m.forward(x),
    };
    conv2d(
        x,
        m.weight.val(),
        m.bias.as_ref().map(|b| b.val()),
        ConvOptions::new(m.stride, padding, m.dilation, m.groups),
    )
}

/// A [`ConvTranspose2d`] module's forward through [`conv_transpose2d`].
pub(crate) fn conv_transpose2d_module<B: TrainBackend>(
    m: &ConvTranspose2d<B>,
    x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    conv_transpose2d(
        x,
        m.weight.val(),
        m.bias.as_ref().map(|b| b.val()),
        ConvTransposeOptions::new(m.stride, m.padding, m.padding_out, m.dilation, m.groups),
    )
}

#[cfg(test)]
mod tests;
