//! A run folder: `config.json`, `loss.csv`, `loss.png`, `samples/`, `checkpoints/`,
//! `summary.json`.

use std::fs;
use std::path::{Path, PathBuf};

use cold_core::atomic;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

/// A run folder: `config.json`, `loss.csv`, `loss.png`, `samples/`, `checkpoints/`.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub(crate) fn loss_csv(&self) -> PathBuf {
        self.root.join("loss.csv")
    }
    pub(crate) fn loss_png(&self) -> PathBuf {
        self.root.join("loss.png")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.json")
    }
    /// A fine-tune's record of the bundle it started from: `base/training.json` (the bundle's
    /// training summary), `base/loss.csv` (its loss log) and `base/sampling.json` (its sampling
    /// defaults and the degradation they were chosen for), copied when the run starts.
    pub fn base(&self) -> PathBuf {
        self.root.join("base")
    }

    /// Reads the saved config.
    pub(crate) fn load_config(&self) -> Result<TrainConfig> {
        Ok(cold_core::files::read(&self.config())?)
    }
}

/// The loss curve's title: the data set's own name (not its path, as figures name it) and the
/// degradation in short, e.g. `CIFAR-10 (JPEG copy) / blur, T 50, 3x32x32`.
pub(crate) fn loss_title(cfg: &TrainConfig) -> String {
    let data = cfg
        .dataset
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or(&cfg.dataset);
    let data = cold_core::data::display_name(data);
    let g = &cfg.degradation;
    let title = format!(
        "{data} / {}, T {}, {}x{}x{}",
        g.transform.kind(),
        g.steps,
        g.channels,
        g.height,
        g.width
    );
    if cfg.ssim_weight > 0.0 {
        let w = cfg.ssim_weight;
        format!("{title}, loss {:.2} L1 + {w:.2} (1 - SSIM)", 1.0 - w)
    } else {
        title
    }
}

/// Copies a run's record into a bundle folder for its model card: `losses` (the log up to the
/// exported checkpoint, a fine-tune's after its base's) as `loss.csv` and `loss.png` (plotted
/// again, marking where a fine-tune starts), `training-config.json`,
/// `training-summary.json` and `samples.png` (the latest sample grid), each when the run has it.
pub(crate) fn copy_record(
    run: &RunDir,
    cfg: &TrainConfig,
    losses: &[(usize, f64)],
    fine_tune_from: Option<usize>,
    out: &Path,
) -> Result<()> {
    if !losses.is_empty() {
        write_losses(&out.join("loss.csv"), losses)?;
        let png = out.join("loss.png");
        crate::plot::loss_curve(losses, &loss_title(cfg), fine_tune_from, &png)?;
    }
    for (from, to) in [
        (run.config(), "training-config.json"),
        (run.summary(), "training-summary.json"),
        (run.samples().join("latest.png"), "samples.png"),
    ] {
        if let Ok(bytes) = fs::read(&from) {
            atomic::write_atomic(&out.join(to), &bytes)?;
        }
    }
    Ok(())
}

/// Copies the training summary and loss log of the bundle a fine-tune starts from into the run
/// folder, so that its export knows the whole lineage even when the bundle has since changed.
pub(crate) fn record_base(run: &RunDir, bundle_dir: &Path) -> Result<()> {
    let b = cold_core::bundle::Bundle::open(bundle_dir, false)?;
    let dir = run.base();
    fs::create_dir_all(&dir).map_err(|e| TrainError::io(&dir, e))?;
    let training = cold_core::training::TrainingSummary {
        weights_sha256: b.manifest.sha256.get("weights.bin").cloned(),
        ..b.manifest.training.clone()
    };
    cold_core::files::write(&dir.join("training.json"), &training)?;
    let losses = read_losses(&bundle_dir.join("loss.csv"));
    if !losses.is_empty() {
        write_losses(&dir.join("loss.csv"), &losses)?;
    }
    if let Some(sampling) = b.manifest.sampling.clone() {
        let record = BaseSampling {
            version: 1,
            bundle: b.manifest.name.clone(),
            degradation: b.manifest.degradation.clone(),
            sampling,
        };
        cold_core::files::write(&dir.join("sampling.json"), &record)?;
    }
    Ok(())
}

/// The sampling defaults of the bundle a fine-tune started from, and what they were chosen for.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct BaseSampling {
    version: u32,
    bundle: String,
    degradation: cold_core::degradation::Degradation,
    sampling: cold_core::bundle::SamplingDefaults,
}

impl cold_core::files::Versioned for BaseSampling {
    const WHAT: &'static str = "record of a fine-tune's parent sampling defaults";
    const FORMAT: Option<&'static str> = None;
    const VERSION: u32 = 1;
    const REMEDY: &'static str = "delete it: the bundle then gets no sampling defaults";
}

/// The sampling defaults a fine-tune's bundle inherits from the bundle it started from: the
/// parent's, when the run kept its degradation (a default chosen for another D means nothing
/// here), with `chosen_by` saying where they come from. Logged either way, so that a fine-tune
/// is never scored with a default other than its parent's by surprise.
pub(crate) fn inherited_sampling(
    run: &RunDir,
    cfg: &TrainConfig,
) -> Option<cold_core::bundle::SamplingDefaults> {
    cfg.init.as_ref()?;
    let path = run.base().join("sampling.json");
    let base: BaseSampling = match cold_core::files::read_optional(&path) {
        Ok(Some(b)) => b,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!("{e}: the bundle gets no sampling defaults");
            return None;
        }
    };
    let steps = base.sampling.recommended_steps;
    if base.degradation != cfg.degradation {
        tracing::warn!(
            "{} restores with {steps} sampling step(s) by default, but this run changed the \
             degradation: the bundle gets no default (measure one with `cold eval --steps-curve` \
             and set it with `cold-train steps`)",
            base.bundle
        );
        return None;
    }
    tracing::info!(
        "sampling defaults inherited from {}: {steps} step(s) (`cold-train steps` sets this \
         network's own)",
        base.bundle
    );
    Some(cold_core::bundle::SamplingDefaults {
        recommended_steps: steps,
        chosen_by: format!(
            "inherited from {}, the bundle this network was fine-tuned from, not measured on \
             this network: {}",
            base.bundle, base.sampling.chosen_by
        ),
        self_ensemble: base.sampling.self_ensemble,
    })
}

/// The training a fine-tune started from (summary and loss log), from the run folder's record;
/// `None` for a run from scratch, or (logged) a fine-tune without a readable record. The bundle
/// itself is not consulted: it may have been replaced since, by this very run's export.
pub(crate) fn read_base(
    run: &RunDir,
    cfg: &TrainConfig,
) -> Option<(cold_core::training::TrainingSummary, Vec<(usize, f64)>)> {
    let init = cfg.init.as_ref()?;
    let path = run.base().join("training.json");
    let summary = cold_core::files::read::<cold_core::training::TrainingSummary>(&path);
    match summary {
        Ok(t) => Some((t, read_losses(&run.base().join("loss.csv")))),
        Err(e) => {
            tracing::warn!(
                "the run started from {} but its record of that bundle's training ({}) cannot be \
                 read ({e}); the export records this run's training only",
                init.display(),
                path.display()
            );
            None
        }
    }
}

pub(crate) fn read_losses(path: &Path) -> Vec<(usize, f64)> {
    let Ok(s) = fs::read_to_string(path) else {
        return Vec::new();
    };
    s.lines()
        .skip(1)
        .filter_map(|l| {
            let mut it = l.split(',');
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect()
}

pub(crate) fn write_losses(path: &Path, rows: &[(usize, f64)]) -> Result<()> {
    let mut s = String::from("step,loss\n");
    for (st, l) in rows {
        s.push_str(&format!("{st},{l}\n"));
    }
    atomic::write_atomic(path, s.as_bytes())?;
    Ok(())
}
