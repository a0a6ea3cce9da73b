//! The reference's channel LayerNorm: normalise over channels at each pixel.

use burn::module::Param;
use burn::prelude::*;

use crate::ops::{TrainBackend, channel_layer_norm};

/// Configuration of [`ChannelLayerNorm`].
#[derive(Config, Debug)]
pub struct ChannelLayerNormConfig {
    pub channels: usize,
    #[config(default = 1e-5)]
    pub eps: f64,
}

/// `(x - mean_c) / sqrt(var_c + eps) * g + b`, statistics over the channel axis (biased variance).
#[derive(Module, Debug)]
pub struct ChannelLayerNorm<B: Backend> {
    /// `[1, C, 1, 1]`, initialised to 1.
    pub gain: Param<Tensor<B, 4>>,
    /// `[1, C, 1, 1]`, initialised to 0.
    pub bias: Param<Tensor<B, 4>>,
    pub eps: f64,
}

impl ChannelLayerNormConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> ChannelLayerNorm<B> {
        ChannelLayerNorm {
            gain: Param::from_tensor(Tensor::ones([1, self.channels, 1, 1], device)),
            bias: Param::from_tensor(Tensor::zeros([1, self.channels, 1, 1], device)),
            eps: self.eps,
        }
    }
}

impl<B: TrainBackend> ChannelLayerNorm<B> {
    /// # Shapes
    /// - x: `[B, C, H, W]` -> `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        channel_layer_norm(x, self.gain.val(), self.bias.val(), self.eps)
    }
}
