//! The ConvNeXt block of the reference U-Net.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use cold_core::onnx::GraphBuilder;

use super::lower;
use super::norm::{ChannelLayerNorm, ChannelLayerNormConfig};
use crate::ops::{TrainBackend, add_channel_bias, conv2d_module, gelu};

/// Configuration of [`ConvNextBlock`].
#[derive(Config, Debug)]
pub struct ConvNextBlockConfig {
    pub dim_in: usize,
    pub dim_out: usize,
    /// Width of the time embedding; `None` for a block without time conditioning.
    pub time_dim: Option<usize>,
    /// Channel expansion of the inner 3x3 convolution.
    #[config(default = 2)]
    pub mult: usize,
    /// Whether the channel LayerNorm is applied (the reference skips it in the first block).
    #[config(default = true)]
    pub norm: bool,
    /// Depthwise kernel size.
    #[config(default = 7)]
    pub depthwise_kernel: usize,
}

/// `x -> dwconv7x7 (+ Linear(GELU(t))) -> [LayerNorm] -> conv3x3 -> GELU -> conv3x3 (+ res(x))`.
#[derive(Module, Debug)]
pub struct ConvNextBlock<B: Backend> {
    pub time_proj: Option<Linear<B>>,
    pub depthwise: Conv2d<B>,
    pub norm: Option<ChannelLayerNorm<B>>,
    pub conv1: Conv2d<B>,
    pub conv2: Conv2d<B>,
    /// 1x1 convolution on the residual path when the channel count changes.
    pub residual: Option<Conv2d<B>>,
}

impl ConvNextBlockConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> ConvNextBlock<B> {
        let k = self.depthwise_kernel;
        let hidden = self.dim_out * self.mult;
        let same3 = || PaddingConfig2d::Explicit(1, 1, 1, 1);
        ConvNextBlock {
            time_proj: self
                .time_dim
                .map(|t| LinearConfig::new(t, self.dim_in).init(device)),
            depthwise: Conv2dConfig::new([self.dim_in, self.dim_in], [k, k])
                .with_groups(self.dim_in)
                .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
                .init(device),
            norm: self
                .norm
                .then(|| ChannelLayerNormConfig::new(self.dim_in).init(device)),
            conv1: Conv2dConfig::new([self.dim_in, hidden], [3, 3])
                .with_padding(same3())
                .init(device),
            conv2: Conv2dConfig::new([hidden, self.dim_out], [3, 3])
                .with_padding(same3())
                .init(device),
            residual: (self.dim_in != self.dim_out)
                .then(|| Conv2dConfig::new([self.dim_in, self.dim_out], [1, 1]).init(device)),
        }
    }
}

impl<B: TrainBackend> ConvNextBlock<B> {
    /// # Shapes
    /// - x: `[B, dim_in, H, W]`, time: `[B, time_dim]` -> `[B, dim_out, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>, time: Option<Tensor<B, 2>>) -> Tensor<B, 4> {
        let mut h = conv2d_module(&self.depthwise, x.clone());
        if let (Some(proj), Some(t)) = (&self.time_proj, time) {
            h = add_channel_bias(h, proj.forward(gelu(t)));
        }
        if let Some(n) = &self.norm {
            h = n.forward(h);
        }
        let h = conv2d_module(&self.conv2, gelu(conv2d_module(&self.conv1, h)));
        let res = match &self.residual {
            Some(r) => conv2d_module(r, x),
            None => x,
        };
        h + res
    }
}
impl<B: Backend> ConvNextBlock<B> {
    /// [`ConvNextBlock::forward`] as ONNX nodes on `x` (any size); `temb_gelu` is GELU(time
    /// embedding), which every block of the U-Net shares. Returns the output's name.
    pub fn lower(
        &self,
        g: &mut GraphBuilder,
        name: &str,
        x: &str,
        temb_gelu: Option<&str>,
    ) -> String {
        g.scoped(name, |g| {
            let mut h = lower::conv(g, &format!("{name}.depthwise"), &self.depthwise, x);
            if let (Some(proj), Some(te)) = (&self.time_proj, temb_gelu) {
                let c = proj.weight.val().dims()[1] as i64;
                let cond = lower::linear(g, &format!("{name}.time_proj"), proj, te);
                let shape = g.const_i64(&[0, c, 1, 1], &[4]);
                let cond = g.op1("Reshape", &[&cond, &shape], vec![]);
                h = g.op1("Add", &[&h, &cond], vec![]);
            }
            if let Some(n) = &self.norm {
                h = n.lower(g, &format!("{name}.norm"), &h);
            }
            let h = lower::conv(g, &format!("{name}.conv1"), &self.conv1, &h);
            let h = lower::gelu(g, &h);
            let h = lower::conv(g, &format!("{name}.conv2"), &self.conv2, &h);
            let res = match &self.residual {
                Some(r) => lower::conv(g, &format!("{name}.residual"), r, x),
                None => x.to_string(),
            };
            g.op1("Add", &[&h, &res], vec![])
        })
    }
}
