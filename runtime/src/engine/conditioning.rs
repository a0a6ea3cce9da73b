//! Class-conditioned sampling: the class input of a conditioned network's graphs, and
//! classifier-free guidance, `x0 = u + w (c - u)` with `c` R's output for the class and `u` for
//! the null class. A sampling step is affine in R's output when D is affine in the image
//! (`Transform::is_affine`), so guiding x0 and then stepping equals stepping with the class and
//! with the null class and combining the two next states the same way: one run of the step graph
//! on the doubled batch per step.

use cold_core::bundle::io;
use cold_core::sampler::{self, StepLevels};
use ndarray::{Array4, ArrayView2, ArrayView4, Axis, concatenate, s};
use ort::session::{OutputSelector, RunOptions};
use ort::value::{Tensor, TensorRef};

use super::{Algorithm, Engine, Graph, Restored, table_inputs};
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
        if guidance != 1.0 {
            let d = &self.bundle.manifest.degradation;
            if algorithm != Algorithm::Direct && !d.transform.is_affine() {
                return Err(Error::invalid(format!(
                    "--guidance needs a degradation affine in the image, and {} is not (it clips \
                     or thresholds): use --guidance 1",
                    d.transform.kind()
                )));
            }
            return self.restore_guided(
                x,
                t,
                params,
                algorithm,
                steps,
                progression,
                classes,
                guidance,
            );
        }
        self.class = Some(classes.to_vec());
        let r = self.restore(x, t, params, algorithm, steps, progression);
        self.class = None;
        r
    }

    /// The host loop of the step graph on `[x; x]` with classes `[c; null]`, each step's two
    /// halves combined as `u + w (c - u)`.
    #[allow(clippy::too_many_arguments)]
    fn restore_guided(
        &mut self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
        algorithm: Algorithm,
        steps: Option<usize>,
        progression: bool,
        classes: &[i64],
        w: f32,
    ) -> Result<Restored> {
        self.check_input(&x, t, &params)?;
        self.check_algorithm(algorithm)?;
        let b = x.dim().0;
        let null = self
            .bundle
            .manifest
            .network
            .config
            .null_class()
            .unwrap_or(0);
        let pair = |a: ArrayView2<f32>| {
            concatenate(Axis(0), &[a, a]).map_err(|e| Error::invalid(e.to_string()))
        };
        let params2 = self.takes_params().then(|| pair(params)).transpose()?;
        let class2: Vec<i64> = classes
            .iter()
            .copied()
            .chain(std::iter::repeat_n(null, b))
            .collect();
        let levels = sampler::plan(t, algorithm, steps);
        self.unfix_step_batch();
        let tables = self.tables.clone();
        let out_name = algorithm.output();
        let run_options =
            RunOptions::new()?.with_outputs(OutputSelector::no_default().with(out_name));
        let session = self.session(Graph::Step)?;
        let mut state = x.as_standard_layout().into_owned();
        let mut prog = Vec::new();
        if progression {
            prog.push(state.clone());
        }
        for StepLevels { s, s_prev } in levels {
            let x2 = concatenate(Axis(0), &[state.view(), state.view()])
                .map_err(|e| Error::invalid(e.to_string()))?;
            let twice = |v: &[i64]| [v, v].concat();
            let mut inputs = ort::inputs! {
                io::X_S => TensorRef::from_array_view(x2.view())?,
                io::S => Tensor::from_array(([2 * b], twice(&s)))?,
                io::S_PREV => Tensor::from_array(([2 * b], twice(&s_prev)))?,
                io::CLASS => Tensor::from_array(([2 * b], class2.clone()))?,
            };
            if let Some(p) = &params2 {
                inputs.push((
                    io::PARAMS.into(),
                    TensorRef::from_array_view(p.view())?.into(),
                ));
            }
            inputs.extend(table_inputs(session, &tables)?);
            let outputs = session.run_with_options(inputs, &run_options)?;
            let y = outputs[out_name].try_extract_array::<f32>()?;
            let y = y
                .into_dimensionality::<ndarray::Ix4>()
                .map_err(|e| Error::OnnxRuntime(e.to_string()))?;
            let (c, u) = (y.slice(s![..b, .., .., ..]), y.slice(s![b.., .., .., ..]));
            let guided: Array4<f32> = &u + &((&c - &u) * w);
            for (i, &si) in s.iter().enumerate() {
                // Images at level 0 are done (the step graph passes them through).
                if si > 0 || algorithm != Algorithm::Direct {
                    state
                        .index_axis_mut(Axis(0), i)
                        .assign(&guided.index_axis(Axis(0), i));
                }
            }
            if progression {
                prog.push(state.clone());
            }
        }
        Ok(Restored {
            output: state,
            progression: prog,
        })
    }
}
