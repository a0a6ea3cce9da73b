//! Training batches: images drawn with replacement, random crops (with `image_size`), optional
//! flips and shifts, levels t ~ U{1..T} (or in proportion to t: `TrainConfig::levels`) and the
//! degradation's per-image parameters, all from a generator seeded by (seed, step) so that a
//! resumed run replays them; `x_t = D(x0, t)` by the shared implementation of D.

use burn::prelude::*;
use cold_core::data::Dataset;
use cold_core::degradation::Prepared;
use ndarray::Axis;
use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::config::{Levels, TrainConfig};
use crate::tensor_io;

/// One training batch: clean images, degraded images and their levels (and, for a
/// class-conditioned network, their classes: the null class for the dropped labels).
pub struct Batch<B: Backend> {
    pub x0: Tensor<B, 4>,
    pub xt: Tensor<B, 4>,
    pub t: Tensor<B, 1>,
    pub class: Option<Tensor<B, 1, Int>>,
}

/// The random choices of one step depend only on (seed, step), so a resumed run replays them.
fn step_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// `im` (C x H x W) moved down by `dy` and right by `dx` pixels, the edge pixels repeated into the
/// uncovered border.
pub(crate) fn shifted(im: ndarray::ArrayView3<f32>, dy: i64, dx: i64) -> ndarray::Array3<f32> {
    let (c, h, w) = im.dim();
    let clamp = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
    ndarray::Array3::from_shape_fn((c, h, w), |(k, y, x)| {
        im[(k, clamp(y as i64 - dy, h), clamp(x as i64 - dx, w))]
    })
}

/// Rounds `x` (in [-1, 1] after clipping) to the levels of `bits`-bit image files.
pub(crate) fn quantize(x: &mut ndarray::Array4<f32>, bits: u32) {
    let top = ((1u32 << bits) - 1) as f32;
    x.mapv_inplace(|v| ((v.clamp(-1.0, 1.0) + 1.0) * 0.5 * top).round() / top * 2.0 - 1.0);
}

/// Draws the batch of step `step`: images with replacement, optional flips and shifts, t ~ U{1..T}, the
/// degradation's per-image parameters.
pub fn make_batch<B: Backend>(
    cfg: &TrainConfig,
    data: &Dataset,
    deg: &Prepared,
    step: usize,
    device: &B::Device,
) -> Batch<B> {
    let mut rng = step_rng(cfg.seed, step);
    let n = cfg.batch_size;
    let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..data.len())).collect();
    let side = cfg.degradation.height;
    let mut x = if cfg.image_size.is_some() && (data.height, data.width) != (side, side) {
        // Random crops of the scaled squares (TrainConfig::load_training_data).
        let offsets: Vec<(usize, usize)> = (0..n)
            .map(|_| {
                (
                    rng.random_range(0..=data.height - side),
                    rng.random_range(0..=data.width - side),
                )
            })
            .collect();
        data.batch_cropped(&idx, &offsets, side)
    } else {
        data.batch(&idx)
    };
    if cfg.flip {
        for mut im in x.axis_iter_mut(Axis(0)) {
            if rng.random_bool(0.5) {
                let flipped = im.slice(ndarray::s![.., .., ..;-1]).to_owned();
                im.assign(&flipped);
            }
        }
    }
    if cfg.shift > 0 {
        let s = cfg.shift as i64;
        for mut im in x.axis_iter_mut(Axis(0)) {
            let dy = rng.random_range(-s..=s);
            let dx = rng.random_range(-s..=s);
            let moved = shifted(im.view(), dy, dx);
            im.assign(&moved);
        }
    }
    let steps = cfg.top_level();
    let levels: Vec<i64> = (0..n)
        .map(|_| match cfg.levels {
            // The reference's draw, kept as it was so that earlier runs replay.
            Levels::Uniform => rng.random_range(1..=steps as i64),
            w => w.level(rng.random_range(0..w.draws(steps)), steps) as i64,
        })
        .collect();
    let params = cfg
        .degradation
        .sample_params(&mut rng, n)
        .expect("drawn once before training (the grid's), so the source images load");
    let t: Vec<usize> = levels.iter().map(|&v| v as usize).collect();
    let mut xt = deg
        .apply(x.view(), &t, params.view())
        .expect("a batch of the data set the degradation was checked against");
    if let Some(bits) = cfg.input_bits {
        quantize(&mut xt, bits);
    }
    // Drawn after everything else, and only for a conditioned network, so that an unconditioned
    // run draws what it always drew.
    let class = cfg.model.classes.as_ref().map(|names| {
        let null = names.len() as i64;
        let c: Vec<i64> = idx
            .iter()
            .map(|&i| {
                if rng.random_bool(cfg.label_dropout) {
                    null
                } else {
                    data.labels[i] as i64
                }
            })
            .collect();
        Tensor::<B, 1, Int>::from_data(TensorData::new(c, [n]), device)
    });
    let x0 = tensor_io::to_tensor::<B>(&x, device);
    let xt = tensor_io::to_tensor::<B>(&xt, device);
    let t = Tensor::<B, 1>::from_data(
        TensorData::new(levels.iter().map(|&v| v as f32).collect::<Vec<_>>(), [n]),
        device,
    );
    Batch { x0, xt, t, class }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;
    use cold_core::data::{Dataset, Split};

    /// The tiny network on the MNIST test fixture, 64 images a batch.
    fn fixture() -> (TrainConfig, Dataset) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mnist");
        let mut cfg =
            TrainConfig::new(&format!("mnist:{}", dir.display()), "mnist", "tiny").expect("cfg");
        cfg.split = "test".into();
        cfg.batch_size = 64;
        let data = cfg.load_data(Split::Test).expect("data");
        (cfg, data)
    }

    #[test]
    fn a_conditioned_batch_carries_the_labels_and_drops_some_to_the_null_class() {
        let (cfg, data) = fixture();
        let deg = cfg.degradation.prepare().expect("deg");
        let dev = Default::default();
        let plain = make_batch::<B>(&cfg, &data, &deg, 3, &dev);
        assert!(plain.class.is_none());
        let mut cond = cfg.clone();
        cond.model.classes = Some(data.class_names.clone());
        cond.label_dropout = 0.25;
        let (mut kept, mut dropped) = (0, 0);
        for step in 0..8 {
            let b = make_batch::<B>(&cond, &data, &deg, step, &dev);
            if step == 3 {
                // The class is drawn last: the images and levels are the unconditioned run's.
                assert_eq!(b.x0.to_data(), plain.x0.to_data());
                assert_eq!(b.t.to_data(), plain.t.to_data());
            }
            let classes: Vec<i64> = b
                .class
                .expect("classes")
                .to_data()
                .convert::<i64>()
                .to_vec()
                .expect("i64");
            // Each image's class is its label or the null class (10): match them by image.
            let x0 = crate::tensor_io::to_array(b.x0);
            for (img, &c) in x0.outer_iter().zip(&classes) {
                if c == 10 {
                    dropped += 1;
                    continue;
                }
                kept += 1;
                let same_label = (0..data.len()).any(|i| {
                    data.labels[i] as i64 == c && data.batch(&[i]).index_axis(Axis(0), 0) == img
                });
                assert!(same_label, "class {c} is not the image's label");
            }
        }
        let share = dropped as f64 / (kept + dropped) as f64;
        assert!((0.17..0.33).contains(&share), "dropped {share}");
    }

    #[test]
    fn max_level_caps_the_drawn_levels_and_every_level_below_is_drawn() {
        let (cfg, data) = fixture();
        let deg = cfg.degradation.prepare().expect("deg");
        let dev = Default::default();
        let levels = |cfg: &TrainConfig| -> Vec<i64> {
            (0..4)
                .flat_map(|step| {
                    let b = make_batch::<B>(cfg, &data, &deg, step, &dev);
                    b.t.to_data().convert::<i64>().to_vec::<i64>().expect("i64")
                })
                .collect()
        };
        // Without the cap the draw reaches above 3 (T = 20 here).
        assert!(levels(&cfg).iter().any(|&t| t > 3));
        for weighting in [Levels::Uniform, Levels::Linear] {
            let mut capped = cfg.clone();
            capped.levels = weighting;
            capped.max_level = Some(3);
            let t = levels(&capped);
            for k in 1..=3 {
                assert!(
                    t.contains(&k),
                    "{weighting:?}: level {k} never drawn in {t:?}"
                );
            }
            assert!(
                t.iter().all(|&v| (1..=3).contains(&v)),
                "{weighting:?}: {t:?}"
            );
        }
    }

    #[test]
    fn quantized_inputs_sit_on_the_levels_of_image_files() {
        let mut x = ndarray::Array4::from_shape_fn((1, 1, 4, 5), |(_, _, y, x)| {
            (y * 5 + x) as f32 / 9.7 - 1.03
        });
        super::quantize(&mut x, 8);
        for &v in &x {
            let level = (v + 1.0) / 2.0 * 255.0;
            assert!(
                (level - level.round()).abs() < 1e-3 && (0.0..=255.0).contains(&level),
                "{v}"
            );
        }
        assert_eq!(x[[0, 0, 0, 0]], -1.0); // clipped
    }
}
