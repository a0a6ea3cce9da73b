//! Every kind's D against an independent float64 implementation of its formula (iterated steps,
//! the way the reference computes them), at every level, odd and even sizes, and with different
//! levels and per-image parameters in one batch.

use ndarray::{Array2, Array4, s};
use rand::{Rng, SeedableRng, rngs::StdRng};

use super::*;
use crate::degradation::mix::cosine_abar;
use crate::degradation::snow::{clipped_zoom, reference_snow};
use crate::degradation::superres::iterated_superres;

/// The kind's own parameters; for animorphosis (whose source images CI does not have) random
/// images in [-1, 1], which D treats the same.
fn params_for(d: &Degradation, rng: &mut StdRng, n: usize) -> Array2<f32> {
    match d.transform {
        Transform::Animorph(_) => {
            Array2::from_shape_fn((n, d.param_count()), |_| rng.random_range(-1.0f32..1.0))
        }
        _ => d.sample_params(rng, n).expect("params"),
    }
}

pub(super) fn random_batch(
    rng: &mut StdRng,
    b: usize,
    c: usize,
    h: usize,
    w: usize,
) -> Array4<f32> {
    Array4::from_shape_fn((b, c, h, w), |_| rng.random_range(-1.0f32..1.0))
}

/// Max |got - want| over a batch, with `want(image, channel)` the float64 ground truth.
pub(super) fn max_err(
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
                    discrete: false,
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
fn blur_without_tables_equals_iterated_convolutions_at_any_size() {
    // The path of images too large for operators: odd, non-square and larger than any preset.
    let mut rng = StdRng::seed_from_u64(17);
    for padding in [Padding::Circular, Padding::Reflect] {
        for (h, w) in [(13, 13), (12, 16), (37, 90), (71, 45)] {
            let blur = Blur {
                kernel_size: 11,
                schedule: BlurSchedule::Cifar,
                padding,
                discrete: false,
            };
            let d = Degradation {
                transform: Transform::Blur(blur),
                steps: 50,
                channels: 1,
                height: h,
                width: w,
            };
            assert!(d.has_direct());
            let x = random_batch(&mut rng, 1, 1, h, w);
            let levels = [0usize, 1, 25, 50, 24];
            let got = d
                .apply_direct(
                    x.slice(s![0, 0, .., ..]),
                    &levels,
                    ndarray::Array1::zeros(0).view(),
                )
                .expect("direct");
            let xc = x.slice(s![0, 0, .., ..]).mapv(f64::from);
            for (l, y) in levels.iter().zip(&got) {
                let want = iterated_blur(&xc, &blur, *l);
                let err = y
                    .iter()
                    .zip(want.iter())
                    .map(|(a, b)| (f64::from(*a) - b).abs())
                    .fold(0.0, f64::max);
                assert!(err <= 1e-5, "{padding:?} {h}x{w} t {l}: {err}");
            }
        }
    }
    // Tables grow with the size; the direct path takes over past the limit.
    let d = Degradation::preset("cifar10").expect("preset");
    assert!(!d.needs_direct());
    assert!(d.at_size(4000, 6000).expect("size").needs_direct());
    assert!(d.at_size(4000, 6000).expect("size").prepare().is_err());
}

#[test]
fn discrete_blur_ends_in_the_channel_means_through_tables_and_the_direct_path() {
    // The reference's `--discrete` generation schedule (kernel 27, sigma_i = exp(rate i)): level T
    // is the mean of the T-times blurred image, levels below it plain blur; at the preset sizes,
    // odd and non-square ones, through the operators and the path without tables.
    let mut rng = StdRng::seed_from_u64(27);
    for padding in [Padding::Circular, Padding::Reflect] {
        for (h, w) in [(28, 28), (32, 32), (29, 41), (45, 30)] {
            let blur = Blur {
                kernel_size: 27,
                schedule: BlurSchedule::Exponential { rate: 0.3 },
                padding,
                discrete: true,
            };
            let steps = 10;
            let d = Degradation {
                transform: Transform::Blur(blur),
                steps,
                channels: 2,
                height: h,
                width: w,
            };
            let levels = [0usize, 1, steps - 1, steps];
            let x = random_batch(&mut rng, levels.len(), 2, h, w);
            let y = d
                .prepare()
                .expect("valid")
                .apply(x.view(), &levels, Prepared::no_params(4).view())
                .expect("apply");
            let err = max_err(&y, &x, |bi, xc| {
                iterated_blur_to(xc, &blur, levels[bi], steps)
            });
            assert!(err <= 1e-5, "{padding:?} {h}x{w}: {err}");
            // x_T is a constant image per channel; with circular padding the blur keeps the mean,
            // so the constant is the input's mean.
            for ch in 0..2 {
                let top = y.slice(s![3, ch, .., ..]);
                let (lo, hi) = top
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
                assert!(hi - lo <= 1e-6, "{padding:?} {h}x{w}: x_T spans {lo}..{hi}");
                if padding == Padding::Circular {
                    let mean = x
                        .slice(s![3, ch, .., ..])
                        .mapv(f64::from)
                        .mean()
                        .expect("n");
                    assert!((f64::from(lo) - mean).abs() <= 1e-5);
                }
            }
            let xc = x.slice(s![0, 1, .., ..]);
            let got = d
                .apply_direct(xc, &levels, ndarray::Array1::zeros(0).view())
                .expect("direct");
            let xc = xc.mapv(f64::from);
            for (l, g) in levels.iter().zip(&got) {
                let want = iterated_blur_to(&xc, &blur, *l, steps);
                let err = g
                    .iter()
                    .zip(want.iter())
                    .map(|(a, b)| (f64::from(*a) - b).abs())
                    .fold(0.0, f64::max);
                assert!(err <= 1e-5, "direct {padding:?} {h}x{w} t {l}: {err}");
            }
        }
    }
    // The named schedule is the paper's, and a line without `discrete` keeps today's blur.
    let g = crate::degradation::spec::schedule("generation-blur")
        .expect("named")
        .spec();
    match g.transform {
        Transform::Blur(b) => assert!(b.discrete && b.kernel_size == 27 && g.steps == 300),
        _ => panic!("a blur"),
    }
    let plain = crate::degradation::spec::Spec::parse("blur:kernel_size=27,schedule.routine=exponential,schedule.rate=0.01,padding=circular,T=300").expect("line");
    assert_ne!(plain, g);
    let back = crate::degradation::spec::Spec::parse(&g.to_line()).expect("its line");
    assert_eq!(back, g);
}

#[test]
fn superres_operators_equal_iterated_resampling() {
    let mut rng = StdRng::seed_from_u64(8);
    for (h, w, steps, clip) in [
        (28, 28, 3, false),
        (32, 32, 3, false),
        (13, 10, 2, false),
        (12, 17, 3, false),
        (28, 28, 3, true),
        (13, 10, 2, true),
    ] {
        let sr = SuperRes { factor: 2, clip };
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
        let err = max_err(&y, &x, |bi, xc| {
            let want = iterated_superres(xc, &sr, levels[bi]);
            if clip && levels[bi] > 0 {
                want.mapv(|v| v.clamp(-1.0, 1.0))
            } else {
                want
            }
        });
        assert!(err <= 1e-5, "{h}x{w} clip {clip}: {err}");
        if clip {
            // Random images in [-1, 1] overshoot beside their edges: clipping is exercised.
            assert!(y.iter().all(|v| v.abs() <= 1.0), "{h}x{w}: beyond [-1, 1]");
            let overshoot = levels.iter().enumerate().any(|(bi, &t)| {
                let xc = x.slice(s![bi, 0, .., ..]).mapv(f64::from);
                iterated_superres(&xc, &sr, t).iter().any(|v| v.abs() > 1.0)
            });
            assert!(overshoot, "{h}x{w}: the test images never overshoot");
        }
    }
    // The `-clipped` presets, and only they, clip.
    for name in PRESETS.iter().filter(|n| n.contains("superres")) {
        let Transform::SuperRes(sr) = Degradation::preset(name).expect("preset").transform else {
            panic!("{name} is not super-resolution");
        };
        assert_eq!(sr.clip, name.ends_with("-clipped"), "{name}");
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
fn level_zero_is_identity_for_every_preset() {
    let mut rng = StdRng::seed_from_u64(2);
    for name in PRESETS {
        let d = Degradation::preset(name).expect("preset");
        let p = d.prepare().expect("prepare");
        let x = random_batch(&mut rng, 2, d.channels, d.height, d.width);
        let params = params_for(&d, &mut rng, 2);
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
    json["transform"]["kind"] = "swirl".into();
    let e = check_kind(&json).expect_err("unknown kind").to_string();
    assert!(e.contains("'swirl'") && e.contains("update"), "{e}");
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

#[test]
fn snow_equals_the_reference_formula_per_image() {
    let mut rng = StdRng::seed_from_u64(10);
    for (c, h, w, steps) in [
        (1, 28, 28, 200),
        (3, 32, 32, 200),
        (3, 13, 10, 7),
        (1, 9, 16, 3),
    ] {
        let snow = Snow::paper();
        let d = Degradation {
            transform: Transform::Snow(snow),
            steps,
            channels: c,
            height: h,
            width: w,
        };
        let p = d.prepare().expect("valid");
        let levels = [0, 1, steps / 3, steps / 2, steps - 1, steps, steps];
        let mut params = d.sample_params(&mut rng, levels.len()).expect("params");
        // Both orientations at the last level.
        params[[5, h * w]] = 0.0;
        params[[6, h * w]] = 1.0;
        let x = random_batch(&mut rng, levels.len(), c, h, w);
        let y = p.apply(x.view(), &levels, params.view()).expect("apply");
        let mut err = 0f64;
        for (bi, &t) in levels.iter().enumerate() {
            let xi = x.slice(s![bi, .., .., ..]).mapv(f64::from);
            let pi: Vec<f64> = params.row(bi).iter().map(|&v| f64::from(v)).collect();
            let want = reference_snow(&xi, &snow, steps, t, &pi);
            for (a, g) in want.iter().zip(y.slice(s![bi, .., .., ..]).iter()) {
                err = err.max((a - f64::from(*g)).abs());
            }
        }
        assert!(err <= 1e-5, "{c}x{h}x{w} T {steps}: {err}");
    }
}

#[test]
fn snow_layers_grow_with_the_level_and_follow_the_orientation() {
    let d = Degradation::preset("mnist-snow").expect("preset");
    let p = d.prepare().expect("prepare");
    let mut rng = StdRng::seed_from_u64(11);
    let params = d.sample_params(&mut rng, 400).expect("params");
    assert_eq!(params.ncols(), 28 * 28 + 1);
    let vertical = params.column(28 * 28).sum() / 400.0;
    assert!((0.4..0.6).contains(&vertical), "{vertical} vertical");
    let base = params.slice(s![.., ..28 * 28]);
    let mean = base.mean().unwrap_or(0.0);
    // Zooming averages neighbours: the mean stays, the spread shrinks a little.
    assert!((mean - 0.55).abs() < 0.01, "base mean {mean}");
    let black = Array4::<f32>::from_elem((1, 1, 28, 28), -1.0);
    let mut last = -1.0;
    for t in [1, 50, 100, 150, 200] {
        let y = p
            .apply_uniform(black.view(), t, params.slice(s![0..1, ..]))
            .expect("apply");
        let m = y.mean().unwrap_or(0.0);
        assert!(m > last, "level {t}: mean {m} after {last}");
        last = m;
    }
    // A single snowy pixel, blurred horizontally, spreads along its row only.
    let mut one = Array2::<f32>::zeros((1, 28 * 28 + 1));
    one[[0, 10 * 28 + 5]] = 1.0;
    let tables = p.tables_as::<SnowTables>().expect("snow tables");
    let layer = tables.snow(200, one.row(0).as_slice().expect("row"));
    let rows: Vec<usize> = (0..28).filter(|&r| layer.row(r).sum() > 0.0).collect();
    assert_eq!(
        rows,
        [10, 17],
        "the pixel's row and its 180-degree rotation"
    );
}

#[test]
fn clipped_zoom_stretches_the_centre_like_scipy() {
    // A ramp stays a ramp: 28 -> centre 12 rows from row 8, zoomed to 30 samples with end points
    // aligned (step 11/29), the middle 28 kept (from sample 1).
    let ramp = Array2::from_shape_fn((28, 28), |(r, _)| r as f64);
    let z = clipped_zoom(ramp.view(), 2.5);
    for r in 0..28 {
        let want = 8.0 + (r + 1) as f64 * 11.0 / 29.0;
        assert!(
            (z[[r, 3]] - want).abs() < 1e-12,
            "row {r}: {} vs {want}",
            z[[r, 3]]
        );
    }
    // scipy.ndimage.zoom(order=1) through the reference's clipped_zoom, on r * 28 + c.
    let grid = Array2::from_shape_fn((28, 28), |(r, c)| (r * 28 + c) as f64);
    let z = clipped_zoom(grid.view(), 2.5);
    for ((r, c), want) in [
        ((0, 0), 243.0),
        ((0, 1), 243.3793103448276),
        ((5, 7), 298.7586206896552),
        ((27, 27), 540.0),
    ] {
        assert!((z[[r, c]] - want).abs() < 1e-9, "({r}, {c}): {}", z[[r, c]]);
    }
    // 32 -> centre 13 from 9, round(32.5) = 32 samples (half to even): nothing trimmed.
    let ramp = Array2::from_shape_fn((32, 32), |(_, c)| c as f64);
    let z = clipped_zoom(ramp.view(), 2.5);
    assert!((z[[0, 0]] - 9.0).abs() < 1e-12 && (z[[0, 31]] - 21.0).abs() < 1e-12);
}

#[test]
fn noise_mixes_with_the_cosine_schedule() {
    // Without the clipping of the last beta, the products telescope to f(t) / f(0).
    let steps = 200;
    let s = 0.008;
    let f = |t: f64| {
        ((t / steps as f64 + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
            .cos()
            .powi(2)
    };
    let abar = cosine_abar(steps, s);
    for (t, ab) in abar.iter().enumerate().take(steps) {
        assert!((ab - f(t as f64) / f(0.0)).abs() < 1e-12, "t {t}");
    }
    assert!((abar[steps] - abar[steps - 1] * 0.001).abs() < 1e-15);
    let d = Degradation::preset("mnist-noise").expect("preset");
    let p = d.prepare().expect("prepare");
    let mut rng = StdRng::seed_from_u64(12);
    let levels = [0, 1, 20, 100, 199, 200];
    let params = d.sample_params(&mut rng, levels.len()).expect("params");
    assert_eq!(params.ncols(), 28 * 28);
    let x = random_batch(&mut rng, levels.len(), 1, 28, 28);
    let y = p.apply(x.view(), &levels, params.view()).expect("apply");
    let err = max_err(&y, &x, |bi, xc| {
        let t = levels[bi];
        let a = (f(t as f64) / f(0.0)).sqrt();
        let a = if t == steps { abar[t].sqrt() } else { a };
        let b = (1.0 - a * a).sqrt();
        Array2::from_shape_fn(xc.dim(), |(r, c)| {
            a * xc[[r, c]] + b * f64::from(params[[bi, r * 28 + c]])
        })
    });
    assert!(err <= 1e-5, "{err}");
    let z = params.row(0);
    let (m, v) = (z.mean().unwrap_or(0.0), z.var(0.0));
    assert!(
        m.abs() < 0.15 && (v - 1.0).abs() < 0.15,
        "z mean {m} var {v}"
    );
}

#[test]
fn estimated_noise_step_with_the_true_image_lands_on_the_lower_level() {
    let d = Degradation::preset("mnist-noise").expect("preset");
    let p = d.prepare().expect("prepare");
    let mix = p.tables_as::<MixTables>().expect("mix tables");
    let mut rng = StdRng::seed_from_u64(13);
    let x0 = random_batch(&mut rng, 4, 1, 28, 28);
    let z = d.sample_params(&mut rng, 4).expect("params");
    let (s, s_prev) = ([0, 5, 120, 200], [0, 4, 60, 0]);
    let xs = p.apply(x0.view(), &s, z.view()).expect("x_s");
    let next = mix.estimated_step(xs.view(), x0.view(), &s, &s_prev);
    let want = p.apply(x0.view(), &s_prev, z.view()).expect("x_prev");
    let err = next
        .iter()
        .zip(want.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-3, "{err}");
}

#[test]
fn animorphosis_mixes_in_images_of_the_source() {
    use crate::data::Dataset;
    // A pool of 5 images of 1x4x3, image k filled with 50 k.
    let pixels: Vec<u8> = (0..5u8).flat_map(|k| vec![k * 50; 12]).collect();
    let pool = Dataset::from_parts("pool", (1, 4, 3), pixels, vec![0; 5], vec![]).expect("pool");
    let mut rng = StdRng::seed_from_u64(14);
    let z = Animorph::sample_from(&pool, &mut rng, 200, (1, 4, 3)).expect("draw");
    assert_eq!(z.dim(), (200, 12));
    let mut seen = std::collections::BTreeSet::new();
    for row in z.outer_iter() {
        // Each row is one whole pool image, in [-1, 1].
        assert!(row.iter().all(|&v| v == row[0]), "{row:?}");
        let k = ((row[0] + 1.0) / 2.0 * 255.0 / 50.0).round() as i64;
        assert!((0..5).contains(&k), "{}", row[0]);
        seen.insert(k);
    }
    assert_eq!(seen.len(), 5, "every pool image is drawn");
    let e = Animorph::sample_from(&pool, &mut rng, 1, (1, 28, 28)).expect_err("size");
    assert!(e.to_string().contains("1x28x28"), "{e}");
    // The same mix and schedule as the noise kind.
    let a = Degradation::preset("mnist-animorph").expect("preset");
    assert!(a.transform.is_mix() && a.param_count() == 784);
    let pa = a.prepare().expect("prepare");
    let pn = Degradation::preset("mnist-noise")
        .expect("preset")
        .prepare()
        .expect("prepare");
    let (ma, mn) = (
        pa.tables_as::<MixTables>().expect("mix"),
        pn.tables_as::<MixTables>().expect("mix"),
    );
    assert_eq!((&ma.a, &ma.b), (&mn.a, &mn.b));
}

/// Kinds that say they are affine in the image are: D(a x + (1 - a) y) = a D(x) + (1 - a) D(y)
/// (classifier-free guidance rests on it); the ones that clip or threshold say they are not.
#[test]
fn affine_kinds_are_affine() {
    let mut rng = StdRng::seed_from_u64(4);
    for name in PRESETS {
        let d = Degradation::preset(name).expect("preset");
        let (c, h, w) = (d.channels, d.height, d.width);
        // Beyond [-1, 1], so that clipping kinds clip.
        let mut img = || Array4::from_shape_fn((2, c, h, w), |_| rng.random_range(-3.0f32..3.0));
        let (x, y) = (img(), img());
        let a = 0.3f32;
        let mix = &x * a + &y * (1.0 - a);
        let params = match d.transform {
            // The other data set's image, as parameters.
            Transform::Animorph(_) => {
                Array2::from_shape_fn((2, d.param_count()), |_| rng.random_range(-1.0f32..1.0))
            }
            _ => d.sample_params(&mut rng, 2).expect("params"),
        };
        let p = d.prepare().expect("prepare");
        let t = [1, d.steps];
        let dm = p.apply(mix.view(), &t, params.view()).expect("D");
        let dx = p.apply(x.view(), &t, params.view()).expect("D");
        let dy = p.apply(y.view(), &t, params.view()).expect("D");
        let want = &dx * a + &dy * (1.0 - a);
        let err = dm
            .iter()
            .zip(want.iter())
            .map(|(p, q)| (p - q).abs())
            .fold(0.0f32, f32::max);
        if d.transform.is_affine() {
            assert!(err <= 1e-5, "{name}: {err}");
        } else {
            assert!(
                err > 1e-3,
                "{name} says it is not affine but is here: {err}"
            );
        }
    }
}
