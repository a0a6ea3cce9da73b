//! Sample grids: the EMA network restoring fixed images (the first 8 of the test split, their
//! degradation parameters fixed by the run's seed), every `sample_every` steps and at the end,
//! as `samples/step-NNNNNNN.png` and `samples/latest.png`.

use std::fs;
use std::path::Path;

use burn::tensor::backend::AutodiffBackend;
use cold_core::data::{Dataset, Split};
use cold_core::degradation::Prepared;
use cold_core::imageio;
use ndarray::{Array2, Array4, Axis};
use rand::SeedableRng;

use super::observer::{Observer, Step};
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::model::UNet;
use crate::ops::TrainBackend;
use crate::run_dir::RunDir;
use crate::sample::restore_all;
use crate::tensor_io;

/// Fixed images for sample grids: the first `n` of the test split (or of the training data).
fn grid_images(cfg: &TrainConfig, train: &Dataset, n: usize) -> Array4<f32> {
    let test = cfg.load_data(Split::Test).ok().filter(|d| d.len() >= n);
    let d = test.as_ref().unwrap_or(train);
    let idx: Vec<usize> = (0..n.min(d.len())).collect();
    let side = cfg.degradation.height;
    if (d.height, d.width) == (side, cfg.degradation.width) {
        d.batch(&idx)
    } else {
        // The training data's scaled squares: their centres.
        let at = ((d.height - side) / 2, (d.width - side) / 2);
        d.batch_cropped(&idx, &vec![at; idx.len()], side)
    }
}

/// Per-image degradation parameters of the sample grid's images (fixed by the run's seed). The
/// first draw: an animorphosis whose source images are missing fails here, before training.
fn grid_params(cfg: &TrainConfig, n: usize) -> Result<Array2<f32>> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
    Ok(cfg.degradation.sample_params(&mut rng, n)?)
}

/// Writes the sample grid: rows degraded x_t, direct R(x_t, t), Algorithm 1, Algorithm 2 (from
/// t), original. `t` is the highest level the run trains on (`TrainConfig::top_level`: T, or
/// `--max-level`, since a network trained on levels 1..=K shows nothing from above K).
pub fn write_sample_grid<B: TrainBackend>(
    model: &UNet<B>,
    deg: &Prepared,
    t: usize,
    x0: &Array4<f32>,
    params: &Array2<f32>,
    path: &Path,
) -> Result<()> {
    let device = model.final_conv.weight.device();
    let xt = deg.apply_uniform(x0.view(), t, params.view())?;
    let r = restore_all(
        model,
        deg,
        tensor_io::to_tensor::<B>(&xt, &device),
        t,
        params.view(),
    );
    let rows: Vec<Array4<f32>> = [r.direct, r.algorithm1, r.algorithm2]
        .into_iter()
        .map(|t| tensor_io::to_array(t))
        .chain([x0.clone()])
        .collect();
    let rows: Vec<Array4<f32>> = std::iter::once(xt).chain(rows).collect();
    let views: Vec<Vec<_>> = rows.iter().map(|a| a.outer_iter().collect()).collect();
    imageio::save_grid(path, &views, 3)?;
    Ok(())
}

/// Writes the run's sample grids.
#[derive(Debug)]
pub(crate) struct SampleGrids {
    run: RunDir,
    every: usize,
    degradation: Prepared,
    level: usize,
    x0: Array4<f32>,
    params: Array2<f32>,
}

impl SampleGrids {
    /// The grid's images and parameters for a run on `data`. Draws the parameters first: an
    /// animorphosis whose source images are missing fails here, before training.
    pub fn new(
        run: &RunDir,
        cfg: &TrainConfig,
        data: &Dataset,
        degradation: Prepared,
    ) -> Result<Self> {
        let x0 = grid_images(cfg, data, 8);
        let params = grid_params(cfg, x0.len_of(Axis(0)))?;
        Ok(SampleGrids {
            run: run.clone(),
            every: cfg.sample_every,
            degradation,
            level: cfg.top_level(),
            x0,
            params,
        })
    }

    fn write<B: TrainBackend>(&self, model: &UNet<B>, step: usize) -> Result<()> {
        let p = self.run.samples().join(format!("step-{step:07}.png"));
        write_sample_grid(
            model,
            &self.degradation,
            self.level,
            &self.x0,
            &self.params,
            &p,
        )?;
        fs::copy(&p, self.run.samples().join("latest.png")).map_err(|e| TrainError::io(&p, e))?;
        Ok(())
    }
}

impl<B: AutodiffBackend + TrainBackend> Observer<B> for SampleGrids
where
    B::InnerBackend: TrainBackend,
{
    fn step(&mut self, s: &Step<B>) -> Result<()> {
        let step = s.state.step;
        if self.every > 0 && step.is_multiple_of(self.every) {
            self.write(&s.state.ema, step)?;
        }
        Ok(())
    }

    fn end(&mut self, s: &Step<B>) -> Result<()> {
        self.write(&s.state.ema, s.state.step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;
    use crate::model::InitUNet;

    #[test]
    fn a_run_trained_below_t_draws_its_grids_from_its_top_level() {
        let mut cfg = TrainConfig::new("mnist", "mnist", "tiny").expect("cfg");
        // No test split to read: the grid falls back to the training images below.
        cfg.dataset = "folder:/nonexistent/cold-grid-test".into();
        let data = Dataset::from_parts(
            "synthetic",
            (1, 28, 28),
            vec![0; 8 * 784],
            vec![0; 8],
            vec![],
        )
        .expect("data");
        let tmp = tempfile::tempdir().expect("tmp");
        let level = |cfg: &TrainConfig| {
            let deg = cfg.degradation.prepare().expect("deg");
            SampleGrids::new(&RunDir::new(tmp.path()), cfg, &data, deg)
                .expect("grids")
                .level
        };
        assert_eq!(level(&cfg), cfg.degradation.steps);
        cfg.max_level = Some(2);
        assert_eq!(level(&cfg), 2);
    }

    #[test]
    fn a_grid_has_a_row_per_stage_and_a_column_per_image() {
        let cfg = TrainConfig::new("mnist", "mnist", "tiny").expect("cfg");
        let net = cfg.model.init::<B>(&Default::default());
        let deg = cfg.degradation.prepare().expect("deg");
        let x0 = Array4::<f32>::zeros((3, 1, 28, 28));
        let params = Array2::<f32>::zeros((3, 0));
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("grid.png");
        write_sample_grid(&net, &deg, deg.steps(), &x0, &params, &p).expect("grid");
        let im = image::open(&p).expect("png");
        // 5 rows (degraded, direct, Algorithm 1, Algorithm 2, original) of 3 images, scaled 3x.
        let (w, h) = (im.width() / 3, im.height() / 3);
        assert!((3 * 28..4 * 28).contains(&w), "{w}");
        assert!((5 * 28..6 * 28).contains(&h), "{h}");
    }
}
