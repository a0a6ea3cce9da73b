//! When the training loop stops before its last step: Ctrl-C (after the step in hand, with a
//! checkpoint), a time budget, and a loss that is no longer a number (an error that names the
//! last good checkpoint).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::checkpoint;
use crate::error::{Result, TrainError};

/// Whether the loop takes another step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// Stop cleanly; the run can be resumed.
    Stop,
}

/// A reason to stop.
pub trait StopCondition {
    /// Before a step: `step` steps taken in all, `done` by this invocation, `elapsed` seconds
    /// since its first step began, `first_step` seconds that step took.
    fn before_step(&mut self, step: usize, done: usize, elapsed: f64, first_step: f64) -> Verdict;

    /// After a step with `loss`, before its result is kept: an error stops the run.
    fn after_step(&mut self, _step: usize, _loss: f32) -> Result<()> {
        Ok(())
    }
}

/// Ctrl-C: the flag the handler sets.
#[derive(Debug)]
pub(crate) struct CtrlC(pub Arc<AtomicBool>);

impl StopCondition for CtrlC {
    fn before_step(&mut self, _: usize, _: usize, _: f64, _: f64) -> Verdict {
        if self.0.load(Ordering::SeqCst) {
            Verdict::Stop
        } else {
            Verdict::Go
        }
    }
}

/// `--max-seconds`: training time after the first step (which on a GPU includes compiling the
/// kernels); at least one step is always taken.
#[derive(Debug)]
pub(crate) struct TimeBudget(pub f64);

impl StopCondition for TimeBudget {
    fn before_step(&mut self, step: usize, done: usize, elapsed: f64, first_step: f64) -> Verdict {
        if done > 0 && elapsed - first_step >= self.0 {
            tracing::info!("time budget of {:.0} s reached at step {step}", self.0);
            Verdict::Stop
        } else {
            Verdict::Go
        }
    }
}

/// A loss that is infinite or NaN stops the run with an error naming the last checkpoint, which
/// is kept (the step's result is not).
#[derive(Debug)]
pub(crate) struct FiniteLoss {
    /// The run's checkpoint folder.
    pub checkpoints: PathBuf,
}

impl StopCondition for FiniteLoss {
    fn before_step(&mut self, _: usize, _: usize, _: f64, _: f64) -> Verdict {
        Verdict::Go
    }

    fn after_step(&mut self, step: usize, loss: f32) -> Result<()> {
        if loss.is_finite() {
            return Ok(());
        }
        Err(TrainError::NonFiniteLoss {
            step,
            value: loss,
            last_good: checkpoint::latest_name(&self.checkpoints).unwrap_or_else(|| "none".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_c_stops_at_the_next_step() {
        let flag = Arc::new(AtomicBool::new(false));
        let mut c = CtrlC(flag.clone());
        assert_eq!(c.before_step(5, 1, 1.0, 0.5), Verdict::Go);
        flag.store(true, Ordering::SeqCst);
        assert_eq!(c.before_step(6, 2, 2.0, 0.5), Verdict::Stop);
    }

    #[test]
    fn the_time_budget_counts_from_the_end_of_the_first_step() {
        let mut b = TimeBudget(10.0);
        // Never before the first step, however long the start took.
        assert_eq!(b.before_step(0, 0, 100.0, 0.0), Verdict::Go);
        // A 30 s first step (kernel compilation) does not count against the budget.
        assert_eq!(b.before_step(1, 1, 39.0, 30.0), Verdict::Go);
        assert_eq!(b.before_step(2, 2, 40.0, 30.0), Verdict::Stop);
    }

    #[test]
    fn a_non_finite_loss_names_the_last_checkpoint() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut f = FiniteLoss {
            checkpoints: dir.path().join("checkpoints"),
        };
        f.after_step(3, 0.5).expect("finite");
        let e = f.after_step(4, f32::NAN).expect_err("NaN");
        let s = e.to_string();
        assert!(s.contains("step 4") && s.contains("(none)"), "{s}");
        assert!(f.after_step(4, f32::INFINITY).is_err());
    }
}
