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
/// when `limit` is 0).
pub(crate) fn fit(data: &Dataset, components: usize, limit: usize) -> Result<Generation> {
    let means = channel_means(data, limit);
    let (n, c) = (means.len(), data.channels);
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
        fitted_on: data.name.clone(),
        images: n,
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
        let g = fit(&data, 1, 0).expect("fit");
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
}
