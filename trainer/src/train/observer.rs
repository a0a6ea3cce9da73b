//! What the training loop tells the parts of a run that watch it: after every optimiser step,
//! and once at the end. Checkpoints, the loss log, sample grids and progress are observers; the
//! stop conditions ([`super::stop`]) decide whether the loop goes on.

use burn::tensor::backend::AutodiffBackend;

use crate::error::Result;
use crate::state::TrainState;

/// The run as it stands after a step.
pub struct Step<'a, B: AutodiffBackend> {
    /// The state after the step (`state.step` is the step just taken; `state.seconds` the
    /// training seconds of the whole run so far).
    pub state: &'a TrainState<B>,
    /// The step's loss.
    pub loss: f32,
    /// Every `(step, loss)` of the run so far (a resumed run's earlier ones included).
    pub losses: &'a [(usize, f64)],
    /// The step this invocation started from.
    pub start_step: usize,
    /// Seconds since this invocation's first step began.
    pub elapsed: f64,
}

impl<B: AutodiffBackend> Step<'_, B> {
    /// Steps taken by this invocation.
    pub fn done(&self) -> usize {
        self.state.step - self.start_step
    }
}

/// A part of a run that acts on its steps.
pub trait Observer<B: AutodiffBackend> {
    /// After every optimiser step.
    fn step(&mut self, s: &Step<B>) -> Result<()>;

    /// Once when the run ends, finished or stopped after at least one new step.
    fn end(&mut self, s: &Step<B>) -> Result<()>;
}
