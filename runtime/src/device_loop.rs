//! The sampling loop on a GPU: the state lives in device memory for the whole loop. Two device
//! buffers alternate as the step graph's input and output through an IoBinding, the per-step
//! levels are uploaded once before the loop, and only the final images come back to the host.
//! With CUDA graphs ([`run_graphed`]) every step has its own binding and graph id, so that each
//! step's kernels are captured once and replayed at the same device addresses on later calls.

use ndarray::{Array4, ArrayView2, ArrayView4, ArrayViewD};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, RunOptions, Session};
use ort::value::Tensor;

use crate::error::{Error, Result};
use cold_core::bundle::io;
use cold_core::sampler::{Algorithm, StepLevels};

/// Runs the loop `levels` (from [`cold_core::sampler::plan`]) of a step-graph `session` that was
/// created with the CUDA (or TensorRT) provider on GPU `device_id`. `params` are the per-image
/// degradation parameters, for graphs that take them; `tables` the degradation's tables, uploaded
/// once and bound for the graphs that take them as inputs; `no_sync`: synchronise only after the
/// last step.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    session: &mut Session,
    device_id: i32,
    x: ArrayView4<f32>,
    params: Option<ArrayView2<f32>>,
    tables: &[(&'static str, ArrayViewD<f32>)],
    class: Option<&[i64]>,
    levels: &[StepLevels],
    algorithm: Algorithm,
    no_sync: bool,
) -> Result<Array4<f32>> {
    let dim = x.dim();
    let shape = [dim.0, dim.1, dim.2, dim.3];
    let mem = MemoryInfo::new(
        AllocationDevice::CUDA,
        device_id,
        AllocatorType::Device,
        MemoryType::Default,
    )?;
    let alloc = Allocator::new(session, mem)?;
    let mut a = Tensor::<f32>::new(&alloc, shape)?;
    let mut b = Tensor::<f32>::new(&alloc, shape)?;
    Tensor::from_array(x.as_standard_layout().into_owned())?.copy_into(&mut a)?;
    let on_device = |v: &[i64]| -> Result<Tensor<i64>> {
        Ok(Tensor::from_array(([v.len()], v.to_vec()))?.to(AllocationDevice::CUDA, device_id)?)
    };
    let device_levels: Vec<(Tensor<i64>, Tensor<i64>)> = levels
        .iter()
        .map(|l| Ok((on_device(&l.s)?, on_device(&l.s_prev)?)))
        .collect::<Result<_>>()?;
    let wanted = algorithm.output();
    // Every other output of the step graph still needs a buffer.
    let others: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| o.name().to_string())
        .filter(|n| n != wanted)
        .collect();
    let mut spares = others
        .iter()
        .map(|_| Tensor::<f32>::new(&alloc, shape))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let device_params = params
        .map(|p| -> Result<Tensor<f32>> {
            Ok(Tensor::from_array(p.as_standard_layout().into_owned())?
                .to(AllocationDevice::CUDA, device_id)?)
        })
        .transpose()?;
    let takes = |name: &str| session.inputs().iter().any(|i| i.name() == name);
    let device_tables = tables
        .iter()
        .filter(|(name, _)| takes(name))
        .map(|(name, v)| -> Result<(&str, Tensor<f32>)> {
            let t = Tensor::from_array(v.as_standard_layout().into_owned())?
                .to(AllocationDevice::CUDA, device_id)?;
            Ok((name, t))
        })
        .collect::<Result<Vec<_>>>()?;
    let device_class = class.map(on_device).transpose()?;
    let mut binding = session.create_binding()?;
    if let Some(p) = &device_params {
        binding.bind_input(io::PARAMS, p)?;
    }
    if let Some(c) = &device_class {
        binding.bind_input(io::CLASS, c)?;
    }
    for (name, t) in &device_tables {
        binding.bind_input(*name, t)?;
    }
    for (name, spare) in others.iter().zip(spares.iter_mut()) {
        binding.bind_output(name, spare)?;
    }
    // Without per-step synchronisation the steps queue on the session's stream; the last one
    // synchronises, so the result is complete before it is copied back.
    let mut queued = RunOptions::new()?;
    if no_sync {
        queued.disable_device_sync()?;
    }
    let synced = RunOptions::new()?;
    let n = device_levels.len();
    for (k, (s, p)) in device_levels.iter().enumerate() {
        let (cur, next) = if k % 2 == 0 {
            (&a, &mut b)
        } else {
            (&b, &mut a)
        };
        binding.bind_input(io::X_S, cur)?;
        binding.bind_input(io::S, s)?;
        binding.bind_input(io::S_PREV, p)?;
        binding.bind_output(wanted, &mut *next)?;
        let options = if k + 1 < n { &queued } else { &synced };
        let outputs = session.run_binding_with_options(&binding, options)?;
        drop(outputs);
    }
    let last = if n.is_multiple_of(2) { &a } else { &b };
    to_host(last)
}

fn to_host(t: &Tensor<f32>) -> Result<Array4<f32>> {
    let host = t.to(AllocationDevice::CPU, 0)?;
    let view = host.extract_array();
    view.into_dimensionality::<ndarray::Ix4>()
        .map(|v| v.to_owned())
        .map_err(|e| Error::OnnxRuntime(e.to_string()))
}

/// The CUDA graphs of one step session: the loop last run (its buffers, bindings and graph ids,
/// which must outlive the captured graphs' replays) and the next free graph id.
#[derive(Default)]
pub(crate) struct Graphs {
    current: Option<GraphLoop>,
    next_id: i32,
}

/// One sampling loop at fixed device addresses: the state's two buffers, the levels, parameters
/// and tables on the device, and one binding and graph id per step.
struct GraphLoop {
    shape: [usize; 4],
    levels: Vec<StepLevels>,
    wanted: &'static str,
    a: Tensor<f32>,
    b: Tensor<f32>,
    params: Option<Tensor<f32>>,
    class: Option<Tensor<i64>>,
    bindings: Vec<IoBinding>,
    options: Vec<RunOptions>,
    // Kept alive for the bindings (ONNX Runtime reads them at the captured addresses).
    _held: Vec<Tensor<i64>>,
    _tables: Vec<Tensor<f32>>,
    _spares: Vec<Tensor<f32>>,
}

/// [`run`] with every step captured as a CUDA graph (the session was created with
/// `enable_cuda_graph` and fixed sizes). A loop of the same shape and levels as the last call
/// replays its graphs: only the images (and parameters) are copied into the same buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_graphed(
    session: &mut Session,
    device_id: i32,
    x: ArrayView4<f32>,
    params: Option<ArrayView2<f32>>,
    tables: &[(&'static str, ArrayViewD<f32>)],
    class: Option<&[i64]>,
    levels: &[StepLevels],
    algorithm: Algorithm,
    graphs: &mut Graphs,
    no_sync: bool,
) -> Result<Array4<f32>> {
    let dim = x.dim();
    let shape = [dim.0, dim.1, dim.2, dim.3];
    let wanted = algorithm.output();
    let same = graphs
        .current
        .as_ref()
        .is_some_and(|g| g.shape == shape && g.levels == levels && g.wanted == wanted);
    if !same {
        graphs.current = None;
        let g = GraphLoop::new(
            session,
            device_id,
            shape,
            params,
            class.is_some(),
            tables,
            levels,
            wanted,
            graphs.next_id,
            no_sync,
        )?;
        graphs.next_id += levels.len() as i32;
        graphs.current = Some(g);
    }
    let g = graphs.current.as_mut().expect("set above");
    Tensor::from_array(x.as_standard_layout().into_owned())?.copy_into(&mut g.a)?;
    if let (Some(p), Some(dp)) = (params, g.params.as_mut()) {
        Tensor::from_array(p.as_standard_layout().into_owned())?.copy_into(dp)?;
    }
    if let (Some(c), Some(dc)) = (class, g.class.as_mut()) {
        Tensor::from_array(([c.len()], c.to_vec()))?.copy_into(dc)?;
    }
    for (binding, options) in g.bindings.iter().zip(&g.options) {
        drop(session.run_binding_with_options(binding, options)?);
    }
    to_host(if levels.len().is_multiple_of(2) {
        &g.a
    } else {
        &g.b
    })
}

impl GraphLoop {
    #[allow(clippy::too_many_arguments)]
    fn new(
        session: &Session,
        device_id: i32,
        shape: [usize; 4],
        params: Option<ArrayView2<f32>>,
        with_class: bool,
        tables: &[(&'static str, ArrayViewD<f32>)],
        levels: &[StepLevels],
        wanted: &'static str,
        first_id: i32,
        no_sync: bool,
    ) -> Result<Self> {
        let mem = MemoryInfo::new(
            AllocationDevice::CUDA,
            device_id,
            AllocatorType::Device,
            MemoryType::Default,
        )?;
        let alloc = Allocator::new(session, mem)?;
        let mut a = Tensor::<f32>::new(&alloc, shape)?;
        let mut b = Tensor::<f32>::new(&alloc, shape)?;
        let device = |v: &[i64]| -> Result<Tensor<i64>> {
            Ok(Tensor::from_array(([v.len()], v.to_vec()))?
                .to(AllocationDevice::CUDA, device_id)?)
        };
        let takes = |name: &str| session.inputs().iter().any(|i| i.name() == name);
        let device_params = params
            .map(|p| -> Result<Tensor<f32>> {
                Ok(Tensor::from_array(p.as_standard_layout().into_owned())?
                    .to(AllocationDevice::CUDA, device_id)?)
            })
            .transpose()?;
        // Its values are copied in at every call (run_graphed).
        let device_class = with_class.then(|| device(&vec![0; shape[0]])).transpose()?;
        let device_tables = tables
            .iter()
            .filter(|(name, _)| takes(name))
            .map(|(name, v)| -> Result<(&str, Tensor<f32>)> {
                let t = Tensor::from_array(v.as_standard_layout().into_owned())?
                    .to(AllocationDevice::CUDA, device_id)?;
                Ok((name, t))
            })
            .collect::<Result<Vec<_>>>()?;
        let others: Vec<String> = session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .filter(|n| n != wanted)
            .collect();
        // The outputs the loop does not read: one buffer each, shared by every step.
        let mut spares = others
            .iter()
            .map(|_| Tensor::<f32>::new(&alloc, shape))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut held = Vec::new();
        let mut bindings = Vec::new();
        let mut options = Vec::new();
        let n = levels.len();
        for (k, l) in levels.iter().enumerate() {
            let (s, s_prev) = (device(&l.s)?, device(&l.s_prev)?);
            let mut binding = session.create_binding()?;
            let (cur, next) = if k % 2 == 0 {
                (&a, &mut b)
            } else {
                (&b, &mut a)
            };
            binding.bind_input(io::X_S, cur)?;
            binding.bind_input(io::S, &s)?;
            binding.bind_input(io::S_PREV, &s_prev)?;
            binding.bind_output(wanted, &mut *next)?;
            if let Some(p) = &device_params {
                binding.bind_input(io::PARAMS, p)?;
            }
            if let Some(c) = &device_class {
                binding.bind_input(io::CLASS, c)?;
            }
            for (name, t) in &device_tables {
                binding.bind_input(*name, t)?;
            }
            for (name, spare) in others.iter().zip(spares.iter_mut()) {
                binding.bind_output(name.as_str(), &mut *spare)?;
            }
            let mut o = RunOptions::new()?;
            o.set("gpu_graph_id", (first_id + k as i32).to_string())?;
            if no_sync && k + 1 < n {
                o.disable_device_sync()?;
            }
            held.extend([s, s_prev]);
            bindings.push(binding);
            options.push(o);
        }
        Ok(GraphLoop {
            shape,
            levels: levels.to_vec(),
            wanted,
            a,
            b,
            params: device_params,
            class: device_class,
            bindings,
            options,
            _held: held,
            _tables: device_tables.into_iter().map(|(_, t)| t).collect(),
            _spares: spares,
        })
    }
}
