//! The execution providers: `auto` resolved to the first one present, an explicit one checked to
//! be compiled in and present, and each registered on a session builder with its settings.

use ort::session::builder::SessionBuilder;

#[cfg(feature = "cuda")]
use super::options::ConvSearch;
use super::options::{EngineOptions, Ep};
use crate::error::{Error, Result};

pub(super) fn ep_err(ep: Ep, reason: impl std::fmt::Display) -> Error {
    Error::ExecutionProvider {
        ep: ep.name().into(),
        reason: reason.to_string(),
    }
}

/// Picks the provider for `auto`, and checks an explicit one is compiled in and present.
pub(super) fn resolve_ep(ep: Ep) -> Result<Ep> {
    match ep {
        Ep::Cpu => Ok(Ep::Cpu),
        Ep::Auto => {
            for cand in [Ep::TensorRt, Ep::Cuda] {
                if ep_available(cand).unwrap_or(false) {
                    tracing::info!("execution provider: {} (auto)", cand.name());
                    return Ok(cand);
                }
            }
            tracing::info!(
                "execution provider: cpu (auto: no TensorRT or CUDA provider in this build)"
            );
            Ok(Ep::Cpu)
        }
        explicit => {
            if ep_available(explicit)? {
                Ok(explicit)
            } else {
                Err(ep_err(
                    explicit,
                    "this ONNX Runtime library has no such provider: set ORT_DYLIB_PATH to the GPU build \
                     (libonnxruntime.so from the onnxruntime-gpu 1.31.1 wheel, with its provider libraries beside it)",
                ))
            }
        }
    }
}

#[cfg(feature = "cuda")]
fn ep_available(ep: Ep) -> Result<bool> {
    use ort::ep::ExecutionProvider;
    Ok(match ep {
        Ep::Cpu | Ep::Auto => true,
        Ep::Cuda => ort::ep::CUDA::is_available()?,
        #[cfg(feature = "tensorrt")]
        Ep::TensorRt => ort::ep::TensorRT::is_available()?,
        #[cfg(not(feature = "tensorrt"))]
        Ep::TensorRt => {
            return Err(ep_err(
                ep,
                "this cold was built without TensorRT: rebuild with --features tensorrt",
            ));
        }
    })
}

#[cfg(not(feature = "cuda"))]
fn ep_available(ep: Ep) -> Result<bool> {
    match ep {
        Ep::Cpu | Ep::Auto => Ok(true),
        Ep::Cuda | Ep::TensorRt => Err(ep_err(
            ep,
            format!(
                "this cold was built without GPU support: rebuild with `cargo build --release -p cold-runtime --features {}`",
                if ep == Ep::Cuda {
                    "cuda"
                } else {
                    "cuda,tensorrt"
                }
            ),
        )),
    }
}

/// The CUDA execution provider with the engine's options; `capture`: CUDA graphs (only the step
/// session of a fixed batch, driven through per-step bindings, may capture).
#[cfg(feature = "cuda")]
fn cuda_provider(o: &EngineOptions, capture: bool) -> ort::ep::CUDA {
    use ort::ep::cuda::ConvAlgorithmSearch as S;
    let search = match o.conv_search {
        ConvSearch::Exhaustive => S::Exhaustive,
        ConvSearch::Heuristic => S::Heuristic,
        ConvSearch::Default => S::Default,
    };
    ort::ep::CUDA::default()
        .with_device_id(o.device_id)
        .with_conv_algorithm_search(search)
        .with_conv_max_workspace(true)
        .with_prefer_nhwc(o.prefer_nhwc)
        .with_cuda_graph(capture)
}

pub(super) fn register_ep(
    b: SessionBuilder,
    ep: Ep,
    o: &EngineOptions,
    capture: bool,
) -> Result<SessionBuilder> {
    let _ = (o, capture);
    match ep {
        Ep::Cpu | Ep::Auto => Ok(b),
        #[cfg(feature = "cuda")]
        Ep::Cuda => {
            let cuda = cuda_provider(o, capture).build().error_on_failure();
            b.with_execution_providers([cuda])
                .map_err(|e| ep_err(ep, ort::Error::<()>::from(e)))
        }
        #[cfg(feature = "tensorrt")]
        Ep::TensorRt => {
            let mut trt = ort::ep::TensorRT::default()
                .with_device_id(o.device_id)
                .with_fp16(o.trt_fp16)
                .with_cuda_graph(capture);
            if let Some(dir) = &o.trt_cache {
                trt = trt
                    .with_engine_cache(true)
                    .with_engine_cache_path(dir.display().to_string());
            }
            let cuda = cuda_provider(o, capture).build().error_on_failure();
            b.with_execution_providers([trt.build().error_on_failure(), cuda])
                .map_err(|e| ep_err(ep, ort::Error::<()>::from(e)))
        }
        #[allow(unreachable_patterns)]
        other => Err(ep_err(other, "not compiled into this cold")),
    }
}
