//! The sampling schedule, shared by the host loop (`engine`) and the GPU loop (`device_loop`):
//! which levels each image visits, and which output of the fused step graph carries the next
//! state. Neither loop decides this on its own.

use crate::bundle::io;

/// The sampler.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum Algorithm {
    /// `x_{s-1} = x_s - D(x0_hat, s) + D(x0_hat, s-1)` (the paper's improved sampler).
    #[value(name = "2")]
    Two,
    /// `x_{s-1} = D(x0_hat, s-1)`.
    #[value(name = "1")]
    One,
    /// One restorer call: `x0_hat = R(x_t, t)`.
    Direct,
    /// Algorithm 2 with the noise estimated from `x_s` and `x0_hat` (the paper's estimated-noise
    /// sampler, DDIM-like): noise models only; needs no per-image noise.
    #[value(name = "estimated")]
    Estimated,
}

impl Algorithm {
    /// The step graph's output that becomes the next state.
    pub fn output(self) -> &'static str {
        match self {
            Algorithm::Two => io::X_NEXT,
            Algorithm::One => io::X_NEXT_ALG1,
            Algorithm::Direct => io::X0_HAT,
            Algorithm::Estimated => io::X_NEXT_EST,
        }
    }

    /// What `restore` uses when not told: Algorithm 2, or the estimated-noise sampler for kinds that
    /// mix in noise (their image files are clipped, which Algorithm 2 with the recorded z carries
    /// into the output; the model cards measure it).
    pub fn default_for(transform: &crate::degradation::Transform) -> Self {
        if transform.is_mix() {
            Algorithm::Estimated
        } else {
            Algorithm::Two
        }
    }

    /// The name reports use.
    pub fn label(self) -> &'static str {
        match self {
            Algorithm::Two => "algorithm2",
            Algorithm::One => "algorithm1",
            Algorithm::Direct => "direct",
            Algorithm::Estimated => "estimated",
        }
    }
}

/// Levels visited from `t` to 0: every level, or `steps` levels spread evenly.
pub fn schedule(t: usize, steps: Option<usize>) -> Vec<usize> {
    let k = steps.unwrap_or(t).clamp(1, t.max(1));
    if t == 0 {
        return vec![0];
    }
    let mut out: Vec<usize> = (0..=k)
        .map(|i| ((t as f64) * (1.0 - i as f64 / k as f64)).round() as usize)
        .collect();
    out.dedup();
    out
}

/// The graph inputs of one iteration of the loop: `s` and `s_prev`, one value per image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepLevels {
    pub s: Vec<i64>,
    pub s_prev: Vec<i64>,
}

/// The whole loop for a batch whose images start at levels `t`: one [`StepLevels`] per step graph
/// run. Images that finish early sit at `(0, 0)`, which the step graph passes through unchanged;
/// the direct reconstruction is one run from `t` (images at level 0 are already clean).
pub fn plan(t: &[usize], algorithm: Algorithm, steps: Option<usize>) -> Vec<StepLevels> {
    let schedules: Vec<Vec<usize>> = t
        .iter()
        .map(|&ti| match algorithm {
            Algorithm::Direct if ti == 0 => vec![0],
            Algorithm::Direct => vec![ti, ti - 1],
            _ => schedule(ti, steps),
        })
        .collect();
    let iterations = schedules.iter().map(|s| s.len() - 1).max().unwrap_or(0);
    (0..iterations)
        .map(|k| {
            let (s, s_prev) = schedules
                .iter()
                .map(|sch| match (sch.get(k), sch.get(k + 1)) {
                    (Some(&s), Some(&p)) => (s as i64, p as i64),
                    _ => (0, 0),
                })
                .unzip();
            StepLevels { s, s_prev }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_defaults_to_the_estimated_sampler_for_noise_kinds_only() {
        use crate::degradation::{Degradation, PRESETS};
        for p in PRESETS {
            let d = Degradation::preset(p).expect("preset");
            let want = if p.ends_with("noise") || p.ends_with("animorph") {
                Algorithm::Estimated
            } else {
                Algorithm::Two
            };
            assert_eq!(Algorithm::default_for(&d.transform), want, "{p}");
        }
    }

    #[test]
    fn schedules_run_from_t_to_zero() {
        assert_eq!(schedule(5, None), vec![5, 4, 3, 2, 1, 0]);
        assert_eq!(schedule(20, Some(4)), vec![20, 15, 10, 5, 0]);
        assert_eq!(schedule(3, Some(10)), vec![3, 2, 1, 0]);
        assert_eq!(schedule(0, None), vec![0]);
        assert_eq!(schedule(7, Some(1)), vec![7, 0]);
    }

    #[test]
    fn plans_pad_finished_images_with_level_zero() {
        let p = plan(&[3, 1, 0], Algorithm::Two, None);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].s, vec![3, 1, 0]);
        assert_eq!(p[0].s_prev, vec![2, 0, 0]);
        assert_eq!(p[1].s, vec![2, 0, 0]);
        assert_eq!(p[2].s_prev, vec![0, 0, 0]);
        let d = plan(&[4, 0], Algorithm::Direct, Some(2));
        assert_eq!(
            d,
            vec![StepLevels {
                s: vec![4, 0],
                s_prev: vec![3, 0]
            }]
        );
        assert!(plan(&[0, 0], Algorithm::One, None).is_empty());
    }
}
