//! Degrading an image folder: every image to one level, its per-image parameters drawn from a
//! seed and its path and recorded in `degradation.json` beside it. One implementation for both
//! binaries: `cold degrade` applies the bundle's D graph, `cold-train degrade` the exact D of a
//! description; each passes its D to [`degrade_folder_with`].

use std::path::Path;

use ndarray::{Array4, ArrayView2, ArrayView4, Axis};

use crate::degradation::Degradation;
use crate::error::{Error, Result};
use crate::folder::{self, FolderRun, Item, Report, Resize, Shape};
use crate::imageio;
use crate::sidecar::{self, Sidecar};

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
    /// Seed of the per-image parameters (each image's are drawn from it and its path).
    pub seed: u64,
}

/// The sidecar a degrade run writes into `out_dir`: the existing one when it describes the same
/// degradation, level and seed (a rerun adds to it), else a new one, which replaces a different
/// one only with `overwrite`.
pub(crate) fn open_sidecar(
    out_dir: &Path,
    degradation: &Degradation,
    t: usize,
    seed: u64,
    overwrite: bool,
) -> Result<Sidecar> {
    let fresh = Sidecar::new(degradation, t, seed);
    match Sidecar::read(out_dir) {
        Ok(Some(s)) if (&s.degradation, s.t, s.seed) == (degradation, t, seed) => Ok(s),
        Ok(Some(s)) if !overwrite => Err(Error::InvalidArgument(format!(
            "{} already holds images degraded by \"{}\" to t = {} (seed {}): choose another \
             output folder, or pass --overwrite to redo them all",
            out_dir.display(),
            s.degradation.describe(),
            s.t,
            s.seed
        ))),
        Err(e) if !overwrite => Err(e),
        _ => Ok(fresh),
    }
}

/// Degrades every image under `in_dir` with the exact D of a description ([`Degradation::prepare`]), no model.
pub fn degrade_folder_exact(
    degradation: &Degradation,
    in_dir: &Path,
    out_dir: &Path,
    o: &DegradeOptions,
) -> Result<Report> {
    if o.t > degradation.steps {
        return Err(Error::InvalidArgument(format!(
            "--t {} is beyond this degradation's T = {}",
            o.t, degradation.steps
        )));
    }
    let prepared = degradation.prepare()?;
    degrade_folder_with(degradation, o.t, in_dir, out_dir, o, |x, t, p| {
        prepared.apply(x, t, p)
    })
}

/// Degrades every image under `in_dir` to level `t` with `apply` (images `[B, C, H, W]` in
/// [0, 1], their levels and parameters), and writes `degradation.json` (level, seed, every
/// image's parameters) beside them.
pub fn degrade_folder_with<F, E>(
    degradation: &Degradation,
    t: usize,
    in_dir: &Path,
    out_dir: &Path,
    o: &DegradeOptions,
    mut apply: F,
) -> std::result::Result<Report, E>
where
    F: FnMut(ArrayView4<f32>, &[usize], ArrayView2<f32>) -> std::result::Result<Array4<f32>, E>,
    E: From<Error> + std::fmt::Display,
{
    let mut side = open_sidecar(out_dir, degradation, t, o.seed, o.overwrite)?;
    let (items, report) = folder::plan(in_dir, out_dir, o.overwrite)?;
    let run = FolderRun {
        items: &items,
        out_dir,
        shape: Shape {
            channels: degradation.channels,
            height: degradation.height,
            width: degradation.width,
        },
        resize: o.resize,
        batch: o.batch,
        what: "degrading",
    };
    let report = folder::run_batched(&run, report, |x, batch: &[&Item]| {
        let params = params_of(&side, batch)?;
        let b = x.len_of(Axis(0));
        let y = apply(x.view(), &vec![t; b], params.view())?;
        let outs = y
            .outer_iter()
            .map(|im| {
                Ok(vec![(
                    String::new(),
                    imageio::unit_to_image_depth(im, o.depth)?,
                )])
            })
            .collect::<Result<Vec<_>>>()?;
        // Recorded before the images are written: a listed image whose file is missing is
        // simply redone by the next run.
        for (it, row) in batch.iter().zip(params.outer_iter()) {
            side.images.insert(sidecar::key(&it.rel), row.to_vec());
        }
        side.write(out_dir)?;
        Ok::<_, E>(outs)
    })?;
    Ok(report)
}

/// The parameters of a batch of images: drawn from the sidecar's seed and each image's path.
pub(crate) fn params_of(side: &Sidecar, batch: &[&Item]) -> Result<ndarray::Array2<f32>> {
    let p = side.degradation.param_count();
    let mut out = ndarray::Array2::zeros((batch.len(), p));
    for (i, it) in batch.iter().enumerate() {
        out.row_mut(i)
            .assign(&ndarray::Array1::from(side.draw(&it.rel)?));
    }
    Ok(out)
}
