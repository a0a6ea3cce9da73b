//! Reading a bundle's weights back into a Burn model: every parameter is looked up by its module
//! path (`downs.0.block1.conv1.weight`), which is also its ONNX initializer name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::{ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use cold_core::bundle::Bundle;
use onnx_protobuf::ModelProto;
use protobuf::Message;

use crate::error::{Result, TrainError};
use crate::model::{InitUNet, UNet, UNetConfig};

/// `name -> (offset, length, dims)` of the external initializers of an ONNX graph.
pub fn external_initializers(model: &ModelProto) -> HashMap<String, (usize, usize, Vec<usize>)> {
    let mut out = HashMap::new();
    for init in &model.graph.initializer {
        let get = |k: &str| {
            init.external_data
                .iter()
                .find(|e| e.key == k)
                .map(|e| e.value.clone())
        };
        if let (Some(o), Some(l)) = (get("offset"), get("length"))
            && let (Ok(o), Ok(l)) = (o.parse(), l.parse())
        {
            out.insert(
                init.name.clone(),
                (o, l, init.dims.iter().map(|&d| d as usize).collect()),
            );
        }
    }
    out
}

/// The bytes of every external initializer of a graph (`graph` serialised) in its weights file
/// (`weights`), by name: what "the same weights" means when a bundle is written again.
pub fn initializer_bytes(graph: &[u8], weights: &[u8]) -> Result<BTreeMap<String, Vec<u8>>> {
    let model = ModelProto::parse_from_bytes(graph)
        .map_err(|e| TrainError::Export(format!("parsing a graph: {e}")))?;
    external_initializers(&model)
        .into_iter()
        .map(|(name, (offset, len, _))| {
            let bytes = weights.get(offset..offset + len).ok_or_else(|| {
                TrainError::Export(format!("{name} lies outside the weights file"))
            })?;
            Ok((name, bytes.to_vec()))
        })
        .collect()
}

/// The module path of every float parameter, in visiting order.
pub fn parameter_paths<B: Backend, M: Module<B>>(m: &M) -> Vec<String> {
    struct Paths {
        stack: Vec<String>,
        out: Vec<String>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, _: &Param<Tensor<B, D>>) {
            self.out.push(self.stack.join("."));
        }
    }
    let mut p = Paths {
        stack: Vec::new(),
        out: Vec::new(),
    };
    m.visit(&mut p);
    p.out
}

struct Load<'a, B: Backend> {
    stack: Vec<String>,
    index: &'a HashMap<String, (usize, usize, Vec<usize>)>,
    weights: &'a [u8],
    device: B::Device,
    error: Option<String>,
}

impl<B: Backend> ModuleMapper<B> for Load<'_, B> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.stack.push(name.into());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.stack.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, old, mapper): (ParamId, Tensor<B, D>, _) = param.consume();
        let name = self.stack.join(".");
        let shape = old.dims();
        let loaded = match self.index.get(&name) {
            Some((o, l, dims))
                if dims.as_slice() == shape.as_slice() && o + l <= self.weights.len() =>
            {
                let vals: Vec<f32> = self.weights[*o..o + l]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                // A fresh tensor does not require gradients: keep the parameter's setting, or an
                // autodiff model loaded this way would not train.
                Tensor::<B, D>::from_data(TensorData::new(vals, shape), &self.device)
                    .set_require_grad(old.is_require_grad())
            }
            Some((_, _, dims)) => {
                self.error.get_or_insert(format!(
                    "{name}: shape {dims:?} in the bundle, {shape:?} in the model"
                ));
                old
            }
            None => {
                self.error
                    .get_or_insert(format!("{name}: not in the bundle"));
                old
            }
        };
        Param::from_mapped_value(id, loaded, mapper)
    }
}

/// Loads the network of a bundle into Burn (its configuration from the manifest, its weights
/// from the shared weights file).
pub fn load_bundle_model<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(UNetConfig, UNet<B>)> {
    let bundle = Bundle::open(dir, true)?;
    let cfg = bundle.manifest.network.config.clone();
    let rpath = bundle.path(&bundle.manifest.files.restorer);
    let bytes = std::fs::read(&rpath).map_err(|e| TrainError::io(&rpath, e))?;
    let model = ModelProto::parse_from_bytes(&bytes)
        .map_err(|e| TrainError::Export(format!("{}: {e}", rpath.display())))?;
    let index = external_initializers(&model);
    let wpath = bundle.path(&bundle.manifest.files.weights);
    let weights = std::fs::read(&wpath).map_err(|e| TrainError::io(&wpath, e))?;
    let mut load = Load::<B> {
        stack: Vec::new(),
        index: &index,
        weights: &weights,
        device: device.clone(),
        error: None,
    };
    let net = cfg.init::<B>(device).map(&mut load);
    if let Some(e) = load.error {
        return Err(TrainError::Export(format!("bundle {}: {e}", dir.display())));
    }
    Ok((cfg, net))
}
