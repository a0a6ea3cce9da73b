//! The runtime's batch jobs over image folders: restore and degrade with a bundle.

use std::path::Path;

use cold_core::degrade::{self, DegradeOptions};
use cold_core::folder::{self, FolderRun, Item, Outputs, Report, Resize, Shape};
use cold_core::imageio;
use cold_core::shard::Shard;
use cold_core::sidecar::Sidecar;
use cold_core::task::TaskReport;
use ndarray::{Array2, Array3, Array4, Axis, concatenate};

use crate::engine::{Algorithm, Engine, Restored};
use crate::error::{Error, Result};

/// Options of `cold restore`.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Degradation level of the inputs (default T).
    pub t: Option<usize>,
    pub algorithm: Algorithm,
    /// Levels visited by the sampler: `None` takes the bundle's recommended number (or every
    /// level when it has none); `Some(0)` every level t, t-1, ..., 0.
    pub steps: Option<usize>,
    pub batch: usize,
    pub progression: bool,
    pub resize: Resize,
    /// Images of more pixels are refused.
    pub max_pixels: u64,
    pub overwrite: bool,
    /// This task's share of the folder (`--shard K/N` or the scheduler's environment).
    pub shard: Option<Shard>,
}

fn shape(engine: &Engine) -> Shape {
    let im = &engine.bundle.manifest.image;
    Shape {
        channels: im.channels,
        height: im.height,
        width: im.width,
    }
}

fn level(engine: &Engine, t: Option<usize>) -> Result<usize> {
    let big_t = engine.bundle.manifest.degradation.steps;
    let t = t.unwrap_or(big_t);
    if t > big_t {
        return Err(Error::invalid(format!(
            "--t {t} is beyond this model's T = {big_t}"
        )));
    }
    Ok(t)
}

/// A horizontal strip of frames `[C, H, W]` with a 1-pixel white gap.
fn strip(frames: &[Array3<f32>]) -> Result<image::DynamicImage> {
    let (c, h, _) = frames[0].dim();
    let gap = Array3::<f32>::from_elem((c, h, 1), 1.0);
    let mut parts = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            parts.push(gap.view());
        }
        parts.push(f.view());
    }
    let joined = concatenate(Axis(2), &parts).map_err(|e| Error::invalid(e.to_string()))?;
    Ok(imageio::unit_to_image(joined.view())?)
}

/// What restoring a folder needs from its `degradation.json`: the level and each image's
/// parameters. Kinds without per-image parameters need no sidecar; one that is there must match.
fn restore_inputs(
    engine: &Engine,
    in_dir: &Path,
    t: Option<usize>,
) -> Result<(usize, Option<Sidecar>)> {
    let model = &engine.bundle.manifest.degradation;
    let side = Sidecar::read(in_dir)?;
    if let Some(s) = &side {
        s.check_matches(in_dir, model)?;
        if let Some(t) = t
            && t != s.t
        {
            return Err(Error::invalid(format!(
                "--t {t}, but {} says these images were degraded to t = {}: drop --t, or pass --t {}",
                Sidecar::path(in_dir).display(),
                s.t,
                s.t
            )));
        }
    } else if model.param_count() > 0 {
        return Err(Error::invalid(format!(
            "{} is missing: this model's degradation ({}) has per-image parameters ({}) that \
             restoring needs. Degrade the images with `cold degrade`, which writes that file next \
             to them",
            Sidecar::path(in_dir).display(),
            model.describe(),
            model.param_names().join(", ")
        )));
    }
    let t = level(engine, t.or(side.as_ref().map(|s| s.t)))?;
    engine.bundle.manifest.check_trained_level(t)?;
    Ok((t, side))
}

/// Restores every image under `in_dir` into `out_dir` (same relative paths, PNG).
pub fn restore_folder(
    engine: &mut Engine,
    in_dir: &Path,
    out_dir: &Path,
    o: &RestoreOptions,
) -> Result<Report> {
    engine.check_algorithm(o.algorithm)?;
    let (t, side) = restore_inputs(engine, in_dir, o.t)?;
    let steps = match o.steps {
        Some(0) => None,
        Some(k) => Some(k),
        None => engine
            .bundle
            .manifest
            .sampling
            .as_ref()
            .map(|s| s.recommended_steps),
    };
    let shard = o.shard.as_ref();
    let (items, report) = folder::plan_share(in_dir, out_dir, o.overwrite, shard)?;
    folder::remove_stale_temps(&items);
    if let Some(s) = shard {
        tracing::info!("{s}: {} image(s) of this share to restore", items.len());
    }
    let task = TaskReport::start("restore", Some(in_dir), &engine.bundle.manifest.name, shard)
        .planned_folder(&items, &report);
    task.write(out_dir)?;
    let needs_params = engine.bundle.manifest.degradation.param_count() > 0;
    let run = FolderRun {
        items: &items,
        out_dir,
        shape: shape(engine),
        resize: o.resize,
        any_size: engine.takes_any_size(),
        max_pixels: o.max_pixels,
        batch: o.batch,
        chunk_pixels: engine.options.tiling.shared_pixels(),
        what: "restoring",
    };
    // Images without parameters, or with parameters for another size, are reported and skipped;
    // the rest go on.
    let vet = |it: &Item, h: usize, w: usize| match side.as_ref().filter(|_| needs_params) {
        Some(s) => s.entry(in_dir, &it.rel, h, w).map(|_| ()),
        None => Ok(()),
    };
    let report = folder::run_groups(
        &run,
        report,
        &vet,
        |groups: Vec<(Array4<f32>, Vec<&Item>)>| {
            // Each batch's parameters; a batch whose lookup fails fails alone.
            let mut jobs = Vec::new();
            let mut results: Vec<Option<Result<Vec<Outputs>>>> = Vec::new();
            for (x, batch) in groups {
                let (b, _, h, w) = x.dim();
                let params = match side.as_ref().filter(|_| needs_params) {
                    Some(s) => {
                        let rels: Vec<&Path> = batch.iter().map(|it| it.rel.as_path()).collect();
                        s.lookup(in_dir, &rels, h, w).map_err(Error::invalid)
                    }
                    None => Ok(Array2::zeros((b, 0))),
                };
                match params {
                    Ok(p) => {
                        jobs.push((x, vec![t; b], p));
                        results.push(None);
                    }
                    Err(e) => results.push(Some(Err(e))),
                }
            }
            let mut restored = engine
                .restore_groups(jobs, o.algorithm, steps, o.progression)
                .into_iter();
            results
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|| {
                        restored
                            .next()
                            .expect("a result per batch")
                            .and_then(|r| outputs(&r, o.progression))
                    })
                })
                .collect()
        },
    )?;
    task.finish_folder(&report).write(out_dir)?;
    Ok(report)
}

/// The files of each restored image: the output and, when asked, its progression strip.
fn outputs(r: &Restored, progression: bool) -> Result<Vec<Outputs>> {
    (0..r.output.dim().0)
        .map(|i| {
            let mut outs = vec![(
                String::new(),
                imageio::unit_to_image(r.output.index_axis(Axis(0), i))?,
            )];
            if progression {
                let frames: Vec<Array3<f32>> = r
                    .progression
                    .iter()
                    .map(|p| p.index_axis(Axis(0), i).to_owned())
                    .collect();
                outs.push(("_progression".into(), strip(&frames)?));
            }
            Ok(outs)
        })
        .collect()
}

/// Degrades every image under `in_dir` to level `o.t` with the bundle's D graph, and writes
/// `degradation.json` (level, seed, every image's parameters) beside them.
pub fn degrade_folder(
    engine: &mut Engine,
    in_dir: &Path,
    out_dir: &Path,
    o: &DegradeOptions,
) -> Result<Report> {
    let t = level(engine, Some(o.t))?;
    let degradation = engine.bundle.manifest.degradation.clone();
    let any_size = engine.takes_any_size();
    degrade::degrade_folder_with(&degradation, t, in_dir, out_dir, o, any_size, |x, t, p| {
        engine.degrade(x, t, p)
    })
}
