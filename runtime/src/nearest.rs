//! `cold nearest`: are generated samples memorised? Each sample's nearest training images
//! (Euclidean distance over pixels in [-1, 1], given as an RMS per pixel), beside the same for
//! images the network never saw (the data set's held-out split): a sample much nearer to a
//! training image than held-out images come is a copy, one at their distance is new. A strip
//! per sample (the sample, then its nearest) makes it visible.

use std::path::{Path, PathBuf};

use cold_core::data::Dataset;
use cold_core::imageio;
use ndarray::{Array3, ArrayView1, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One image's nearest training images.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Neighbours {
    /// The sample's path under the folder (or `"<split> #i"` for a held-out image).
    pub image: String,
    /// `(training image index, RMS distance per pixel)`, nearest first.
    pub nearest: Vec<(usize, f64)>,
}

/// What `cold nearest` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NearestReport {
    pub dataset: String,
    pub training_images: usize,
    pub samples: Vec<Neighbours>,
    /// The same for as many held-out images (the baseline).
    pub held_out: Vec<Neighbours>,
    /// Median distance of the samples to their nearest training image.
    pub samples_median: f64,
    /// Median distance of the held-out images to theirs.
    pub held_out_median: f64,
    /// Share of samples nearer to a training image than the nearest held-out image comes
    /// (the smallest held-out distance): copies, or nearly.
    pub nearer_than_any_held_out: f64,
}

/// The `k` nearest images of `train` to `x` (`[C, H, W]` flattened, in [-1, 1]).
fn nearest(train: &Dataset, x: ArrayView1<f32>, k: usize) -> Vec<(usize, f64)> {
    let n = train.image_len();
    let x: Vec<f32> = x.iter().copied().collect();
    let mut d: Vec<(usize, f64)> = (0..train.len())
        .into_par_iter()
        .map(|i| {
            let s: f64 = train
                .image_u8(i)
                .iter()
                .zip(&x)
                .map(|(&p, &q)| {
                    let e = f64::from(imageio::u8_to_unit(p) - q);
                    e * e
                })
                .sum();
            (i, (s / n as f64).sqrt())
        })
        .collect();
    let k = k.min(d.len());
    d.select_nth_unstable_by(k.saturating_sub(1), |a, b| a.1.total_cmp(&b.1));
    d.truncate(k);
    d.sort_by(|a, b| a.1.total_cmp(&b.1));
    d
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

/// The first `count` images under `dir` (sorted), each with its `k` nearest images of `train`,
/// and as many images of `held_out` with theirs; with `grid`, a PNG of one row per sample (the
/// sample, then its nearest).
pub fn nearest_report(
    dir: &Path,
    train: &Dataset,
    held_out: &Dataset,
    count: usize,
    k: usize,
    grid: Option<&Path>,
) -> Result<NearestReport> {
    if count == 0 || k == 0 {
        return Err(Error::invalid("--count and --k must be at least 1"));
    }
    if train.is_empty() || held_out.is_empty() {
        return Err(Error::invalid("the data set has no images"));
    }
    let (c, h, w) = (train.channels, train.height, train.width);
    let files: Vec<PathBuf> = imageio::list_images(dir)?.into_iter().take(count).collect();
    if files.is_empty() {
        return Err(Error::invalid(format!(
            "{}: no images (PNG, JPEG, WebP, ...) to compare",
            dir.display()
        )));
    }
    let samples: Vec<Array3<f32>> = files
        .iter()
        .map(|rel| {
            imageio::load_unit(&dir.join(rel), c, h, w).map_err(|e| {
                Error::invalid(format!(
                    "{}: {} (the data set's images are {c}x{h}x{w})",
                    rel.display(),
                    e.to_string().replace(" (use --resize to scale inputs)", "")
                ))
            })
        })
        .collect::<Result<_>>()?;
    let neighbours = |x: &Array3<f32>, name: String| Neighbours {
        image: name,
        nearest: nearest(
            train,
            x.view().into_shape_with_order(c * h * w).expect("flat"),
            k,
        ),
    };
    let sample_nb: Vec<Neighbours> = samples
        .iter()
        .zip(&files)
        .map(|(x, f)| neighbours(x, f.display().to_string()))
        .collect();
    let held: Vec<Neighbours> = (0..samples.len().min(held_out.len()))
        .map(|i| {
            let x = held_out.batch(&[i]).index_axis_move(Axis(0), 0);
            neighbours(&x, format!("held-out #{i}"))
        })
        .collect();
    let first = |v: &[Neighbours]| v.iter().map(|n| n.nearest[0].1).collect::<Vec<_>>();
    let closest_held = first(&held).into_iter().fold(f64::INFINITY, f64::min);
    let nearer = first(&sample_nb)
        .iter()
        .filter(|&&d| d < closest_held)
        .count() as f64
        / sample_nb.len() as f64;
    if let Some(path) = grid {
        let train_images: Vec<Vec<Array3<f32>>> = sample_nb
            .iter()
            .map(|n| {
                n.nearest
                    .iter()
                    .map(|&(i, _)| train.batch(&[i]).index_axis_move(Axis(0), 0))
                    .collect()
            })
            .collect();
        let rows: Vec<Vec<_>> = samples
            .iter()
            .zip(&train_images)
            .map(|(s, t)| {
                std::iter::once(s.view())
                    .chain(t.iter().map(|a| a.view()))
                    .collect()
            })
            .collect();
        imageio::save_grid(path, &rows, 3)?;
    }
    Ok(NearestReport {
        dataset: train.name.clone(),
        training_images: train.len(),
        samples_median: median(first(&sample_nb)),
        held_out_median: median(first(&held)),
        nearer_than_any_held_out: nearer,
        samples: sample_nb,
        held_out: held,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 20 random 1x4x4 images.
    fn data(seed: u8) -> Dataset {
        let px: Vec<u8> = (0..20 * 16)
            .map(|i: usize| (i.wrapping_mul(37).wrapping_add(seed as usize * 101) % 251) as u8)
            .collect();
        Dataset::from_parts("t", (1, 4, 4), px, vec![0; 20], vec!["a".into()]).expect("data")
    }

    #[test]
    fn a_copy_of_a_training_image_is_its_own_nearest_at_distance_zero() {
        let train = data(1);
        let held = data(2);
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join("samples");
        std::fs::create_dir_all(&dir).expect("mkdir");
        // A copy of training image 7, and held-out image 0 (not a training image).
        for (name, px) in [("a.png", train.image_u8(7)), ("b.png", held.image_u8(0))] {
            image::GrayImage::from_raw(4, 4, px.to_vec())
                .expect("image")
                .save(dir.join(name))
                .expect("png");
        }
        let grid = tmp.path().join("nearest.png");
        let r = nearest_report(&dir, &train, &held, 10, 3, Some(&grid)).expect("report");
        assert_eq!(r.samples.len(), 2);
        assert_eq!(r.samples[0].nearest[0], (7, 0.0));
        assert_eq!(r.samples[0].nearest.len(), 3);
        assert!(r.samples[0].nearest.windows(2).all(|w| w[0].1 <= w[1].1));
        // The held-out image as a sample has the distance the baseline measures for it.
        assert_eq!(r.samples[1].nearest, r.held_out[0].nearest);
        assert!(r.held_out_median > 0.0);
        assert_eq!(r.nearer_than_any_held_out, 0.5, "the copy alone");
        let g = image::open(&grid).expect("grid").to_luma8();
        assert!(g.width() > g.height(), "one row per sample, 4 images wide");
        let e = nearest_report(
            &dir,
            &data(3).fit_to(1, 4, 4).expect("d"),
            &held,
            10,
            0,
            None,
        );
        assert!(e.is_err(), "k = 0");
    }
}
