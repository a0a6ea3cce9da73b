//! The attention U-Net restorer R(x, t) of the reference (a ConvNeXt U-Net with linear attention).

use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, PaddingConfig2d};
use burn::prelude::*;

use super::attention::{LinearAttention, LinearAttentionConfig};
use super::convnext::{ConvNextBlock, ConvNextBlockConfig};
use super::embedding::{TimeMlp, TimeMlpConfig};
use super::lower;
use crate::ops::{TrainBackend, conv_transpose2d_module, conv2d_module};
use cold_core::onnx::{Attr, GraphBuilder};

pub use cold_core::network::{MODEL_PRESETS, UNetConfig};

/// Builds the Burn network of a [`UNetConfig`] (the size is shared with the runtime through the
/// manifest, so it lives in `cold_core`; this is its Burn half).
pub trait InitUNet {
    /// A freshly initialised network of this size.
    fn init<B: Backend>(&self, device: &B::Device) -> UNet<B>;
}

impl InitUNet for UNetConfig {
    fn init<B: Backend>(&self, device: &B::Device) -> UNet<B> {
        let dims = self.level_dims();
        let time_dim = self.dim;
        let n = self.dim_mults.len();
        let attn = |d: usize| {
            LinearAttentionConfig::new(d)
                .with_heads(self.heads)
                .with_dim_head(self.dim_head)
                .init(device)
        };
        let block =
            |i: usize, o: usize| ConvNextBlockConfig::new(i, o).with_time_dim(Some(time_dim));
        let resample_pad = PaddingConfig2d::Explicit(1, 1, 1, 1);
        let downs = (0..n)
            .map(|i| {
                let (din, dout) = (dims[i], dims[i + 1]);
                DownLevel {
                    block1: block(din, dout).with_norm(i != 0).init(device),
                    block2: block(dout, dout).init(device),
                    attn: attn(dout),
                    down: (i + 1 < n).then(|| {
                        Conv2dConfig::new([dout, dout], [4, 4])
                            .with_stride([2, 2])
                            .with_padding(resample_pad.clone())
                            .init(device)
                    }),
                }
            })
            .collect();
        let mid = dims[n];
        let ups = (1..n)
            .rev()
            .map(|i| {
                let (din, dout) = (dims[i], dims[i + 1]);
                UpLevel {
                    block1: block(2 * dout, din).init(device),
                    block2: block(din, din).init(device),
                    attn: attn(din),
                    up: ConvTranspose2dConfig::new([din, din], [4, 4])
                        .with_stride([2, 2])
                        .with_padding([1, 1])
                        .init(device),
                }
            })
            .collect();
        UNet {
            time_mlp: TimeMlpConfig::new(self.dim).init(device),
            // One row per class and one for the null class (the last).
            class_emb: self
                .classes
                .as_ref()
                .map(|c| EmbeddingConfig::new(c.len() + 1, time_dim).init(device)),
            downs,
            mid_block1: block(mid, mid).init(device),
            mid_attn: attn(mid),
            mid_block2: block(mid, mid).init(device),
            ups,
            final_block: ConvNextBlockConfig::new(self.dim, self.dim).init(device),
            final_conv: Conv2dConfig::new([self.dim, self.channels], [1, 1]).init(device),
        }
    }
}

/// One level of the contracting path.
#[derive(Module, Debug)]
pub struct DownLevel<B: Backend> {
    pub block1: ConvNextBlock<B>,
    pub block2: ConvNextBlock<B>,
    pub attn: LinearAttention<B>,
    /// 4x4 stride-2 convolution; none on the last level.
    pub down: Option<Conv2d<B>>,
}

/// One level of the expanding path.
#[derive(Module, Debug)]
pub struct UpLevel<B: Backend> {
    pub block1: ConvNextBlock<B>,
    pub block2: ConvNextBlock<B>,
    pub attn: LinearAttention<B>,
    /// 4x4 stride-2 transposed convolution.
    pub up: ConvTranspose2d<B>,
}

/// The restorer R(x, t).
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    pub time_mlp: TimeMlp<B>,
    /// The class embedding of a class-conditioned network, added to the time embedding.
    pub class_emb: Option<Embedding<B>>,
    pub downs: Vec<DownLevel<B>>,
    pub mid_block1: ConvNextBlock<B>,
    pub mid_attn: LinearAttention<B>,
    pub mid_block2: ConvNextBlock<B>,
    pub ups: Vec<UpLevel<B>>,
    pub final_block: ConvNextBlock<B>,
    pub final_conv: Conv2d<B>,
}

impl<B: TrainBackend> UNet<B> {
    /// R(x, t): the estimate of the clean image.
    ///
    /// # Shapes
    /// - x: `[B, C, H, W]` in [-1, 1], t: `[B]` degradation levels -> `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>) -> Tensor<B, 4> {
        self.forward_with(x, t, None)
    }

    /// R(x, t, c) of a class-conditioned network: `class` `[B]` (the null class, the last index,
    /// for "no class"); without it, every image is of the null class. Unconditioned networks
    /// ignore it.
    pub fn forward_with(
        &self,
        x: Tensor<B, 4>,
        t: Tensor<B, 1>,
        class: Option<Tensor<B, 1, Int>>,
    ) -> Tensor<B, 4> {
        // 1. Time embedding, plus the class's.
        let mut temb = self.time_mlp.forward(t);
        if let Some(emb) = &self.class_emb {
            let [b, d] = temb.dims();
            let null = emb.weight.dims()[0] as i64 - 1;
            let class =
                class.unwrap_or_else(|| Tensor::<B, 1, Int>::full([b], null, &temb.device()));
            temb = temb + emb.forward(class.reshape([b, 1])).reshape([b, d]);
        }
        // 2. Contracting path, keeping a skip per level.
        let mut skips = Vec::with_capacity(self.downs.len());
        let mut h = x;
        for level in &self.downs {
            h = level.block1.forward(h, Some(temb.clone()));
            h = level.block2.forward(h, Some(temb.clone()));
            h = level.attn.forward(h);
            skips.push(h.clone());
            if let Some(down) = &level.down {
                h = conv2d_module(down, h);
            }
        }
        // 3. Middle.
        h = self.mid_block1.forward(h, Some(temb.clone()));
        h = self.mid_attn.forward(h);
        h = self.mid_block2.forward(h, Some(temb.clone()));
        // 4. Expanding path: concatenate the matching skip, then upsample.
        for level in &self.ups {
            let skip = skips.pop().expect("one skip per level");
            h = Tensor::cat(vec![h, skip], 1);
            h = level.block1.forward(h, Some(temb.clone()));
            h = level.block2.forward(h, Some(temb.clone()));
            h = level.attn.forward(h);
            h = conv_transpose2d_module(&level.up, h);
        }
        // 5. Output head.
        conv2d_module(&self.final_conv, self.final_block.forward(h, None))
    }
}

impl<B: Backend> UNet<B> {
    /// [`UNet::forward_with`] as ONNX nodes on images `x` (`[B, C, H, W]`, any size the down path
    /// divides), float levels `t` (`[B]`) and, for a class-conditioned network, int64 classes
    /// `class` (`[B]`), block by block; returns the output's name.
    pub fn lower(&self, g: &mut GraphBuilder, x: &str, t: &str, class: Option<&str>) -> String {
        // 1. Time embedding, plus the class's.
        let mut temb = self.time_mlp.lower(g, t);
        if let Some(emb) = &self.class_emb {
            let class = class.expect("a class-conditioned network's graph takes the class");
            let w = lower::weight(g, "class_emb.weight", &emb.weight);
            let e = g.op1("Gather", &[&w, class], vec![("axis", Attr::Int(0))]);
            temb = g.op1("Add", &[&temb, &e], vec![]);
        }
        let te = lower::gelu(g, &temb);
        // The feature map's [H, W] at each level, from the input's: each down-sampling halves it.
        let hw0 = g.image_sides(x);
        let sizes: Vec<String> = (0..self.downs.len())
            .map(|i| {
                if i == 0 {
                    hw0.clone()
                } else {
                    let f = g.const_i64(&[1 << i, 1 << i], &[2]);
                    g.op1("Div", &[&hw0, &f], vec![])
                }
            })
            .collect();
        // 2. Contracting path, keeping a skip per level.
        let mut skips = Vec::new();
        let mut h = x.to_string();
        for (i, level) in self.downs.iter().enumerate() {
            let p = format!("downs.{i}");
            h = level.block1.lower(g, &format!("{p}.block1"), &h, Some(&te));
            h = level.block2.lower(g, &format!("{p}.block2"), &h, Some(&te));
            h = level.attn.lower(g, &format!("{p}.attn"), &h, &sizes[i]);
            skips.push(h.clone());
            if let Some(d) = &level.down {
                h = lower::conv(g, &format!("{p}.down"), d, &h);
            }
        }
        // 3. Middle.
        let mid = sizes.last().expect("at least one level");
        h = self.mid_block1.lower(g, "mid_block1", &h, Some(&te));
        h = self.mid_attn.lower(g, "mid_attn", &h, mid);
        h = self.mid_block2.lower(g, "mid_block2", &h, Some(&te));
        // 4. Expanding path: concatenate the matching skip, then upsample.
        for (i, level) in self.ups.iter().enumerate() {
            let p = format!("ups.{i}");
            let skip = skips.pop().expect("one skip per level");
            h = g.op1("Concat", &[&h, &skip], vec![("axis", Attr::Int(1))]);
            h = level.block1.lower(g, &format!("{p}.block1"), &h, Some(&te));
            h = level.block2.lower(g, &format!("{p}.block2"), &h, Some(&te));
            h = level
                .attn
                .lower(g, &format!("{p}.attn"), &h, &sizes[self.ups.len() - i]);
            h = lower::conv_transpose(g, &format!("{p}.up"), &level.up, &h);
        }
        // 5. Output head.
        let h = self.final_block.lower(g, "final_block", &h, None);
        lower::conv(g, "final_conv", &self.final_conv, &h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;
    use burn::module::Module;

    fn device() -> burn::tensor::Device<B> {
        Default::default()
    }

    #[test]
    fn parameter_counts_match_the_reference() {
        // Independently counted from the reference's PyTorch module definitions.
        let paper = UNetConfig::preset("paper", 1)
            .expect("preset")
            .init::<B>(&device());
        assert_eq!(paper.num_params(), 56_612_916);
        let small = UNetConfig::preset("small", 3)
            .expect("preset")
            .init::<B>(&device());
        assert_eq!(small.num_params(), 3_737_692);
        let compact = UNetConfig::preset("compact", 1)
            .expect("preset")
            .init::<B>(&device());
        assert_eq!(compact.num_params(), 921_204);
    }

    #[test]
    fn shapes_through_every_stage() {
        let cfg = UNetConfig::new(8, vec![1, 2, 4], 3)
            .with_heads(2)
            .with_dim_head(4);
        let net = cfg.init::<B>(&device());
        let x = Tensor::<B, 4>::random(
            [2, 3, 12, 16],
            burn::tensor::Distribution::Default,
            &device(),
        );
        let t = Tensor::<B, 1>::from_floats([1.0, 7.0], &device());
        let temb = net.time_mlp.forward(t.clone());
        assert_eq!(temb.dims(), [2, 8]);
        // Contracting path: 12x16 -> 6x8 -> 3x4, widths 8, 16, 32.
        let mut h = x.clone();
        let mut sizes = Vec::new();
        for level in &net.downs {
            h = level.block1.forward(h, Some(temb.clone()));
            h = level.block2.forward(h, Some(temb.clone()));
            h = level.attn.forward(h);
            sizes.push(h.dims());
            if let Some(d) = &level.down {
                h = d.forward(h);
            }
        }
        assert_eq!(sizes, vec![[2, 8, 12, 16], [2, 16, 6, 8], [2, 32, 3, 4]]);
        let up = net.ups[0]
            .up
            .forward(Tensor::zeros([2, 16, 3, 4], &device()));
        assert_eq!(up.dims(), [2, 16, 6, 8]);
        let y = net.forward(x, t);
        assert_eq!(y.dims(), [2, 3, 12, 16]);
        assert!(cfg.check_image_size(12, 16).is_ok());
        assert!(cfg.check_image_size(10, 16).is_err());
    }
}
