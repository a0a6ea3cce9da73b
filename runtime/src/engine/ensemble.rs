//! Self-ensemble (`cold restore --self-ensemble`, the "test-time augmentation" of Real-ESRGAN's
//! `-x` and EDSR+): R's estimate of x0 averaged over the eight symmetries of the square. Each
//! symmetry g turns the input, R restores it, g's inverse turns the answer back, and the eight
//! answers are averaged. D and the sampler's update are untouched, so Algorithm 2 stays the
//! paper's; only the estimate x0_hat is the average. Eight runs of R per step.

use ndarray::{Array4, ArrayView4, Axis};

/// The symmetries, as bits: 4 transposes (height and width swap), 2 flips rows, 1 flips columns;
/// applied in that order, undone in the reverse one.
const SYMMETRIES: u8 = 8;

/// `x` turned by symmetry `g` (a view: no copy).
fn turn(mut x: ArrayView4<f32>, g: u8) -> ArrayView4<f32> {
    if g & 4 != 0 {
        x.swap_axes(2, 3);
    }
    if g & 2 != 0 {
        x.invert_axis(Axis(2));
    }
    if g & 1 != 0 {
        x.invert_axis(Axis(3));
    }
    x
}

/// `y` turned back by the inverse of symmetry `g`.
fn turn_back(mut y: ArrayView4<f32>, g: u8) -> ArrayView4<f32> {
    if g & 1 != 0 {
        y.invert_axis(Axis(3));
    }
    if g & 2 != 0 {
        y.invert_axis(Axis(2));
    }
    if g & 4 != 0 {
        y.swap_axes(2, 3);
    }
    y
}

/// The mean over the eight symmetries g of `g⁻¹ r(g x)`, one call of `r` per symmetry (a
/// transposed batch has height and width swapped). Memory beyond `r`'s: one turned copy of the
/// input and the running sum.
pub fn self_ensemble<E>(
    x: ArrayView4<f32>,
    levels: &[i64],
    mut r: impl FnMut(ArrayView4<f32>, &[i64]) -> Result<Array4<f32>, E>,
) -> Result<Array4<f32>, E> {
    let mut sum = Array4::<f32>::zeros(x.dim());
    for g in 0..SYMMETRIES {
        let turned = turn(x.view(), g).as_standard_layout().into_owned();
        let y = r(turned.view(), levels)?;
        drop(turned);
        sum += &turn_back(y.view(), g);
    }
    sum /= f32::from(SYMMETRIES);
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn image(b: usize, h: usize, w: usize) -> Array4<f32> {
        let mut rng = StdRng::seed_from_u64(1);
        Array4::from_shape_fn((b, 2, h, w), |_| rng.random_range(-1.0f32..1.0))
    }

    #[test]
    fn the_eight_symmetries_are_distinct_and_undone() {
        let x = image(1, 5, 7);
        let turned: Vec<Array4<f32>> = (0..SYMMETRIES)
            .map(|g| turn(x.view(), g).to_owned())
            .collect();
        for g in 0..SYMMETRIES as usize {
            assert_eq!(turn_back(turned[g].view(), g as u8), x.view(), "g = {g}");
            for k in 0..g {
                assert!(
                    turned[g].dim() != turned[k].dim() || turned[g] != turned[k],
                    "{g} = {k}"
                );
            }
        }
        // Index by index: transpose, then flip rows, then columns.
        let t = turn(x.view(), 7);
        assert_eq!(t.dim(), (1, 2, 7, 5));
        for ((_, c, i, j), v) in t.indexed_iter() {
            assert_eq!(*v, x[[0, c, 5 - 1 - j, 7 - 1 - i]]);
        }
    }

    #[test]
    fn an_r_that_commutes_with_the_symmetries_is_unchanged() {
        let x = image(2, 6, 9);
        let f = |t: ArrayView4<f32>, lv: &[i64]| -> Result<Array4<f32>, ()> {
            let mut o = t.to_owned();
            for (n, mut im) in o.outer_iter_mut().enumerate() {
                im.mapv_inplace(|v| (v * lv[n] as f32).tanh());
            }
            Ok(o)
        };
        let want = f(x.view(), &[2, 5]).expect("f");
        let got = self_ensemble(x.view(), &[2, 5], f).expect("ensemble");
        let err = (&got - &want).mapv(f32::abs).fold(0.0f32, |a, &v| a.max(v));
        assert!(err < 1e-6, "{err}");
    }

    #[test]
    fn an_r_with_a_direction_is_averaged_over_the_symmetries() {
        // R adds its input's column index: turned back, the eight answers add the column or row
        // index, counted from either end, each twice, so the mean adds (h - 1 + w - 1) / 4.
        let (h, w) = (6, 11);
        let x = image(1, h, w);
        let mut calls = Vec::new();
        let got = self_ensemble(x.view(), &[3], |t, _| -> Result<Array4<f32>, ()> {
            calls.push(t.dim());
            Ok(Array4::from_shape_fn(t.dim(), |(n, c, i, j)| {
                t[[n, c, i, j]] + j as f32
            }))
        })
        .expect("ensemble");
        assert_eq!(calls.len(), 8);
        assert_eq!(calls.iter().filter(|d| d.2 == w).count(), 4, "{calls:?}");
        let shift = (h - 1 + w - 1) as f32 / 4.0;
        let err = (&got - &x.mapv(|v| v + shift))
            .mapv(f32::abs)
            .fold(0.0f32, |a, &v| a.max(v));
        assert!(err < 1e-5, "{err}");
    }
}
