//! The Gaussian mixture over per-channel image means that unconditional generation draws from
//! (`cold_core::generation`), fitted with linfa's GMM (full covariances, k-means start); or over
//! the first principal components of the degraded images at a level (`fit_subspace`).

use cold_core::data::Dataset;
use cold_core::degradation::Degradation;
use cold_core::generation::{Component, Generation, Subspace};
use faer::{Mat, Side};
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
    let g = fit_points(data, &means, data.channels, components, by_class, 1e-6)?;
    g.validate(data.channels)?;
    Ok(g)
}

/// As [`fit`], over the coefficients of the first `dims` principal components of
/// `D(x, level)` of the images (all when `limit` is 0) instead of their channel means: starts
/// drawn from it are restored from `level` (`cold_core::generation::Subspace`).
pub(crate) fn fit_subspace(
    data: &Dataset,
    degradation: &Degradation,
    level: usize,
    dims: usize,
    components: usize,
    limit: usize,
    by_class: bool,
) -> Result<Generation> {
    let (space, coefficients) = principal_components(data, degradation, level, dims, limit)?;
    tracing::info!(
        "generation subspace: {dims} principal components of D(x, {level}) hold {:.4}% of its \
         variance",
        100.0 * space.explained
    );
    // The coefficients' spreads fall by orders of magnitude from the first direction to the
    // last, which leaves linfa's EM ill-conditioned (NaN responsibilities): fit each coefficient
    // in units of its own standard deviation, then scale the mixtures back.
    let n = coefficients.len().max(1) as f64;
    let sd: Vec<f64> = (0..dims)
        .map(|j| {
            let m = coefficients.iter().map(|z| z[j]).sum::<f64>() / n;
            let v = coefficients.iter().map(|z| (z[j] - m).powi(2)).sum::<f64>() / n;
            v.sqrt().max(1e-12)
        })
        .collect();
    let unit: Vec<Vec<f64>> = coefficients
        .iter()
        .map(|z| z.iter().zip(&sd).map(|(v, s)| v / s).collect())
        .collect();
    // 1e-3 of each coefficient's variance added to the diagonals keeps every covariance
    // positive definite in the EM steps at many dimensions.
    let mut g = fit_points(data, &unit, dims, components, by_class, 1e-3)?;
    rescale(&mut g, &sd);
    for m in &mut g.by_class {
        rescale(m, &sd);
    }
    g.subspace = Some(space);
    g.validate(data.channels)?;
    Ok(g)
}

/// The components of `g`, fitted on coordinates divided by `sd`, in the original coordinates.
fn rescale(g: &mut Generation, sd: &[f64]) {
    for c in &mut g.components {
        for (m, s) in c.mean.iter_mut().zip(sd) {
            *m *= s;
        }
        for (row, si) in c.covariance.iter_mut().zip(sd) {
            for (v, sj) in row.iter_mut().zip(sd) {
                *v *= si * sj;
            }
        }
    }
}

/// The first `dims` principal directions of `D(x, level)` over the images (all when `limit` is
/// 0), and each image's coefficients along them.
fn principal_components(
    data: &Dataset,
    degradation: &Degradation,
    level: usize,
    dims: usize,
    limit: usize,
) -> Result<(Subspace, Vec<Vec<f64>>)> {
    let bad = |why: String| Err(TrainError::Config(format!("generation subspace: {why}")));
    if !(1..=degradation.steps).contains(&level) {
        return bad(format!(
            "--level {level} must be in 1..={}",
            degradation.steps
        ));
    }
    let n = if limit == 0 {
        data.len()
    } else {
        limit.min(data.len())
    };
    let p = data.channels * data.height * data.width;
    if dims == 0 || dims > p.min(n.saturating_sub(1)) {
        return bad(format!(
            "--dims {dims} must be between 1 and {} ({n} images of {p} values)",
            p.min(n.saturating_sub(1))
        ));
    }
    let prepared = degradation.prepare()?;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
    let mut x = Mat::<f64>::zeros(n, p);
    for start in (0..n).step_by(1000) {
        let idx: Vec<usize> = (start..(start + 1000).min(n)).collect();
        let params = degradation.sample_params(&mut rng, idx.len())?;
        if params.ncols() > 0 {
            return bad(
                "the degradation draws parameters per image (a start must not depend on them): \
                 fit the channel-mean mixture instead (no --level)"
                    .into(),
            );
        }
        let y = prepared.apply_uniform(data.batch(&idx).view(), level, params.view())?;
        for (r, img) in y.outer_iter().enumerate() {
            for (k, &v) in img.iter().enumerate() {
                x[(start + r, k)] = f64::from(v);
            }
        }
    }
    let mean: Vec<f64> = (0..p)
        .map(|k| (0..n).map(|i| x[(i, k)]).sum::<f64>() / n as f64)
        .collect();
    for k in 0..p {
        for i in 0..n {
            x[(i, k)] -= mean[k];
        }
    }
    let cov = x.transpose() * &x * faer::Scale(1.0 / n as f64);
    let eig = cov
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| TrainError::Config(format!("generation subspace: {e:?}")))?;
    let values: Vec<f64> = (0..p).map(|k| eig.S()[k]).collect();
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let top = &order[..dims];
    let explained =
        top.iter().map(|&k| values[k].max(0.0)).sum::<f64>() / total.max(f64::MIN_POSITIVE);
    let basis: Vec<Vec<f64>> = top
        .iter()
        .map(|&k| (0..p).map(|i| eig.U()[(i, k)]).collect())
        .collect();
    let coefficients = (0..n)
        .map(|i| {
            basis
                .iter()
                .map(|b| (0..p).map(|k| x[(i, k)] * b[k]).sum())
                .collect()
        })
        .collect();
    let space = Subspace {
        level,
        mean: mean.iter().map(|&m| m as f32).collect(),
        basis: basis
            .iter()
            .map(|b| b.iter().map(|&v| v as f32).collect())
            .collect(),
        explained,
    };
    Ok((space, coefficients))
}

/// The overall mixture of `points` (`[N, dims]`, the first N images of `data`) and, with
/// `by_class`, one per class.
fn fit_points(
    data: &Dataset,
    means: &[Vec<f64>],
    dims: usize,
    components: usize,
    by_class: bool,
    reg: f64,
) -> Result<Generation> {
    let mut g = fit_means(means, dims, components, &data.name, reg)?;
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
                fit_means(&own, dims, components.min(n / 2).max(1), &label, reg)?
            };
            g.by_class.push(class_mixture);
        }
    }
    Ok(g)
}

/// Fits `components` Gaussians to points `[N, C]` (channel means, or subspace coefficients),
/// `reg` added to the diagonal of every covariance.
fn fit_means(
    means: &[Vec<f64>],
    c: usize,
    components: usize,
    name: &str,
    reg: f64,
) -> Result<Generation> {
    let n = means.len();
    if components == 0 || n < components.max(2) {
        return Err(TrainError::Config(format!(
            "a mixture of {components} components needs more than {n} images"
        )));
    }
    let comps = if components == 1 {
        // One Gaussian is the sample mean and covariance: no EM (whose responsibilities
        // underflow for tight classes at many dimensions).
        let mean: Vec<f64> = (0..c)
            .map(|i| means.iter().map(|p| p[i]).sum::<f64>() / n as f64)
            .collect();
        let covariance = (0..c)
            .map(|i| {
                (0..c)
                    .map(|j| {
                        let v = means
                            .iter()
                            .map(|p| (p[i] - mean[i]) * (p[j] - mean[j]))
                            .sum::<f64>()
                            / n as f64;
                        if i == j { v + reg } else { v }
                    })
                    .collect()
            })
            .collect();
        vec![Component {
            weight: 1.0,
            mean,
            covariance,
        }]
    } else {
        gmm_components(means, c, components, name, reg)?
    };
    let g = Generation {
        components: comps,
        fitted_on: name.to_string(),
        images: n,
        by_class: Vec::new(),
        guidance: None,
        temperature: None,
        subspace: None,
    };
    g.validate(c)?;
    Ok(g)
}

/// `components` Gaussians fitted to `means` by linfa's EM (full covariances, k-means start).
fn gmm_components(
    means: &[Vec<f64>],
    c: usize,
    components: usize,
    name: &str,
    reg: f64,
) -> Result<Vec<Component>> {
    let n = means.len();
    let flat: Vec<f64> = means.iter().flatten().copied().collect();
    let x = ndarray016::Array2::from_shape_vec((n, c), flat)
        .map_err(|e| TrainError::Config(e.to_string()))?;
    let ds = DatasetBase::from(x);
    let gmm = GaussianMixtureModel::params(components)
        .covariance_type(GmmCovarType::Full)
        .n_runs(3)
        .tolerance(1e-6)
        .max_n_iterations(500)
        .reg_covariance(reg)
        .fit(&ds)
        .map_err(|e| {
            TrainError::Config(format!(
                "fitting the generation mixture of {components} components over {c} dimensions \
                 to {n} points ({name}): {e}; try fewer components or dimensions"
            ))
        })?;
    Ok((0..components)
        .map(|k| Component {
            weight: gmm.weights()[k],
            mean: gmm.means().row(k).to_vec(),
            covariance: (0..c)
                .map(|i| (0..c).map(|j| gmm.covariances()[[k, i, j]]).collect())
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 48 MNIST test digits of the repository's fixture.
    fn fixture() -> Dataset {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mnist");
        Dataset::load(
            &cold_core::data::Source::Mnist(Some(dir)),
            cold_core::data::Split::Test,
        )
        .expect("fixture")
    }

    #[test]
    fn one_component_is_the_sample_mean_and_covariance() {
        let data = fixture();
        let g = fit(&data, 1, 0, false).expect("fit");
        assert!(g.by_class.is_empty());
        let m = channel_means(&data, 0);
        let n = m.len() as f64;
        let mean = m.iter().map(|v| v[0]).sum::<f64>() / n;
        let var = m.iter().map(|v| (v[0] - mean).powi(2)).sum::<f64>() / n;
        assert_eq!(g.components.len(), 1);
        assert!((g.components[0].mean[0] - mean).abs() < 1e-9);
        // The maximum-likelihood covariance plus the regularisation (1e-6) on the diagonal
        assert!(
            (g.components[0].covariance[0][0] - var).abs() < 1e-5,
            "{g:?} vs {var}"
        );
        assert!(mean < -0.5, "MNIST digits are mostly black: {mean}");
        assert_eq!(g.images, 48);
    }

    #[test]
    fn the_subspace_holds_the_leading_eigenvectors_of_the_degraded_images() {
        let data = fixture();
        let d = cold_core::training::TrainConfig::new("mnist", "mnist", "tiny")
            .expect("cfg")
            .degradation;
        let (level, dims) = (8, 5);
        let g = fit_subspace(&data, &d, level, dims, 1, 0, true).expect("fit");
        let s = g.subspace.as_ref().expect("subspace");
        assert_eq!(
            (s.level, s.basis.len(), g.by_class.len()),
            (level, dims, 10)
        );
        // An independent covariance of D(x, level) in float64.
        let y = d
            .prepare()
            .and_then(|p| {
                let all: Vec<usize> = (0..data.len()).collect();
                p.apply_uniform(
                    data.batch(&all).view(),
                    level,
                    ndarray::Array2::zeros((48, 0)).view(),
                )
            })
            .expect("D");
        let n = data.len() as f64;
        let p = 28 * 28;
        let rows: Vec<Vec<f64>> = y
            .outer_iter()
            .map(|im| im.iter().map(|&v| f64::from(v)).collect())
            .collect();
        let mean: Vec<f64> = (0..p)
            .map(|k| rows.iter().map(|r| r[k]).sum::<f64>() / n)
            .collect();
        for (k, m) in mean.iter().enumerate() {
            assert!((f64::from(s.mean[k]) - m).abs() < 1e-5, "mean pixel {k}");
        }
        let cov = |u: &[f64], v: &[f32]| {
            rows.iter()
                .map(|r| {
                    let a: f64 = (0..p).map(|k| (r[k] - mean[k]) * u[k]).sum();
                    let b: f64 = (0..p).map(|k| (r[k] - mean[k]) * f64::from(v[k])).sum();
                    a * b
                })
                .sum::<f64>()
                / n
        };
        let trace: f64 = rows
            .iter()
            .map(|r| (0..p).map(|k| (r[k] - mean[k]).powi(2)).sum::<f64>())
            .sum::<f64>()
            / n;
        let mut held = 0.0;
        let mut last = f64::INFINITY;
        for (j, b) in s.basis.iter().enumerate() {
            let b64: Vec<f64> = b.iter().map(|&v| f64::from(v)).collect();
            // Unit length, orthogonal to the others, and an eigenvector: C b = lambda b.
            for (i, o) in s.basis.iter().enumerate() {
                let dot: f64 = b64.iter().zip(o).map(|(x, &y)| x * f64::from(y)).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((dot - want).abs() < 1e-4, "basis {j}.{i}: {dot}");
            }
            let lambda = cov(&b64, b);
            assert!(
                lambda <= last * (1.0 + 1e-6),
                "variances decrease: {lambda} after {last}"
            );
            last = lambda;
            held += lambda;
            let proj: Vec<f64> = rows
                .iter()
                .map(|r| (0..p).map(|i| (r[i] - mean[i]) * b64[i]).sum())
                .collect();
            let cb: Vec<f64> = (0..p)
                .map(|k| {
                    rows.iter()
                        .zip(&proj)
                        .map(|(r, a)| (r[k] - mean[k]) * a)
                        .sum::<f64>()
                        / n
                })
                .collect();
            let off = (0..p)
                .map(|k| (cb[k] - lambda * b64[k]).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(
                off < 1e-4 * lambda.max(1e-9) + 1e-6,
                "direction {j}: |Cb - lb| = {off}"
            );
        }
        assert!(
            (s.explained - held / trace).abs() < 1e-4,
            "{} vs {}",
            s.explained,
            held / trace
        );
        // One component: the Gaussian of the coefficients, centred (their mean is 0).
        assert!(
            g.components[0].mean.iter().all(|m| m.abs() < 1e-4),
            "{:?}",
            g.components[0].mean
        );
        // Each direction's variance, times 1 + 1e-3: the fit adds 1e-3 of each coefficient's
        // variance to the diagonal (it runs in units of their spreads, scaled back after).
        let lambda0 = cov(
            &s.basis[0].iter().map(|&v| f64::from(v)).collect::<Vec<_>>(),
            &s.basis[0],
        );
        for (j, lambda) in [(0, lambda0), (dims - 1, last)] {
            let v = g.components[0].covariance[j][j];
            assert!(
                (v - lambda * (1.0 + 1e-3)).abs() < 1e-4 * lambda,
                "direction {j}: {v} against {lambda}"
            );
        }
        // Refused: a level outside 1..=T, too many directions, per-image parameters.
        assert!(fit_subspace(&data, &d, 0, 2, 1, 0, false).is_err());
        assert!(fit_subspace(&data, &d, d.steps + 1, 2, 1, 0, false).is_err());
        assert!(fit_subspace(&data, &d, 3, 48, 1, 0, false).is_err());
        let snow = cold_core::training::TrainConfig::new("mnist", "mnist-inpaint", "tiny")
            .expect("cfg")
            .degradation;
        let e = fit_subspace(&data, &snow, 3, 2, 1, 0, false).expect_err("per-image masks");
        assert!(e.to_string().contains("per image"), "{e}");
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
