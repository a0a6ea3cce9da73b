//! Every kind's D against an independent float64 implementation of its formula (iterated steps,
//! the way the reference computes them), at every level, odd and even sizes, and with different
//! levels and per-image parameters in one batch.

use ndarray::{Array2, Array4, s};
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;
use crate::degradation::inpaint::iterated_inpaint;
use crate::degradation::superres::iterated_superres;

fn random_batch(rng: &mut StdRng, b: usize, c: usize, h: usize, w: usize) -> Array4<f32> {
    Array4::from_shape_fn((b, c, h, w), |_| rng.random_range(-1.0f32..1.0))
}

/// Max |got - want| over a batch, with `want(image, channel)` the float64 ground truth.
fn max_err(
    got: &Array4<f32>,
    x: &Array4<f32>,
    want: impl Fn(usize, &Array2<f64>) -> Array2<f64>,
) -> f64 {
    let (b, c, _, _) = x.dim();
    let mut err = 0f64;
    for bi in 0..b {
        for ch in 0..c {
            let xc = x.slice(s![bi, ch, .., ..]).mapv(f64::from);
            let w = want(bi, &xc);
            for (a, g) in w.iter().zip(got.slice(s![bi, ch, .., ..]).iter()) {
                err = err.max((a - f64::from(*g)).abs());
            }
        }
    }
    err
}

#[test]
fn blur_operators_equal_iterated_convolutions() {
    let schedules = [
        BlurSchedule::Constant { sigma: 7.0 },
        BlurSchedule::Incremental { sigma: 0.3 },
        BlurSchedule::Exponential { rate: 0.05 },
        BlurSchedule::Cifar,
    ];
    let mut rng = StdRng::seed_from_u64(7);
    for padding in [Padding::Circular, Padding::Reflect] {
        for schedule in schedules {
            for (h, w) in [(13, 13), (12, 16), (11, 10)] {
                let kernel_size = if h.min(w) > 11 { 11 } else { 7 };
                let blur = Blur {
                    kernel_size,
                    schedule,
                    padding,
                };
                let d = Degradation {
                    transform: Transform::Blur(blur),
                    steps: 9,
                    channels: 2,
                    height: h,
                    width: w,
                };
                let p = d.prepare().expect("valid degradation");
                let levels = [0usize, 1, 4, 9];
                let x = random_batch(&mut rng, levels.len(), 2, h, w);
                let y = p
                    .apply(x.view(), &levels, Prepared::no_params(4).view())
                    .expect("apply");
                let err = max_err(&y, &x, |bi, xc| iterated_blur(xc, &blur, levels[bi]));
                assert!(err <= 1e-5, "{padding:?} {schedule:?} {h}x{w}: {err}");
            }
        }
    }
}

#[test]
fn superres_operators_equal_iterated_resampling() {
    let mut rng = StdRng::seed_from_u64(8);
    for (h, w, steps) in [(28, 28, 3), (32, 32, 3), (13, 10, 2), (12, 17, 3)] {
        let sr = SuperRes { factor: 2 };
        let d = Degradation {
            transform: Transform::SuperRes(sr),
            steps,
            channels: 2,
            height: h,
            width: w,
        };
        let p = d.prepare().expect("valid");
        let levels: Vec<usize> = (0..=steps).collect();
        let x = random_batch(&mut rng, levels.len(), 2, h, w);
        let y = p
            .apply(x.view(), &levels, Prepared::no_params(levels.len()).view())
            .expect("apply");
        let err = max_err(&y, &x, |bi, xc| iterated_superres(xc, &sr, levels[bi]));
        assert!(err <= 1e-5, "{h}x{w}: {err}");
    }
    // The last level of MNIST's preset is piecewise constant on a 3x3 grid of blocks.
    let d = Degradation::preset("mnist-superres").expect("preset");
    let p = d.prepare().expect("prepare");
    let x = random_batch(&mut rng, 1, 1, 28, 28);
    let y = p
        .apply_uniform(x.view(), 3, Prepared::no_params(1).view())
        .expect("apply");
    let mut distinct: Vec<f32> = y.iter().copied().collect();
    distinct.sort_by(f32::total_cmp);
    distinct.dedup();
    assert!(distinct.len() <= 9, "{} distinct values", distinct.len());
}

#[test]
fn inpaint_masks_equal_iterated_masking_per_image() {
    let mut rng = StdRng::seed_from_u64(9);
    for (h, w) in [(28, 28), (11, 14), (9, 8)] {
        for centre in [Centre::Random, Centre::Centred] {
            let ip = Inpaint {
                kernel_std: 0.1,
                initial_mask: 11.0,
                centre,
            };
            let d = Degradation {
                transform: Transform::Inpaint(ip),
                steps: 50,
                channels: 3,
                height: h,
                width: w,
            };
            let p = d.prepare().expect("valid");
            let levels = [0usize, 1, 7, 25, 50, 50];
            let mut params = d.sample_params(&mut rng, levels.len());
            if centre == Centre::Random {
                // the extreme centres of the extended grid
                params.row_mut(4).assign(&ndarray::arr1(&[-1.0, -1.0]));
                params
                    .row_mut(5)
                    .assign(&ndarray::arr1(&[h as f32 - 1.0, w as f32 - 1.0]));
            }
            let x = random_batch(&mut rng, levels.len(), 3, h, w);
            let y = p.apply(x.view(), &levels, params.view()).expect("apply");
            let err = max_err(&y, &x, |bi, xc| {
                let c = match centre {
                    Centre::Random => [params[[bi, 0]] as f64, params[[bi, 1]] as f64],
                    Centre::Centred => [(h.div_ceil(2) - 1) as f64, (w.div_ceil(2) - 1) as f64],
                };
                iterated_inpaint(xc, &ip, levels[bi], c)
            });
            assert!(err <= 1e-5, "{h}x{w} {centre:?}: {err}");
        }
    }
}

#[test]
fn random_centres_cover_the_extended_grid_uniformly() {
    let d = Degradation::preset("mnist-inpaint").expect("preset");
    let mut rng = StdRng::seed_from_u64(1);
    let p = d.sample_params(&mut rng, 20_000);
    assert_eq!(p.ncols(), 2);
    let (lo, hi) = p
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (-1.0, 27.0));
    let mean = p.column(0).mean().unwrap_or(0.0);
    assert!((mean - 13.0).abs() < 0.3, "mean row centre {mean}");
    assert!(p.iter().all(|v| v.fract() == 0.0));
}

#[test]
fn level_zero_is_identity_for_every_preset() {
    let mut rng = StdRng::seed_from_u64(2);
    for name in PRESETS {
        let d = Degradation::preset(name).expect("preset");
        let p = d.prepare().expect("prepare");
        let x = random_batch(&mut rng, 2, d.channels, d.height, d.width);
        let params = d.sample_params(&mut rng, 2);
        assert_eq!(
            p.apply_uniform(x.view(), 0, params.view()).expect("apply"),
            x,
            "{name}"
        );
        let y = p
            .apply_uniform(x.view(), d.steps, params.view())
            .expect("apply");
        assert_ne!(y, x, "{name}: level T changes the image");
    }
}

#[test]
fn blur_preserves_the_mean_for_circular_padding() {
    let d = Degradation::preset("mnist").expect("preset");
    let p = d.prepare().expect("prepare");
    let mut rng = StdRng::seed_from_u64(1);
    let x = random_batch(&mut rng, 2, 1, 28, 28);
    let y = p
        .apply_uniform(x.view(), 20, Prepared::no_params(2).view())
        .expect("apply");
    let (mx, my) = (x.mean().unwrap_or(0.0), y.mean().unwrap_or(0.0));
    assert!((mx - my).abs() < 1e-5, "{mx} vs {my}");
    let spread = |a: &Array4<f32>| a.iter().map(|v| (v - mx).abs()).fold(0.0f32, f32::max);
    assert!(spread(&y) < 0.2 * spread(&x));
}

#[test]
fn descriptions_round_trip_through_json_and_unknown_kinds_are_named() {
    for name in PRESETS {
        let d = Degradation::preset(name).expect("preset");
        let json = serde_json::to_value(&d).expect("serialise");
        check_kind(&json).expect("known kind");
        let back: Degradation = serde_json::from_value(json).expect("parse");
        assert_eq!(d, back);
    }
    assert!(Degradation::preset("imagenet").is_err());
    assert!(Degradation::preset("mnist-snowfall").is_err());
    let mut json = serde_json::to_value(Degradation::preset("mnist").expect("p")).expect("json");
    json["transform"]["kind"] = "snow".into();
    let e = check_kind(&json).expect_err("unknown kind").to_string();
    assert!(e.contains("'snow'") && e.contains("update"), "{e}");
}

#[test]
fn invalid_descriptions_and_inputs_are_refused() {
    let mut d = Degradation::preset("mnist").expect("preset");
    d.steps = 0;
    assert!(d.prepare().is_err());
    let mut d = Degradation::preset("cifar10").expect("preset");
    d.height = 4;
    assert!(
        d.prepare().is_err(),
        "reflect pad 5 on 4 rows must be refused"
    );
    let mut d = Degradation::preset("mnist-superres").expect("preset");
    d.steps = 5;
    assert!(d.prepare().is_err(), "28 cannot be halved 5 times");
    let p = Degradation::preset("mnist")
        .expect("p")
        .prepare()
        .expect("ops");
    let x = Array4::<f32>::zeros((1, 1, 28, 28));
    let none = Prepared::no_params(1);
    assert!(p.apply(x.view(), &[21], none.view()).is_err());
    assert!(p.apply(x.view(), &[1, 2], none.view()).is_err());
    let wrong = Array4::<f32>::zeros((1, 1, 32, 32));
    assert!(p.apply(wrong.view(), &[1], none.view()).is_err());
    // inpainting needs its centres, and they must lie on the extended grid
    let p = Degradation::preset("mnist-inpaint")
        .expect("p")
        .prepare()
        .expect("p");
    assert!(p.apply(x.view(), &[3], none.view()).is_err());
    for bad in [[-2.0, 0.0], [0.0, 28.0], [1.5, 2.0]] {
        let params = ndarray::arr2(&[bad]);
        assert!(p.apply(x.view(), &[3], params.view()).is_err(), "{bad:?}");
    }
}
