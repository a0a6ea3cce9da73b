//! What defines a training run. The file ([`TrainConfig`], saved as `config.json` in the run
//! folder and `training-config.json` in a bundle) is `cold_core::training`; here is its Burn
//! half, the optimiser.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{Adam, AdamConfig};
use burn::tensor::backend::AutodiffBackend;
pub use cold_core::training::{LrSchedule, TrainConfig};

use crate::model::UNet;

/// The run's optimiser (fresh, or to receive a checkpoint's state): Adam with the config's
/// epsilon and gradient clipping.
pub fn optimizer<B: AutodiffBackend>(cfg: &TrainConfig) -> OptimizerAdaptor<Adam, UNet<B>, B> {
    let mut c = AdamConfig::new().with_epsilon(cfg.adam_epsilon);
    if let Some(clip) = cfg.grad_clip {
        c = c.with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
            clip,
        )));
    }
    c.init()
}
