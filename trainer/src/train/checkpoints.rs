//! Checkpoints: every `checkpoint_every` steps before the last, and at the end (kept: the newest
//! `keep_checkpoints`).

use burn::tensor::backend::AutodiffBackend;

use super::observer::{Observer, Step};
use crate::checkpoint;
use crate::error::Result;
use crate::run_dir::RunDir;

/// Writes the run's checkpoints.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    pub run: RunDir,
    pub every: usize,
    /// The run's last step (the end writes that one).
    pub last: usize,
    pub keep: usize,
    pub backend: String,
}

impl Checkpoints {
    /// Whether the step after which the loop is writes a checkpoint (the end aside).
    pub(crate) fn due(&self, step: usize) -> bool {
        step.is_multiple_of(self.every) && step < self.last
    }

    fn save<B: AutodiffBackend>(&self, s: &Step<B>) -> Result<()> {
        checkpoint::save(&self.run.checkpoints(), s.state, &self.backend, self.keep)?;
        Ok(())
    }
}

impl<B: AutodiffBackend> Observer<B> for Checkpoints {
    fn step(&mut self, s: &Step<B>) -> Result<()> {
        if self.due(s.state.step) {
            self.save(s)?;
        }
        Ok(())
    }

    fn end(&mut self, s: &Step<B>) -> Result<()> {
        self.save(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_fall_on_their_interval_before_the_last_step() {
        let c = Checkpoints {
            run: RunDir::new("unused"),
            every: 3,
            last: 7,
            keep: 2,
            backend: "flex".into(),
        };
        let due: Vec<usize> = (1..=7).filter(|&s| c.due(s)).collect();
        assert_eq!(due, vec![3, 6]);
        let last_is_interval = Checkpoints { last: 6, ..c };
        assert_eq!(
            (1..=6).filter(|&s| last_is_interval.due(s)).count(),
            1,
            "6 is the end's"
        );
    }
}
