//! Batch processing of image folders: every image under the input folder becomes a PNG at the
//! same relative path under the output folder. A bad file is reported and skipped, finished
//! outputs are skipped on a rerun, every write is atomic, and nothing is written outside the
//! output folder.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use image::DynamicImage;
use ndarray::{Array3, Array4, Axis};
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::imageio;
use crate::progress::progress_bar;
use crate::shard::Shard;

/// One input image and where its main output goes.
#[derive(Clone, Debug)]
pub struct Item {
    /// Path relative to the input folder.
    pub rel: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
}

/// What a folder run did.
#[derive(Debug, Default)]
pub struct Report {
    pub written: usize,
    /// Outputs that already existed (rerun without `--overwrite`).
    pub skipped_existing: usize,
    /// Inputs that could not be processed, with the reason.
    pub failed: Vec<(PathBuf, String)>,
    /// Inputs converted on reading (grey to RGB, alpha dropped, EXIF orientation applied, ...),
    /// with what was done.
    pub converted: Vec<(PathBuf, String)>,
    /// The relative paths of the inputs written, and of those already done (for the task report).
    pub written_items: Vec<PathBuf>,
    pub skipped_items: Vec<PathBuf>,
    /// This task's share of the job, when it has one (named in the closing line).
    pub shard: Option<Shard>,
}

impl Report {
    /// Logs failures, the conversions (counted, the first few named) and a summary line.
    pub fn log(&self, what: &str) {
        if !self.converted.is_empty() {
            let mut counts = std::collections::BTreeMap::<&str, usize>::new();
            for (_, how) in &self.converted {
                for part in how.split(", ") {
                    *counts.entry(part).or_default() += 1;
                }
            }
            let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let first: Vec<String> = self
                .converted
                .iter()
                .take(3)
                .map(|(p, how)| format!("{} ({how})", p.display()))
                .collect();
            tracing::info!(
                "{} input(s) converted on reading ({}), e.g. {}",
                self.converted.len(),
                summary.join(", "),
                first.join(", ")
            );
        }
        for (p, why) in &self.failed {
            if why.contains(&p.display().to_string()) {
                tracing::error!("skipped {why}");
            } else {
                tracing::error!("skipped {}: {why}", p.display());
            }
        }
        let share = self.shard.as_ref().map_or(String::new(), |s| {
            format!(" (shard {}/{})", s.index, s.count)
        });
        tracing::info!(
            "{what}: {} written, {} already done (use --overwrite to redo), {} failed{share}",
            self.written,
            self.skipped_existing,
            self.failed.len()
        );
    }
}

/// How inputs of another size than the model's are treated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Resize {
    /// Each image at its own size, where the model takes any size (bundles of format version 2,
    /// the exact D); a model fixed at its size refuses others, as `refuse` does.
    #[default]
    Keep,
    /// Scale inputs to the model's size (Lanczos3), and outputs back to the input's size.
    Scale,
    /// Inputs of another size than the model's are an error for that file.
    Refuse,
}

/// Lists the work: every image under `in_dir` with its output path. Refuses an output folder
/// equal to the input folder, and skips an output folder nested inside it.
pub fn plan(in_dir: &Path, out_dir: &Path, overwrite: bool) -> Result<(Vec<Item>, Report)> {
    plan_share(in_dir, out_dir, overwrite, None)
}

/// [`plan`] of one task's share: the images of `shard` only ([`Shard::takes_path`]), whose
/// report counts that share alone.
pub fn plan_share(
    in_dir: &Path,
    out_dir: &Path,
    overwrite: bool,
    shard: Option<&Shard>,
) -> Result<(Vec<Item>, Report)> {
    if !in_dir.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "input folder {} does not exist",
            in_dir.display()
        )));
    }
    let in_c = in_dir.canonicalize().map_err(|e| Error::io(in_dir, e))?;
    if let Ok(out_c) = out_dir.canonicalize()
        && out_c == in_c
    {
        return Err(Error::InvalidArgument(format!(
            "output folder {} is the input folder: choose another so no input is overwritten",
            out_dir.display()
        )));
    }
    let mut rels = imageio::list_images_excluding(in_dir, Some(out_dir))?;
    if let Some(s) = shard {
        rels.retain(|rel| s.takes_path(rel));
    }
    let mut report = Report {
        shard: shard.cloned(),
        ..Report::default()
    };
    let mut items = Vec::with_capacity(rels.len());
    let mut seen: HashMap<PathBuf, PathBuf> = HashMap::new();
    for rel in rels {
        let output = imageio::output_path(out_dir, &rel, "")?;
        if let Some(first) = seen.get(&output) {
            report.failed.push((
                in_dir.join(&rel),
                format!(
                    "its output {} is also the output of {}",
                    output.display(),
                    first.display()
                ),
            ));
            continue;
        }
        seen.insert(output.clone(), rel.clone());
        if !overwrite && output.is_file() {
            report.skipped_existing += 1;
            report.skipped_items.push(rel);
            continue;
        }
        items.push(Item {
            input: in_dir.join(&rel),
            rel,
            output,
        });
    }
    Ok((items, report))
}

/// Removes the temporary files a killed run (kill -9, a cancelled scheduler task) left beside
/// the outputs a run is about to write: `.NAME.png.<pid>...tmp` of its own items only, never
/// those of another task's images. Called by the jobs that write `items`, never by a reader of a
/// folder (`cold report`), whose removing could break a running task's write.
pub fn remove_stale_temps(items: &[Item]) {
    let mut by_dir: HashMap<&Path, Vec<String>> = HashMap::new();
    for it in items {
        if let (Some(dir), Some(stem)) = (it.output.parent(), it.output.file_stem()) {
            let stem = stem.to_string_lossy();
            by_dir
                .entry(dir)
                .or_default()
                .extend([format!(".{stem}.png."), format!(".{stem}_progression.png.")]);
        }
    }
    for (dir, prefixes) in by_dir {
        let Ok(rd) = fs::read_dir(dir) else { continue };
        let prefixes: std::collections::HashSet<&str> =
            prefixes.iter().map(String::as_str).collect();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".tmp") {
                continue;
            }
            // The temporary file of output NAME.png is `.NAME.png.<pid>.<nanos>.<n>.tmp`.
            if let Some(i) = name.find(".png.")
                && prefixes.contains(&name[..i + 5])
            {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The shape images are fed to the model in.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

/// The default of `--max-pixels`: 24 megapixels (a 6000 x 4000 photograph).
pub const DEFAULT_MAX_PIXELS: u64 = 24_000_000;

/// The size an image is worked at: its own, or the model's with [`Resize::Scale`]; refused when
/// the model cannot take it (or the run asks for the model's size only) or it has more than
/// `max_pixels` pixels.
fn working_size(run: &FolderRun, path: &Path, w: u32, h: u32) -> Result<(usize, usize)> {
    let shape = run.shape;
    let refuse = |reason: String| Error::Image {
        path: path.to_path_buf(),
        reason,
    };
    let pixels = u64::from(w) * u64::from(h);
    if pixels > run.max_pixels {
        return Err(refuse(format!(
            "image is {w}x{h} ({:.1} megapixels), above --max-pixels {} ({:.1} megapixels): pass a \
             larger --max-pixels if the machine has the memory, or scale it down first",
            pixels as f64 / 1e6,
            run.max_pixels,
            run.max_pixels as f64 / 1e6
        )));
    }
    if (w as usize, h as usize) == (shape.width, shape.height) {
        return Ok((shape.height, shape.width));
    }
    match run.resize {
        Resize::Keep if run.any_size => Ok((h as usize, w as usize)),
        Resize::Keep | Resize::Refuse => Err(refuse(format!(
            "image is {w}x{h} but the model works on {}x{} (pass --resize scale to scale it)",
            shape.width, shape.height
        ))),
        Resize::Scale => Ok((shape.height, shape.width)),
    }
}

/// An image loaded at its working size, its own size `(w, h)` and what reading it converted.
type Loaded = (Array3<f32>, (u32, u32), Vec<&'static str>);

/// Loads one image at its working size ([`working_size`]) with the model's channels.
fn load_one(run: &FolderRun, item: &Item) -> Result<Loaded> {
    let (w, h) = imageio::read_dimensions(&item.input)?;
    let (wh, ww) = working_size(run, &item.input, w, h)?;
    let (im, oriented) = imageio::read_oriented(&item.input)?;
    let mut notes = imageio::conversions(&im, run.shape.channels);
    if oriented {
        notes.push("EXIF orientation applied");
    }
    let im = if (ww, wh) == (w as usize, h as usize) {
        im
    } else {
        im.resize_exact(ww as u32, wh as u32, image::imageops::FilterType::Lanczos3)
    };
    Ok((imageio::to_chw_unit(&im, run.shape.channels), (w, h), notes))
}

/// Outputs for one image: `(suffix, image)`; the suffix "" is the main output.
pub type Outputs = Vec<(String, DynamicImage)>;

/// A batched pass over planned items.
#[derive(Clone, Debug)]
pub struct FolderRun<'a> {
    pub items: &'a [Item],
    pub out_dir: &'a Path,
    /// The model's channels and size.
    pub shape: Shape,
    pub resize: Resize,
    /// Whether the model takes images of any size (with [`Resize::Keep`], images are worked at
    /// their own size).
    pub any_size: bool,
    /// Images of more pixels are refused.
    pub max_pixels: u64,
    /// Images per model call (at the model's size; fewer of larger images, as many pixels).
    pub batch: usize,
    /// Pixels a chunk of images loaded together may hold when that is more than `batch`
    /// model-sized images (0: no more): lets several large images share a chunk, so that the
    /// tiles of images of different sizes fill one call of the restorer ([`run_groups`]).
    pub chunk_pixels: u64,
    /// Label of the progress bar.
    pub what: &'a str,
}

/// What a batch of one size is checked against before `f` sees it: `Err(why)` skips that image
/// alone (e.g. a sidecar entry for another size).
pub type Vet<'v> = &'v (dyn Fn(&Item, usize, usize) -> std::result::Result<(), String> + Sync);

/// Groups of items loaded together: at most `batch` images and `batch` model-sized images' worth
/// of pixels (or `chunk_pixels` where more; at least one image), in order. Sizes come from the
/// files' headers; an unreadable one counts as one model-sized image (and fails when it is
/// loaded).
fn chunks(run: &FolderRun) -> Vec<std::ops::Range<usize>> {
    let model = (run.shape.height * run.shape.width) as u64;
    let budget = (run.batch as u64 * model).max(run.chunk_pixels);
    let pixels: Vec<u64> = run
        .items
        .par_iter()
        .map(|it| match run.resize {
            Resize::Scale => model,
            _ => imageio::read_dimensions(&it.input)
                .map(|(w, h)| u64::from(w) * u64::from(h))
                .unwrap_or(model),
        })
        .collect();
    let mut out = Vec::new();
    let (mut start, mut sum) = (0, 0u64);
    for (i, &p) in pixels.iter().enumerate() {
        if i > start && (i - start >= run.batch || sum + p > budget) {
            out.push(start..i);
            (start, sum) = (i, 0);
        }
        sum += p;
    }
    if start < pixels.len() {
        out.push(start..pixels.len());
    }
    out
}

/// Runs `f` over the items in batches of one size each. `f` gets a `[B, C, H, W]` batch in
/// [-1, 1] and its items, and returns the outputs of each image. Bad inputs, images `vet`
/// refuses, failed batches (`f`'s error, with the error type of its caller: the runtime's carries
/// ONNX Runtime's) and failed writes are recorded in the report.
pub fn run_batched<F, E>(run: &FolderRun, report: Report, f: F) -> Result<Report>
where
    F: FnMut(Array4<f32>, &[&Item]) -> std::result::Result<Vec<Outputs>, E>,
    E: std::fmt::Display,
{
    run_vetted(run, report, &|_, _, _| Ok(()), f)
}

/// [`run_batched`] with a check of each image at its working size.
pub fn run_vetted<F, E>(run: &FolderRun, report: Report, vet: Vet, mut f: F) -> Result<Report>
where
    F: FnMut(Array4<f32>, &[&Item]) -> std::result::Result<Vec<Outputs>, E>,
    E: std::fmt::Display,
{
    run_groups(
        run,
        report,
        vet,
        |groups: Vec<(Array4<f32>, Vec<&Item>)>| {
            groups.into_iter().map(|(x, items)| f(x, &items)).collect()
        },
    )
}

/// [`run_vetted`] with every size group of a chunk given to `f` at once: `f` gets each group's
/// `[B, C, H, W]` batch and items, and returns each group's outputs (or its error), in order. A
/// restorer that runs on tiles batches the tiles of images of different sizes together.
pub fn run_groups<F, E>(run: &FolderRun, mut report: Report, vet: Vet, mut f: F) -> Result<Report>
where
    F: FnMut(Vec<(Array4<f32>, Vec<&Item>)>) -> Vec<std::result::Result<Vec<Outputs>, E>>,
    E: std::fmt::Display,
{
    let run = &FolderRun {
        batch: run.batch.max(1),
        ..run.clone()
    };
    fs::create_dir_all(run.out_dir).map_err(|e| Error::io(run.out_dir, e))?;
    let pb = progress_bar(run.items.len() as u64, run.what);
    for range in chunks(run) {
        let chunk = &run.items[range];
        let loaded: Vec<_> = chunk.par_iter().map(|it| load_one(run, it)).collect();
        // Images of one size are batched together, in the order of their first appearance.
        let mut groups: Vec<((usize, usize), Group)> = Vec::new();
        for (it, r) in chunk.iter().zip(loaded) {
            let (a, size) = match r {
                Ok((a, size, notes)) => {
                    if !notes.is_empty() {
                        report.converted.push((it.input.clone(), notes.join(", ")));
                    }
                    (a, size)
                }
                Err(e) => {
                    report.failed.push((it.input.clone(), e.to_string()));
                    continue;
                }
            };
            let (_, h, w) = a.dim();
            if let Err(why) = vet(it, h, w) {
                report.failed.push((it.input.clone(), why));
                continue;
            }
            match groups.iter_mut().find(|(hw, _)| *hw == (h, w)) {
                Some((_, g)) => g.push((it, size, a)),
                None => groups.push(((h, w), vec![(it, size, a)])),
            }
        }
        // (A chunk holds at most `batch` images, so every group is one batch.)
        let mut metas = Vec::new();
        let mut inputs = Vec::new();
        for (_, group) in groups {
            let (meta, images): (Vec<_>, Vec<_>) = group
                .into_iter()
                .map(|(it, size, a)| ((it, size), a))
                .unzip();
            // One image (a large one, typically) is moved, not copied.
            let x = if images.len() == 1 {
                images.into_iter().next().expect("one").insert_axis(Axis(0))
            } else {
                let views: Vec<_> = images.iter().map(|a| a.view()).collect();
                ndarray::stack(Axis(0), &views).expect("same shapes")
            };
            inputs.push((x, meta.iter().map(|(it, _)| *it).collect()));
            metas.push(meta);
        }
        if !inputs.is_empty() {
            let results = f(inputs);
            assert_eq!(results.len(), metas.len(), "one result per group");
            for (meta, r) in metas.into_iter().zip(results) {
                write_group(run, &mut report, meta, r);
            }
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(report)
}

/// Images of one working size: each item, its own size `(w, h)` and the loaded image.
type Group<'a> = Vec<(&'a Item, (u32, u32), Array3<f32>)>;

/// One group's outputs written (or its error recorded for each of its images).
fn write_group<E: std::fmt::Display>(
    run: &FolderRun,
    report: &mut Report,
    group: Vec<(&Item, (u32, u32))>,
    result: std::result::Result<Vec<Outputs>, E>,
) {
    match result {
        Ok(outs) => {
            let results: Vec<_> = group
                .par_iter()
                .zip(outs.into_par_iter())
                .map(|((it, (w, h)), outputs)| {
                    write_outputs(it, run.out_dir, *w, *h, run.resize, outputs)
                })
                .collect();
            for ((it, _), r) in group.iter().zip(results) {
                match r {
                    Ok(()) => {
                        report.written += 1;
                        report.written_items.push(it.rel.clone());
                    }
                    Err(e) => report.failed.push((it.input.clone(), e.to_string())),
                }
            }
        }
        Err(e) => {
            for (it, _) in &group {
                report.failed.push((it.input.clone(), e.to_string()));
            }
        }
    }
}

fn write_outputs(
    item: &Item,
    out_dir: &Path,
    w: u32,
    h: u32,
    resize: Resize,
    outputs: Outputs,
) -> Result<()> {
    // Secondary outputs first: the main output's presence marks the item as finished.
    let mut main = None;
    for (suffix, im) in outputs {
        if suffix.is_empty() {
            main = Some(im);
            continue;
        }
        imageio::save_png(&imageio::output_path(out_dir, &item.rel, &suffix)?, &im)?;
    }
    if let Some(mut im) = main {
        if resize == Resize::Scale && (im.width(), im.height()) != (w, h) {
            im = im.resize_exact(w, h, image::imageops::FilterType::Lanczos3);
        }
        imageio::save_png(&item.output, &im)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
