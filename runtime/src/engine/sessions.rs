//! ONNX Runtime sessions of a bundle's graphs: options, sizes, execution providers, weights.

use std::time::Instant;

use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use super::providers::register_ep;
use super::{Engine, Ep, add_external_file_in_memory};
use crate::error::{Error, Result};

impl Engine {
    /// A session builder; `batch` fixes the batch dimension too (CUDA graphs).
    pub(super) fn builder(&self, fixed_size: bool, batch: Option<usize>) -> Result<SessionBuilder> {
        let threads = if self.options.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            self.options.threads
        };
        let mut b = Session::builder(&self.env)?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ort::Error::<()>::from)?
            .with_intra_threads(threads)
            .map_err(ort::Error::<()>::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::<()>::from)?;
        // Graphs of format version 2 take any size: fixing the sizes of this session's images lets
        // ONNX Runtime optimise them as graphs built for that size (the same kernels, values and
        // speed as version 1); only the batch stays free.
        if fixed_size && self.takes_any_size() {
            let d = &self.bundle.manifest.degradation;
            let (h, w) = (d.height as i64, d.width as i64);
            for (name, size) in [
                ("height", h),
                ("width", w),
                ("canvas_height", 2 * h),
                ("canvas_width", 2 * w),
                ("params", d.param_count() as i64),
            ] {
                b = b
                    .with_dimension_override(name, size)
                    .map_err(ort::Error::<()>::from)?;
            }
        }
        if let Some(n) = batch {
            b = b
                .with_dimension_override("batch", n as i64)
                .map_err(ort::Error::<()>::from)?;
        }
        if !fixed_size && self.active_ep == Ep::Cpu {
            // Sessions of images of any size see a new shape at every size and tile batch: ONNX
            // Runtime's CPU arena keeps the largest blocks it ever took, and memory patterns are
            // planned per shape. Without them (and one tile per call) a 6000x4000 photograph
            // restores in 1.1 GB of RSS (BENCHMARKS.md, "Real images at any size").
            b = b
                .with_memory_pattern(false)
                .map_err(ort::Error::<()>::from)?
                .with_execution_providers([ort::ep::CPU::default()
                    .with_arena_allocator(false)
                    .build()])
                .map_err(ort::Error::<()>::from)?;
        }
        register_ep(b, self.active_ep, &self.options, batch.is_some())
    }

    pub(super) fn create_session(
        &self,
        graph: &str,
        fixed_size: bool,
        batch: Option<usize>,
    ) -> Result<Session> {
        let t0 = Instant::now();
        let mut b = self.builder(fixed_size, batch)?;
        let gpath = self.bundle.path(graph);
        let session = match self.weights.bytes() {
            None => b.commit_from_file(&gpath)?,
            Some(bytes) => {
                add_external_file_in_memory(&mut b, &self.bundle.manifest.files.weights, bytes)?;
                let graph_bytes = std::fs::read(&gpath).map_err(|e| Error::io(&gpath, e))?;
                b.commit_from_memory(&graph_bytes)?
            }
        };
        tracing::debug!(
            "session {graph} on {} in {:.3} s",
            self.active_ep.name(),
            t0.elapsed().as_secs_f64()
        );
        Ok(session)
    }
}
