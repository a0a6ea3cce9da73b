//! Cold sampling on a Burn model: direct reconstruction, Algorithm 1 and Algorithm 2.

use burn::prelude::*;

use std::marker::PhantomData;

use cold_core::degradation::Prepared;
use cold_core::update::{self, Arith};
use ndarray::ArrayView2;

use crate::model::UNet;
use crate::ops::TrainBackend;
use crate::tensor_io::{to_array, to_tensor};

/// The restoration results from one degraded batch.
#[derive(Debug)]
pub struct Restorations<B: Backend> {
    /// The first estimate R(x_t, t).
    pub direct: Tensor<B, 4>,
    /// `x_{s-1} = D(x0_hat, s-1)`.
    pub algorithm1: Tensor<B, 4>,
    /// `x_{s-1} = x_s - D(x0_hat, s) + D(x0_hat, s-1)`.
    pub algorithm2: Tensor<B, 4>,
}

/// Burn tensors for the update rules of `cold_core::update` (the step graph evaluates the same
/// rules as ONNX nodes).
struct Tensors<B>(PhantomData<B>);

impl<B: Backend> Arith for Tensors<B> {
    type V = Tensor<B, 4>;
    fn add(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a.clone() + b.clone()
    }
    fn sub(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a.clone() - b.clone()
    }
    fn mul(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a.clone() * b.clone()
    }
    fn div(&mut self, a: &Self::V, b: &Self::V) -> Self::V {
        a.clone() / b.clone()
    }
}

/// D(x, level) of a batch on the host with the shared implementation
/// ([`cold_core::degradation`]), back on `x`'s device.
fn degrade<B: Backend>(
    deg: &Prepared,
    x: Tensor<B, 4>,
    level: usize,
    params: ArrayView2<f32>,
) -> Tensor<B, 4> {
    let device = x.device();
    let y = deg
        .apply_uniform(to_array(x).view(), level, params)
        .expect("levels and parameters were checked by the sampler");
    to_tensor(&y, &device)
}

/// Runs one sampler from level `t` down to 0. With `improved` it is Algorithm 2, else Algorithm 1.
/// `params` are the images' degradation parameters (`[B, P]`).
///
/// # Panics
/// If `t` is beyond the degradation's T or `params` does not fit the batch.
pub fn sample<B: TrainBackend>(
    model: &UNet<B>,
    deg: &Prepared,
    x_t: Tensor<B, 4>,
    t: usize,
    params: ArrayView2<f32>,
    improved: bool,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let b = x_t.dims()[0];
    deg.check(b, &vec![t; b], params)
        .expect("sampler levels and parameters");
    let device = x_t.device();
    let mut x = x_t;
    let mut direct = None;
    for s in (1..=t).rev() {
        let x0 = model.forward(x.clone(), Tensor::<B, 1>::full([b], s as f32, &device));
        if direct.is_none() {
            direct = Some(x0.clone());
        }
        let prev = degrade(deg, x0.clone(), s - 1, params);
        let ops = &mut Tensors(PhantomData);
        x = if improved {
            let d_s = degrade(deg, x0, s, params);
            update::algorithm2(ops, &x, &d_s, &prev)
        } else {
            update::algorithm1(ops, &prev)
        };
    }
    (direct.unwrap_or_else(|| x.clone()), x)
}

/// Direct, Algorithm 1 and Algorithm 2 restorations of `x_t` (degraded to level `t`).
pub(crate) fn restore_all<B: TrainBackend>(
    model: &UNet<B>,
    deg: &Prepared,
    x_t: Tensor<B, 4>,
    t: usize,
    params: ArrayView2<f32>,
) -> Restorations<B> {
    let (direct, algorithm1) = sample(model, deg, x_t.clone(), t, params, false);
    let (_, algorithm2) = sample(model, deg, x_t, t, params, true);
    Restorations {
        direct,
        algorithm1,
        algorithm2,
    }
}
