//! Image folders: `root/<class>/*` or flat.

use std::fs::{self};
use std::path::{Path, PathBuf};

use super::Dataset;
use crate::error::{Error, Result};
use crate::imageio;

/// Loads `root/<class>/*` images; classes are the sorted subfolder names. All images must share
/// one size; they are read as grayscale when every image is, else as RGB. The classes are
/// interleaved (the first image of every class, then the second, ...), so the first N images,
/// which `eval --limit N` and sample grids use, cover every class.
pub fn load_folder(root: &Path) -> Result<Dataset> {
    let mut classes: Vec<String> = Vec::new();
    let rd = fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    for e in rd {
        let e = e.map_err(|e| Error::io(root, e))?;
        if e.path().is_dir() {
            classes.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    let mut ranked: Vec<(usize, u32, PathBuf)> = Vec::new();
    for (ci, c) in classes.iter().enumerate() {
        let mut fs_: Vec<PathBuf> = imageio::list_images(&root.join(c))?
            .into_iter()
            .map(|rel| root.join(c).join(rel))
            .collect();
        fs_.sort();
        ranked.extend(
            fs_.into_iter()
                .enumerate()
                .map(|(rank, p)| (rank, ci as u32, p)),
        );
    }
    ranked.sort_by_key(|(rank, ci, _)| (*rank, *ci));
    let files: Vec<(PathBuf, u32)> = ranked.into_iter().map(|(_, ci, p)| (p, ci)).collect();
    if files.is_empty() {
        return Err(Error::DatasetMissing(format!(
            "{} holds no images in class subfolders (expected root/<class>/*.png|jpg)",
            root.display()
        )));
    }
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
                    "{}x{} differs from the data set's {w}x{h}",
                    im.width(),
                    im.height()
                ),
            });
        }
        pixels.extend(imageio::to_chw_u8(im, channels));
    }
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Dataset::from_parts(
        name,
        (channels, h, w),
        pixels,
        files.iter().map(|f| f.1).collect(),
        classes,
    )
}
