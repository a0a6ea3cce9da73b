//! The loss log `loss.csv` and its curve `loss.png`, written with every checkpoint (so that a
//! killed run's log reaches its last checkpoint) and at the end.

use burn::tensor::backend::AutodiffBackend;

use super::observer::{Observer, Step};
use crate::config::TrainConfig;
use crate::error::Result;
use crate::plot;
use crate::run_dir::{RunDir, loss_title, write_losses};

/// Writes the loss log and curve.
#[derive(Debug)]
pub(crate) struct LossLog {
    pub run: RunDir,
    /// Written at the steps where a checkpoint is.
    pub every: usize,
    pub last: usize,
    /// The curve's title (data set and degradation).
    pub title: String,
}

impl LossLog {
    pub fn new(run: &RunDir, cfg: &TrainConfig) -> Self {
        LossLog {
            run: run.clone(),
            every: cfg.checkpoint_every,
            last: cfg.steps,
            title: loss_title(cfg),
        }
    }

    fn write(&self, losses: &[(usize, f64)]) -> Result<()> {
        write_losses(&self.run.loss_csv(), losses)?;
        plot::loss_curve(losses, &self.title, None, &self.run.loss_png())
    }
}

impl<B: AutodiffBackend> Observer<B> for LossLog {
    fn step(&mut self, s: &Step<B>) -> Result<()> {
        let step = s.state.step;
        if step.is_multiple_of(self.every) && step < self.last {
            self.write(s.losses)?;
        }
        Ok(())
    }

    fn end(&mut self, s: &Step<B>) -> Result<()> {
        self.write(s.losses)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_dir::read_losses;

    #[test]
    fn the_log_and_its_curve_are_written_and_read_back() {
        let tmp = tempfile::tempdir().expect("tmp");
        let run = RunDir::new(tmp.path());
        let log = LossLog {
            run: run.clone(),
            every: 2,
            last: 4,
            title: "test".into(),
        };
        let losses: Vec<(usize, f64)> = (1..=4).map(|s| (s, 1.0 / s as f64)).collect();
        log.write(&losses).expect("write");
        assert_eq!(read_losses(&run.loss_csv()), losses);
        assert!(image::open(run.loss_png()).is_ok());
    }
}
