//! The reference's channel LayerNorm: normalise over channels at each pixel.

use burn::module::Param;
use burn::prelude::*;

use cold_core::onnx::{Attr, GraphBuilder};

use super::lower::weight;
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

impl<B: Backend> ChannelLayerNorm<B> {
    /// [`ChannelLayerNorm::forward`] as ONNX nodes on `x` (any size); returns the output's name.
    pub fn lower(&self, g: &mut GraphBuilder, name: &str, x: &str) -> String {
        let axes = g.const_i64(&[1], &[1]);
        let mean = g.op1("ReduceMean", &[x, &axes], vec![("keepdims", Attr::Int(1))]);
        let centred = g.op1("Sub", &[x, &mean], vec![]);
        let sq = g.op1("Mul", &[&centred, &centred], vec![]);
        let var = g.op1(
            "ReduceMean",
            &[&sq, &axes],
            vec![("keepdims", Attr::Int(1))],
        );
        let eps = g.const_f32(&[self.eps as f32], &[]);
        let v = g.op1("Add", &[&var, &eps], vec![]);
        let sd = g.op1("Sqrt", &[&v], vec![]);
        let normed = g.op1("Div", &[&centred, &sd], vec![]);
        let gain = weight(g, &format!("{name}.gain"), &self.gain);
        let bias = weight(g, &format!("{name}.bias"), &self.bias);
        let y = g.op1("Mul", &[&normed, &gain], vec![]);
        g.op1("Add", &[&y, &bias], vec![])
    }
}
