//! Decolorization (the reference's `decolor-diffusion/`, `DeColorization`): step i mixes every
//! pixel's channels with the 1x1 matrix `K(e_i) = e_i I + (1 - e_i) J / C` (J all ones), which
//! pulls the colour towards the pixel's channel mean; with `total_remove` the last step is
//! `K(0)`, the grey image. The matrices share the projector `P = J / C` (`K(e) = P + e (I - P)`),
//! so t steps compose to `D(x, t) = m + c_t (x - m)`, `m` the pixel's channel mean and
//! `c_t = e_0 ... e_{t-1}`: one coefficient per level, the same at every image size.
//!
//! Routines: `Constant` (`e_i = ema_factor`) and `Linear` (`e_i = 1 - (1/T) / s_i`, `s_{i+1} =
//! s_i e_i`, `s_0 = 1`, so `c_t = 1 - t / T`: the colour fades linearly).

use std::any::Any;

use ndarray::{Array1, Array4, ArrayView2, ArrayView4, Axis};
use serde::{Deserialize, Serialize};

use super::Degradation;
use super::kind::{Kind, Lowering, Tables, nodes};
use crate::error::{Error, Result};
use crate::onnx::{Attr, GraphBuilder};

/// How much colour each step keeps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "routine", rename_all = "snake_case")]
pub enum DecolorRoutine {
    /// `e_i = ema_factor` (the reference's `Constant`, 0.9 by default).
    Constant { ema_factor: f64 },
    /// The colour fades linearly to nothing at T (the reference's `Linear`).
    Linear,
}

/// A decolorization process.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decolor {
    #[serde(flatten)]
    pub routine: DecolorRoutine,
    /// The last step removes what colour is left (the reference's `--decolor_total_remove`).
    pub total_remove: bool,
}

impl Decolor {
    /// The paper's CIFAR-10 setting: linear, the colour removed entirely at T.
    pub fn paper() -> Self {
        Decolor {
            routine: DecolorRoutine::Linear,
            total_remove: true,
        }
    }

    /// `e_i` of every step, as the reference computes them.
    pub(crate) fn step_factors(&self, steps: usize) -> Vec<f64> {
        let mut start = 1.0;
        (0..steps)
            .map(|i| {
                if i + 1 == steps && self.total_remove {
                    return 0.0;
                }
                match self.routine {
                    DecolorRoutine::Constant { ema_factor } => ema_factor,
                    DecolorRoutine::Linear => {
                        let e = 1.0 - (1.0 / steps as f64) / start;
                        start *= e;
                        e
                    }
                }
            })
            .collect()
    }

    /// `c_t`, the colour kept at level t = 0..=T.
    pub(crate) fn coefficients(&self, steps: usize) -> Vec<f64> {
        let mut c = vec![1.0];
        for e in self.step_factors(steps) {
            c.push(c[c.len() - 1] * e);
        }
        c
    }
}

/// The per-level coefficients `c_t`.
#[derive(Clone, Debug)]
pub(crate) struct DecolorTables {
    /// `[T+1]` float32.
    pub c: Array1<f32>,
}

impl Tables for DecolorTables {
    fn apply(
        &self,
        x: ArrayView4<f32>,
        t: &[usize],
        _params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        let mut out = x.to_owned();
        for (i, mut img) in out.outer_iter_mut().enumerate() {
            let c = self.c[t[i]];
            if t[i] == 0 {
                continue;
            }
            let mean = img.mean_axis(Axis(0)).expect("at least one channel");
            for mut ch in img.outer_iter_mut() {
                ndarray::Zip::from(&mut ch)
                    .and(&mean)
                    .for_each(|v, &m| *v = m + c * (*v - m));
            }
        }
        Ok(out)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Kind for Decolor {
    /// `m + c_t (x - m)`: linear.
    fn is_affine(&self) -> bool {
        true
    }

    fn validate(&self, d: &Degradation) -> Result<()> {
        if d.channels < 2 {
            return Err(Error::InvalidArgument(format!(
                "decolorization needs colour images; these have {} channel",
                d.channels
            )));
        }
        if let DecolorRoutine::Constant { ema_factor } = self.routine
            && !(ema_factor.is_finite() && (0.0..=1.0).contains(&ema_factor))
        {
            return Err(Error::InvalidArgument(format!(
                "decolorization's ema_factor must lie in [0, 1], got {ema_factor}"
            )));
        }
        Ok(())
    }

    fn describe(&self, _d: &Degradation) -> String {
        let routine = match self.routine {
            DecolorRoutine::Constant { ema_factor } => format!("constant factor {ema_factor}"),
            DecolorRoutine::Linear => "linear".into(),
        };
        format!(
            "decolorization, {routine}{}",
            if self.total_remove { ", grey at T" } else { "" }
        )
    }

    fn tables(&self, d: &Degradation) -> Result<Box<dyn Tables>> {
        let c = self
            .coefficients(d.steps)
            .iter()
            .map(|&v| v as f32)
            .collect();
        Ok(Box::new(DecolorTables { c }))
    }

    /// `m + c_t (x - m)`: the channel mean (ReduceMean over channels) and the level's
    /// coefficient (a table in the graph).
    fn lower(&self, d: &Degradation, g: &mut GraphBuilder, io: Lowering) -> String {
        let c: Array1<f32> = self
            .coefficients(d.steps)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let table = nodes::table(g, "degradation.decolor", &c);
        g.scoped("degradation", |g| {
            let axes = g.const_i64(&[1], &[1]);
            let m = g.op1(
                "ReduceMean",
                &[io.x, &axes],
                vec![("keepdims", Attr::Int(1))],
            );
            let ct = nodes::per_image(g, &table, io.t);
            let colour = g.op1("Sub", &[io.x, &m], vec![]);
            let kept = g.op1("Mul", &[&ct, &colour], vec![]);
            let y = g.op1("Add", &[&m, &kept], vec![]);
            nodes::where_active(g, io.t, &y, io.x)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array3;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    /// The reference's D in float64: t 1x1 convolutions with `K(e_i)`, one pixel at a time.
    fn iterated(x: &Array3<f64>, factors: &[f64]) -> Array3<f64> {
        let (c, h, w) = x.dim();
        let mut cur = x.clone();
        for &e in factors {
            let mut next = Array3::zeros((c, h, w));
            for r in 0..h {
                for q in 0..w {
                    for o in 0..c {
                        next[[o, r, q]] = (0..c)
                            .map(|i| {
                                let k = if i == o { e } else { 0.0 } + (1.0 - e) / c as f64;
                                k * cur[[i, r, q]]
                            })
                            .sum();
                    }
                }
            }
            cur = next;
        }
        cur
    }

    #[test]
    fn decolorization_equals_the_iterated_channel_mixing() {
        let mut rng = StdRng::seed_from_u64(3);
        for routine in [
            DecolorRoutine::Linear,
            DecolorRoutine::Constant { ema_factor: 0.9 },
        ] {
            for total_remove in [true, false] {
                let k = Decolor {
                    routine,
                    total_remove,
                };
                for (steps, h, w) in [(20, 5, 7), (7, 32, 32)] {
                    let d = Degradation {
                        transform: super::super::Transform::Decolor(k),
                        steps,
                        channels: 3,
                        height: h,
                        width: w,
                    };
                    let p = d.prepare().expect("prepare");
                    let x = Array4::from_shape_fn((steps + 1, 3, h, w), |_| {
                        rng.random_range(-1.0f32..1.0)
                    });
                    let levels: Vec<usize> = (0..=steps).collect();
                    let none = ndarray::Array2::<f32>::zeros((steps + 1, 0));
                    let y = p.apply(x.view(), &levels, none.view()).expect("apply");
                    let factors = k.step_factors(steps);
                    for t in 0..=steps {
                        let xi = x.index_axis(Axis(0), t).mapv(f64::from);
                        let want = iterated(&xi, &factors[..t]);
                        let err = want
                            .iter()
                            .zip(y.index_axis(Axis(0), t).iter())
                            .map(|(a, b)| (a - f64::from(*b)).abs())
                            .fold(0.0, f64::max);
                        assert!(err < 1e-5, "{routine:?} {total_remove} t={t}: {err}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_linear_routine_fades_the_colour_linearly_to_grey() {
        let c = Decolor::paper().coefficients(20);
        for (t, v) in c.iter().enumerate() {
            assert!((v - (1.0 - t as f64 / 20.0)).abs() < 1e-12, "t={t}: {v}");
        }
        let keep = Decolor {
            routine: DecolorRoutine::Constant { ema_factor: 0.5 },
            total_remove: false,
        };
        assert_eq!(keep.coefficients(3), vec![1.0, 0.5, 0.25, 0.125]);
        let grey = Degradation::preset("cifar10-decolor").expect("preset");
        assert_eq!((grey.steps, grey.channels), (20, 3));
        let mut one = grey.clone();
        one.channels = 1;
        assert!(
            one.validate().is_err(),
            "grey images have no colour to remove"
        );
    }
}
