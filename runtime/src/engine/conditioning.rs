//! Class-conditioned sampling: the class input of a conditioned network's graphs, and
//! classifier-free guidance, `x0 = u + w (c - u)` with `c` R's output for the class and `u` for
//! the null class. A sampling step is affine in R's output when D is affine in the image
//! (`Transform::is_affine`), so guiding x0 and then stepping equals stepping with the class and
//! with the null class and combining the two next states the same way: one run of the step graph
//! on the doubled batch per step.

use cold_core::sampler;
use ndarray::{ArrayView2, ArrayView4};

use super::{Algorithm, Engine, Graph, Restored};
use crate::error::{Error, Result};

impl Engine {
    /// The class input of a batch of `b` for a class-conditioned network's graphs: the classes
    /// of [`Engine::restore_conditioned`], else the null class; `None` for other networks.
    pub(crate) fn class_input(&self, b: usize) -> Option<Vec<i64>> {
        let null = self.bundle.manifest.network.config.null_class()?;
        Some(self.class.clone().unwrap_or_else(|| vec![null; b]))
    }

    /// [`Engine::restore`] by a class-conditioned network given each image's class (an index
    /// into `UNetConfig::classes`, or the null class for none), with classifier-free guidance
    /// `guidance` (1: the class's own output; 0: the null class's; above 1: further from the
    /// null class). Guidance other than 1 runs the step graph on the host, on twice the batch.
    #[allow(clippy::too_many_arguments)]
    pub fn restore_conditioned(
        &mut self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
        algorithm: Algorithm,
        steps: Option<usize>,
        progression: bool,
        classes: &[i64],
        guidance: f32,
    ) -> Result<Restored> {
        let cfg = &self.bundle.manifest.network.config;
        let Some(null) = cfg.null_class() else {
            return Err(Error::invalid(
                "this model is not conditioned on classes (train one with `cold-train train --classes`)",
            ));
        };
        let (b, _, h, w) = x.dim();
        if classes.len() != b {
            return Err(Error::invalid(format!(
                "{} classes for a batch of {b}",
                classes.len()
            )));
        }
        if let Some(bad) = classes.iter().find(|&&c| !(0..=null).contains(&c)) {
            return Err(Error::invalid(format!(
                "class {bad} is not one of the model's {null} classes (0..{null}, {null} for none)"
            )));
        }
        if !self.is_native(h, w) {
            return Err(Error::invalid(format!(
                "class-conditioned restoration runs at the model's own size, not {w}x{h}"
            )));
        }
        if !guidance.is_finite() {
            return Err(Error::invalid(format!(
                "--guidance {guidance} must be a number"
            )));
        }
        let d = &self.bundle.manifest.degradation;
        if guidance != 1.0 && algorithm != Algorithm::Direct && !d.transform.is_affine() {
            return Err(Error::invalid(format!(
                "--guidance needs a degradation affine in the image, and {} is not (it clips or \
                 thresholds): use --guidance 1",
                d.transform.kind()
            )));
        }
        self.class = Some(classes.to_vec());
        let r = if guidance == 1.0 {
            self.restore(x, t, params, algorithm, steps, progression)
        } else {
            // The host loop of the step graph on `[x; x]` with classes `[c; null]`, each step's
            // two halves combined as `u + w (c - u)`.
            self.check_input(&x, t, &params)
                .and_then(|_| self.check_algorithm(algorithm))
                .and_then(|_| {
                    let params = self
                        .takes_params()
                        .then(|| params.as_standard_layout().into_owned());
                    let levels = sampler::plan(t, algorithm, steps);
                    let tables = self.tables.clone();
                    let x = x.as_standard_layout().into_owned();
                    self.host_loop(
                        Graph::Step,
                        &tables,
                        x,
                        params,
                        levels,
                        algorithm,
                        progression,
                        Some(guidance),
                    )
                })
        };
        self.class = None;
        r
    }
}
