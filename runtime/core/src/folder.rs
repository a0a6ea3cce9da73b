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
}

impl Report {
    /// Logs failures and a summary line.
    pub fn log(&self, what: &str) {
        for (p, why) in &self.failed {
            if why.contains(&p.display().to_string()) {
                tracing::error!("skipped {why}");
            } else {
                tracing::error!("skipped {}: {why}", p.display());
            }
        }
        tracing::info!(
            "{what}: {} written, {} already done (use --overwrite to redo), {} failed",
            self.written,
            self.skipped_existing,
            self.failed.len()
        );
    }
}

/// How to shape inputs before a batch is formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Resize {
    /// Inputs of another size are an error for that file.
    #[default]
    Refuse,
    /// Scale inputs to the model's size (Lanczos3), and outputs back to the input's size.
    Scale,
}

/// Lists the work: every image under `in_dir` with its output path. Refuses an output folder
/// equal to the input folder, and skips an output folder nested inside it.
pub fn plan(in_dir: &Path, out_dir: &Path, overwrite: bool) -> Result<(Vec<Item>, Report)> {
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
    let rels = imageio::list_images_excluding(in_dir, Some(out_dir))?;
    let mut report = Report::default();
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

/// The shape images are fed to the model in.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

fn load_one(item: &Item, shape: Shape, resize: Resize) -> Result<(Array3<f32>, (u32, u32))> {
    let (w, h) = imageio::read_dimensions(&item.input)?;
    if (w as usize, h as usize) == (shape.width, shape.height) {
        return Ok((
            imageio::load_unit(&item.input, shape.channels, shape.height, shape.width)?,
            (w, h),
        ));
    }
    match resize {
        Resize::Refuse => Err(Error::Image {
            path: item.input.clone(),
            reason: format!(
                "image is {w}x{h} but the model works on {}x{} (pass --resize scale to scale it)",
                shape.width, shape.height
            ),
        }),
        Resize::Scale => {
            let im = imageio::read_image(&item.input)?;
            let im = im.resize_exact(
                shape.width as u32,
                shape.height as u32,
                image::imageops::FilterType::Lanczos3,
            );
            Ok((imageio::to_chw_unit(&im, shape.channels), (w, h)))
        }
    }
}

/// Outputs for one image: `(suffix, image)`; the suffix "" is the main output.
pub(crate) type Outputs = Vec<(String, DynamicImage)>;

/// A batched pass over planned items.
#[derive(Clone, Debug)]
pub struct FolderRun<'a> {
    pub items: &'a [Item],
    pub out_dir: &'a Path,
    pub shape: Shape,
    pub resize: Resize,
    /// Images per model call.
    pub batch: usize,
    /// Label of the progress bar.
    pub what: &'a str,
}

/// Runs `f` over the items in batches. `f` gets a `[B, C, H, W]` batch in [-1, 1] and its items,
/// and returns the outputs of each image. Bad inputs, failed batches (`f`'s error, with the
/// error type of its caller: the runtime's carries ONNX Runtime's) and failed writes are recorded
/// in the report.
pub fn run_batched<F, E>(run: &FolderRun, mut report: Report, mut f: F) -> Result<Report>
where
    F: FnMut(Array4<f32>, &[&Item]) -> std::result::Result<Vec<Outputs>, E>,
    E: std::fmt::Display,
{
    let FolderRun {
        items,
        out_dir,
        shape,
        resize,
        batch,
        what,
    } = run.clone();
    let batch = batch.max(1);
    fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let pb = progress_bar(items.len() as u64, what);
    for chunk in items.chunks(batch) {
        let loaded: Vec<_> = chunk
            .par_iter()
            .map(|it| load_one(it, shape, resize))
            .collect();
        let mut ok_items = Vec::new();
        let mut arrays = Vec::new();
        for (it, r) in chunk.iter().zip(loaded) {
            match r {
                Ok((a, size)) => {
                    ok_items.push((it, size));
                    arrays.push(a);
                }
                Err(e) => report.failed.push((it.input.clone(), e.to_string())),
            }
        }
        if !ok_items.is_empty() {
            let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
            let x = ndarray::stack(Axis(0), &views).expect("same shapes");
            let batch_items: Vec<&Item> = ok_items.iter().map(|(it, _)| *it).collect();
            match f(x, &batch_items) {
                Ok(outs) => {
                    let results: Vec<_> = ok_items
                        .par_iter()
                        .zip(outs.into_par_iter())
                        .map(|((it, (w, h)), outputs)| {
                            write_outputs(it, out_dir, *w, *h, resize, outputs)
                        })
                        .collect();
                    for ((it, _), r) in ok_items.iter().zip(results) {
                        match r {
                            Ok(()) => report.written += 1,
                            Err(e) => report.failed.push((it.input.clone(), e.to_string())),
                        }
                    }
                }
                Err(e) => {
                    for (it, _) in &ok_items {
                        report.failed.push((it.input.clone(), e.to_string()));
                    }
                }
            }
        }
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    Ok(report)
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
mod tests {
    use super::*;

    #[test]
    fn plan_refuses_in_place_and_skips_done() {
        let dir = tempfile::tempdir().expect("tmp");
        let inp = dir.path().join("in");
        fs::create_dir_all(inp.join("s")).expect("mkdir");
        for p in ["a.png", "a.jpg", "s/b.png"] {
            fs::write(inp.join(p), b"x").expect("w");
        }
        assert!(plan(&inp, &inp, false).is_err());
        let out = dir.path().join("out");
        fs::create_dir_all(out.join("s")).expect("mkdir");
        fs::write(out.join("s/b.png"), b"done").expect("w");
        let (items, rep) = plan(&inp, &out, false).expect("plan");
        assert_eq!(rep.skipped_existing, 1);
        // a.jpg and a.png both map to a.png: the second is reported, not silently overwritten.
        assert_eq!(rep.failed.len(), 1);
        assert_eq!(items.len(), 1);
        let (items, rep) = plan(&inp, &out, true).expect("plan");
        assert_eq!((items.len(), rep.skipped_existing), (2, 0));
    }
}
