//! Linear attention (Shen et al.) as in the reference, wrapped as `x + attn(LayerNorm(x))`.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::prelude::*;

use cold_core::onnx::{Attr, GraphBuilder};

use super::lower;
use super::norm::{ChannelLayerNorm, ChannelLayerNormConfig};
use crate::ops::{TrainBackend, conv2d_module, softmax_last};

/// Configuration of [`LinearAttention`].
#[derive(Config, Debug)]
pub struct LinearAttentionConfig {
    pub dim: usize,
    #[config(default = 4)]
    pub heads: usize,
    #[config(default = 32)]
    pub dim_head: usize,
}

/// Residual pre-normed linear attention: `x + to_out(attn(to_qkv(LayerNorm(x))))`.
///
/// Per head, with q, k, v of shape `[d, n]` (n = H W): `k = softmax_n(k)`, `ctx = k v^T`,
/// `out = ctx^T (q / sqrt(d))`.
#[derive(Module, Debug)]
pub struct LinearAttention<B: Backend> {
    pub norm: ChannelLayerNorm<B>,
    /// 1x1, no bias, `dim -> 3 heads dim_head`.
    pub to_qkv: Conv2d<B>,
    /// 1x1, `heads dim_head -> dim`.
    pub to_out: Conv2d<B>,
    pub heads: usize,
    pub dim_head: usize,
}

impl LinearAttentionConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> LinearAttention<B> {
        let hidden = self.heads * self.dim_head;
        LinearAttention {
            norm: ChannelLayerNormConfig::new(self.dim).init(device),
            to_qkv: Conv2dConfig::new([self.dim, 3 * hidden], [1, 1])
                .with_bias(false)
                .init(device),
            to_out: Conv2dConfig::new([hidden, self.dim], [1, 1]).init(device),
            heads: self.heads,
            dim_head: self.dim_head,
        }
    }
}

impl<B: TrainBackend> LinearAttention<B> {
    /// # Shapes
    /// - x: `[B, dim, H, W]` -> `[B, dim, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, _, h, w] = x.dims();
        let (heads, d) = (self.heads, self.dim_head);
        let hidden = heads * d;
        let qkv = conv2d_module(&self.to_qkv, self.norm.forward(x.clone()));
        let split = |i: usize| {
            qkv.clone()
                .narrow(1, i * hidden, hidden)
                .reshape([b, heads, d, h * w])
        };
        let q = split(0) * (d as f64).powf(-0.5);
        let k = softmax_last(split(1));
        let v = split(2);
        let context = k.matmul(v.swap_dims(2, 3)); // [b, heads, d, e]
        let out = context.swap_dims(2, 3).matmul(q); // [b, heads, e, n]
        x + conv2d_module(&self.to_out, out.reshape([b, hidden, h, w]))
    }
}

impl<B: Backend> LinearAttention<B> {
    /// [`LinearAttention::forward`] as ONNX nodes on `x`; the pixels are flattened and restored to
    /// `hw`, the feature map's `[H, W]` (int64, from the graph's input image: a `Shape` of a
    /// convolution's output would change how ONNX Runtime lays the convolutions out, and with it
    /// their rounding), so the graph works at any image size. Returns the output's name.
    pub fn lower(&self, g: &mut GraphBuilder, name: &str, x: &str, hw: &str) -> String {
        g.scoped(name, |g| {
            let (heads, d) = (self.heads as i64, self.dim_head as i64);
            let hidden = heads * d;
            let xn = self.norm.lower(g, &format!("{name}.norm"), x);
            let qkv = lower::conv(g, &format!("{name}.to_qkv"), &self.to_qkv, &xn);
            let split = g.const_i64(&[hidden, hidden, hidden], &[3]);
            let parts = g.op_n("Split", &[&qkv, &split], vec![("axis", Attr::Int(1))], 3);
            let shape = g.const_i64(&[0, heads, d, -1], &[4]);
            let q = g.op1("Reshape", &[&parts[0], &shape], vec![]);
            let k = g.op1("Reshape", &[&parts[1], &shape], vec![]);
            let v = g.op1("Reshape", &[&parts[2], &shape], vec![]);
            let scale = g.const_f32(&[(d as f64).powf(-0.5) as f32], &[]);
            let q = g.op1("Mul", &[&q, &scale], vec![]);
            let k = g.op1("Softmax", &[&k], vec![("axis", Attr::Int(3))]);
            let vt = g.op1(
                "Transpose",
                &[&v],
                vec![("perm", Attr::Ints(vec![0, 1, 3, 2]))],
            );
            let context = g.op1("MatMul", &[&k, &vt], vec![]);
            let ct = g.op1(
                "Transpose",
                &[&context],
                vec![("perm", Attr::Ints(vec![0, 1, 3, 2]))],
            );
            let out = g.op1("MatMul", &[&ct, &q], vec![]);
            let lead = g.const_i64(&[0, hidden], &[2]);
            let back = g.op1("Concat", &[&lead, hw], vec![("axis", Attr::Int(0))]);
            let out = g.op1("Reshape", &[&out, &back], vec![]);
            let out = lower::conv(g, &format!("{name}.to_out"), &self.to_out, &out);
            g.op1("Add", &[x, &out], vec![])
        })
    }
}
