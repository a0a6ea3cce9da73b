//! The runtime's batch jobs over image folders: restore and degrade with a bundle.

use std::path::Path;

use ndarray::{Array3, Axis, concatenate};

use crate::engine::{Algorithm, Engine};
use crate::error::{Error, Result};
use crate::folder::{self, FolderRun, Report, Resize, Shape};
use crate::imageio;

/// Options of `cold restore`.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// Degradation level of the inputs (default T).
    pub t: Option<usize>,
    pub algorithm: Algorithm,
    /// Levels visited by the sampler (default: all of t, t-1, ..., 0).
    pub steps: Option<usize>,
    pub batch: usize,
    pub progression: bool,
    pub resize: Resize,
    pub overwrite: bool,
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
        return Err(Error::InvalidArgument(format!(
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
    let joined = concatenate(Axis(2), &parts).map_err(|e| Error::InvalidArgument(e.to_string()))?;
    imageio::unit_to_image(joined.view())
}

/// Restores every image under `in_dir` into `out_dir` (same relative paths, PNG).
pub fn restore_folder(
    engine: &mut Engine,
    in_dir: &Path,
    out_dir: &Path,
    o: &RestoreOptions,
) -> Result<Report> {
    let t = level(engine, o.t)?;
    let (items, report) = folder::plan(in_dir, out_dir, o.overwrite)?;
    let run = FolderRun {
        items: &items,
        out_dir,
        shape: shape(engine),
        resize: o.resize,
        batch: o.batch,
        what: "restoring",
    };
    folder::run_batched(&run, report, |x| {
        let b = x.len_of(Axis(0));
        let r = engine.restore(x.view(), &vec![t; b], o.algorithm, o.steps, o.progression)?;
        (0..b)
            .map(|i| {
                let mut outs = vec![(
                    String::new(),
                    imageio::unit_to_image(r.output.index_axis(Axis(0), i))?,
                )];
                if o.progression {
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
    })
}

/// Options of `cold degrade`.
#[derive(Clone, Debug)]
pub struct DegradeOptions {
    /// Level to degrade to, 0..=T.
    pub t: usize,
    pub batch: usize,
    pub resize: Resize,
    pub overwrite: bool,
    /// Bits per channel of the written PNGs.
    pub depth: imageio::BitDepth,
}

/// Degrades every image under `in_dir` to level `o.t` with the bundle's D graph.
pub fn degrade_folder(
    engine: &mut Engine,
    in_dir: &Path,
    out_dir: &Path,
    o: &DegradeOptions,
) -> Result<Report> {
    let t = level(engine, Some(o.t))?;
    let (batch, resize, depth) = (o.batch, o.resize, o.depth);
    let (items, report) = folder::plan(in_dir, out_dir, o.overwrite)?;
    let run = FolderRun {
        items: &items,
        out_dir,
        shape: shape(engine),
        resize,
        batch,
        what: "degrading",
    };
    folder::run_batched(&run, report, |x| {
        let b = x.len_of(Axis(0));
        let y = engine.degrade(x.view(), &vec![t; b])?;
        y.outer_iter()
            .map(|im| {
                Ok(vec![(
                    String::new(),
                    imageio::unit_to_image_depth(im, depth)?,
                )])
            })
            .collect()
    })
}
