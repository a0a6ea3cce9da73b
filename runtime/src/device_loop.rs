//! The sampling loop on a GPU: the state lives in device memory for the whole loop. Two device
//! buffers alternate as the step graph's input and output through an IoBinding, the per-step
//! levels are uploaded once before the loop, and only the final images come back to the host.

use ndarray::{Array4, ArrayView2, ArrayView4, ArrayViewD};
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::Tensor;

use crate::error::{Error, Result};
use cold_core::bundle::io;
use cold_core::sampler::{Algorithm, StepLevels};

/// Runs the loop `levels` (from [`cold_core::sampler::plan`]) of a step-graph `session` that was
/// created with the CUDA (or TensorRT) provider on GPU `device_id`. `params` are the per-image
/// degradation parameters, for graphs that take them; `tables` the degradation's tables, uploaded
/// once and bound for the graphs that take them as inputs.
pub(crate) fn run(
    session: &mut Session,
    device_id: i32,
    x: ArrayView4<f32>,
    params: Option<ArrayView2<f32>>,
    tables: &[(&'static str, ArrayViewD<f32>)],
    levels: &[StepLevels],
    algorithm: Algorithm,
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
    let mut binding = session.create_binding()?;
    if let Some(p) = &device_params {
        binding.bind_input(io::PARAMS, p)?;
    }
    for (name, t) in &device_tables {
        binding.bind_input(*name, t)?;
    }
    for (name, spare) in others.iter().zip(spares.iter_mut()) {
        binding.bind_output(name, spare)?;
    }
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
        let outputs = session.run_binding(&binding)?;
        drop(outputs);
    }
    let last = if device_levels.len() % 2 == 0 { &a } else { &b };
    let host = last.to(AllocationDevice::CPU, 0)?;
    let view = host.extract_array();
    view.into_dimensionality::<ndarray::Ix4>()
        .map(|v| v.to_owned())
        .map_err(|e| Error::OnnxRuntime(e.to_string()))
}
