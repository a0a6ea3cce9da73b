//! The Gaussian mixture over per-channel image means that unconditional generation draws from
//! (`cold_core::generation`), fitted with linfa's GMM (full covariances, k-means start).

use cold_core::data::Dataset;
use cold_core::generation::{Component, Generation};
use linfa::prelude::*;
use linfa_clustering::{GaussianMixtureModel, GmmCovarType};

use crate::error::{Result, TrainError};

/// Per-channel means `[N, C]` of the data set's images, in the model's value range [-1, 1].
pub(crate) fn channel_means(data: &Dataset, limit: usize) -> Vec<Vec<f64>> {
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(1000) {
        let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
        let x = data.batch(&idx);
        for img in x.outer_iter() {
            out.push(
                img.outer_iter()
                    .map(|plane| {
                        plane.iter().map(|&v| f64::from(v)).sum::<f64>() / plane.len() as f64
                    })
                    .collect(),
            );
        }
    }
    out
}

/// Fits `components` Gaussians (full covariance) to the channel means of `data` (all images
/// when `limit` is 0). With `by_class`, also one mixture per class on that class's images (up to
/// `components` each, fewer for a class of few images), for `cold generate --class`.
pub(crate) fn fit(
    data: &Dataset,
    components: usize,
    limit: usize,
    by_class: bool,
) -> Result<Generation> {
    let means = channel_means(data, limit);
    let mut g = fit_means(&means, data.channels, components, &data.name)?;
    if by_class {
        for (k, name) in data.class_names.iter().enumerate() {
            let own: Vec<Vec<f64>> = means
                .iter()
                .zip(&data.labels)
                .filter(|&(_, &l)| l as usize == k)
                .map(|(m, _)| m.clone())
                .collect();
            let n = own.len();
            let label = format!("{} (class {name})", data.name);
            let class_mixture = if n < 2 {
                // Too few to fit: the class starts from the whole data set's mixture.
                tracing::warn!(
                    "class {name} has {n} image(s) among the {} the mixture is fitted on: it \
                     starts from the overall mixture",
                    means.len()
                );
                Generation {
                    fitted_on: format!("{label}: too few images, the overall mixture"),
                    ..g.clone()
                }
            } else {
                fit_means(&own, data.channels, components.min(n / 2).max(1), &label)?
            };
            g.by_class.push(class_mixture);
        }
    }
    g.validate(data.channels)?;
    Ok(g)
}

/// Fits `components` Gaussians to channel means `[N, C]`.
fn fit_means(means: &[Vec<f64>], c: usize, components: usize, name: &str) -> Result<Generation> {
    let n = means.len();
    if components == 0 || n < components.max(2) {
        return Err(TrainError::Config(format!(
            "a mixture of {components} components needs more than {n} images"
        )));
    }
    let flat: Vec<f64> = means.iter().flatten().copied().collect();
    let x = ndarray016::Array2::from_shape_vec((n, c), flat)
        .map_err(|e| TrainError::Config(e.to_string()))?;
    let ds = DatasetBase::from(x);
    let gmm = GaussianMixtureModel::params(components)
        .covariance_type(GmmCovarType::Full)
        .n_runs(3)
        .tolerance(1e-6)
        .max_n_iterations(500)
        .fit(&ds)
        .map_err(|e| TrainError::Config(format!("fitting the generation mixture: {e}")))?;
    let comps = (0..components)
        .map(|k| Component {
            weight: gmm.weights()[k],
            mean: gmm.means().row(k).to_vec(),
            covariance: (0..c)
                .map(|i| (0..c).map(|j| gmm.covariances()[[k, i, j]]).collect())
                .collect(),
        })
        .collect();
    let g = Generation {
        components: comps,
        fitted_on: name.to_string(),
        images: n,
        by_class: Vec::new(),
        guidance: None,
    };
    g.validate(c)?;
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_component_is_the_sample_mean_and_covariance() {
        let fixture =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mnist");
        let data = Dataset::load(
            &cold_core::data::Source::Mnist(Some(fixture)),
            cold_core::data::Split::Test,
        )
        .expect("fixture");
        let g = fit(&data, 1, 0, false).expect("fit");
        assert!(g.by_class.is_empty());
        let m = channel_means(&data, 0);
        let n = m.len() as f64;
        let mean = m.iter().map(|v| v[0]).sum::<f64>() / n;
        let var = m.iter().map(|v| (v[0] - mean).powi(2)).sum::<f64>() / n;
        assert_eq!(g.components.len(), 1);
        assert!((g.components[0].mean[0] - mean).abs() < 1e-9);
        // linfa adds a small regularisation (1e-6) to the maximum-likelihood covariance
        assert!(
            (g.components[0].covariance[0][0] - var).abs() < 1e-5,
            "{g:?} vs {var}"
        );
        assert!(mean < -0.5, "MNIST digits are mostly black: {mean}");
        assert_eq!(g.images, 48);
    }

    #[test]
    fn each_class_gets_the_mixture_of_its_own_images() {
        // Three classes of 4x4 grey images around their own brightness, and an empty fourth.
        let (per, side) = (6usize, 4usize);
        let mut pixels = Vec::new();
        let mut labels = Vec::new();
        for class in 0..3u32 {
            for i in 0..per {
                let level = 40 + 80 * class as usize + 3 * i;
                pixels.extend(std::iter::repeat_n(level as u8, side * side));
                labels.push(class);
            }
        }
        let names = ["dark", "mid", "light", "none"].map(String::from).to_vec();
        let data = Dataset::from_parts("synthetic", (1, side, side), pixels, labels, names)
            .expect("parts");
        let g = fit(&data, 1, 0, true).expect("fit");
        assert_eq!(g.by_class.len(), 4);
        let m = channel_means(&data, 0);
        for (k, own) in g.by_class.iter().take(3).enumerate() {
            let mine: Vec<f64> = m[k * per..(k + 1) * per].iter().map(|v| v[0]).collect();
            let mean = mine.iter().sum::<f64>() / per as f64;
            assert_eq!(own.images, per);
            assert!((own.components[0].mean[0] - mean).abs() < 1e-9, "class {k}");
        }
        assert!(g.by_class[0].components[0].mean[0] < g.by_class[1].components[0].mean[0]);
        assert!(g.by_class[1].components[0].mean[0] < g.by_class[2].components[0].mean[0]);
        // the empty class starts from the overall mixture
        assert_eq!(g.by_class[3].components, g.components);
        assert!(
            g.by_class[3].fitted_on.contains("too few"),
            "{}",
            g.by_class[3].fitted_on
        );
    }
}
