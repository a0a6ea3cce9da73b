//! Image files in and out: decoding with size checks before decoding, conversion to the model's
//! channels and value range, atomic 8-bit PNG writing, and folder walking that maps every input to
//! the same relative path under the output folder.

use std::fs;
use std::io::Cursor;
use std::path::{Component, Path, PathBuf};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use ndarray::{Array3, ArrayView3};

use crate::atomic;
use crate::error::{Error, Result};

/// File extensions treated as images when walking a folder.
pub(crate) const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif", "pgm", "ppm", "pnm",
];

/// The largest side decoded at all; anything larger is refused before decoding.
pub(crate) const MAX_SIDE: u32 = 16_384;

/// 8-bit pixel to [-1, 1].
#[inline]
pub fn u8_to_unit(p: u8) -> f32 {
    f32::from(p) / 127.5 - 1.0
}

/// [-1, 1] to an 8-bit pixel (rounded, clamped).
#[inline]
pub(crate) fn unit_to_u8(v: f32) -> u8 {
    let p = ((v + 1.0) * 127.5).round();
    if p.is_nan() {
        0
    } else {
        p.clamp(0.0, 255.0) as u8
    }
}

fn image_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Image {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A decoder over an image file, refusing empty files and unknown formats.
fn decoder(path: &Path) -> Result<impl ImageDecoder> {
    let meta = fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(image_err(path, "empty file (0 bytes)"));
    }
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    if reader.format().is_none() {
        return Err(image_err(path, "not an image (unrecognised format)"));
    }
    // The sides are checked against MAX_SIDE by the callers, with a message that names them;
    // the reader's default limits still cap the decoder's allocations.
    reader
        .into_decoder()
        .map_err(|e| image_err(path, format!("unreadable header: {e}")))
}

/// Whether an image file holds grey pixels (from its header).
pub(crate) fn is_grey(path: &Path) -> Result<bool> {
    Ok(!decoder(path)?.color_type().has_color())
}

/// The EXIF orientation a decoder reports (none where the format has no such tag or it is
/// unreadable).
fn orientation_of(d: &mut impl ImageDecoder) -> Orientation {
    d.orientation().unwrap_or(Orientation::NoTransforms)
}

fn swaps_sides(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Reads an image's dimensions `(w, h)` from its header without decoding the pixels, as the image
/// appears once its EXIF orientation is applied.
pub(crate) fn read_dimensions(path: &Path) -> Result<(u32, u32)> {
    let mut d = decoder(path)?;
    let (w, h) = d.dimensions();
    Ok(if swaps_sides(orientation_of(&mut d)) {
        (h, w)
    } else {
        (w, h)
    })
}

/// Decodes an image file with its EXIF orientation applied, refusing empty files, unknown formats
/// and sides over [`MAX_SIDE`].
pub fn read_image(path: &Path) -> Result<DynamicImage> {
    read_oriented(path).map(|(im, _)| im)
}

/// [`read_image`], and whether an EXIF orientation other than the identity was applied.
pub(crate) fn read_oriented(path: &Path) -> Result<(DynamicImage, bool)> {
    let mut d = decoder(path)?;
    let (w, h) = d.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(image_err(
            path,
            format!("{w}x{h} is larger than the {MAX_SIDE}-pixel limit"),
        ));
    }
    let o = orientation_of(&mut d);
    let mut im = DynamicImage::from_decoder(d)
        .map_err(|e| image_err(path, format!("cannot decode: {e}")))?;
    im.apply_orientation(o);
    Ok((im, o != Orientation::NoTransforms))
}

/// What reading an image as `channels` channels changes, for the report: colour to grey, grey to
/// colour, alpha dropped.
pub(crate) fn conversions(im: &DynamicImage, channels: usize) -> Vec<&'static str> {
    let c = im.color();
    let mut v = Vec::new();
    match (c.has_color(), channels) {
        (true, 1) => v.push("colour to grey"),
        (false, 3) => v.push("grey to RGB"),
        _ => {}
    }
    if c.has_alpha() {
        v.push("alpha dropped");
    }
    v
}

/// 8-bit `[C, H, W]` pixels of an image as 1 (luma) or 3 (RGB) channels; alpha is dropped.
pub(crate) fn to_chw_u8(im: &DynamicImage, channels: usize) -> Vec<u8> {
    let (w, h) = (im.width() as usize, im.height() as usize);
    if channels == 1 {
        im.to_luma8().into_raw()
    } else {
        let rgb = im.to_rgb8();
        let raw = rgb.as_raw();
        let mut out = vec![0u8; 3 * h * w];
        for (i, px) in raw.chunks_exact(3).enumerate() {
            for c in 0..3 {
                out[c * h * w + i] = px[c];
            }
        }
        out
    }
}

/// An image as `[C, H, W]` in [-1, 1], keeping 16-bit precision when the file has it.
pub fn to_chw_unit(im: &DynamicImage, channels: usize) -> Array3<f32> {
    let (w, h) = (im.width() as usize, im.height() as usize);
    let sixteen = matches!(
        im.color(),
        image::ColorType::L16
            | image::ColorType::La16
            | image::ColorType::Rgb16
            | image::ColorType::Rgba16
    );
    if sixteen {
        let data: Vec<f32> = if channels == 1 {
            im.to_luma16()
                .into_raw()
                .into_iter()
                .map(u16_to_unit)
                .collect()
        } else {
            let rgb = im.to_rgb16();
            let raw = rgb.as_raw();
            let mut out = vec![0f32; 3 * h * w];
            for (i, px) in raw.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    out[c * h * w + i] = u16_to_unit(px[c]);
                }
            }
            out
        };
        Array3::from_shape_vec((channels, h, w), data).expect("sizes agree")
    } else {
        let data = to_chw_u8(im, channels)
            .into_iter()
            .map(u8_to_unit)
            .collect();
        Array3::from_shape_vec((channels, h, w), data).expect("sizes agree")
    }
}

/// Loads an image file as `[C, H, W]` in [-1, 1]; it must be `height x width`.
pub fn load_unit(path: &Path, channels: usize, height: usize, width: usize) -> Result<Array3<f32>> {
    let (w, h) = read_dimensions(path)?;
    if (w as usize, h as usize) != (width, height) {
        return Err(image_err(
            path,
            format!(
                "image is {w}x{h} but the model works on {width}x{height} (use --resize to scale inputs)"
            ),
        ));
    }
    let im = read_image(path)?;
    Ok(to_chw_unit(&im, channels))
}

/// Bits per channel of the PNGs written by `degrade`.
///
/// Deep blur leaves very little contrast: an MNIST digit at t = 20 of the `mnist` preset spans about
/// one 8-bit grey level, so an 8-bit file keeps almost nothing for the restorer to work from. 16 bits
/// keep 256 times finer steps (about 250 levels there). Readers keep 16-bit precision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum BitDepth {
    /// 8 bits per channel.
    #[default]
    #[value(name = "8")]
    Eight,
    /// 16 bits per channel.
    #[value(name = "16")]
    Sixteen,
}

/// [-1, 1] to a 16-bit level (rounded, clamped).
#[inline]
pub(crate) fn unit_to_u16(v: f32) -> u16 {
    let p = ((v + 1.0) * 32767.5).round();
    if p.is_nan() {
        0
    } else {
        p.clamp(0.0, 65535.0) as u16
    }
}

/// 16-bit level to [-1, 1].
#[inline]
pub(crate) fn u16_to_unit(p: u16) -> f32 {
    f32::from(p) / 32767.5 - 1.0
}

/// The value a pixel has after a round trip through a PNG of this depth.
#[inline]
pub fn quantize(v: f32, depth: BitDepth) -> f32 {
    match depth {
        BitDepth::Eight => u8_to_unit(unit_to_u8(v)),
        BitDepth::Sixteen => u16_to_unit(unit_to_u16(v)),
    }
}

/// `[C, H, W]` in [-1, 1] to an 8-bit image (grayscale for 1 channel, RGB for 3).
pub fn unit_to_image(x: ArrayView3<f32>) -> Result<DynamicImage> {
    unit_to_image_depth(x, BitDepth::Eight)
}

/// `[C, H, W]` in [-1, 1] to an image of the given depth (grayscale for 1 channel, RGB for 3).
pub(crate) fn unit_to_image_depth(x: ArrayView3<f32>, depth: BitDepth) -> Result<DynamicImage> {
    let (c, h, w) = x.dim();
    if c != 1 && c != 3 {
        return Err(Error::InvalidArgument(format!(
            "cannot write a {c}-channel image"
        )));
    }
    // Interleaved (HWC) order, as image buffers hold it.
    let hwc = x.permuted_axes([1, 2, 0]);
    let (w, h) = (w as u32, h as u32);
    Ok(match (c, depth) {
        (1, BitDepth::Eight) => DynamicImage::ImageLuma8(
            image::GrayImage::from_raw(w, h, hwc.iter().map(|&v| unit_to_u8(v)).collect())
                .expect("sizes agree"),
        ),
        (_, BitDepth::Eight) => DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(w, h, hwc.iter().map(|&v| unit_to_u8(v)).collect())
                .expect("sizes agree"),
        ),
        (1, BitDepth::Sixteen) => DynamicImage::ImageLuma16(
            image::ImageBuffer::from_raw(w, h, hwc.iter().map(|&v| unit_to_u16(v)).collect())
                .expect("sizes agree"),
        ),
        (_, BitDepth::Sixteen) => DynamicImage::ImageRgb16(
            image::ImageBuffer::from_raw(w, h, hwc.iter().map(|&v| unit_to_u16(v)).collect())
                .expect("sizes agree"),
        ),
    })
}

/// Encodes an image as PNG and writes it atomically (temp file + rename), creating parent folders.
pub fn save_png(path: &Path, im: &DynamicImage) -> Result<()> {
    let mut buf = Vec::new();
    im.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png)
        .map_err(|e| image_err(path, format!("cannot encode PNG: {e}")))?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    atomic::write_atomic(path, &buf)
}

/// Writes `[C, H, W]` in [-1, 1] as an 8-bit PNG, atomically.
pub fn save_unit_png(path: &Path, x: ArrayView3<f32>) -> Result<()> {
    save_png(path, &unit_to_image(x)?)
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        .unwrap_or(false)
}

/// Image files under `root`, recursively, as sorted paths relative to `root`. Hidden files and
/// folders are skipped, symlinked folders are not followed.
pub fn list_images(root: &Path) -> Result<Vec<PathBuf>> {
    list_images_excluding(root, None)
}

/// Like [`list_images`], never descending into `exclude` (an output folder inside the input).
pub(crate) fn list_images_excluding(root: &Path, exclude: Option<&Path>) -> Result<Vec<PathBuf>> {
    let exclude = exclude.and_then(|e| e.canonicalize().ok());
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let rd = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let name = e.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let ft = e.file_type().map_err(|err| Error::io(e.path(), err))?;
            let child = rel.join(&name);
            if ft.is_dir() {
                if let (Some(ex), Ok(c)) = (&exclude, e.path().canonicalize())
                    && &c == ex
                {
                    continue;
                }
                stack.push(child);
            } else if (ft.is_file() || (ft.is_symlink() && e.path().is_file()))
                && is_image_name(&child)
            {
                out.push(child);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The output path for input `rel` (relative to the input folder): the same relative path under
/// `out_dir` with a `.png` extension (or `suffix.png`). Refuses anything that could leave `out_dir`.
pub(crate) fn output_path(out_dir: &Path, rel: &Path, suffix: &str) -> Result<PathBuf> {
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(Error::InvalidArgument(format!(
            "{}: output paths must stay inside the output folder",
            rel.display()
        )));
    }
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{stem}{suffix}.png");
    Ok(out_dir.join(rel.with_file_name(name)))
}

/// [`grid`] scaled up `scale` times (nearest neighbour, so pixels stay sharp) and saved as a PNG.
pub fn save_grid(path: &Path, rows: &[Vec<ArrayView3<f32>>], scale: u32) -> Result<()> {
    let im = grid(rows)?;
    let im = im.resize(
        im.width() * scale,
        im.height() * scale,
        image::imageops::FilterType::Nearest,
    );
    save_png(path, &im)
}

/// Lays out images side by side in a grid: `rows` of `[C, H, W]` images, 2-pixel gaps (white).
pub fn grid(rows: &[Vec<ArrayView3<f32>>]) -> Result<DynamicImage> {
    let first = rows
        .iter()
        .flat_map(|r| r.first())
        .next()
        .ok_or_else(|| Error::InvalidArgument("empty grid".into()))?;
    let (c, h, w) = first.dim();
    let gap = 2;
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let (gw, gh) = (cols * (w + gap) + gap, rows.len() * (h + gap) + gap);
    let mut canvas = Array3::<f32>::from_elem((c, gh, gw), 1.0);
    for (ri, row) in rows.iter().enumerate() {
        for (ci, im) in row.iter().enumerate() {
            if im.dim() != (c, h, w) {
                return Err(Error::InvalidArgument("grid images differ in size".into()));
            }
            let (y, x) = (gap + ri * (h + gap), gap + ci * (w + gap));
            canvas
                .slice_mut(ndarray::s![.., y..y + h, x..x + w])
                .assign(im);
        }
    }
    unit_to_image(canvas.view())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_mapping_round_trips() {
        for p in 0..=255u8 {
            assert_eq!(unit_to_u8(u8_to_unit(p)), p);
        }
        assert_eq!(u8_to_unit(0), -1.0);
        assert_eq!(u8_to_unit(255), 1.0);
        assert_eq!(unit_to_u8(3.0), 255);
        assert_eq!(unit_to_u8(f32::NAN), 0);
    }

    #[test]
    fn output_paths_stay_inside() {
        let out = Path::new("/o");
        assert_eq!(
            output_path(out, Path::new("a/b.jpg"), "").expect("ok"),
            Path::new("/o/a/b.png")
        );
        assert_eq!(
            output_path(out, Path::new("x.png"), "_strip").expect("ok"),
            Path::new("/o/x_strip.png")
        );
        assert!(output_path(out, Path::new("../x.png"), "").is_err());
        assert!(output_path(out, Path::new("/etc/x.png"), "").is_err());
        assert!(output_path(out, Path::new(""), "").is_err());
    }

    #[test]
    fn sixteen_bit_outputs_round_trip_finely() {
        let dir = tempfile::tempdir().expect("tmp");
        let x = ndarray::Array3::from_shape_fn((3, 5, 7), |(c, y, x)| {
            -1.0 + 2.0 * ((c * 35 + y * 7 + x) as f32 / 104.0)
        });
        // (depth, largest error, smallest error): 8 bits must visibly round, 16 bits hardly.
        let cases = [
            (BitDepth::Sixteen, 1.0 / 65535.0, None),
            (BitDepth::Eight, 1.0 / 255.0, Some(1e-3)),
        ];
        for c in [1usize, 3] {
            let x = x.slice(ndarray::s![..c, .., ..]).to_owned();
            for (depth, max_err, min_err) in cases {
                let p = dir.path().join(format!("x{c}_{depth:?}.png"));
                save_png(&p, &unit_to_image_depth(x.view(), depth).expect("im")).expect("w");
                let back = load_unit(&p, c, 5, 7).expect("read");
                let err = (&back - &x).iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(err <= max_err + 1e-6, "{c} channels, {depth:?}: {err}");
                if let Some(min_err) = min_err {
                    assert!(err > min_err, "{c} channels, {depth:?}: {err}");
                }
                assert_eq!(
                    back,
                    x.mapv(|v| quantize(v, depth)),
                    "quantize = PNG round trip"
                );
                if depth == BitDepth::Eight {
                    assert_eq!(
                        unit_to_image(x.view()).expect("im").to_rgb8(),
                        image::open(&p).expect("open").to_rgb8(),
                        "unit_to_image is the 8-bit writer"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let empty = dir.path().join("empty.png");
        fs::write(&empty, b"").expect("w");
        assert!(
            read_image(&empty)
                .expect_err("empty")
                .to_string()
                .contains("0 bytes")
        );
        let text = dir.path().join("notes.png");
        fs::write(&text, b"hello, this is not an image at all").expect("w");
        assert!(read_image(&text).is_err());
        let good = dir.path().join("g.png");
        save_png(
            &good,
            &DynamicImage::ImageLuma8(image::GrayImage::new(28, 28)),
        )
        .expect("save");
        let bytes = fs::read(&good).expect("r");
        let trunc = dir.path().join("t.png");
        fs::write(&trunc, &bytes[..bytes.len() / 2]).expect("w");
        assert!(read_image(&trunc).is_err());
        let err = load_unit(&good, 1, 32, 32).expect_err("size");
        assert!(err.to_string().contains("28x28"), "{err}");
    }

    #[test]
    fn sixteen_bit_and_alpha_are_converted() {
        let dir = tempfile::tempdir().expect("tmp");
        let p16 = dir.path().join("a.png");
        image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(4, 4, image::Luma([65535u16]))
            .save(&p16)
            .expect("save");
        let x = load_unit(&p16, 1, 4, 4).expect("16-bit");
        assert!(x.iter().all(|&v| (v - 1.0).abs() < 1e-6));
        let pa = dir.path().join("b.png");
        image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 255, 0, 10]))
            .save(&pa)
            .expect("save");
        let x = load_unit(&pa, 3, 4, 4).expect("alpha");
        assert_eq!(x[[1, 0, 0]], 1.0);
        assert_eq!(x[[0, 0, 0]], -1.0);
    }

    #[test]
    fn walk_is_recursive_sorted_and_skips_output_folder() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        fs::create_dir_all(root.join("b/c")).expect("mkdir");
        fs::create_dir_all(root.join("out")).expect("mkdir");
        for p in [
            "a.png",
            "b/x.JPG",
            "b/c/y.webp",
            "notes.txt",
            ".hidden.png",
            "out/z.png",
        ] {
            fs::write(root.join(p), b"x").expect("w");
        }
        let got = list_images_excluding(root, Some(&root.join("out"))).expect("walk");
        let want: Vec<PathBuf> = ["a.png", "b/c/y.webp", "b/x.JPG"]
            .iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn rgb_planes_round_trip_through_png() {
        let dir = tempfile::tempdir().expect("tmp");
        let x = Array3::from_shape_fn((3, 5, 7), |(c, i, j)| {
            u8_to_unit((c * 80 + i * 7 + j) as u8)
        });
        let p = dir.path().join("sub/rgb.png");
        save_unit_png(&p, x.view()).expect("save");
        let y = load_unit(&p, 3, 5, 7).expect("load");
        assert_eq!(x, y);
    }
}
