//! The inference engine: ONNX Runtime sessions over a bundle's graphs, with the weights file
//! memory-mapped and handed to ONNX Runtime in place, and batched cold sampling driven by the
//! fused step graph (one run per step, nothing computed on the host between steps).
//! [`options`]: what the engine runs on; `providers`: the execution providers, probed and
//! registered.

use std::ffi::{CString, c_char};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ndarray::{Array4, ArrayView2, ArrayView4};
use ort::AsPointer;
use ort::session::Session;
use ort::session::builder::SessionBuilder;
use ort::value::{Tensor, TensorRef};

use crate::error::{Error, Result};
use crate::ortlib;

mod any_size;
mod conditioning;
mod ensemble;
mod loops;
pub mod options;
mod providers;
mod sessions;
pub mod tiles;
use cold_core::bundle::{Bundle, io};
use cold_core::degradation::{Prepared, PreparedSizes};
use cold_core::sampler;
pub use cold_core::sampler::{Algorithm, schedule};

pub use options::{ConvSearch, EngineOptions, Ep, WeightLoading};
use providers::resolve_ep;
pub use tiles::{TileSize, Tiling};

/// The bundle graphs the engine runs: at the bundle's own size (sizes fixed in the session) or
/// at any size (format version 2: sizes free).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Graph {
    Step,
    Degradation,
    AnyStep,
    AnyDegradation,
    AnyRestorer,
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
    /// The degradation's tables at the other sizes met.
    sizes: PreparedSizes,
    env: ort::environment::Environment,
    sessions: Vec<(Graph, Session)>,
    /// The batch size the step session is fixed at (CUDA graphs need every size fixed).
    step_batch: Option<usize>,
    /// The classes of the batch being restored ([`Engine::restore_conditioned`]); a
    /// class-conditioned network sees the null class without them.
    class: Option<Vec<i64>>,
    #[cfg(feature = "cuda")]
    graphs: crate::device_loop::Graphs,
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
        if options.self_ensemble && bundle.manifest.format_version < 2 {
            return Err(Error::invalid(format!(
                "--self-ensemble runs the restorer graph, which {} (format version 1) does not \
                 have: `cold-train reexport --model {}` writes it again with one",
                dir.display(),
                dir.display()
            )));
        }
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
        if (options.cuda_graph || options.no_sync) && active_ep == Ep::Cpu {
            return Err(Error::invalid(
                "--cuda-graph and --no-sync are settings of the CUDA provider: use them with --ep cuda",
            ));
        }
        let tables = bundle.manifest.degradation.prepare()?;
        let sizes = PreparedSizes::new(&bundle.manifest.degradation, 2);
        Ok(Engine {
            bundle,
            options,
            active_ep,
            weights,
            tables,
            sizes,
            env,
            sessions: Vec::new(),
            step_batch: None,
            class: None,
            #[cfg(feature = "cuda")]
            graphs: Default::default(),
            session_seconds: 0.0,
        })
    }

    /// The session of one of the bundle's graphs, created on first use.
    fn session(&mut self, graph: Graph) -> Result<&mut Session> {
        if !self.sessions.iter().any(|(g, _)| *g == graph) {
            let files = &self.bundle.manifest.files;
            let file = match graph {
                Graph::Step | Graph::AnyStep => files.step.clone(),
                Graph::Degradation | Graph::AnyDegradation => files.degradation.clone(),
                Graph::AnyRestorer => files.restorer.clone(),
            };
            let fixed = matches!(graph, Graph::Step | Graph::Degradation);
            let batch = if graph == Graph::Step {
                self.step_batch
            } else {
                None
            };
            let t0 = Instant::now();
            let session = self.create_session(&file, fixed, batch)?;
            self.session_seconds += t0.elapsed().as_secs_f64();
            self.sessions.push((graph, session));
        }
        Ok(self
            .sessions
            .iter_mut()
            .find(|(g, _)| *g == graph)
            .map(|(_, s)| s)
            .expect("created above"))
    }

    /// Whether the bundle's graphs take images of any size (format version 2).
    pub fn takes_any_size(&self) -> bool {
        self.bundle.manifest.format_version >= 2
    }

    /// Whether `(h, w)` is the bundle's own size.
    fn is_native(&self, h: usize, w: usize) -> bool {
        let im = &self.bundle.manifest.image;
        (h, w) == (im.height, im.width)
    }

    /// Creates the sampling session now (start-up cost outside of timed work).
    pub(crate) fn warm_up(&mut self) -> Result<()> {
        self.session(Graph::Step).map(|_| ())
    }

    fn check_input(
        &self,
        x: &ArrayView4<f32>,
        t: &[usize],
        params: &ArrayView2<f32>,
    ) -> Result<()> {
        let im = &self.bundle.manifest.image;
        let (b, c, h, w) = x.dim();
        if c != im.channels || (!self.is_native(h, w) && !self.takes_any_size()) {
            return Err(Error::invalid(format!(
                "input is {c}x{h}x{w} but the model takes {}x{}x{}{}",
                im.channels,
                im.height,
                im.width,
                if c == im.channels {
                    " (its graphs are fixed at that size: bundle format version 1; `cold-train \
                     reexport` writes it again with graphs of any size)"
                } else {
                    ""
                }
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
        let at = d.at_size(h, w)?;
        let p = at.param_count();
        if params.dim() != (b, p) {
            return Err(Error::invalid(format!(
                "{} parameters per image for {} images, but this model's degradation takes {p} at \
                 {w}x{h} ({})",
                params.ncols(),
                params.nrows(),
                at.param_names().join(", ")
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
    /// (`[B, P]`; `[B, 0]` for kinds without any), on images of the bundle's size or, for
    /// bundles of format version 2, of any size.
    pub fn degrade(
        &mut self,
        x: ArrayView4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
    ) -> Result<Array4<f32>> {
        self.check_input(&x, t, &params)?;
        let (_, _, h, w) = x.dim();
        if !self.is_native(h, w) {
            let at = self.bundle.manifest.degradation.at_size(h, w)?;
            if at.needs_direct_within(self.options.max_table_bytes) {
                return direct_d(&at, x, t, params);
            }
        }
        let x = x.as_standard_layout();
        let levels: Vec<i64> = t.iter().map(|&v| v as i64).collect();
        let with_params = self.takes_params();
        let params = params.as_standard_layout().into_owned();
        let (graph, tables) = if self.is_native(h, w) {
            (Graph::Degradation, self.tables.clone())
        } else {
            (Graph::AnyDegradation, self.sizes.at(h, w)?.clone())
        };
        let session = self.session(graph)?;
        let mut inputs = ort::inputs! {
            io::X => TensorRef::from_array_view(x.view())?,
            io::T => Tensor::from_array(([levels.len()], levels))?,
        };
        if with_params {
            inputs.push((io::PARAMS.into(), Tensor::from_array(params)?.into()));
        }
        inputs.extend(table_inputs(session, &tables)?);
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
        let x = x.as_standard_layout().into_owned();
        self.restore_owned(x, t, params, algorithm, steps, progression)
    }

    /// [`Engine::restore`] of a batch it may keep (large images: one copy fewer).
    pub fn restore_owned(
        &mut self,
        x: Array4<f32>,
        t: &[usize],
        params: ArrayView2<f32>,
        algorithm: Algorithm,
        steps: Option<usize>,
        progression: bool,
    ) -> Result<Restored> {
        self.check_input(&x.view(), t, &params)?;
        self.check_algorithm(algorithm)?;
        let params = self
            .takes_params()
            .then(|| params.as_standard_layout().into_owned());
        let levels = sampler::plan(t, algorithm, steps);
        let (_, _, h, w) = x.dim();
        let native = self.is_native(h, w);
        if let Some(plan) = self.tile_plan(h, w)? {
            return self.restore_tiled(x, params, levels, algorithm, progression, &plan);
        }
        let (graph, tables) = if native {
            (Graph::Step, self.tables.clone())
        } else {
            (Graph::AnyStep, self.sizes.at(h, w)?.clone())
        };
        #[cfg(feature = "cuda")]
        if matches!(self.active_ep, Ep::Cuda | Ep::TensorRt)
            && !progression
            && algorithm != Algorithm::Direct
        {
            let out = self.device_loop(
                graph,
                &tables,
                x.view(),
                params.as_ref(),
                &levels,
                algorithm,
            )?;
            return Ok(Restored {
                output: out,
                progression: Vec::new(),
            });
        }
        self.host_loop(
            graph,
            &tables,
            x,
            params,
            levels,
            algorithm,
            progression,
            None,
        )
    }
}

/// D on the host without tables (images too large for them), one channel at a time.
fn direct_d(
    at: &cold_core::degradation::Degradation,
    x: ArrayView4<f32>,
    t: &[usize],
    params: ArrayView2<f32>,
) -> Result<Array4<f32>> {
    let mut y = Array4::<f32>::zeros(x.dim());
    for (i, &ti) in t.iter().enumerate() {
        for k in 0..x.dim().1 {
            let d = at.apply_direct(x.slice(ndarray::s![i, k, .., ..]), &[ti], params.row(i))?;
            y.slice_mut(ndarray::s![i, k, .., ..]).assign(&d[0]);
        }
    }
    Ok(y)
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
