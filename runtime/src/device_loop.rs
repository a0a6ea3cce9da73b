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

/// What one sampling loop runs on: the batch `x`, the per-image degradation parameters (graphs
/// that take them), the degradation's tables (bound to the graphs that take them), the classes
/// (class-conditioned networks), the levels of every step ([`cold_core::sampler::plan`]), and
/// whether to synchronise only after the last step.
pub(crate) struct LoopInputs<'a> {
    pub x: ArrayView4<'a, f32>,
    pub params: Option<ArrayView2<'a, f32>>,
    pub tables: &'a [(&'static str, ArrayViewD<'a, f32>)],
    pub class: Option<&'a [i64]>,
    pub levels: &'a [StepLevels],
    pub algorithm: Algorithm,
    pub no_sync: bool,
}

impl LoopInputs<'_> {
    fn shape(&self) -> [usize; 4] {
        let d = self.x.dim();
        [d.0, d.1, d.2, d.3]
    }
}

fn on_device(v: &[i64], device_id: i32) -> Result<Tensor<i64>> {
    Ok(Tensor::from_array(([v.len()], v.to_vec()))?.to(AllocationDevice::CUDA, device_id)?)
}

/// The inputs and outputs that stay at the same device addresses for the whole loop: the state's
/// two buffers, parameters, classes, tables, and a buffer for every output the loop does not
/// read (shared by every step).
struct Resident {
    a: Tensor<f32>,
    b: Tensor<f32>,
    params: Option<Tensor<f32>>,
    class: Option<Tensor<i64>>,
    tables: Vec<(&'static str, Tensor<f32>)>,
    spares: Vec<(String, Tensor<f32>)>,
}

impl Resident {
    fn new(session: &Session, device_id: i32, l: &LoopInputs) -> Result<Self> {
        let shape = l.shape();
        let mem = MemoryInfo::new(
            AllocationDevice::CUDA,
            device_id,
            AllocatorType::Device,
            MemoryType::Default,
        )?;
        let alloc = Allocator::new(session, mem)?;
        let upload = |v: ArrayViewD<f32>| -> Result<Tensor<f32>> {
            Ok(Tensor::from_array(v.as_standard_layout().into_owned())?
                .to(AllocationDevice::CUDA, device_id)?)
        };
        let takes = |name: &str| session.inputs().iter().any(|i| i.name() == name);
        let wanted = l.algorithm.output();
        Ok(Resident {
            a: Tensor::<f32>::new(&alloc, shape)?,
            b: Tensor::<f32>::new(&alloc, shape)?,
            params: l.params.map(|p| upload(p.into_dyn())).transpose()?,
            class: l.class.map(|c| on_device(c, device_id)).transpose()?,
            tables: l
                .tables
                .iter()
                .filter(|(name, _)| takes(name))
                .map(|(name, v)| Ok((*name, upload(v.view())?)))
                .collect::<Result<_>>()?,
            spares: session
                .outputs()
                .iter()
                .map(|o| o.name().to_string())
                .filter(|n| n != wanted)
                .map(|n| Ok((n, Tensor::<f32>::new(&alloc, shape)?)))
                .collect::<Result<_>>()?,
        })
    }

    /// Binds everything but the state and the levels.
    fn bind(&mut self, binding: &mut IoBinding) -> Result<()> {
        if let Some(p) = &self.params {
            binding.bind_input(io::PARAMS, p)?;
        }
        if let Some(c) = &self.class {
            binding.bind_input(io::CLASS, c)?;
        }
        for (name, t) in &self.tables {
            binding.bind_input(*name, t)?;
        }
        for (name, spare) in &mut self.spares {
            binding.bind_output(name.as_str(), &mut *spare)?;
        }
        Ok(())
    }

    /// Binds step `k`'s state (`a -> b` on even steps, `b -> a` on odd ones) and levels.
    fn bind_step(
        &mut self,
        binding: &mut IoBinding,
        k: usize,
        wanted: &str,
        (s, s_prev): (&Tensor<i64>, &Tensor<i64>),
    ) -> Result<()> {
        let (cur, next) = if k.is_multiple_of(2) {
            (&self.a, &mut self.b)
        } else {
            (&self.b, &mut self.a)
        };
        binding.bind_input(io::X_S, cur)?;
        binding.bind_input(io::S, s)?;
        binding.bind_input(io::S_PREV, s_prev)?;
        binding.bind_output(wanted, &mut *next)?;
        Ok(())
    }

    /// The state after `steps` steps, on the host.
    fn result(&self, steps: usize) -> Result<Array4<f32>> {
        let last = if steps.is_multiple_of(2) {
            &self.a
        } else {
            &self.b
        };
        let host = last.to(AllocationDevice::CPU, 0)?;
        let view = host.extract_array();
        view.into_dimensionality::<ndarray::Ix4>()
            .map(|v| v.to_owned())
            .map_err(|e| Error::OnnxRuntime(e.to_string()))
    }
}

/// The options of step `k` of `n`: without per-step synchronisation the steps queue on the
/// session's stream, and the last one synchronises, so the result is complete before it is
/// copied back.
fn step_options(k: usize, n: usize, no_sync: bool) -> Result<RunOptions> {
    let mut o = RunOptions::new()?;
    if no_sync && k + 1 < n {
        o.disable_device_sync()?;
    }
    Ok(o)
}

/// Runs the loop of a step-graph `session` that was created with the CUDA (or TensorRT)
/// provider on GPU `device_id`.
pub(crate) fn run(session: &mut Session, device_id: i32, l: &LoopInputs) -> Result<Array4<f32>> {
    let mut r = Resident::new(session, device_id, l)?;
    Tensor::from_array(l.x.as_standard_layout().into_owned())?.copy_into(&mut r.a)?;
    let levels: Vec<(Tensor<i64>, Tensor<i64>)> = l
        .levels
        .iter()
        .map(|v| {
            Ok((
                on_device(&v.s, device_id)?,
                on_device(&v.s_prev, device_id)?,
            ))
        })
        .collect::<Result<_>>()?;
    let wanted = l.algorithm.output();
    let mut binding = session.create_binding()?;
    r.bind(&mut binding)?;
    let n = levels.len();
    let (queued, synced) = (step_options(0, n, l.no_sync)?, step_options(n, n, false)?);
    for (k, (s, s_prev)) in levels.iter().enumerate() {
        r.bind_step(&mut binding, k, wanted, (s, s_prev))?;
        let options = if k + 1 < n { &queued } else { &synced };
        drop(session.run_binding_with_options(&binding, options)?);
    }
    r.result(n)
}

/// The CUDA graphs of one step session: the loop last run (its buffers, bindings and graph ids,
/// which must outlive the captured graphs' replays) and the next free graph id.
#[derive(Default)]
pub(crate) struct Graphs {
    current: Option<GraphLoop>,
    next_id: i32,
}

/// One sampling loop at fixed device addresses, with one binding and graph id per step.
struct GraphLoop {
    shape: [usize; 4],
    levels: Vec<StepLevels>,
    wanted: &'static str,
    resident: Resident,
    bindings: Vec<IoBinding>,
    options: Vec<RunOptions>,
    // Kept alive for the bindings (ONNX Runtime reads them at the captured addresses).
    _levels: Vec<Tensor<i64>>,
}

/// [`run`] with every step captured as a CUDA graph (the session was created with
/// `enable_cuda_graph` and fixed sizes). A loop of the same shape and levels as the last call
/// replays its graphs: only the images (parameters, classes) are copied into the same buffers.
pub(crate) fn run_graphed(
    session: &mut Session,
    device_id: i32,
    l: &LoopInputs,
    graphs: &mut Graphs,
) -> Result<Array4<f32>> {
    let shape = l.shape();
    let wanted = l.algorithm.output();
    let same = graphs
        .current
        .as_ref()
        .is_some_and(|g| g.shape == shape && g.levels == l.levels && g.wanted == wanted);
    if !same {
        graphs.current = None;
        let g = GraphLoop::new(session, device_id, l, graphs.next_id)?;
        graphs.next_id += l.levels.len() as i32;
        graphs.current = Some(g);
    }
    let g = graphs.current.as_mut().expect("set above");
    let r = &mut g.resident;
    Tensor::from_array(l.x.as_standard_layout().into_owned())?.copy_into(&mut r.a)?;
    if let (Some(p), Some(dp)) = (l.params, r.params.as_mut()) {
        Tensor::from_array(p.as_standard_layout().into_owned())?.copy_into(dp)?;
    }
    if let (Some(c), Some(dc)) = (l.class, r.class.as_mut()) {
        Tensor::from_array(([c.len()], c.to_vec()))?.copy_into(dc)?;
    }
    for (binding, options) in g.bindings.iter().zip(&g.options) {
        drop(session.run_binding_with_options(binding, options)?);
    }
    g.resident.result(l.levels.len())
}

impl GraphLoop {
    fn new(session: &Session, device_id: i32, l: &LoopInputs, first_id: i32) -> Result<Self> {
        let mut resident = Resident::new(session, device_id, l)?;
        let wanted = l.algorithm.output();
        let n = l.levels.len();
        let mut held = Vec::new();
        let mut bindings = Vec::new();
        let mut options = Vec::new();
        for (k, v) in l.levels.iter().enumerate() {
            let (s, s_prev) = (
                on_device(&v.s, device_id)?,
                on_device(&v.s_prev, device_id)?,
            );
            let mut binding = session.create_binding()?;
            resident.bind(&mut binding)?;
            resident.bind_step(&mut binding, k, wanted, (&s, &s_prev))?;
            let mut o = step_options(k, n, l.no_sync)?;
            o.set("gpu_graph_id", (first_id + k as i32).to_string())?;
            held.extend([s, s_prev]);
            bindings.push(binding);
            options.push(o);
        }
        Ok(GraphLoop {
            shape: l.shape(),
            levels: l.levels.to_vec(),
            wanted,
            resident,
            bindings,
            options,
            _levels: held,
        })
    }
}
