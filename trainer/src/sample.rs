//! Cold sampling on a Burn model: direct reconstruction, Algorithm 1 and Algorithm 2.

use burn::prelude::*;

use crate::degrade::DeviceDegradation;
use crate::model::UNet;
use crate::ops::TrainBackend;

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

fn levels<B: Backend>(b: usize, s: usize, device: &B::Device) -> (Tensor<B, 1>, Tensor<B, 1, Int>) {
    (
        Tensor::<B, 1>::full([b], s as f32, device),
        Tensor::<B, 1, Int>::full([b], s as i64, device),
    )
}

/// Runs one sampler from level `t` down to 0. With `improved` it is Algorithm 2, else Algorithm 1.
pub fn sample<B: TrainBackend>(
    model: &UNet<B>,
    deg: &DeviceDegradation<B>,
    x_t: Tensor<B, 4>,
    t: usize,
    improved: bool,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let b = x_t.dims()[0];
    let device = x_t.device();
    let mut x = x_t;
    let mut direct = None;
    for s in (1..=t).rev() {
        let (sf, si) = levels::<B>(b, s, &device);
        let x0 = model.forward(x.clone(), sf);
        if direct.is_none() {
            direct = Some(x0.clone());
        }
        let (_, prev) = levels::<B>(b, s - 1, &device);
        x = if improved {
            x - deg.apply(x0.clone(), si) + deg.apply(x0, prev)
        } else {
            deg.apply(x0, prev)
        };
    }
    (direct.unwrap_or_else(|| x.clone()), x)
}

/// Direct, Algorithm 1 and Algorithm 2 restorations of `x_t` (degraded to level `t`).
pub fn restore_all<B: TrainBackend>(
    model: &UNet<B>,
    deg: &DeviceDegradation<B>,
    x_t: Tensor<B, 4>,
    t: usize,
) -> Restorations<B> {
    let (direct, algorithm1) = sample(model, deg, x_t.clone(), t, false);
    let (_, algorithm2) = sample(model, deg, x_t, t, true);
    Restorations {
        direct,
        algorithm1,
        algorithm2,
    }
}
