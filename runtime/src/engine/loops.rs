//! The two sampling loops the engine drives over the fused step graph: on the host (the state
//! back in host memory between steps; progressions, direct restoration, guidance) and, on a GPU,
//! the device loop (`crate::device_loop`: the state stays on the device), with the step session
//! fixed at the batch for CUDA graphs.

use cold_core::bundle::io;
use cold_core::degradation::Prepared;
use cold_core::sampler::StepLevels;
use ndarray::{Array2, Array4, Axis};
use ort::session::{OutputSelector, RunOptions};
use ort::value::{Tensor, TensorRef};

use super::{Algorithm, Engine, Graph, Restored, table_inputs};
use crate::error::{Error, Result};

impl Engine {
    /// Drops a step session fixed for CUDA graphs: a session that captures graphs only runs
    /// through the device loop's bindings, so host loops get a plain one.
    pub(crate) fn unfix_step_batch(&mut self) {
        if self.step_batch.is_some() {
            self.step_batch = None;
            self.sessions.retain(|(g, _)| *g != Graph::Step);
        }
    }

    /// With CUDA graphs, fixes the step session at batch `b` (created again when it was fixed at
    /// another batch); otherwise does nothing.
    pub(crate) fn fix_step_batch(&mut self, b: usize) -> Result<()> {
        if self.options.cuda_graph && self.step_batch != Some(b) {
            self.step_batch = Some(b);
            self.sessions.retain(|(g, _)| *g != Graph::Step);
            #[cfg(feature = "cuda")]
            {
                self.graphs = Default::default();
            }
            self.session(Graph::Step)?;
        }
        Ok(())
    }

    /// The device loop over the step `graph` (CUDA or TensorRT provider): with CUDA graphs at
    /// the bundle's own size, every step captured and replayed.
    #[cfg(feature = "cuda")]
    pub(super) fn device_loop(
        &mut self,
        graph: Graph,
        tables: &Prepared,
        x: ndarray::ArrayView4<f32>,
        params: Option<&Array2<f32>>,
        levels: &[StepLevels],
        algorithm: Algorithm,
    ) -> Result<Array4<f32>> {
        let device_id = self.options.device_id;
        let b = x.dim().0;
        let class = self.class_input(b);
        let values = tables.table_values();
        let inputs = crate::device_loop::LoopInputs {
            x,
            params: params.map(|p| p.view()),
            tables: &values,
            class: class.as_deref(),
            levels,
            algorithm,
            no_sync: self.options.no_sync,
        };
        if self.options.cuda_graph && graph == Graph::Step {
            self.fix_step_batch(b)?;
            let mut graphs = std::mem::take(&mut self.graphs);
            let session = self.session(graph)?;
            let out = crate::device_loop::run_graphed(session, device_id, &inputs, &mut graphs);
            self.graphs = graphs;
            out
        } else {
            let session = self.session(graph)?;
            crate::device_loop::run(session, device_id, &inputs)
        }
    }

    /// The sampling loop on the host: one run of the step `graph` per level, the state back on
    /// the host between runs. With `guidance` W (a class-conditioned network, classes set by
    /// [`Engine::restore_conditioned`]) every run takes `[x; x]` with classes `[c; null]`, and
    /// the next state is `u + W (c - u)` of its two halves (see `conditioning`).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn host_loop(
        &mut self,
        graph: Graph,
        tables: &Prepared,
        x: Array4<f32>,
        params: Option<Array2<f32>>,
        levels: Vec<StepLevels>,
        algorithm: Algorithm,
        progression: bool,
        guidance: Option<f32>,
    ) -> Result<Restored> {
        self.unfix_step_batch();
        let b = x.dim().0;
        let copies = if guidance.is_some() { 2 } else { 1 };
        let twice = |v: &[i64]| v.repeat(copies);
        let mut class = self.class_input(b);
        if guidance.is_some() {
            let null = self.bundle.manifest.network.config.null_class();
            class = class.zip(null).map(|(mut c, n)| {
                c.extend(std::iter::repeat_n(n, b));
                c
            });
        }
        let params = match (params, copies) {
            (Some(p), 2) => Some(
                ndarray::concatenate(Axis(0), &[p.view(), p.view()])
                    .map_err(|e| Error::invalid(e.to_string()))?,
            ),
            (p, _) => p,
        };
        let mut state = x;
        let mut prog = Vec::new();
        if progression {
            prog.push(state.clone());
        }
        let out_name = algorithm.output();
        // Fetch only the output the algorithm needs.
        let run_options =
            RunOptions::new()?.with_outputs(OutputSelector::no_default().with(out_name));
        let session = self.session(graph)?;
        for StepLevels { s, s_prev } in levels {
            // Guided: the state twice (unguided: the state itself, no copy).
            let doubled = (copies == 2)
                .then(|| ndarray::concatenate(Axis(0), &[state.view(), state.view()]))
                .transpose()
                .map_err(|e| Error::invalid(e.to_string()))?;
            let fed = doubled.as_ref().map_or(state.view(), |d| d.view());
            let n = copies * b;
            let mut inputs = ort::inputs! {
                io::X_S => TensorRef::from_array_view(fed)?,
                io::S => Tensor::from_array(([n], twice(&s)))?,
                io::S_PREV => Tensor::from_array(([n], twice(&s_prev)))?,
            };
            if let Some(p) = &params {
                inputs.push((
                    io::PARAMS.into(),
                    TensorRef::from_array_view(p.view())?.into(),
                ));
            }
            if let Some(c) = &class {
                inputs.push((
                    io::CLASS.into(),
                    Tensor::from_array(([n], c.clone()))?.into(),
                ));
            }
            inputs.extend(table_inputs(session, tables)?);
            let outputs = session.run_with_options(inputs, &run_options)?;
            let y = outputs[out_name].try_extract_array::<f32>()?;
            let y = y
                .into_dimensionality::<ndarray::Ix4>()
                .map_err(|e| Error::OnnxRuntime(e.to_string()))?;
            let y = match guidance {
                Some(w) => {
                    let (c, u) = (
                        y.slice(ndarray::s![..b, .., .., ..]),
                        y.slice(ndarray::s![b.., .., .., ..]),
                    );
                    &u + &((&c - &u) * w)
                }
                None => y.to_owned(),
            };
            if algorithm == Algorithm::Direct {
                // Images at level 0 are already clean.
                for (i, &si) in s.iter().enumerate() {
                    if si > 0 {
                        state
                            .index_axis_mut(Axis(0), i)
                            .assign(&y.index_axis(Axis(0), i));
                    }
                }
            } else {
                state.assign(&y);
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
