//! Restoring images of another size than the bundle's when the fused step graph cannot take them
//! whole: R (the restorer graph) runs on padded, overlapping tiles ([`super::tiles`]) and D (the
//! degradation graph, or for images too large for the kind's tables its direct host path, one
//! channel at a time) on the whole image at its own size, so every step's update is the paper's
//! exactly; only R sees tiles.

use cold_core::degradation::MixTables;
use cold_core::sampler::StepLevels;
use cold_core::{bundle::io, update};
use ndarray::{Array2, Array4, ArrayView4, Axis, concatenate, s};
use ort::value::{Tensor, TensorRef};

use super::tiles::{self, Plan};
use super::{Algorithm, Engine, Graph, Restored};
use crate::error::{Error, Result};

impl Engine {
    /// R on one batch of tiles of one size, with a level per tile.
    fn restorer(&mut self, x: ArrayView4<f32>, levels: &[i64]) -> Result<Array4<f32>> {
        let x = x.as_standard_layout();
        // Tiles run at other sizes than the model's: never class-conditioned
        // (`restore_conditioned` refuses them), the null class for a conditioned network.
        let class = self.class_input(levels.len());
        let session = self.session(Graph::AnyRestorer)?;
        let mut inputs = ort::inputs! {
            io::X => TensorRef::from_array_view(x.view())?,
            io::T => Tensor::from_array(([levels.len()], levels.to_vec()))?,
        };
        if let Some(c) = class {
            inputs.push((io::CLASS.into(), Tensor::from_array(([c.len()], c))?.into()));
        }
        let out = session.run(inputs)?;
        let y = out[io::X0_HAT].try_extract_array::<f32>()?;
        Ok(y.into_dimensionality::<ndarray::Ix4>()
            .map_err(|e| Error::OnnxRuntime(e.to_string()))?
            .to_owned())
    }

    /// The sampler's loop with R on tiles and D on whole images (see the module).
    pub(super) fn restore_tiled(
        &mut self,
        x: Array4<f32>,
        params: Option<Array2<f32>>,
        levels: Vec<StepLevels>,
        algorithm: Algorithm,
        progression: bool,
        plan: &Plan,
    ) -> Result<Restored> {
        let (b, c, h, w) = x.dim();
        let params = params.unwrap_or_else(|| Array2::zeros((b, 0)));
        let pairs = concatenate(Axis(0), &[params.view(), params.view()])
            .map_err(|e| Error::invalid(e.to_string()))?;
        // Images too large for the kind's tables: D computed directly on the host.
        let at = self.bundle.manifest.degradation.at_size(h, w)?;
        let direct = at.needs_direct_within(self.options.max_table_bytes);
        let batch = self.options.tiling.batch_for(plan.tile);
        let mut state = x;
        let mut prog = Vec::new();
        if progression {
            prog.push(state.clone());
        }
        // Big images take a while: a bar that counts their tiles (drawn on a terminal only).
        let bar = (plan.corners.len() >= BAR_TILES).then(|| {
            cold_core::progress::progress_bar(
                (levels.len() * plan.corners.len() * b) as u64,
                &format!("tiles of {w}x{h}"),
            )
        });
        for StepLevels { s, s_prev } in levels {
            let x0 = tiles::restore_tiled(state.view(), &s, plan, batch, |t, lv| {
                let out = self.restorer(t, lv);
                if let Some(bar) = &bar {
                    bar.inc(t.dim().0 as u64);
                }
                out
            })?;
            let active: Vec<bool> = s.iter().map(|&v| v > 0).collect();
            let us = |v: &[i64]| v.iter().map(|&l| l as usize).collect::<Vec<_>>();
            if direct && matches!(algorithm, Algorithm::One | Algorithm::Two) {
                // D without tables, one channel at a time, the update in place.
                for i in (0..b).filter(|&i| active[i]) {
                    let (si, pi) = (s[i] as usize, s_prev[i] as usize);
                    for k in 0..c {
                        let x0c = x0.slice(s![i, k, .., ..]);
                        let mut st = state.slice_mut(s![i, k, .., ..]);
                        if algorithm == Algorithm::One {
                            let d = at.apply_direct(x0c, &[pi], params.row(i))?;
                            st.assign(&d[0]);
                        } else {
                            let d = at.apply_direct(x0c, &[si, pi], params.row(i))?;
                            ndarray::Zip::from(&mut st)
                                .and(&d[0])
                                .and(&d[1])
                                .for_each(|x, &ds, &dp| *x = *x - ds + dp);
                        }
                    }
                }
                if progression {
                    prog.push(state.clone());
                }
                continue;
            }
            let next = match algorithm {
                Algorithm::Direct => x0,
                Algorithm::One => self.degrade(x0.view(), &us(&s_prev), params.view())?,
                Algorithm::Two => {
                    let both = concatenate(Axis(0), &[x0.view(), x0.view()])
                        .map_err(|e| Error::invalid(e.to_string()))?;
                    let lv = us(&[s.as_slice(), s_prev.as_slice()].concat());
                    let d = self.degrade(both.view(), &lv, pairs.view())?;
                    let (d_s, d_prev) = d.view().split_at(Axis(0), b);
                    update::algorithm2(
                        &mut update::Host,
                        &state,
                        &d_s.to_owned(),
                        &d_prev.to_owned(),
                    )
                }
                Algorithm::Estimated => {
                    let prepared = self.sizes.at(h, w)?;
                    let mix = prepared
                        .tables_as::<MixTables>()
                        .ok_or_else(|| Error::invalid("the estimated-noise sampler needs a mix"))?;
                    mix.estimated_step(state.view(), x0.view(), &us(&s), &us(&s_prev))
                }
            };
            // Images at level 0 pass through, as in the step graph.
            for (i, &a) in active.iter().enumerate() {
                if a {
                    state
                        .index_axis_mut(Axis(0), i)
                        .assign(&next.index_axis(Axis(0), i));
                }
            }
            if progression {
                prog.push(state.clone());
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(Restored {
            output: state,
            progression: prog,
        })
    }
}

/// Images of at least this many tiles get a progress bar of their own.
const BAR_TILES: usize = 16;
