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
    parameter_shapes(m).into_iter().map(|(p, _)| p).collect()
}

/// The module path and shape of every float parameter, in visiting order.
pub fn parameter_shapes<B: Backend, M: Module<B>>(m: &M) -> Vec<(String, Vec<usize>)> {
    struct Paths {
        stack: Vec<String>,
        out: Vec<(String, Vec<usize>)>,
    }
    impl<B: Backend> ModuleVisitor<B> for Paths {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.stack.push(name.into());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.stack.pop();
        }
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
            self.out
                .push((self.stack.join("."), p.val().dims().to_vec()));
        }
    }
    let mut p = Paths {
        stack: Vec::new(),
        out: Vec::new(),
    };
    m.visit(&mut p);
    p.out
}

/// What a parameter's values are, given its module path and shape (an error says why not).
type Fetch<'a> = dyn Fn(&str, &[usize]) -> std::result::Result<Vec<f32>, String> + 'a;

struct Load<'a, B: Backend> {
    stack: Vec<String>,
    fetch: &'a Fetch<'a>,
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
        let loaded = match (self.fetch)(&name, &shape) {
            // A fresh tensor does not require gradients: keep the parameter's setting, or an
            // autodiff model loaded this way would not train.
            Ok(vals) => Tensor::<B, D>::from_data(TensorData::new(vals, shape), &self.device)
                .set_require_grad(old.is_require_grad()),
            Err(e) => {
                self.error.get_or_insert(e);
                old
            }
        };
        Param::from_mapped_value(id, loaded, mapper)
    }
}

/// Every parameter of a bundle's network by module path: `(dims, values)`, and its config.
pub(crate) fn bundle_params(dir: &Path) -> Result<(UNetConfig, crate::widen::Params)> {
    let bundle = Bundle::open(dir, true)?;
    let cfg = bundle.manifest.network.config.clone();
    let rpath = bundle.path(&bundle.manifest.files.restorer);
    let bytes = std::fs::read(&rpath).map_err(|e| TrainError::io(&rpath, e))?;
    let model = ModelProto::parse_from_bytes(&bytes)
        .map_err(|e| TrainError::Export(format!("{}: {e}", rpath.display())))?;
    let wpath = bundle.path(&bundle.manifest.files.weights);
    let weights = std::fs::read(&wpath).map_err(|e| TrainError::io(&wpath, e))?;
    let mut params = crate::widen::Params::new();
    for (name, (o, l, dims)) in external_initializers(&model) {
        let bytes = weights.get(o..o + l).ok_or_else(|| {
            TrainError::Export(format!(
                "bundle {}: {name} lies outside the weights file",
                dir.display()
            ))
        })?;
        let vals = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        params.insert(name, (dims, vals));
    }
    Ok((cfg, params))
}

/// The network `cfg` with the values `fetch` gives each parameter.
fn build<B: Backend>(
    cfg: &UNetConfig,
    fetch: &Fetch<'_>,
    dir: &Path,
    device: &B::Device,
) -> Result<UNet<B>> {
    let mut load = Load::<B> {
        stack: Vec::new(),
        fetch,
        device: device.clone(),
        error: None,
    };
    let net = cfg.init::<B>(device).map(&mut load);
    match load.error {
        Some(e) => Err(TrainError::Export(format!("bundle {}: {e}", dir.display()))),
        None => Ok(net),
    }
}

/// Loads the network of a bundle into Burn (its configuration from the manifest, its weights
/// from the shared weights file).
pub fn load_bundle_model<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(UNetConfig, UNet<B>)> {
    let (cfg, params) = bundle_params(dir)?;
    let net = model_from_params(&cfg, &params, dir, device)?;
    Ok((cfg, net))
}

/// The network `cfg` with the parameters read from the bundle in `dir` (named in errors).
pub(crate) fn model_from_params<B: Backend>(
    cfg: &UNetConfig,
    params: &crate::widen::Params,
    dir: &Path,
    device: &B::Device,
) -> Result<UNet<B>> {
    let fetch = |name: &str, shape: &[usize]| match params.get(name) {
        Some((dims, vals)) if dims.as_slice() == shape => Ok(vals.clone()),
        Some((dims, _)) => Err(format!(
            "{name}: shape {dims:?} in the bundle, {shape:?} in the model"
        )),
        None => Err(format!("{name}: not in the bundle")),
    };
    build(cfg, &fetch, dir, device)
}

/// The network `narrow` with `params`, widened to twice its base width (`crate::widen`): the
/// same function (up to the time embedding's refit and `opts.noise`) with four times the weights.
pub(crate) fn widen_model<B: Backend>(
    narrow: &UNetConfig,
    params: &crate::widen::Params,
    opts: crate::widen::WidenOptions,
    device: &B::Device,
) -> std::result::Result<(UNetConfig, UNet<B>), String> {
    let wide = crate::widen::widened(narrow);
    let shapes = parameter_shapes(&wide.init::<B>(device));
    let widened = crate::widen::widen(narrow, params, &shapes, opts)?;
    let fetch = |name: &str, _: &[usize]| {
        widened
            .get(name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| format!("{name}: not widened"))
    };
    let net = build(&wide, &fetch, Path::new("(widened)"), device).map_err(|e| e.to_string())?;
    Ok((wide, net))
}
