//! Exponential moving average of a module's weights: `ema = decay * ema + (1 - decay) * model`.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

struct Collect<B: Backend> {
    out: Vec<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let n = t.shape().num_elements();
        self.out.push(t.reshape([n]));
    }
}

struct Blend<B: Backend> {
    src: std::vec::IntoIter<Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, ema, mapper) = param.consume();
        let src = self
            .src
            .next()
            .expect("the EMA and the model have the same structure");
        let shape = ema.shape();
        let blended = ema * self.decay + src.reshape(shape) * (1.0 - self.decay);
        Param::from_mapped_value(id, blended, mapper)
    }
}

/// Moves `ema` towards `model` by `1 - decay`. Both must be the same architecture.
pub(crate) fn ema_update<B: Backend, M: Module<B>>(ema: M, model: &M, decay: f64) -> M {
    let mut collect = Collect { out: Vec::new() };
    model.visit(&mut collect);
    let mut blend = Blend {
        src: collect.out.into_iter(),
        decay,
    };
    let out = ema.map(&mut blend);
    debug_assert!(blend.src.next().is_none());
    out
}

/// All float parameters of a module, flattened in visiting order (for comparisons and tests).
pub fn flat_params<B: Backend, M: Module<B>>(m: &M) -> Vec<f32> {
    let mut collect = Collect { out: Vec::new() };
    m.visit(&mut collect);
    collect
        .out
        .into_iter()
        .flat_map(|t| t.into_data().to_vec::<f32>().expect("float params"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CpuBackend as B;
    use crate::model::{InitUNet, UNetConfig};

    #[test]
    fn ema_update_blends_every_parameter() {
        let dev = Default::default();
        B::seed(&dev, 1);
        let cfg = UNetConfig::preset("tiny", 1).expect("preset");
        let model = cfg.init::<B>(&dev);
        let ema = cfg.init::<B>(&dev);
        let (m, e) = (flat_params(&model), flat_params(&ema));
        assert_ne!(m, e);
        let decay = 0.995;
        let updated = flat_params(&ema_update(ema, &model, decay));
        assert_eq!(updated.len(), m.len());
        for ((u, e), m) in updated.iter().zip(&e).zip(&m) {
            let want = decay as f32 * e + (1.0 - decay as f32) * m;
            assert!(
                (u - want).abs() <= 1e-6 * (1.0 + want.abs()),
                "{u} vs {want}"
            );
        }
        // decay 0 copies the model.
        let ema = cfg.init::<B>(&dev);
        assert_eq!(flat_params(&ema_update(ema, &model, 0.0)), m);
    }
}
