//! Progress: a bar on a terminal, a log line every 100 steps otherwise.

use burn::tensor::backend::AutodiffBackend;
use indicatif::ProgressBar;

use super::observer::{Observer, Step};
use crate::config::{LrSchedule, TrainConfig};
use crate::error::Result;

/// Shows how the run goes.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    terminal: bool,
    last: usize,
    /// The learning rate of each step, when it changes over the run.
    schedule: Option<TrainConfig>,
}

impl Progress {
    /// A bar over the steps `start..cfg.steps` (drawn only on a terminal).
    pub fn new(cfg: &TrainConfig, start: usize, terminal: bool) -> Self {
        let bar =
            cold_core::progress::progress_bar(cfg.steps.saturating_sub(start) as u64, "training");
        if !terminal {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        Progress {
            bar,
            terminal,
            last: cfg.steps,
            schedule: (cfg.lr_schedule != LrSchedule::Constant).then(|| cfg.clone()),
        }
    }

    /// The line shown after `step`: its loss, the learning rate when it changes, the rate.
    pub fn message(&self, step: usize, loss: f32, steps_per_second: f64) -> String {
        let lr = self
            .schedule
            .as_ref()
            .map(|c| format!(" lr {:.2e}", c.learning_rate_at(step)))
            .unwrap_or_default();
        format!("step {step} loss {loss:.4}{lr} ({steps_per_second:.2} steps/s since the start)")
    }
}

impl<B: AutodiffBackend> Observer<B> for Progress {
    fn step(&mut self, s: &Step<B>) -> Result<()> {
        self.bar.inc(1);
        let step = s.state.step;
        if step.is_multiple_of(10) || step == self.last {
            let msg = self.message(step, s.loss, s.done() as f64 / s.elapsed.max(1e-9));
            if self.terminal {
                self.bar.set_message(msg);
            } else if step.is_multiple_of(100) {
                tracing::info!("{msg}");
            }
        }
        Ok(())
    }

    fn end(&mut self, _: &Step<B>) -> Result<()> {
        self.bar.finish_and_clear();
        Ok(())
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_shows_the_rate_only_when_it_changes() {
        let mut cfg = TrainConfig::new("mnist", "mnist", "tiny").expect("cfg");
        cfg.steps = 100;
        let p = Progress::new(&cfg, 0, false);
        assert_eq!(
            p.message(10, 0.25, 3.0),
            "step 10 loss 0.2500 (3.00 steps/s since the start)"
        );
        cfg.lr_schedule = LrSchedule::Cosine;
        let p = Progress::new(&cfg, 0, false);
        let m = p.message(50, 0.25, 3.0);
        assert!(
            m.contains(&format!("lr {:.2e}", cfg.learning_rate_at(50))),
            "{m}"
        );
    }
}
