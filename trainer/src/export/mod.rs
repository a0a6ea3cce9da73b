//! Export of a trained run to a model bundle (see `cold_core::bundle`): the restorer, the
//! degradation and the fused sampling step as ONNX graphs sharing one weights file.
//!
//! Burn cannot write ONNX for this network, so each Burn block lowers itself to ONNX nodes (its
//! `lower`, beside its `forward`) with the weights taken from the trained module, each
//! degradation kind lowers D, and [`assemble`] puts the graphs together.

pub mod assemble;

pub use cold_core::onnx;

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use cold_core::bundle::{self, Files, ImageSpec, Manifest};
use cold_core::degradation::Degradation;
use cold_core::network::NetworkSpec;
use cold_core::training::TrainingSummary;
use protobuf::Message;

use crate::checkpoint::load_ema;
use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::import;
use crate::model::UNet;
use crate::run_dir::RunDir;
use cold_core::training::RunSummary;
use onnx::{GraphBuilder, WeightStore};

/// The file names inside a bundle.
pub(crate) const RESTORER: &str = "restorer.onnx";
pub(crate) const DEGRADATION: &str = "degradation.onnx";
pub(crate) const STEP: &str = "step.onnx";
pub(crate) const WEIGHTS: &str = "weights.bin";

/// The serialised graphs and weights of a bundle.
pub(crate) struct ExportedGraphs {
    pub files: Vec<(String, Vec<u8>)>,
}

/// Builds the three graphs for a network and degradation.
pub(crate) fn build_graphs<B: Backend>(net: &UNet<B>, d: &Degradation) -> Result<ExportedGraphs> {
    d.validate()?;
    let mut weights = WeightStore::new(WEIGHTS);
    let ser = |m: onnx_protobuf::ModelProto| {
        m.write_to_bytes()
            .map_err(|e| TrainError::Export(format!("serialising ONNX: {e}")))
    };
    let restorer = {
        let mut g = GraphBuilder::new("restorer", &mut weights);
        assemble::restorer_graph(&mut g, net, d.channels);
        ser(onnx::model(g.finish(), "Cold Diffusion restorer R(x, t)"))?
    };
    let degradation = {
        let mut g = GraphBuilder::new("degradation", &mut weights);
        assemble::degradation_graph(&mut g, d);
        ser(onnx::model(
            g.finish(),
            &format!("Degradation D(x, t): {}", d.describe()),
        ))?
    };
    let step = {
        let mut g = GraphBuilder::new("step", &mut weights);
        assemble::step_graph(&mut g, net, d);
        ser(onnx::model(
            g.finish(),
            "Cold Diffusion sampling step (Algorithms 1 and 2)",
        ))?
    };
    Ok(ExportedGraphs {
        files: vec![
            (RESTORER.into(), restorer),
            (DEGRADATION.into(), degradation),
            (STEP.into(), step),
            (WEIGHTS.into(), weights.bytes),
        ],
    })
}

/// The file names every bundle this build writes has.
fn files() -> Files {
    Files {
        restorer: RESTORER.into(),
        degradation: DEGRADATION.into(),
        step: STEP.into(),
        weights: WEIGHTS.into(),
    }
}

/// Writes a bundle for `net` trained with `cfg` into `out`, without sampling defaults.
pub fn export_model<B: Backend>(
    net: &UNet<B>,
    cfg: &TrainConfig,
    training: TrainingSummary,
    generation: Option<cold_core::generation::Generation>,
    out: &Path,
    force: bool,
) -> Result<PathBuf> {
    write_bundle(net, cfg, training, generation, None, out, force)
}

/// Writes a bundle for `net` trained with `cfg` into `out`, with these sampling defaults.
fn write_bundle<B: Backend>(
    net: &UNet<B>,
    cfg: &TrainConfig,
    training: TrainingSummary,
    generation: Option<cold_core::generation::Generation>,
    sampling: Option<bundle::SamplingDefaults>,
    out: &Path,
    force: bool,
) -> Result<PathBuf> {
    let graphs = build_graphs(net, &cfg.degradation)?;
    let d = &cfg.degradation;
    let network = NetworkSpec::unet(cfg.model.clone(), net.num_params());
    let manifest = Manifest {
        format: bundle::FORMAT.into(),
        format_version: bundle::FORMAT_VERSION,
        name: out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        image: ImageSpec {
            channels: d.channels,
            height: d.height,
            width: d.width,
            value_range: [-1.0, 1.0],
        },
        degradation: d.clone(),
        network,
        training,
        opset: onnx::OPSET,
        files: files(),
        generation,
        sampling,
        sha256: Default::default(),
        created_by: format!("cold-train {}", env!("CARGO_PKG_VERSION")),
    };
    Ok(bundle::write_bundle(out, manifest, &graphs.files, force)?)
}

/// Writes the bundle in `dir` again from its own weights with this build's graphs (format
/// version [`bundle::FORMAT_VERSION`]): the network's parameters are the same bits, the manifest
/// keeps its training record, generation mixture and sampling defaults, and the files beside the
/// bundle (model card, examples, evaluations) stay. For bundles exported by an older cold-train.
pub fn reexport(dir: &Path) -> Result<PathBuf> {
    let device = Default::default();
    let (config, net) = import::load_bundle_model::<crate::CpuBackend>(dir, &device)?;
    let b = bundle::Bundle::open(dir, true)?;
    let read =
        |name: &str| std::fs::read(b.path(name)).map_err(|e| TrainError::io(b.path(name), e));
    let before = import::initializer_bytes(
        &read(&b.manifest.files.restorer)?,
        &read(&b.manifest.files.weights)?,
    )?;
    let old = b.manifest;
    let graphs = build_graphs(&net, &old.degradation)?;
    let file = |name: &str| {
        graphs
            .files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_slice())
            .unwrap_or_default()
    };
    let after = import::initializer_bytes(file(RESTORER), file(WEIGHTS))?;
    if before != after {
        return Err(TrainError::Export(format!(
            "{}: the re-exported restorer's weights would differ from the bundle's; nothing was \
             written",
            dir.display()
        )));
    }
    let manifest = Manifest {
        format_version: bundle::FORMAT_VERSION,
        network: NetworkSpec::unet(config, net.num_params()),
        opset: onnx::OPSET,
        files: files(),
        sha256: Default::default(),
        created_by: format!(
            "cold-train {} (re-exported from {})",
            env!("CARGO_PKG_VERSION"),
            old.created_by
                .split(" (re-exported")
                .next()
                .unwrap_or(&old.created_by)
        ),
        ..old
    };
    Ok(bundle::write_bundle(dir, manifest, &graphs.files, true)?)
}

/// What the exporter fits for generation.
#[derive(Clone, Copy, Debug)]
pub struct MixtureOptions {
    /// Gaussian components (the reference: 1); 0 fits none.
    pub components: usize,
    /// Fit on the first N training images (0 = all).
    pub images: usize,
    /// Over the first `dims` principal components of `D(x, level)` (`(level, dims)`), not over
    /// channel means.
    pub subspace: Option<(usize, usize)>,
}

impl MixtureOptions {
    /// The level its samples start from: the subspace's, else T.
    fn start_level(&self, steps: usize) -> usize {
        self.subspace.map_or(steps, |(level, _)| level)
    }
}

impl Default for MixtureOptions {
    fn default() -> Self {
        MixtureOptions {
            components: 1,
            images: 0,
            subspace: None,
        }
    }
}

/// Fits the mixture `mixture` asks for on `data` for a network whose degradation is
/// `degradation`, with per-class mixtures for a class-conditioned one.
fn fit_mixture(
    data: &cold_core::data::Dataset,
    degradation: &cold_core::degradation::Degradation,
    mixture: MixtureOptions,
    conditioned: bool,
) -> Result<cold_core::generation::Generation> {
    let components = mixture.components.max(1);
    match mixture.subspace {
        Some((level, dims)) => crate::mixture::fit_subspace(
            data,
            degradation,
            level,
            dims,
            components,
            mixture.images,
            conditioned,
        ),
        None => crate::mixture::fit(data, components, mixture.images, conditioned),
    }
}

/// Exports the EMA weights of a run's latest checkpoint, with a generation mixture fitted on the
/// run's training data, and copies the run's record (loss log and curve, config, summary, latest
/// samples) beside them for the model card.
pub fn export_run(
    run: &RunDir,
    out: &Path,
    force: bool,
    mixture: MixtureOptions,
) -> Result<PathBuf> {
    let device = Default::default();
    let (cfg, ema, state) = load_ema::<crate::CpuBackend>(run, &device)?;
    let step = state.step;
    // The summary describes the checkpoint only when the run ended there; a run that was killed
    // after it has a checkpoint and a loss log but no (or an older) summary.
    let summary = cold_core::files::read_optional::<RunSummary>(&run.summary())
        .unwrap_or_else(|e| {
            tracing::warn!("{e}: the bundle's training record takes the checkpoint's instead");
            None
        })
        .filter(|s| s.steps == step);
    // The loss log up to the checkpoint (a killed run may have logged a few steps past it).
    let losses: Vec<(usize, f64)> = crate::run_dir::read_losses(&run.loss_csv())
        .into_iter()
        .filter(|&(s, _)| s <= step)
        .collect();
    let final_loss = summary.as_ref().and_then(|s| s.final_loss).or_else(|| {
        let last = &losses[losses.len().saturating_sub(100)..];
        (!last.is_empty()).then(|| last.iter().map(|&(_, l)| l).sum::<f64>() / last.len() as f64)
    });
    let training = TrainingSummary {
        dataset: cfg.dataset.clone(),
        steps: step,
        final_loss,
        batch_size: cfg.batch_size,
        learning_rate: cfg.learning_rate,
        ema_decay: cfg.ema_decay,
        max_level: cfg.max_level,
        seconds: summary
            .as_ref()
            .map(|s| s.total_seconds)
            .filter(|&s| s > 0.0)
            .unwrap_or(state.seconds),
        backend: summary
            .map(|s| s.backend)
            .filter(|b| !b.is_empty())
            .unwrap_or(state.backend),
        started_from: None,
        weights_sha256: None,
        version: cold_core::training::SUMMARY_VERSION,
    };
    // A fine-tune: the bundle's summary carries the base's, and its loss log continues the base's.
    let (training, losses, fine_tune_from) = match crate::run_dir::read_base(run, &cfg) {
        Some((base, base_losses)) => {
            let from = base.total_steps();
            let mut all: Vec<(usize, f64)> = base_losses
                .into_iter()
                .filter(|&(s, _)| s <= from)
                .collect();
            all.extend(losses.iter().map(|&(s, l)| (from + s, l)));
            let training = TrainingSummary {
                started_from: Some(Box::new(base)),
                ..training
            };
            (training, all, Some(from))
        }
        None => (training, losses, None),
    };
    let start = mixture.start_level(cfg.degradation.steps);
    let untrained_start = cfg.max_level.is_some_and(|k| start > k);
    if mixture.components > 0 && untrained_start {
        tracing::warn!(
            "no generation mixture: its samples would start at level {start}, above the levels \
             this network was trained on (--max-level {}); add one with `cold-train mixture \
             --level` at or below it",
            cfg.top_level()
        );
    }
    let generation = if mixture.components > 0 && !untrained_start {
        let data = cfg.load_data(cfg.split.parse()?)?;
        let g = fit_mixture(
            &data,
            &cfg.degradation,
            mixture,
            cfg.model.classes.is_some(),
        )?;
        tracing::info!(
            "generation mixture: {} component(s) fitted on {} images of {}",
            g.components.len(),
            g.images,
            g.fitted_on
        );
        Some(g)
    } else {
        None
    };
    let sampling = crate::run_dir::inherited_sampling(run, &cfg);
    let bundle = write_bundle(&ema, &cfg, training, generation, sampling, out, force)?;
    crate::run_dir::copy_record(run, &cfg, &losses, fine_tune_from, out)?;
    Ok(bundle)
}

/// Fits (or refits) the generation mixture of an existing bundle on `data` and rewrites its
/// manifest (the graphs and weights are unchanged).
pub fn add_mixture(
    bundle_dir: &Path,
    data: &cold_core::data::Dataset,
    mixture: MixtureOptions,
) -> Result<cold_core::generation::Generation> {
    let b = cold_core::bundle::Bundle::open(bundle_dir, true)?;
    let im = &b.manifest.image;
    let fitted = data.clone().fit_to(im.channels, im.height, im.width)?;
    let data = &fitted;
    if (data.channels, data.height, data.width) != (im.channels, im.height, im.width) {
        return Err(TrainError::Config(format!(
            "the data set is {}x{}x{} but the model works on {}x{}x{}",
            data.channels, data.height, data.width, im.channels, im.height, im.width
        )));
    }
    let classes = &b.manifest.network.config.classes;
    if let Some(names) = classes
        && &data.class_names != names
    {
        return Err(TrainError::Config(format!(
            "the network is conditioned on the classes {} but the data set has {}: fit the \
             mixture on the data it was trained on",
            names.join(", "),
            data.class_names.join(", ")
        )));
    }
    let start = mixture.start_level(b.manifest.degradation.steps);
    b.manifest.check_trained_level(start).map_err(|e| {
        TrainError::Config(format!(
            "{e}: fit the mixture at a level it was trained on (--level)"
        ))
    })?;
    let conditioned = classes.is_some();
    let mut g = fit_mixture(data, &b.manifest.degradation, mixture, conditioned)?;
    // The default guidance was chosen for the network, not for the mixture: it stays.
    g.guidance = b
        .manifest
        .generation
        .as_ref()
        .and_then(|old| old.guidance.clone());
    // The default temperature was chosen for the mixture this one replaces: it goes.
    if let Some(t) = b
        .manifest
        .generation
        .as_ref()
        .and_then(|old| old.temperature.as_ref())
    {
        tracing::warn!(
            "the bundle's default temperature {} was chosen for the mixture this fit replaces: \
             it is dropped (measure again and set it with `cold-train steps --temperature`)",
            t.value
        );
    }
    let mut m = b.manifest.clone();
    m.generation = Some(g.clone());
    cold_core::files::write(&bundle_dir.join(bundle::MANIFEST), &m)?;
    Ok(g)
}
