//! The training loss: L1, as the reference, optionally mixed with SSIM (`TrainConfig::ssim_weight`)
//! computed as our metric computes it (`cold_core::metrics`: images mapped from [-1, 1] to [0, 1],
//! 11x11 Gaussian window of sigma 1.5, K1 0.01, K2 0.03, valid positions only).
//!
//! Why SSIM: restoring a strong blur from 8-bit files amplifies the rounding into faint ripples in
//! flat regions (skies, walls). L1 hardly sees them; SSIM, which normalises by the local variance,
//! punishes them, and SSIM is how restorations are judged. The mix `(1 - w) L1 + w (1 - SSIM)`
//! follows Zhao et al., "Loss Functions for Image Restoration with Neural Networks" (2017), whose
//! w = 0.84 mixes L1 with MS-SSIM.

use burn::prelude::*;

use crate::batches::Batch;
use crate::model::UNet;
use crate::ops::TrainBackend;

const WINDOW: usize = 11;
const SIGMA: f64 = 1.5;
const C1: f64 = 0.01 * 0.01;
const C2: f64 = 0.03 * 0.03;

/// The loss of the model on a batch: L1 when `ssim_weight` is 0, else
/// `(1 - ssim_weight) L1 + ssim_weight (1 - SSIM)`.
pub fn loss<B: TrainBackend>(model: &UNet<B>, batch: &Batch<B>, ssim_weight: f64) -> Tensor<B, 1> {
    let out = model.forward_with(batch.xt.clone(), batch.t.clone(), batch.class.clone());
    let l1 = (out.clone() - batch.x0.clone()).abs().mean();
    if ssim_weight == 0.0 {
        return l1;
    }
    let dissimilarity = ssim(out, batch.x0.clone()).neg().add_scalar(1.0);
    l1.mul_scalar(1.0 - ssim_weight) + dissimilarity.mul_scalar(ssim_weight)
}

/// The normalised 1-D Gaussian window (as the metric's).
fn gaussian() -> Vec<f32> {
    let c = (WINDOW / 2) as f64;
    let g: Vec<f64> = (0..WINDOW)
        .map(|i| (-((i as f64 - c).powi(2)) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let s: f64 = g.iter().sum();
    g.into_iter().map(|v| (v / s) as f32).collect()
}

/// `[n, n - WINDOW + 1]`: multiplying a row of `n` values by it filters the row with the window
/// at every valid position.
fn band<B: Backend>(n: usize, device: &B::Device) -> Tensor<B, 2> {
    let g = gaussian();
    let m = n + 1 - WINDOW;
    let mut v = vec![0f32; n * m];
    for j in 0..m {
        for (a, w) in g.iter().enumerate() {
            v[(j + a) * m + j] = *w;
        }
    }
    Tensor::from_data(TensorData::new(v, [n, m]), device)
}

/// Valid Gaussian filtering of `[k, h, w]` maps along both axes, as two matrix products (the
/// result is `[k, w', h']`, transposed: only its mean and elementwise maths are used).
fn filter<B: Backend>(maps: Tensor<B, 3>) -> Tensor<B, 3> {
    let [k, h, w] = maps.dims();
    let device = maps.device();
    let (oh, ow) = (h + 1 - WINDOW, w + 1 - WINDOW);
    let rows = maps.reshape([k * h, w]).matmul(band::<B>(w, &device));
    let cols = rows
        .reshape([k, h, ow])
        .swap_dims(1, 2)
        .reshape([k * ow, h]);
    cols.matmul(band::<B>(h, &device)).reshape([k, ow, oh])
}

/// Mean SSIM of two `[B, C, H, W]` batches in [-1, 1] (over images, channels and valid
/// positions, which is the metric's mean of per-image means: every image has the same size).
/// Both sides must be at least 11 pixels.
pub fn ssim<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 1> {
    let [n, c, h, w] = a.dims();
    assert!(
        h >= WINDOW && w >= WINDOW,
        "SSIM needs images of at least {WINDOW}x{WINDOW} pixels, not {h}x{w}"
    );
    let m = n * c;
    let x = a.add_scalar(1.0).div_scalar(2.0).reshape([m, h, w]);
    let y = b.add_scalar(1.0).div_scalar(2.0).reshape([m, h, w]);
    let maps = Tensor::cat(
        vec![
            x.clone(),
            y.clone(),
            x.clone() * x.clone(),
            y.clone() * y.clone(),
            x * y,
        ],
        0,
    );
    let f = filter(maps);
    let part = |i: usize| f.clone().narrow(0, i * m, m);
    let (mx, my, xx, yy, xy) = (part(0), part(1), part(2), part(3), part(4));
    let (mx2, my2, mxy) = (mx.clone() * mx.clone(), my.clone() * my.clone(), mx * my);
    let (vx, vy, cov) = (xx - mx2.clone(), yy - my2.clone(), xy - mxy.clone());
    let luminance = (mxy.clone().mul_scalar(2.0).add_scalar(C1)) / (mx2 + my2).add_scalar(C1);
    let structure = (cov.mul_scalar(2.0).add_scalar(C2)) / (vx + vy).add_scalar(C2);
    (luminance * structure).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;
    use cold_core::metrics::MetricSet;
    use ndarray::Array4;

    fn images(seed: u32, shape: (usize, usize, usize, usize)) -> Array4<f32> {
        // Smooth structure plus a pseudo-random texture, in [-1, 1].
        Array4::from_shape_fn(shape, |(b, c, i, j)| {
            let s = (b * 31 + c * 7 + i * 13 + j * 17 + seed as usize * 101) as f32;
            let noise = ((s * 12.9898).sin() * 43758.547).fract();
            (0.6 * ((i as f32 * 0.3 + c as f32).sin() * (j as f32 * 0.2).cos()) + 0.4 * noise)
                .clamp(-1.0, 1.0)
        })
    }

    fn tensor(a: &Array4<f32>) -> Tensor<B, 4> {
        let (n, c, h, w) = a.dim();
        Tensor::from_data(
            TensorData::new(a.iter().copied().collect::<Vec<_>>(), [n, c, h, w]),
            &Default::default(),
        )
    }

    #[test]
    fn ssim_equals_the_metric_on_non_square_colour_images() {
        let shape = (2, 3, 19, 26);
        let a = images(1, shape);
        // b: a, darkened, mixed with its mirror image: SSIM well inside (0, 1).
        let mut mirror = a.clone();
        mirror.invert_axis(ndarray::Axis(3));
        let b = (&a * 0.5) + &(mirror * 0.4);
        let mut m = MetricSet::default();
        m.add(b.view(), a.view());
        let want = m.scores().ssim;
        let got: f32 = ssim(tensor(&b), tensor(&a)).into_scalar().elem();
        assert!(
            want > 0.2 && want < 0.9,
            "the case tests little: SSIM {want}"
        );
        assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
        let same: f32 = ssim(tensor(&a), tensor(&a)).into_scalar().elem();
        assert!((same - 1.0).abs() < 1e-5, "{same}");
    }
}
