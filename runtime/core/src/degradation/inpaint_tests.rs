//! Inpainting and mask generation: D against float64 implementations (iterated masking, and the
//! authors' reversed mask schedule with a fill colour), and the random centres.

use ndarray::{Array2, s};
use rand::{SeedableRng, rngs::StdRng};

use super::tests::{max_err, random_batch};
use super::*;
use crate::degradation::inpaint::iterated_inpaint;

#[test]
fn inpaint_masks_equal_iterated_masking_per_image() {
    let mut rng = StdRng::seed_from_u64(9);
    for (h, w) in [(28, 28), (11, 14), (9, 8)] {
        for centre in [Centre::Random, Centre::Centred] {
            let ip = Inpaint {
                kernel_std: 0.1,
                initial_mask: 11.0,
                centre,
                reverse: false,
                fill: None,
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
            let mut params = d.sample_params(&mut rng, levels.len()).expect("params");
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

/// The reference's mask generation in float64, as `defading-generation-diffusion-pytorch` builds
/// it (`get_reverse_kernels_with_schedule`, `q_sample`), on an `h x w` image: each fade kernel is
/// a Gaussian of `(h+1) x (w+1)` (1-D kernels normalised, their outer product divided by its
/// maximum), one minus it, its first row and column dropped; the list of running products taken
/// *before* each multiplication, reversed, is `one_minus_alphas`; level `s >= 1` is
/// `alpha[s-1] x + (1 - alpha[s-1]) c`.
fn authors_mask_generation(
    x: &Array2<f64>,
    ip: &Inpaint,
    steps: usize,
    s: usize,
    colour: f64,
) -> Array2<f64> {
    if s == 0 {
        return x.clone();
    }
    let (h, w) = x.dim();
    let gauss = |n: usize, sigma: f64| -> Vec<f64> {
        let g: Vec<f64> = (0..n)
            .map(|i| {
                let d = i as f64 - (n / 2) as f64;
                (-d * d / (2.0 * sigma * sigma)).exp()
            })
            .collect();
        let sum: f64 = g.iter().sum();
        g.into_iter().map(|v| v / sum).collect()
    };
    let fade = |sigma: f64| -> Array2<f64> {
        let (gy, gx) = (gauss(h + 1, sigma), gauss(w + 1, sigma));
        let k = Array2::from_shape_fn((h + 1, w + 1), |(a, b)| gy[a] * gx[b]);
        let max = k.iter().copied().fold(f64::MIN, f64::max);
        k.slice(s![1.., 1..]).mapv(|v| 1.0 - v / max)
    };
    let mut faded = Vec::with_capacity(steps);
    let mut kers = Array2::<f64>::ones((h, w));
    for i in 0..steps {
        faded.push(kers.clone());
        kers = &kers * &fade(ip.kernel_std * (i as f64 + ip.initial_mask));
    }
    faded.reverse();
    let alpha = faded[s - 1].mapv(|v| 1.0 - v);
    &alpha * x + &alpha.mapv(|a| (1.0 - a) * colour)
}

#[test]
fn mask_generation_equals_the_authors_reversed_masks_with_a_fill_colour() {
    let mut rng = StdRng::seed_from_u64(19);
    let spec = Spec::parse("mask-generation-28").expect("schedule");
    let Transform::Inpaint(paper) = spec.transform else {
        panic!("inpainting")
    };
    assert_eq!((paper.kernel_std, spec.steps), (0.0109375, 750));
    // The fewer-level variant the schedule's notes give (T = 100, kernel_std 0.12), so that
    // every level's masks are far apart; the paper's T = 750 at 28 px once (odd, non-square and
    // larger sizes with the short schedule). At 28 px and below, level 1 keeps nearly all of
    // the image with both.
    let short = Inpaint {
        kernel_std: 0.12,
        ..paper
    };
    for (ip, steps, (h, w)) in [
        (short, 100, (28, 28)),
        (short, 100, (9, 9)),
        (short, 100, (12, 17)),
        (short, 100, (45, 40)),
        (paper, 750, (28, 28)),
    ] {
        let d = Degradation {
            transform: Transform::Inpaint(ip),
            steps,
            channels: 3,
            height: h,
            width: w,
        };
        assert_eq!(d.param_count(), 3);
        assert!(d.transform.starts_from_params() && d.transform.is_affine());
        let p = d.prepare().expect("valid");
        let levels = [0usize, 1, 2, steps / 3, steps / 2, steps - 1, steps];
        let params = d.sample_params(&mut rng, levels.len()).expect("params");
        assert!(params.iter().all(|v| (-0.5..=0.5).contains(v)));
        let x = random_batch(&mut rng, levels.len(), 3, h, w);
        let y = p.apply(x.view(), &levels, params.view()).expect("apply");
        let mut err = 0f64;
        for bi in 0..levels.len() {
            for ch in 0..3 {
                let xc = x.slice(s![bi, ch, .., ..]).mapv(f64::from);
                let c = f64::from(params[[bi, ch]]);
                let want = authors_mask_generation(&xc, &ip, steps, levels[bi], c);
                for (a, g) in want.iter().zip(y.slice(s![bi, ch, .., ..]).iter()) {
                    err = err.max((a - f64::from(*g)).abs());
                }
            }
        }
        assert!(err <= 1e-5, "T {steps} {h}x{w}: {err}");
        // Level T is exactly each image's colour; level 1 keeps nearly all of the image.
        let last = y.index_axis(ndarray::Axis(0), levels.len() - 1);
        for ch in 0..3 {
            let c = params[[levels.len() - 1, ch]];
            assert!(
                last.index_axis(ndarray::Axis(0), ch)
                    .iter()
                    .all(|&v| v == c)
            );
        }
        let first = (&y.index_axis(ndarray::Axis(0), 1) - &x.index_axis(ndarray::Axis(0), 1))
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        if h.max(w) <= 28 {
            assert!(
                first < 0.02,
                "level 1 of T {steps} at {h}x{w} moves {first}"
            );
        }
    }
}

#[test]
fn random_centres_cover_the_extended_grid_uniformly() {
    let d = Degradation::preset("mnist-inpaint").expect("preset");
    let mut rng = StdRng::seed_from_u64(1);
    let p = d.sample_params(&mut rng, 20_000).expect("params");
    assert_eq!(p.ncols(), 2);
    let (lo, hi) = p
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (-1.0, 27.0));
    let mean = p.column(0).mean().unwrap_or(0.0);
    assert!((mean - 13.0).abs() < 0.3, "mean row centre {mean}");
    assert!(p.iter().all(|v| v.fract() == 0.0));
}
