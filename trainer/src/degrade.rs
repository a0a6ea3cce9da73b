//! D(x, t) on a Burn backend, from the same [`Degradation`] description as the runtime and the
//! exported graph: the precomputed per-level operators gathered by t.

use burn::prelude::*;
use cold_runtime::degradation::{Degradation, Operators};

/// Per-level operators on a device: `D(x, t)[b, c] = left[t_b] . x[b, c] . right[t_b]`.
#[derive(Clone, Debug)]
pub struct DeviceDegradation<B: Backend> {
    /// `[T+1, H, H]`
    pub left: Tensor<B, 3>,
    /// `[T+1, W, W]`
    pub right: Tensor<B, 3>,
    pub steps: usize,
}

impl<B: Backend> DeviceDegradation<B> {
    pub fn new(d: &Degradation, device: &B::Device) -> cold_runtime::Result<Self> {
        Ok(Self::from_operators(&d.operators()?, device))
    }

    pub fn from_operators(ops: &Operators, device: &B::Device) -> Self {
        let to = |a: &ndarray::Array3<f32>| {
            let shape = a.dim();
            let data: Vec<f32> = a.iter().copied().collect();
            Tensor::<B, 3>::from_data(TensorData::new(data, [shape.0, shape.1, shape.2]), device)
        };
        DeviceDegradation {
            left: to(&ops.left),
            right: to(&ops.right),
            steps: ops.steps(),
        }
    }

    /// Applies D with a level per sample.
    ///
    /// # Shapes
    /// - x: `[B, C, H, W]`, t: `[B]` -> `[B, C, H, W]`
    pub fn apply(&self, x: Tensor<B, 4>, t: Tensor<B, 1, Int>) -> Tensor<B, 4> {
        let [b, c, h, w] = x.dims();
        let l = self
            .left
            .clone()
            .select(0, t.clone())
            .reshape([b, 1, h, h])
            .expand([b, c, h, h]);
        let r = self
            .right
            .clone()
            .select(0, t)
            .reshape([b, 1, w, w])
            .expand([b, c, w, w]);
        l.matmul(x).matmul(r)
    }
}

/// Applies D(., t) of `deg` to every image under `in_dir`, writing PNGs of `depth` bits per channel
/// at the same relative paths under `out_dir` (exact operators on the CPU; no model involved).
pub fn degrade_folder(
    deg: &Degradation,
    t: usize,
    in_dir: &std::path::Path,
    out_dir: &std::path::Path,
    overwrite: bool,
    depth: cold_runtime::imageio::BitDepth,
) -> cold_runtime::Result<cold_runtime::folder::Report> {
    use cold_runtime::folder::{self, FolderRun, Resize, Shape};
    if t > deg.steps {
        return Err(cold_runtime::Error::InvalidArgument(format!(
            "--t {t} is beyond this degradation's T = {}",
            deg.steps
        )));
    }
    let ops = deg.operators()?;
    let (items, report) = folder::plan(in_dir, out_dir, overwrite)?;
    let run = FolderRun {
        items: &items,
        out_dir,
        shape: Shape {
            channels: deg.channels,
            height: deg.height,
            width: deg.width,
        },
        resize: Resize::Refuse,
        batch: 256,
        what: "degrading",
    };
    folder::run_batched(&run, report, |x| {
        let y = ops.apply_uniform(x.view(), t)?;
        y.outer_iter()
            .map(|im| {
                Ok(vec![(
                    String::new(),
                    cold_runtime::imageio::unit_to_image_depth(im, depth)?,
                )])
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;
    use ndarray::Array4;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn device_degradation_equals_the_runtime_operators() {
        for preset in ["mnist", "cifar10"] {
            let d = Degradation::preset(preset).expect("preset");
            let ops = d.operators().expect("ops");
            let dev = Default::default();
            let dd = DeviceDegradation::<B>::from_operators(&ops, &dev);
            let mut rng = StdRng::seed_from_u64(3);
            let levels = [0usize, 1, d.steps / 2, d.steps];
            let x = Array4::from_shape_fn((4, d.channels, d.height, d.width), |_| {
                rng.random_range(-1.0f32..1.0)
            });
            let want = ops.apply(x.view(), &levels).expect("apply");
            let xt = Tensor::<B, 4>::from_data(
                TensorData::new(
                    x.iter().copied().collect::<Vec<_>>(),
                    [4, d.channels, d.height, d.width],
                ),
                &dev,
            );
            let t = Tensor::<B, 1, Int>::from_data(
                TensorData::new(levels.iter().map(|&v| v as i64).collect::<Vec<_>>(), [4]),
                &dev,
            );
            let got = dd.apply(xt, t).into_data().to_vec::<f32>().expect("f32");
            let err = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(err < 1e-5, "{preset}: {err}");
        }
    }
}
