//! Fréchet Inception Distance, with pytorch-fid's protocol (the paper's): images in [0, 1], grey
//! repeated to 3 channels, bilinear resizing to 299x299 (half-pixel centres, no antialiasing, as
//! `F.interpolate(mode="bilinear", align_corners=False)`), the FID Inception-v3's 2048-d pool3
//! features ([`inception`], run by ONNX Runtime), their mean and covariance in float64, and
//!
//! `FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))`
//!
//! with the trace of the matrix square root from symmetric eigendecompositions (faer):
//! `tr (S_a S_b)^(1/2) = tr (S_a^(1/2) S_b S_a^(1/2))^(1/2)`.

pub mod inception;
mod layers;
mod stats;

use std::path::{Path, PathBuf};

use ndarray::{Array2, Array4, ArrayView4, Axis};
use ort::session::Session;
use ort::value::TensorRef;

pub use stats::{Stats, frechet_distance};

use crate::error::{Error, Result};
use crate::ortlib;
use cold_core::fetch;

/// The FID feature extractor: the Inception graph in an ONNX Runtime session (CPU).
pub struct FidNetwork {
    session: Session,
    /// Images per network run.
    pub batch: usize,
}

impl std::fmt::Debug for FidNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FidNetwork")
            .field("batch", &self.batch)
            .finish()
    }
}

/// Where the FID network is cached.
pub fn cache_dir() -> Result<PathBuf> {
    Ok(fetch::cache_dir()?.join("fid"))
}

impl FidNetwork {
    /// Opens the network (fetching and building it on first use), with `threads` intra-op
    /// threads (0 = all cores).
    pub fn open(threads: usize) -> Result<Self> {
        let graph = inception::ensure(&cache_dir()?)?;
        let session = ortlib::cpu_session(&graph, threads)?;
        Ok(FidNetwork { session, batch: 50 })
    }

    /// pool3 features `[B, 2048]` of images `[B, C, H, W]` in [0, 1], C = 1 or 3, any size.
    pub fn features(&mut self, images: ArrayView4<f32>) -> Result<Array2<f32>> {
        let (b, c, _, _) = images.dim();
        if c != 1 && c != 3 {
            return Err(Error::invalid(format!(
                "FID takes grey or RGB images, got {c} channels"
            )));
        }
        let mut out = Array2::<f32>::zeros((b, inception::FEATURES));
        let mut start = 0;
        while start < b {
            let end = (start + self.batch.max(1)).min(b);
            let x = prepare(images.slice(ndarray::s![start..end, .., .., ..]));
            let outputs = self.session.run(ort::inputs! {
                inception::INPUT => TensorRef::from_array_view(x.view())?,
            })?;
            let f = outputs[inception::OUTPUT].try_extract_array::<f32>()?;
            let f = f
                .into_dimensionality::<ndarray::Ix2>()
                .map_err(|e| Error::OnnxRuntime(e.to_string()))?;
            out.slice_mut(ndarray::s![start..end, ..]).assign(&f);
            start = end;
        }
        Ok(out)
    }
}

/// The network's input: 3 channels, 299x299, scaled `(255 x - 128) / 128`.
pub fn prepare(images: ArrayView4<f32>) -> Array4<f32> {
    let (b, c, h, w) = images.dim();
    let s = inception::SIDE;
    let rows = linear_taps(h, s);
    let cols = linear_taps(w, s);
    let mut out = Array4::<f32>::zeros((b, 3, s, s));
    let mut tmp = vec![0f32; h * s];
    for i in 0..b {
        for ch in 0..3 {
            let src = images.slice(ndarray::s![i, ch.min(c - 1), .., ..]);
            // along the width: [h, s]
            for y in 0..h {
                for (ox, &(i0, i1, l)) in cols.iter().enumerate() {
                    tmp[y * s + ox] = src[[y, i0]] * (1.0 - l) + src[[y, i1]] * l;
                }
            }
            // along the height, then the scaling
            let mut dst = out.slice_mut(ndarray::s![i, ch, .., ..]);
            for (oy, &(i0, i1, l)) in rows.iter().enumerate() {
                for ox in 0..s {
                    let v = tmp[i0 * s + ox] * (1.0 - l) + tmp[i1 * s + ox] * l;
                    dst[[oy, ox]] = (v * 255.0 - 128.0) / 128.0;
                }
            }
        }
    }
    out
}

/// Linear-interpolation taps `(i0, i1, weight of i1)` of resampling `n_in` pixels to `n_out`
/// with half-pixel centres and no antialiasing (PyTorch's `align_corners=False`).
pub(crate) fn linear_taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32)> {
    let scale = n_in as f64 / n_out as f64;
    (0..n_out)
        .map(|o| {
            let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(n_in - 1);
            let i1 = (i0 + 1).min(n_in - 1);
            let l = if i0 == n_in - 1 { 0.0 } else { src - i0 as f64 };
            (i0, i1, l as f32)
        })
        .collect()
}

/// Statistics of images streamed in batches.
#[derive(Debug)]
pub(crate) struct Accumulator {
    sum: Vec<f64>,
    /// `X^T X`, row-major `[2048, 2048]`.
    cross: faer::Mat<f64>,
    n: usize,
}

impl Default for Accumulator {
    fn default() -> Self {
        let d = inception::FEATURES;
        Accumulator {
            sum: vec![0.0; d],
            cross: faer::Mat::zeros(d, d),
            n: 0,
        }
    }
}

impl Accumulator {
    /// Adds a batch of features `[B, 2048]`.
    pub fn add(&mut self, features: &Array2<f32>) {
        let (b, d) = features.dim();
        let x = faer::Mat::<f64>::from_fn(b, d, |i, j| f64::from(features[[i, j]]));
        for j in 0..d {
            self.sum[j] += (0..b).map(|i| x[(i, j)]).sum::<f64>();
        }
        faer::linalg::matmul::matmul(
            self.cross.as_mut(),
            faer::Accum::Add,
            x.transpose(),
            x.as_ref(),
            1.0,
            faer::Par::rayon(0),
        );
        self.n += b;
    }

    pub fn count(&self) -> usize {
        self.n
    }

    /// Mean and (unbiased, N - 1) covariance. Needs at least 2 images.
    pub fn finish(self) -> Result<Stats> {
        Stats::from_moments(self.n, &self.sum, &self.cross)
    }
}

/// Features and statistics of images in a folder (recursively; any size, grey or colour). An
/// unreadable image is reported and skipped; fewer than 2 readable images is an error.
pub(crate) fn folder_stats(
    net: &mut FidNetwork,
    dir: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<(Stats, Vec<(PathBuf, String)>)> {
    if !dir.is_dir() {
        return Err(Error::invalid(format!(
            "{} is not a folder of images (or a .fidstats file)",
            dir.display()
        )));
    }
    let files = cold_core::imageio::list_images(dir)?;
    progress.set_length(files.len() as u64);
    let mut acc = Accumulator::default();
    let mut failed = Vec::new();
    for chunk in files.chunks(net.batch.max(1)) {
        use rayon::prelude::*;
        let loaded: Vec<_> = chunk
            .par_iter()
            .map(|rel| {
                let p = dir.join(rel);
                cold_core::imageio::read_image(&p).map(|im| {
                    let c = if im.color().has_color() { 3 } else { 1 };
                    (cold_core::imageio::to_chw_unit(&im, c), c)
                })
            })
            .collect();
        let mut ok = Vec::new();
        for (rel, r) in chunk.iter().zip(loaded) {
            match r {
                Ok((a, _)) => ok.push(a),
                Err(e) => failed.push((dir.join(rel), e.to_string())),
            }
        }
        // Images of different sizes or channel counts go through the network separately.
        let mut groups: std::collections::BTreeMap<
            (usize, usize, usize),
            Vec<ndarray::Array3<f32>>,
        > = Default::default();
        for a in ok {
            groups
                .entry(a.dim())
                .or_default()
                .push(a.mapv(|v| (v + 1.0) / 2.0));
        }
        for (_, arrays) in groups {
            let views: Vec<_> = arrays.iter().map(|a| a.view()).collect();
            let x = ndarray::stack(Axis(0), &views).expect("same shapes");
            acc.add(&net.features(x.view())?);
        }
        progress.inc(chunk.len() as u64);
    }
    if acc.count() < 2 {
        return Err(Error::invalid(format!(
            "{}: FID needs at least 2 readable images, found {}{}",
            dir.display(),
            acc.count(),
            if failed.is_empty() {
                String::new()
            } else {
                format!(" ({} unreadable)", failed.len())
            }
        )));
    }
    Ok((acc.finish()?, failed))
}

/// What `cold fid` measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// FID between A and B (none when only A's statistics were asked for).
    pub fid: Option<f64>,
    /// Images whose features went into A's and B's statistics.
    pub files_a: usize,
    pub files_b: usize,
}

/// Statistics of a folder (the network opened on first use) or of a saved `.fidstats` file;
/// unreadable images are logged and skipped.
fn stats_of(net: &mut Option<FidNetwork>, p: &Path, batch: usize, threads: usize) -> Result<Stats> {
    if p.is_file() {
        return Stats::load(p);
    }
    if net.is_none() {
        let mut n = FidNetwork::open(threads)?;
        n.batch = batch.max(1);
        *net = Some(n);
    }
    let pb = cold_core::progress::progress_bar(0, &format!("features of {}", p.display()));
    let (stats, failed) = folder_stats(net.as_mut().expect("opened above"), p, &pb)?;
    pb.finish_and_clear();
    for (f, why) in &failed {
        tracing::warn!("skipped {}: {why}", f.display());
    }
    tracing::info!(
        "{}: {} images used, {} unreadable skipped",
        p.display(),
        stats.n,
        failed.len()
    );
    Ok(stats)
}

/// `cold fid`: FID between `a` and `b` (folders of images or `.fidstats` files); with
/// `save_stats`, A's statistics are also saved there (then `b` may be left out).
pub fn compare(
    a: &Path,
    b: Option<&Path>,
    save_stats: Option<&Path>,
    batch: usize,
    threads: usize,
) -> Result<Comparison> {
    if b.is_none() && save_stats.is_none() {
        return Err(Error::invalid(
            "give two folders (or .fidstats files) to compare, or --save-stats FILE for one",
        ));
    }
    let mut net = None;
    let sa = stats_of(&mut net, a, batch, threads)?;
    if let Some(p) = save_stats {
        sa.save(p)?;
        tracing::info!("statistics of {} saved to {}", a.display(), p.display());
    }
    let Some(b) = b else {
        return Ok(Comparison {
            fid: None,
            files_a: sa.n,
            files_b: 0,
        });
    };
    let sb = stats_of(&mut net, b, batch, threads)?;
    Ok(Comparison {
        fid: Some(frechet_distance(&sa, &sb)?),
        files_a: sa.n,
        files_b: sb.n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_taps_match_pytorch_bilinear() {
        // 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to the last pixel).
        let t = linear_taps(2, 4);
        assert_eq!(t[0], (0, 1, 0.0));
        assert_eq!(t[1], (0, 1, 0.25));
        assert_eq!(t[2], (0, 1, 0.75));
        assert_eq!(t[3], (1, 1, 0.0));
        // identity when the sizes agree
        for (o, &(i0, _, l)) in linear_taps(5, 5).iter().enumerate() {
            assert_eq!((i0, l), (o, 0.0));
        }
    }

    #[test]
    fn prepare_scales_and_repeats_grey() {
        let x = Array4::from_elem((1, 1, 28, 28), 0.5f32);
        let y = prepare(x.view());
        assert_eq!(y.dim(), (1, 3, 299, 299));
        let want = (0.5 * 255.0 - 128.0) / 128.0;
        assert!(y.iter().all(|v| (v - want).abs() < 1e-6));
    }
}
