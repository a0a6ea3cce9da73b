//! The inference engine: ONNX Runtime sessions over a bundle's graphs, with the weights file
//! memory-mapped and handed to ONNX Runtime in place, and batched cold sampling driven by the
//! fused step graph (one run per step, nothing computed on the host between steps).
//! [`options`]: what the engine runs on; `providers`: the execution providers, probed and
//! registered.

use std::ffi::{CString, c_char};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array4, ArrayView2, ArrayView4, Axis};
use ort::AsPointer;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{OutputSelector, RunOptions, Session};
use ort::value::{Tensor, TensorRef};

use crate::error::{Error, Result};
use crate::ortlib;

pub mod options;
mod providers;
use cold_core::bundle::{Bundle, io};
use cold_core::degradation::Prepared;
use cold_core::sampler::{self, StepLevels};
pub use cold_core::sampler::{Algorithm, schedule};

pub use options::{ConvSearch, EngineOptions, Ep, WeightLoading};
use providers::{register_ep, resolve_ep};

/// The bundle graphs the engine runs.
#[derive(Clone, Copy, Debug)]
enum Graph {
    Step,
    Degradation,
}

/// The weights as ONNX Runtime sees them; kept alive as long as the sessions.
enum Weights {
    Mapped(Arc<memmap2::Mmap>),
    Owned(Arc<Vec<u8>>),
    ByPath,
}

impl Weights {
    fn bytes(&self) -> Option<&[u8]> {
        match self {
            Weights::Mapped(m) => Some(&m[..]),
            Weights::Owned(v) => Some(&v[..]),
            Weights::ByPath => None,
        }
    }
}

/// Results of a restoration.
#[derive(Debug)]
pub struct Restored {
    /// The restored images.
    pub output: Array4<f32>,
    /// States x_t, ..., x_0 when a progression was asked for (the input first).
    pub progression: Vec<Array4<f32>>,
}

/// Sessions over one bundle.
pub struct Engine {
    pub bundle: Bundle,
    pub options: EngineOptions,
    /// The execution provider the sessions run on.
    pub active_ep: Ep,
    weights: Weights,
    /// The degradation's tables at the bundle's size: the graphs of bundles from format version 2
    /// take the size-dependent ones as inputs.
    tables: Prepared,
    env: ort::environment::Environment,
    step: Option<Session>,
    degrade: Option<Session>,
    /// Seconds spent creating sessions.
    pub session_seconds: f64,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("bundle", &self.bundle.dir)
            .field("ep", &self.active_ep)
            .finish()
    }
}

impl Engine {
    /// Opens a bundle (checking its manifest and, with `verify`, every file's sha256) and loads
    /// ONNX Runtime. Sessions are created on first use.
    pub fn open(dir: &Path, options: EngineOptions) -> Result<Self> {
        let bundle = Bundle::open(dir, options.verify)?;
        let env = ortlib::environment()?;
        let wpath = bundle.path(&bundle.manifest.files.weights);
        let weights = match options.weights {
            WeightLoading::Mmap => {
                let f = std::fs::File::open(&wpath).map_err(|e| Error::io(&wpath, e))?;
                // SAFETY: the bundle's files are not modified while a run uses them; the hash was
                // checked above when `verify` is set.
                let m = unsafe { memmap2::MmapOptions::new().populate().map(&f) }
                    .map_err(|e| Error::io(&wpath, e))?;
                Weights::Mapped(Arc::new(m))
            }
            WeightLoading::Read => Weights::Owned(Arc::new(
                std::fs::read(&wpath).map_err(|e| Error::io(&wpath, e))?,
            )),
            WeightLoading::Path => Weights::ByPath,
        };
        let active_ep = resolve_ep(options.ep)?;
        let tables = bundle.manifest.degradation.prepare()?;
        Ok(Engine {
            bundle,
            options,
            active_ep,
            weights,
            tables,
            env,
            step: None,
            degrade: None,
            session_seconds: 0.0,
        })
    }

    fn builder(&self) -> Result<SessionBuilder> {
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
        if self.bundle.manifest.format_version >= 2 {
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
        register_ep(b, self.active_ep, &self.options)
    }

    fn create_session(&self, graph: &str) -> Result<Session> {
        let t0 = Instant::now();
        let mut b = self.builder()?;
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

    fn slot(&mut self, graph: Graph) -> &mut Option<Session> {
        match graph {
            Graph::Step => &mut self.step,
            Graph::Degradation => &mut self.degrade,
        }
    }

    /// The session of one of the bundle's graphs, created on first use.
    fn session(&mut self, graph: Graph) -> Result<&mut Session> {
        if self.slot(graph).is_none() {
            let files = &self.bundle.manifest.files;
            let file = match graph {
                Graph::Step => files.step.clone(),
                Graph::Degradation => files.degradation.clone(),
            };
            let t0 = Instant::now();
            let session = self.create_session(&file)?;
            self.session_seconds += t0.elapsed().as_secs_f64();
            *self.slot(graph) = Some(session);
        }
        Ok(self.slot(graph).as_mut().expect("created above"))
    }

    fn step_session(&mut self) -> Result<&mut Session> {
        self.session(Graph::Step)
    }

    /// Creates the sampling session now (start-up cost outside of timed work).
    pub(crate) fn warm_up(&mut self) -> Result<()> {
        self.step_session().map(|_| ())
    }

    fn check_input(
        &self,
        x: &ArrayView4<f32>,
        t: &[usize],
        params: &ArrayView2<f32>,
    ) -> Result<()> {
        let im = &self.bundle.manifest.image;
        let (b, c, h, w) = x.dim();
        if (c, h, w) != (im.channels, im.height, im.width) {
            return Err(Error::invalid(format!(
                "input is {c}x{h}x{w} but the model takes {}x{}x{}",
                im.channels, im.height, im.width
            )));
        }
        let d = &self.bundle.manifest.degradation;
        if t.len() != b {
            return Err(Error::invalid(format!(
                "{} levels for a batch of {b}",
                t.len()
            )));
        }
        if let Some(bad) = t.iter().find(|&&v| v > d.steps) {
            return Err(Error::invalid(format!(
                "level {bad} is beyond the model's T = {}",
                d.steps
            )));
        }
        let p = d.param_count();
        if params.dim() != (b, p) {
            return Err(Error::invalid(format!(
                "{} parameters per image for {} images, but this model's degradation takes {p} ({})",
                params.ncols(),
                params.nrows(),
                d.param_names().join(", ")
            )));
        }
        Ok(())
    }

    /// Checks the model has what the sampler needs: the estimated-noise sampler is for models
    /// that mix in noise.
    pub(crate) fn check_algorithm(&self, algorithm: Algorithm) -> Result<()> {
        let d = &self.bundle.manifest.degradation;
        if algorithm == Algorithm::Estimated && !d.transform.is_mix() {
            return Err(Error::invalid(format!(
                "the estimated-noise sampler needs a model that mixes in noise (kind noise); this \
                 model's degradation is {}: use algorithm 2",
                d.describe()
            )));
        }
        Ok(())
    }

    /// Whether the bundle's graphs take per-image degradation parameters.
    fn takes_params(&self) -> bool {
        self.bundle.manifest.degradation.param_count() > 0
    }

    /// D(x, t) through the bundle's degradation graph, with the per-image parameters `params`
    /// (`[B, P]`; `[B, 0]` for kinds without any).
    pub fn degrade(
        &mut self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        self.check_input(&x, t, &params)?;
        let x = x.as_standard_layout();
        let levels: Vec<i64> = t.iter().map(|&v| v as i64).collect();
        let with_params = self.takes_params();
        let params = params.as_standard_layout().into_owned();
        self.session(Graph::Degradation)?;
        let session = self.degrade.as_mut().expect("created above");
        let mut inputs = ort::inputs! {
            io::X => TensorRef::from_array_view(x.view())?,
            io::T => Tensor::from_array(([levels.len()], levels))?,
        };
        if with_params {
            inputs.push((io::PARAMS.into(), Tensor::from_array(params)?.into()));
        }
        inputs.extend(table_inputs(session, &self.tables)?);
        let out = session.run(inputs)?;
        let y = out[io::Y].try_extract_array::<f32>()?;
        Ok(y.into_dimensionality::<ndarray::Ix4>()
            .map_err(|e| Error::OnnxRuntime(e.to_string()))?
            .to_owned())
    }

    /// Restores a batch degraded to levels `t` (one per image). With `steps`, Algorithms 1 and 2
    /// visit that many levels from t down to 0 instead of every level.
    pub fn restore(
        &mut self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
        algorithm: Algorithm,
        steps: Option<usize>,
        progression: bool,
    ) -> Result<Restored> {
        self.check_input(&x, t, &params)?;
        self.check_algorithm(algorithm)?;
        let params = self
            .takes_params()
            .then(|| params.as_standard_layout().into_owned());
        let levels = sampler::plan(t, algorithm, steps);
        let b = x.len_of(Axis(0));
        #[cfg(feature = "cuda")]
        if matches!(self.active_ep, Ep::Cuda | Ep::TensorRt)
            && !progression
            && algorithm != Algorithm::Direct
        {
            let device_id = self.options.device_id;
            self.step_session()?;
            let session = self.step.as_mut().expect("created above");
            let out = crate::device_loop::run(
                session,
                device_id,
                x,
                params.as_ref().map(|p| p.view()),
                &self.tables.table_values(),
                &levels,
                algorithm,
            )?;
            return Ok(Restored {
                output: out,
                progression: Vec::new(),
            });
        }
        let mut state = x.as_standard_layout().into_owned();
        let mut prog = Vec::new();
        if progression {
            prog.push(state.clone());
        }
        let out_name = algorithm.output();
        // Fetch only the output the algorithm needs.
        let run_options =
            RunOptions::new()?.with_outputs(OutputSelector::no_default().with(out_name));
        self.step_session()?;
        let session = self.step.as_mut().expect("created above");
        for StepLevels { s, s_prev } in levels {
            let mut inputs = ort::inputs! {
                io::X_S => TensorRef::from_array_view(state.view())?,
                io::S => Tensor::from_array(([b], s.clone()))?,
                io::S_PREV => Tensor::from_array(([b], s_prev))?,
            };
            if let Some(p) = &params {
                inputs.push((
                    io::PARAMS.into(),
                    TensorRef::from_array_view(p.view())?.into(),
                ));
            }
            inputs.extend(table_inputs(session, &self.tables)?);
            let outputs = session.run_with_options(inputs, &run_options)?;
            let y = outputs[out_name].try_extract_array::<f32>()?;
            let y = y
                .into_dimensionality::<ndarray::Ix4>()
                .map_err(|e| Error::OnnxRuntime(e.to_string()))?;
            if algorithm == Algorithm::Direct {
                // Images at level 0 are already clean.
                for (i, &si) in s.iter().enumerate() {
                    if si > 0 {
                        state
                            .index_axis_mut(Axis(0), i)
                            .assign(&y.index_axis(Axis(0), i));
                    }
                }
            } else {
                state.assign(&y);
            }
            if progression {
                prog.push(state.clone());
            }
        }
        Ok(Restored {
            output: state,
            progression: prog,
        })
    }
}

/// The degradation's tables that `session`'s graph takes as inputs (none for bundles of format
/// version 1, whose graphs hold them), as views of the engine's own.
fn table_inputs<'a>(
    session: &Session,
    tables: &'a Prepared,
) -> Result<
    Vec<(
        std::borrow::Cow<'static, str>,
        ort::session::SessionInputValue<'a>,
    )>,
> {
    let wanted = |name: &str| session.inputs().iter().any(|i| i.name() == name);
    tables
        .table_values()
        .into_iter()
        .filter(|(name, _)| wanted(name))
        .map(|(name, v)| Ok((name.into(), TensorRef::from_array_view(v)?.into())))
        .collect()
}

/// Hands ONNX Runtime the weights file's bytes as the in-memory copy of `file_name`
/// (`AddExternalInitializersFromFilesInMemory`). The bytes must outlive the session.
fn add_external_file_in_memory(
    b: &mut SessionBuilder,
    file_name: &str,
    bytes: &[u8],
) -> Result<()> {
    let name = CString::new(file_name).map_err(|e| Error::invalid(e.to_string()))?;
    let names = [name.as_ptr()];
    let bufs = [bytes.as_ptr() as *mut c_char];
    let lens = [bytes.len()];
    // SAFETY: the pointers are valid for the call; ONNX Runtime reads the buffer, which the
    // engine keeps alive (and unmodified) for as long as its sessions.
    let status = unsafe {
        (ort::api().AddExternalInitializersFromMemory)(
            b.ptr_mut(),
            names.as_ptr(),
            bufs.as_ptr(),
            lens.as_ptr(),
            1,
        )
    };
    // SAFETY: `status` was just returned by the C API and is consumed here.
    unsafe { ort::Error::result_from_status(status) }?;
    Ok(())
}
