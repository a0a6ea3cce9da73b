//! Restoring images of another size than the bundle's when the fused step graph cannot take them
//! whole: R (the restorer graph) runs on padded, overlapping tiles ([`super::tiles`]) and D (the
//! degradation graph, or for images too large for the kind's tables its direct host path, one
//! channel at a time) on the whole image at its own size, so every step's update is the paper's
//! exactly; only R sees tiles. Batches of several sizes run in lockstep, their tiles sharing R's
//! calls (`--tile-batch`).

use cold_core::degradation::{Degradation, MixTables};
use cold_core::sampler::{self, StepLevels};
use cold_core::{bundle::io, update};
use ndarray::{Array2, Array4, ArrayView4, Axis, concatenate, s};
use ort::value::{Tensor, TensorRef};

use super::ensemble;
use super::tiles::{self, Plan, TileSize};
use super::{Algorithm, Engine, Graph, Restored};
use crate::error::{Error, Result};

impl Engine {
    /// The tiles R runs on for images of `h x w`, or `None` where the step graph takes them
    /// whole. The fused step graph runs an image whole at its own size, which R can take when
    /// the sides are multiples of its stride (`--tile auto` on an image small enough); otherwise
    /// R runs on padded tiles (or the whole padded image) and D on the whole image, step by
    /// step, with the same update. With the self-ensemble every image goes that way (R runs on
    /// the restorer graph), its own size included.
    pub(super) fn tile_plan(&self, h: usize, w: usize) -> Result<Option<tiles::Plan>> {
        // (`Engine::open` refuses the self-ensemble on bundles without the restorer graph.)
        let ensemble = self.options.self_ensemble;
        if self.is_native(h, w) && !ensemble {
            return Ok(None);
        }
        let stride = self.bundle.manifest.network.config.stride();
        let plan = tiles::Plan::new(&self.options.tiling, stride, h, w);
        let whole = plan.corners.len() == 1 && plan.padded == (h, w);
        let direct = self
            .bundle
            .manifest
            .degradation
            .at_size(h, w)?
            .needs_direct_within(self.options.max_table_bytes);
        let fused = whole && self.options.tiling.tile == TileSize::Auto;
        Ok((ensemble || !fused || direct).then_some(plan))
    }

    /// [`Engine::restore_owned`] over batches of images of different sizes (one size per batch):
    /// batches that run on tiles and visit as many levels go in lockstep, their tiles sharing
    /// R's calls (`--tile-batch`); the others one by one. Each batch's result, in order.
    pub fn restore_groups(
        &mut self,
        groups: Vec<(Array4<f32>, Vec<usize>, Array2<f32>)>,
        algorithm: Algorithm,
        steps: Option<usize>,
        progression: bool,
    ) -> Vec<Result<Restored>> {
        let mut results: Vec<Option<Result<Restored>>> = groups.iter().map(|_| None).collect();
        // Tiled jobs by the number of levels they visit: (levels, [(index, job)]).
        let mut tiled: Vec<(usize, Vec<(usize, TiledJob)>)> = Vec::new();
        for (i, (x, t, params)) in groups.into_iter().enumerate() {
            let (_, _, h, w) = x.dim();
            let plan = (|| -> Result<Option<tiles::Plan>> {
                self.check_input(&x.view(), &t, &params.view())?;
                self.check_algorithm(algorithm)?;
                self.tile_plan(h, w)
            })();
            match plan {
                Err(e) => results[i] = Some(Err(e)),
                Ok(None) => {
                    let r = self.restore_owned(x, &t, params.view(), algorithm, steps, progression);
                    results[i] = Some(r);
                }
                Ok(Some(plan)) => {
                    let job = TiledJob {
                        x,
                        params: self.takes_params().then_some(params),
                        levels: sampler::plan(&t, algorithm, steps),
                        plan,
                    };
                    let n = job.levels.len();
                    match tiled.iter_mut().find(|(m, _)| *m == n) {
                        Some((_, v)) => v.push((i, job)),
                        None => tiled.push((n, vec![(i, job)])),
                    }
                }
            }
        }
        for (_, jobs) in tiled {
            let (index, jobs): (Vec<usize>, Vec<_>) = jobs.into_iter().unzip();
            match self.restore_tiled_many(jobs, algorithm, progression) {
                Ok(out) => {
                    for (i, r) in index.into_iter().zip(out) {
                        results[i] = Some(Ok(r));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for i in index {
                        results[i] = Some(Err(Error::invalid(msg.clone())));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every batch has a result"))
            .collect()
    }

    /// R on one batch of tiles of one size, with a level per tile (averaged over the eight
    /// symmetries with the self-ensemble).
    fn restorer(&mut self, x: ArrayView4<f32>, levels: &[i64]) -> Result<Array4<f32>> {
        if self.options.self_ensemble {
            return ensemble::self_ensemble(x, levels, |v, lv| self.restorer_once(v, lv));
        }
        self.restorer_once(x, levels)
    }

    fn restorer_once(&mut self, x: ArrayView4<f32>, levels: &[i64]) -> Result<Array4<f32>> {
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
        let job = TiledJob {
            x,
            params,
            levels,
            plan: plan.clone(),
        };
        let mut out = self.restore_tiled_many(vec![job], algorithm, progression)?;
        Ok(out.pop().expect("one result per job"))
    }

    /// [`Engine::restore_tiled`] over batches of images of different sizes in lockstep: at every
    /// step the tiles of all of them share R's calls ([`tiles::restore_tiled_many`]), then each
    /// batch takes its own D and update. Every job must visit as many levels.
    pub(super) fn restore_tiled_many(
        &mut self,
        jobs: Vec<TiledJob>,
        algorithm: Algorithm,
        progression: bool,
    ) -> Result<Vec<Restored>> {
        let steps = jobs.first().map_or(0, |j| j.levels.len());
        if jobs.iter().any(|j| j.levels.len() != steps) {
            return Err(Error::invalid(
                "images restored together must visit as many levels",
            ));
        }
        let mut states = jobs
            .into_iter()
            .map(|j| self.tiled_state(j, progression))
            .collect::<Result<Vec<_>>>()?;
        // Big images take a while: a bar that counts their tiles (drawn on a terminal only).
        let bar = states
            .iter()
            .any(|g| g.plan.corners.len() >= BAR_TILES)
            .then(|| {
                let tiles: usize = states
                    .iter()
                    .map(|g| steps * g.plan.corners.len() * g.state.dim().0)
                    .sum();
                let label = match states.as_slice() {
                    [g] => format!("tiles of {}x{}", g.state.dim().3, g.state.dim().2),
                    _ => format!("tiles of {} image sizes", states.len()),
                };
                cold_core::progress::progress_bar(tiles as u64, &label)
            });
        let tiling = self.options.tiling;
        for k in 0..steps {
            let inputs: Vec<tiles::Tiled> = states
                .iter()
                .map(|g| tiles::Tiled {
                    x: g.state.view(),
                    levels: &g.levels[k].s,
                    plan: &g.plan,
                })
                .collect();
            let x0s = tiles::restore_tiled_many(
                &inputs,
                |shape| tiling.batch_for(shape),
                |t, lv| {
                    let out = self.restorer(t, lv);
                    if let Some(bar) = &bar {
                        bar.inc(t.dim().0 as u64);
                    }
                    out
                },
            )?;
            drop(inputs);
            for (g, x0) in states.iter_mut().zip(x0s) {
                self.tiled_update(g, k, x0, algorithm)?;
                if progression {
                    g.prog.push(g.state.clone());
                }
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(states
            .into_iter()
            .map(|g| Restored {
                output: g.state,
                progression: g.prog,
            })
            .collect())
    }

    /// A job's state before its first step.
    fn tiled_state(&self, job: TiledJob, progression: bool) -> Result<TiledState> {
        let TiledJob {
            x,
            params,
            levels,
            plan,
        } = job;
        let (b, _, h, w) = x.dim();
        let params = params.unwrap_or_else(|| Array2::zeros((b, 0)));
        let pairs = concatenate(Axis(0), &[params.view(), params.view()])
            .map_err(|e| Error::invalid(e.to_string()))?;
        // Images too large for the kind's tables: D computed directly on the host.
        let at = self.bundle.manifest.degradation.at_size(h, w)?;
        let direct = at.needs_direct_within(self.options.max_table_bytes);
        let prog = if progression {
            vec![x.clone()]
        } else {
            Vec::new()
        };
        Ok(TiledState {
            state: x,
            params,
            pairs,
            at,
            direct,
            levels,
            plan,
            prog,
        })
    }

    /// Step `k` of one job given R's output on it: D on the whole images and the update.
    fn tiled_update(
        &mut self,
        g: &mut TiledState,
        k: usize,
        x0: Array4<f32>,
        algorithm: Algorithm,
    ) -> Result<()> {
        let (b, c, h, w) = g.state.dim();
        let StepLevels { s, s_prev } = &g.levels[k];
        let active: Vec<bool> = s.iter().map(|&v| v > 0).collect();
        let us = |v: &[i64]| v.iter().map(|&l| l as usize).collect::<Vec<_>>();
        if g.direct && matches!(algorithm, Algorithm::One | Algorithm::Two) {
            // D without tables, one channel at a time, the update in place.
            for i in (0..b).filter(|&i| active[i]) {
                let (si, pi) = (s[i] as usize, s_prev[i] as usize);
                for ch in 0..c {
                    let x0c = x0.slice(s![i, ch, .., ..]);
                    let mut st = g.state.slice_mut(s![i, ch, .., ..]);
                    if algorithm == Algorithm::One {
                        let d = g.at.apply_direct(x0c, &[pi], g.params.row(i))?;
                        st.assign(&d[0]);
                    } else {
                        let d = g.at.apply_direct(x0c, &[si, pi], g.params.row(i))?;
                        ndarray::Zip::from(&mut st)
                            .and(&d[0])
                            .and(&d[1])
                            .for_each(|x, &ds, &dp| *x = *x - ds + dp);
                    }
                }
            }
            return Ok(());
        }
        let next = match algorithm {
            Algorithm::Direct => x0,
            Algorithm::One => self.degrade(x0.view(), &us(s_prev), g.params.view())?,
            Algorithm::Two => {
                let both = concatenate(Axis(0), &[x0.view(), x0.view()])
                    .map_err(|e| Error::invalid(e.to_string()))?;
                let lv = us(&[s.as_slice(), s_prev.as_slice()].concat());
                let d = self.degrade(both.view(), &lv, g.pairs.view())?;
                let (d_s, d_prev) = d.view().split_at(Axis(0), b);
                update::algorithm2(
                    &mut update::Host,
                    &g.state,
                    &d_s.to_owned(),
                    &d_prev.to_owned(),
                )
            }
            Algorithm::Estimated => {
                let prepared = self.sizes.at(h, w)?;
                let mix = prepared
                    .tables_as::<MixTables>()
                    .ok_or_else(|| Error::invalid("the estimated-noise sampler needs a mix"))?;
                mix.estimated_step(g.state.view(), x0.view(), &us(s), &us(s_prev))
            }
        };
        // Images at level 0 pass through, as in the step graph.
        for (i, &a) in active.iter().enumerate() {
            if a {
                g.state
                    .index_axis_mut(Axis(0), i)
                    .assign(&next.index_axis(Axis(0), i));
            }
        }
        Ok(())
    }
}

/// One batch of images of one size for [`Engine::restore_tiled_many`].
pub(super) struct TiledJob {
    pub x: Array4<f32>,
    pub params: Option<Array2<f32>>,
    pub levels: Vec<StepLevels>,
    pub plan: Plan,
}

/// A job on its way: the current states and what its steps need.
struct TiledState {
    state: Array4<f32>,
    params: Array2<f32>,
    /// `params` twice (D at two levels in one call).
    pairs: Array2<f32>,
    at: Degradation,
    direct: bool,
    levels: Vec<StepLevels>,
    plan: Plan,
    prog: Vec<Array4<f32>>,
}

/// Images of at least this many tiles get a progress bar of their own.
const BAR_TILES: usize = 16;
