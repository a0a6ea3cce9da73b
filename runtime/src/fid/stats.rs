//! Feature statistics (mean and covariance, float64), their file format, and the Fréchet
//! distance between two of them.

use std::io::{Read, Write};
use std::path::Path;

use faer::{Mat, Side};

use crate::error::{Error, Result};
use cold_core::atomic;

const MAGIC: &[u8; 8] = b"COLDFID1";

/// Mean and covariance of a set of feature vectors.
#[derive(Clone, Debug)]
pub struct Stats {
    /// Images the statistics come from.
    pub n: usize,
    pub mean: Vec<f64>,
    /// Unbiased (N - 1) covariance, symmetric.
    pub cov: Mat<f64>,
}

impl Stats {
    /// From the count, the sum and the sum of outer products `X^T X`.
    pub(crate) fn from_moments(n: usize, sum: &[f64], cross: &Mat<f64>) -> Result<Self> {
        if n < 2 {
            return Err(Error::invalid(format!(
                "a covariance needs at least 2 images, got {n}"
            )));
        }
        let d = sum.len();
        let nf = n as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / nf).collect();
        let cov = Mat::from_fn(d, d, |i, j| {
            (cross[(i, j)] - nf * mean[i] * mean[j]) / (nf - 1.0)
        });
        Ok(Stats { n, mean, cov })
    }

    /// From feature vectors (rows), directly (tests and small sets).
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let n = rows.len();
        let d = rows.first().map_or(0, |r| r.len());
        let mut sum = vec![0.0; d];
        let mut cross = Mat::<f64>::zeros(d, d);
        for r in rows {
            for i in 0..d {
                sum[i] += r[i];
                for j in 0..d {
                    cross[(i, j)] += r[i] * r[j];
                }
            }
        }
        Self::from_moments(n, &sum, &cross)
    }

    /// Writes the statistics (`COLDFID1`, n, d, mean, covariance; little-endian).
    pub fn save(&self, path: &Path) -> Result<()> {
        let d = self.mean.len();
        atomic::write_atomic_with(path, |w| {
            w.write_all(MAGIC)?;
            w.write_all(&(self.n as u64).to_le_bytes())?;
            w.write_all(&(d as u64).to_le_bytes())?;
            for v in &self.mean {
                w.write_all(&v.to_le_bytes())?;
            }
            for i in 0..d {
                for j in 0..d {
                    w.write_all(&self.cov[(i, j)].to_le_bytes())?;
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Reads statistics written by [`Stats::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "{}: not a FID statistics file ({why}); make it again with `cold fid --save-stats`",
                path.display()
            ))
        };
        let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
        if bytes.len() < 24 || &bytes[..8] != MAGIC {
            return Err(bad("wrong header"));
        }
        let word =
            |k: usize| u64::from_le_bytes(bytes[8 * k..8 * k + 8].try_into().unwrap_or([0; 8]));
        let (n, d) = (word(1) as usize, word(2) as usize);
        if d == 0 || bytes.len() != 24 + 8 * (d + d * d) {
            return Err(bad("truncated"));
        }
        let f64_at = |k: usize| {
            let o = 24 + 8 * k;
            f64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]))
        };
        let mean = (0..d).map(f64_at).collect();
        let cov = Mat::from_fn(d, d, |i, j| f64_at(d + i * d + j));
        Ok(Stats { n, mean, cov })
    }
}

/// `|mu_a - mu_b|^2 + tr(S_a) + tr(S_b) - 2 tr (S_a^(1/2) S_b S_a^(1/2))^(1/2)`, in float64.
/// Eigenvalues that rounding pushes below zero count as zero.
pub fn frechet_distance(a: &Stats, b: &Stats) -> Result<f64> {
    let d = a.mean.len();
    if b.mean.len() != d {
        return Err(Error::invalid(format!(
            "feature statistics of different widths ({d} and {})",
            b.mean.len()
        )));
    }
    let dmu: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y).powi(2))
        .sum();
    let trace = |m: &Mat<f64>| (0..d).map(|i| m[(i, i)]).sum::<f64>();
    let eig_err = |e| Error::invalid(format!("eigendecomposition failed: {e:?}"));
    // S_a^(1/2) = U diag(sqrt(max(l, 0))) U^T
    let ea = a.cov.self_adjoint_eigen(Side::Lower).map_err(eig_err)?;
    let u = ea.U();
    let s = ea.S();
    let us = Mat::from_fn(d, d, |i, k| u[(i, k)] * s[k].max(0.0).sqrt());
    let root = &us * u.transpose();
    let m = &root * &b.cov * &root;
    // symmetrise against rounding before the second decomposition
    let m = Mat::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let ev = m.self_adjoint_eigenvalues(Side::Lower).map_err(eig_err)?;
    let tr_sqrt: f64 = ev.iter().map(|l| l.max(0.0).sqrt()).sum();
    Ok(dmu + trace(&a.cov) + trace(&b.cov) - 2.0 * tr_sqrt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    fn random_stats(seed: u64, n: usize, d: usize) -> Stats {
        let mut rng = StdRng::seed_from_u64(seed);
        let mix: Vec<Vec<f64>> = (0..d)
            .map(|_| (0..d).map(|_| rng.random_range(-1.0..1.0)).collect())
            .collect();
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                let z: Vec<f64> = (0..d).map(|_| rng.random_range(-1.0..1.0)).collect();
                (0..d)
                    .map(|i| (0..d).map(|k| mix[i][k] * z[k]).sum::<f64>() + 0.3)
                    .collect()
            })
            .collect();
        Stats::from_rows(&rows).expect("stats")
    }

    #[test]
    fn a_set_against_itself_is_zero() {
        let s = random_stats(1, 200, 12);
        let f = frechet_distance(&s, &s).expect("fid");
        assert!(f.abs() < 1e-9, "{f}");
    }

    /// Closed form: for commuting covariances (here both diagonal)
    /// FID = |dmu|^2 + sum (a + b - 2 sqrt(a b)).
    #[test]
    fn two_gaussians_in_closed_form() {
        let d = 5;
        let va = [1.0, 2.0, 0.5, 3.0, 0.1];
        let vb = [4.0, 0.5, 0.5, 1.0, 0.9];
        let a = Stats {
            n: 10,
            mean: vec![0.0, 1.0, 2.0, 0.0, -1.0],
            cov: Mat::from_fn(d, d, |i, j| if i == j { va[i] } else { 0.0 }),
        };
        let b = Stats {
            n: 10,
            mean: vec![1.0, 1.0, 0.0, 0.0, -1.0],
            cov: Mat::from_fn(d, d, |i, j| if i == j { vb[i] } else { 0.0 }),
        };
        let want: f64 = 1.0
            + 4.0
            + va.iter()
                .zip(&vb)
                .map(|(x, y): (&f64, &f64)| x + y - 2.0 * (x * y).sqrt())
                .sum::<f64>();
        let got = frechet_distance(&a, &b).expect("fid");
        assert!((got - want).abs() < 1e-9, "{got} vs {want}");
        // A full (non-diagonal) case: rotate both covariances by the same orthogonal matrix;
        // the distance without the mean term does not change.
        let (c, s) = (0.6f64, 0.8f64);
        let q = Mat::from_fn(d, d, |i, j| match (i, j) {
            (0, 0) | (1, 1) => c,
            (0, 1) => -s,
            (1, 0) => s,
            _ if i == j => 1.0,
            _ => 0.0,
        });
        let rot = |m: &Mat<f64>| &q * m * q.transpose();
        let ar = Stats {
            cov: rot(&a.cov),
            mean: vec![0.0; d],
            n: 10,
        };
        let br = Stats {
            cov: rot(&b.cov),
            mean: vec![0.0; d],
            n: 10,
        };
        let got = frechet_distance(&ar, &br).expect("fid");
        assert!((got - (want - 5.0)).abs() < 1e-9, "{got} vs {}", want - 5.0);
        // symmetric in its arguments
        let back = frechet_distance(&br, &ar).expect("fid");
        assert!((got - back).abs() < 1e-9);
    }

    #[test]
    fn moments_give_numpy_covariance_and_files_round_trip() {
        let rows = vec![vec![1.0, 2.0], vec![3.0, 0.0], vec![2.0, 4.0]];
        let s = Stats::from_rows(&rows).expect("stats");
        assert_eq!(s.mean, vec![2.0, 2.0]);
        // numpy.cov(rows, rowvar=False) = [[1, -1], [-1, 4]]
        assert!((s.cov[(0, 0)] - 1.0).abs() < 1e-12 && (s.cov[(0, 1)] + 1.0).abs() < 1e-12);
        assert!((s.cov[(1, 1)] - 4.0).abs() < 1e-12);
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("a.fidstats");
        s.save(&p).expect("save");
        let back = Stats::load(&p).expect("load");
        assert_eq!((back.n, back.mean.clone()), (3, s.mean.clone()));
        assert_eq!(back.cov, s.cov);
        std::fs::write(&p, b"COLDFID1short").expect("w");
        assert!(Stats::load(&p).is_err());
        assert!(
            Stats::from_rows(&rows[..1]).is_err(),
            "one image has no covariance"
        );
    }
}
