//! Image folders: `root/<class>/*` or flat.

use std::fs::{self};
use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};
use crate::imageio;

/// How a folder's images become a data set's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// As they are: every image must share one size; grey when every image is, else RGB.
    AsTheyAre,
    /// Every image scaled (bicubic) so that its shorter side is `side`, the aspect ratio kept,
    /// then its centred `side x side` square; `channels` 1 or 3, or `None`: grey when every
    /// image is, else RGB. Images that cannot be read are skipped with a warning.
    Square {
        side: usize,
        channels: Option<usize>,
    },
}

/// A folder's files with their class indices, and the class names.
type FolderFiles = (Vec<(PathBuf, u32)>, Vec<String>);

/// The files of a folder with their class: `root/<class>/*` (classes are the sorted subfolder
/// names) or, when no subfolder holds images, every image under `root` as one class. The classes
/// are interleaved (the first image of every class, then the second, ...), so the first N images,
/// which `eval --limit N` and sample grids use, cover every class.
fn folder_files(root: &Path) -> Result<FolderFiles> {
    let mut classes: Vec<String> = Vec::new();
    let rd = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io(root, e))?;
        if e.path().is_dir() && !e.file_name().to_string_lossy().starts_with('.') {
            classes.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    let mut ranked: Vec<(usize, u32, PathBuf)> = Vec::new();
    let mut kept = Vec::new();
    for c in &classes {
        let mut fs_: Vec<PathBuf> = imageio::list_images(&root.join(c))?
            .into_iter()
            .map(|rel| root.join(c).join(rel))
            .collect();
        if fs_.is_empty() {
            continue;
        }
        fs_.sort();
        let ci = kept.len() as u32;
        kept.push(c.clone());
        ranked.extend(fs_.into_iter().enumerate().map(|(rank, p)| (rank, ci, p)));
    }
    if kept.is_empty() {
        // A flat folder: one class.
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        kept.push(name);
        ranked.extend(
            imageio::list_images(root)?
                .into_iter()
                .map(|rel| (0, 0, root.join(rel))),
        );
    }
    ranked.sort_by_key(|(rank, ci, _)| (*rank, *ci));
    let files: Vec<(PathBuf, u32)> = ranked.into_iter().map(|(_, ci, p)| (p, ci)).collect();
    if files.is_empty() {
        return Err(Error::DatasetMissing(format!(
            "{} holds no images (expected root/<class>/*.png|jpg|webp|... or images directly \
             under it)",
            root.display()
        )));
    }
    Ok((files, kept))
}

/// `im` scaled (bicubic) so that its shorter side is `side`, the aspect ratio kept, then its
/// centred `side x side` square.
pub(crate) fn square(im: &image::DynamicImage, side: usize) -> image::DynamicImage {
    let (w, h) = (im.width() as f64, im.height() as f64);
    let scale = side as f64 / w.min(h);
    let nw = ((w * scale).round() as u32).max(side as u32);
    let nh = ((h * scale).round() as u32).max(side as u32);
    let scaled = if (nw, nh) == (im.width(), im.height()) {
        im.clone()
    } else {
        im.resize_exact(nw, nh, image::imageops::FilterType::CatmullRom)
    };
    let (x, y) = ((nw - side as u32) / 2, (nh - side as u32) / 2);
    scaled.crop_imm(x, y, side as u32, side as u32)
}

/// Loads a folder's images as they are ([`Fit::AsTheyAre`]).
pub fn load_folder(root: &Path) -> Result<Dataset> {
    load_folder_as(root, Fit::AsTheyAre)
}

/// Loads `root/<class>/*` or a flat folder's images (any format the `image` crate reads) as
/// `fit` says.
pub fn load_folder_as(root: &Path, fit: Fit) -> Result<Dataset> {
    let (files, classes) = folder_files(root)?;
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (side, channels) = match fit {
        Fit::AsTheyAre => return load_as_they_are(name, files, classes),
        Fit::Square { side, channels } => (side, channels),
    };
    if side == 0 {
        return Err(Error::InvalidArgument("image side must be positive".into()));
    }
    let channels = match channels {
        Some(c @ (1 | 3)) => c,
        Some(c) => {
            return Err(Error::InvalidArgument(format!(
                "{c} channels: choose 1 (grey) or 3 (RGB)"
            )));
        }
        None => {
            let grey = files
                .iter()
                .all(|(p, _)| imageio::is_grey(p).unwrap_or(true));
            if grey { 1 } else { 3 }
        }
    };
    use rayon::prelude::*;
    let decoded: Vec<Result<Vec<u8>>> = files
        .par_iter()
        .map(|(p, _)| {
            let im = imageio::read_image(p)?;
            Ok(imageio::to_chw_u8(&square(&im, side), channels))
        })
        .collect();
    let mut pixels = Vec::with_capacity(files.len() * channels * side * side);
    let mut labels = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    for (r, (p, label)) in decoded.into_iter().zip(&files) {
        match r {
            Ok(px) => {
                pixels.extend(px);
                labels.push(*label);
            }
            Err(e) => skipped.push(format!("{}: {e}", p.display())),
        }
    }
    if !skipped.is_empty() {
        tracing::warn!(
            "{} of {} images of {} skipped (unreadable): {}",
            skipped.len(),
            files.len(),
            root.display(),
            skipped
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if labels.is_empty() {
        return Err(Error::DatasetMissing(format!(
            "none of the {} images of {} could be read",
            files.len(),
            root.display()
        )));
    }
    Dataset::from_parts(name, (channels, side, side), pixels, labels, classes)
}

fn load_as_they_are(
    name: String,
    files: Vec<(PathBuf, u32)>,
    classes: Vec<String>,
) -> Result<Dataset> {
    let decoded: Vec<image::DynamicImage> = files
        .iter()
        .map(|(p, _)| imageio::read_image(p))
        .collect::<Result<_>>()?;
    let (w, h) = (decoded[0].width() as usize, decoded[0].height() as usize);
    let gray = decoded.iter().all(|im| !im.color().has_color());
    let channels = if gray { 1 } else { 3 };
    let mut pixels = Vec::with_capacity(decoded.len() * channels * h * w);
    for (im, (p, _)) in decoded.iter().zip(&files) {
        if im.width() as usize != w || im.height() as usize != h {
            return Err(Error::Image {
                path: p.clone(),
                reason: format!(
                    "{}x{} differs from the data set's {w}x{h} (train with --size S to resize \
                     every image to S x S)",
                    im.width(),
                    im.height()
                ),
            });
        }
        pixels.extend(imageio::to_chw_u8(im, channels));
    }
    Dataset::from_parts(
        name,
        (channels, h, w),
        pixels,
        files.iter().map(|f| f.1).collect(),
        classes,
    )
}

/// What a folder's images are, from their headers: the size `(w, h)` of the first (in the
/// order [`load_folder`] reads them), the first other size when they differ, and the channels (1
/// when every image is grey, else 3).
pub fn probe_folder(root: &Path) -> Result<FolderShape> {
    let (files, _) = folder_files(root)?;
    let first = imageio::read_dimensions(&files[0].0)?;
    let other = files
        .iter()
        .skip(1)
        .filter_map(|(p, _)| imageio::read_dimensions(p).ok())
        .find(|&s| s != first);
    let grey = files
        .iter()
        .all(|(p, _)| imageio::is_grey(p).unwrap_or(true));
    Ok(FolderShape {
        size: first,
        other_size: other,
        channels: if grey { 1 } else { 3 },
    })
}

/// See [`probe_folder`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FolderShape {
    pub size: (u32, u32),
    pub other_size: Option<(u32, u32)>,
    pub channels: usize,
}
