//! Widening a trained network to twice its base width without changing what it computes
//! (Net2WiderNet, Chen, Goodfellow and Shlens 2016), so that a bundle's network can grow its
//! capacity and keep training instead of starting again.
//!
//! Every channel `j` of the wide network is channel `j / 2` of the narrow one: each weight is
//! copied along its output channels and copied and halved along its input channels, so each pair
//! of copies sums to the original contribution. What this network normalises is preserved: the
//! channel LayerNorms see every channel twice (the same mean and variance), the depthwise
//! convolutions keep one filter per channel, and the linear attention's heads keep their width.
//! The one input that is not a channel is the time embedding's sinusoid, whose frequencies depend
//! on the width: its first layer is refitted by least squares over the levels `0..=T` the network
//! is used at (the fit's error is logged). A little noise then breaks the copies' symmetry, so
//! that training can make them differ.

use std::collections::HashMap;

use faer::{Mat, Side};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::model::UNetConfig;

/// The symmetry-breaking noise on the halved weights, relative to each tensor's root mean square:
/// enough for Adam's steps to pull the copies apart within a fine-tune, small against the
/// weights themselves.
pub const NOISE: f32 = 0.02;

/// A network's parameters by module path: `(dims, values)`.
pub type Params = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// `narrow` at twice its base width, every other field the same.
pub fn widened(narrow: &UNetConfig) -> UNetConfig {
    let mut wide = narrow.clone();
    wide.dim *= 2;
    wide
}

/// How `widen` changes a network: the time levels its embedding is refitted on and the noise that
/// breaks the symmetry (relative to each tensor's root mean square).
#[derive(Clone, Copy, Debug)]
pub struct WidenOptions {
    pub max_level: usize,
    pub noise: f32,
    pub seed: u64,
}

/// The parameters of `widened(narrow)` from those of `narrow` (module paths as keys, Burn's
/// layouts: Linear `[in, out]`, Conv2d `[out, in, kh, kw]`, ConvTranspose2d `[in, out, kh, kw]`).
/// `shapes` gives the wide network's shape of every parameter.
pub fn widen(
    narrow: &UNetConfig,
    params: &Params,
    shapes: &[(String, Vec<usize>)],
    opts: WidenOptions,
) -> Result<Params, String> {
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let (lin1_w, lin1_b) = refit_time_embedding(narrow.dim, params, opts.max_level)?;
    let mut out = Params::new();
    for (name, shape) in shapes {
        let (dims, vals) = match name.as_str() {
            "time_mlp.lin1.weight" => (vec![2 * narrow.dim, 4 * narrow.dim], lin1_w.clone()),
            "time_mlp.lin1.bias" => (vec![4 * narrow.dim], lin1_b.clone()),
            _ => params
                .get(name)
                .cloned()
                .ok_or_else(|| format!("{name}: not in the narrow network"))?,
        };
        // Linear and convolution weights sum over an input axis; the LayerNorms' 4-d gains and
        // biases, like every bias, act per channel.
        let input_axis = match dims.len() {
            _ if !name.ends_with(".weight") => None,
            2 => Some(0),
            4 if name.ends_with("up.weight") => Some(0),
            4 => Some(1),
            _ => None,
        };
        let mut wide = copy_channels(name, &dims, &vals, shape, input_axis)?;
        // The copies differ only where they are summed: the halved weights (Net2Net's choice).
        let halved = input_axis.is_some_and(|a| shape[a] == 2 * dims[a]);
        if !halved {
            out.insert(name.clone(), (shape.clone(), wide));
            continue;
        }
        let rms = (wide.iter().map(|v| v * v).sum::<f32>() / wide.len().max(1) as f32).sqrt();
        let a = opts.noise * rms * 3f32.sqrt(); // uniform noise of that root mean square
        if a > 0.0 {
            for v in &mut wide {
                *v += rng.random_range(-a..=a);
            }
        }
        out.insert(name.clone(), (shape.clone(), wide));
    }
    Ok(out)
}

/// Each axis of `new` is that of `old` (the same size) or twice it (index `j` reads `j / 2`);
/// values are halved once per doubled input axis.
fn copy_channels(
    name: &str,
    old: &[usize],
    vals: &[f32],
    new: &[usize],
    input_axis: Option<usize>,
) -> Result<Vec<f32>, String> {
    if old.len() != new.len() {
        return Err(format!("{name}: {old:?} cannot widen to {new:?}"));
    }
    let mut ratio = Vec::with_capacity(old.len());
    for (&o, &n) in old.iter().zip(new) {
        match n {
            n if n == o => ratio.push(1),
            n if n == 2 * o => ratio.push(2),
            _ => return Err(format!("{name}: {old:?} cannot widen to {new:?}")),
        }
    }
    let scale = match input_axis {
        Some(a) if ratio[a] == 2 => 0.5,
        _ => 1.0,
    };
    let total: usize = new.iter().product();
    let mut out = Vec::with_capacity(total);
    let mut idx = vec![0usize; new.len()];
    for _ in 0..total {
        let mut flat = 0;
        for (k, &i) in idx.iter().enumerate() {
            flat = flat * old[k] + i / ratio[k];
        }
        out.push(vals[flat] * scale);
        for k in (0..new.len()).rev() {
            idx[k] += 1;
            if idx[k] < new[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    Ok(out)
}

/// The sinusoid of `dim` features at level `t` (the trainer's embedding, in float64).
fn sinusoid(dim: usize, t: f64) -> Vec<f64> {
    let freqs = crate::model::embedding::sinusoidal_frequencies(dim);
    let sin = freqs.iter().map(|&f| (t * f as f64).sin());
    let cos = freqs.iter().map(|&f| (t * f as f64).cos());
    sin.chain(cos).collect()
}

/// The time MLP's first layer for a sinusoid of `2 dim` features that gives, at every level
/// `0..=max_level`, the pre-activations the narrow layer gives from its `dim` features: a least
/// squares fit (weights and bias). Returns the wide weight `[2 dim, 4 dim]` and bias `[4 dim]`
/// (its output not yet copied: `widen` does that).
fn refit_time_embedding(
    dim: usize,
    params: &Params,
    max_level: usize,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let get = |n: &str| {
        params
            .get(n)
            .ok_or_else(|| format!("{n}: not in the narrow network"))
    };
    let (wd, w) = get("time_mlp.lin1.weight")?;
    let (_, b) = get("time_mlp.lin1.bias")?;
    let hidden = wd[1];
    let n = max_level + 1;
    let p = 2 * dim + 1; // the wide sinusoid and a constant
    let a = Mat::<f64>::from_fn(n, p, |i, k| {
        if k < 2 * dim {
            sinusoid(2 * dim, i as f64)[k]
        } else {
            1.0
        }
    });
    let target = Mat::<f64>::from_fn(n, hidden, |i, o| {
        let s = sinusoid(dim, i as f64);
        b[o] as f64
            + (0..dim)
                .map(|k| s[k] * w[k * hidden + o] as f64)
                .sum::<f64>()
    });
    // x = pinv(A^T A) A^T y, through the eigen decomposition of the symmetric A^T A.
    let ata = a.transpose() * &a;
    let eig = ata
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| format!("refitting the time embedding: {e:?}"))?;
    let top = (0..p).map(|k| eig.S()[k]).fold(0.0f64, f64::max);
    let inv = Mat::<f64>::from_fn(p, p, |i, j| {
        (0..p)
            .filter(|&k| eig.S()[k] > top * 1e-12)
            .map(|k| eig.U()[(i, k)] * eig.U()[(j, k)] / eig.S()[k])
            .sum()
    });
    let x = inv * (a.transpose() * &target);
    let fit = &a * &x;
    let (mut err, mut norm) = (0.0f64, 0.0f64);
    for i in 0..n {
        for o in 0..hidden {
            err += (fit[(i, o)] - target[(i, o)]).powi(2);
            norm += target[(i, o)].powi(2);
        }
    }
    tracing::info!(
        "widening: the time embedding refitted over levels 0..={max_level}, relative error {:.2e}",
        (err / norm.max(f64::MIN_POSITIVE)).sqrt()
    );
    let weight = (0..2 * dim)
        .flat_map(|k| (0..hidden).map(move |o| (k, o)))
        .map(|(k, o)| x[(k, o)] as f32)
        .collect();
    let bias = (0..hidden).map(|o| x[(2 * dim, o)] as f32).collect();
    Ok((weight, bias))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_halve_inputs_and_keep_outputs() {
        // A Linear [in 2, out 3] widened to [4, 6]: row i reads i / 2 halved, column o reads o / 2.
        let w = vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let wide = copy_channels("w", &[2, 3], &w, &[4, 6], Some(0)).unwrap();
        assert_eq!(wide.len(), 24);
        assert_eq!(&wide[0..6], &[0.5, 0.5, 1.0, 1.0, 1.5, 1.5]);
        assert_eq!(&wide[6..12], &[0.5, 0.5, 1.0, 1.0, 1.5, 1.5]);
        assert_eq!(&wide[18..24], &[2.0, 2.0, 2.5, 2.5, 3.0, 3.0]);
        assert!(copy_channels("w", &[2, 3], &w, &[3, 6], Some(0)).is_err());
    }

    /// Every float parameter of a network: its module path, dims and values.
    fn params_of(net: &crate::model::UNet<crate::CpuBackend>) -> Params {
        use burn::module::{Module, ModuleVisitor, Param};
        use burn::prelude::*;
        struct Collect(Vec<String>, Params);
        impl ModuleVisitor<crate::CpuBackend> for Collect {
            fn enter_module(&mut self, name: &str, _: &str) {
                self.0.push(name.into());
            }
            fn exit_module(&mut self, _: &str, _: &str) {
                self.0.pop();
            }
            fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<crate::CpuBackend, D>>) {
                let v = p.val();
                let dims = v.dims().to_vec();
                let vals = v.into_data().convert::<f32>().to_vec::<f32>().expect("f32");
                self.1.insert(self.0.join("."), (dims, vals));
            }
        }
        let mut c = Collect(Vec::new(), Params::new());
        net.visit(&mut c);
        c.1
    }

    #[test]
    fn the_widened_network_computes_what_the_narrow_one_did() {
        use crate::model::InitUNet;
        use burn::prelude::*;
        type B = crate::CpuBackend;
        let device = Default::default();
        <B as Backend>::seed(&device, 3);
        // Three levels with attention everywhere, odd sizes, a class embedding: every kind of
        // parameter the U-Net has.
        let narrow = UNetConfig::new(8, vec![1, 2, 4], 3)
            .with_heads(2)
            .with_dim_head(4)
            .with_classes(Some(vec!["a".into(), "b".into()]));
        let net = narrow.init::<B>(&device);
        let params = params_of(&net);
        let x =
            Tensor::<B, 4>::random([2, 3, 12, 20], burn::tensor::Distribution::Default, &device);
        let t = Tensor::<B, 1>::from_floats([1.0, 5.0], &device);
        let c = Tensor::<B, 1, Int>::from_ints([0, 2], &device);
        let y0 = net.forward_with(x.clone(), t.clone(), Some(c.clone()));
        let scale = y0.clone().abs().mean().into_scalar();
        let run = |noise: f32| {
            let opts = WidenOptions {
                max_level: 5,
                noise,
                seed: 1,
            };
            let (wide, wnet) =
                crate::import::widen_model::<B>(&narrow, &params, opts, &device).expect("widen");
            assert_eq!(wide.dim, 16);
            assert_eq!(wnet.num_params(), wide.init::<B>(&device).num_params());
            let y = wnet.forward_with(x.clone(), t.clone(), Some(c.clone()));
            (y - y0.clone()).abs().max().into_scalar() / scale
        };
        // Exact up to float rounding (6 levels, 17 unknowns: the refit interpolates).
        let exact = run(0.0);
        assert!(
            exact < 1e-4,
            "widened without noise: relative error {exact}"
        );
        // The noise moves it a little, not a lot.
        let noisy = run(NOISE);
        eprintln!("relative error: {exact:.2e} exact, {noisy:.2e} with noise");
        assert!(
            noisy > 1e-4 && noisy < 0.2,
            "with noise: relative error {noisy}"
        );
    }
}
