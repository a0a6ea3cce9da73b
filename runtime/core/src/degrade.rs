//! Degrading an image folder: every image to one level, its per-image parameters drawn from a
//! seed and its path and recorded in `degradation.json` beside it. One implementation for both
//! binaries: `cold degrade` applies the bundle's D graph, `cold-train degrade` the exact D of a
//! description; each passes its D to [`degrade_folder_with`].

use std::path::Path;

use ndarray::{Array4, ArrayView2, ArrayView4};

use crate::degradation::{Degradation, PreparedSizes};
use crate::error::{Error, Result};
use crate::folder::{self, FolderRun, Item, Report, Resize, Shape};
use crate::imageio;
use crate::shard::Shard;
use crate::sidecar::{self, Entry, Sidecar};
use crate::task::TaskReport;

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
    /// Images of more pixels are refused.
    pub max_pixels: u64,
    /// This task's share of the folder (`--shard K/N` or the scheduler's environment); its
    /// parameters go to `degradation.shard-K-of-N.json`, which `restore` merges.
    pub shard: Option<Shard>,
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
    let mut sizes = PreparedSizes::new(degradation, 4);
    degrade_folder_with(degradation, o.t, in_dir, out_dir, o, true, |x, t, p| {
        let (_, _, h, w) = x.dim();
        sizes.at(h, w)?.apply(x, t, p)
    })
}

/// Degrades every image under `in_dir` to level `t` with `apply` (images `[B, C, H, W]` of one
/// size in [-1, 1], their levels and parameters), and writes `degradation.json` (level, seed,
/// every image's size and parameters) beside them. With `any_size`, `apply` takes images of any
/// size and each image is degraded at its own (unless `o.resize` says otherwise).
pub fn degrade_folder_with<F, E>(
    degradation: &Degradation,
    t: usize,
    in_dir: &Path,
    out_dir: &Path,
    o: &DegradeOptions,
    any_size: bool,
    mut apply: F,
) -> std::result::Result<Report, E>
where
    F: FnMut(ArrayView4<f32>, &[usize], ArrayView2<f32>) -> std::result::Result<Array4<f32>, E>,
    E: From<Error> + std::fmt::Display,
{
    let mut side = open_sidecar(out_dir, degradation, t, o.seed, o.overwrite)?;
    let shard = o.shard.as_ref();
    let (items, report) = folder::plan_share(in_dir, out_dir, o.overwrite, shard)?;
    folder::remove_stale_temps(&items);
    if let Some(s) = shard {
        tracing::info!("{s}: {} image(s) of this share to degrade", items.len());
    }
    let task = TaskReport::start("degrade", Some(in_dir), &degradation.describe(), shard)
        .planned_folder(&items, &report);
    task.write(out_dir)?;
    let run = FolderRun {
        items: &items,
        out_dir,
        shape: Shape {
            channels: degradation.channels,
            height: degradation.height,
            width: degradation.width,
        },
        resize: o.resize,
        any_size,
        max_pixels: o.max_pixels,
        batch: o.batch,
        chunk_pixels: 0,
        what: "degrading",
    };
    let report = folder::run_batched(&run, report, |x, batch: &[&Item]| {
        let (b, _, h, w) = x.dim();
        let (entries, params) = entries_of(&side, batch, h, w)?;
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
        for (it, e) in batch.iter().zip(entries) {
            side.images.insert(sidecar::key(&it.rel), e);
        }
        match shard {
            Some(s) => side.write_shard(out_dir, s)?,
            None => side.write(out_dir)?,
        }
        Ok::<_, E>(outs)
    })?;
    task.finish_folder(&report).write(out_dir)?;
    Ok(report)
}

/// The entries of a batch of images of one size: their parameters drawn from the sidecar's seed
/// and each image's path, at that size.
pub(crate) fn entries_of(
    side: &Sidecar,
    batch: &[&Item],
    height: usize,
    width: usize,
) -> Result<(Vec<Entry>, ndarray::Array2<f32>)> {
    let entries = batch
        .iter()
        .map(|it| side.draw(&it.rel, height, width))
        .collect::<Result<Vec<_>>>()?;
    let p = entries.first().map_or(0, |e| e.params.len());
    let mut out = ndarray::Array2::zeros((batch.len(), p));
    for (i, e) in entries.iter().enumerate() {
        out.row_mut(i)
            .assign(&ndarray::ArrayView1::from(e.params.as_slice()));
    }
    Ok((entries, out))
}
