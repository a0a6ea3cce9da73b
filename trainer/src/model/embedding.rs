//! The sinusoidal time embedding of the reference and its MLP.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::gelu;
use cold_core::onnx::{Attr, GraphBuilder};

use super::lower;

/// The reference's sinusoidal embedding: `cat(sin(t f), cos(t f))` with frequencies
/// `f_i = exp(-ln(10000) i / (half - 1))`, i = 0..half (half = dim / 2).
///
/// # Shapes
/// - t: `[B]` -> `[B, dim]`
pub(crate) fn sinusoidal_embedding<B: Backend>(t: Tensor<B, 1>, dim: usize) -> Tensor<B, 2> {
    let half = dim / 2;
    let device = t.device();
    let freqs: Vec<f32> = sinusoidal_frequencies(dim);
    let f = Tensor::<B, 1>::from_data(TensorData::new(freqs, [half]), &device);
    let b = t.dims()[0];
    let arg = t.reshape([b, 1]) * f.reshape([1, half]);
    Tensor::cat(vec![arg.clone().sin(), arg.cos()], 1)
}

/// The embedding's `dim / 2` frequencies, computed in float64 as the reference does in float32.
pub(crate) fn sinusoidal_frequencies(dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let step = (10000f64).ln() / (half as f64 - 1.0);
    (0..half)
        .map(|i| (-(i as f64) * step).exp() as f32)
        .collect()
}

/// Configuration of [`TimeMlp`].
#[derive(Config, Debug)]
pub struct TimeMlpConfig {
    /// Embedding width (the U-Net's base `dim`); the hidden layer is `4 * dim`.
    pub dim: usize,
}

/// `Linear(dim, 4 dim) -> GELU -> Linear(4 dim, dim)` over the sinusoidal embedding.
#[derive(Module, Debug)]
pub struct TimeMlp<B: Backend> {
    pub lin1: Linear<B>,
    pub lin2: Linear<B>,
    pub dim: usize,
}

impl TimeMlpConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TimeMlp<B> {
        TimeMlp {
            lin1: LinearConfig::new(self.dim, 4 * self.dim).init(device),
            lin2: LinearConfig::new(4 * self.dim, self.dim).init(device),
            dim: self.dim,
        }
    }
}

impl<B: Backend> TimeMlp<B> {
    /// # Shapes
    /// - t: `[B]` (float steps) -> `[B, dim]`
    pub fn forward(&self, t: Tensor<B, 1>) -> Tensor<B, 2> {
        let e = sinusoidal_embedding(t, self.dim);
        self.lin2.forward(gelu(self.lin1.forward(e)))
    }

    /// [`TimeMlp::forward`] as ONNX nodes on float levels `t` (`[B]`): `cat(sin(t f), cos(t f))
    /// -> Linear -> GELU -> Linear`. Returns the output's name.
    pub fn lower(&self, g: &mut GraphBuilder, t: &str) -> String {
        g.scoped("time_mlp", |g| {
            let freqs = sinusoidal_frequencies(self.dim);
            let f = g.const_f32(&freqs, &[1, (self.dim / 2) as i64]);
            let axes = g.const_i64(&[1], &[1]);
            let tc = g.op1("Unsqueeze", &[t, &axes], vec![]);
            let arg = g.op1("Mul", &[&tc, &f], vec![]);
            let s = g.op1("Sin", &[&arg], vec![]);
            let c = g.op1("Cos", &[&arg], vec![]);
            let e = g.op1("Concat", &[&s, &c], vec![("axis", Attr::Int(1))]);
            let h = lower::linear(g, "time_mlp.lin1", &self.lin1, &e);
            let h = lower::gelu(g, &h);
            lower::linear(g, "time_mlp.lin2", &self.lin2, &h)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;

    #[test]
    fn embedding_equals_the_reference_formula() {
        let dim = 16;
        let ts = [0.0f32, 1.0, 5.0, 19.0];
        let t = Tensor::<B, 1>::from_floats(ts, &Default::default());
        let got = sinusoidal_embedding(t, dim)
            .into_data()
            .to_vec::<f32>()
            .expect("f32");
        let half = dim / 2;
        for (bi, &tv) in ts.iter().enumerate() {
            for i in 0..half {
                // emb = exp(arange(half) * -(ln(10000) / (half - 1))); cat(sin(t emb), cos(t emb))
                let f = (-(i as f64) * (10000f64.ln() / (half as f64 - 1.0))).exp();
                let arg = f64::from(tv) * f;
                assert!((f64::from(got[bi * dim + i]) - arg.sin()).abs() < 1e-5);
                assert!((f64::from(got[bi * dim + half + i]) - arg.cos()).abs() < 1e-5);
            }
        }
        // First frequency is 1, last is 1/10000.
        let f = sinusoidal_frequencies(dim);
        assert_eq!(f[0], 1.0);
        assert!((f[half - 1] - 1e-4).abs() < 1e-9);
    }
}
