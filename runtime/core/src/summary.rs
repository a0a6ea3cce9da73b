//! What a training run leaves behind: the run summary (`summary.json` in the run folder,
//! `training-summary.json` in its bundle) and the training record a bundle's manifest carries.

use serde::{Deserialize, Serialize};

use crate::files::Versioned;

/// The training summary's format version (1: the first typed one; files without the field are 1).
pub const SUMMARY_VERSION: u32 = 1;
/// The run summary's format version (likewise).
pub const RUN_SUMMARY_VERSION: u32 = 1;

/// 1: the version of files written before the field existed (serde's default).
pub(crate) fn one() -> u32 {
    1
}

/// How the model was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// The file's format version ([`SUMMARY_VERSION`]).
    #[serde(default = "one")]
    pub version: u32,
    pub dataset: String,
    pub steps: usize,
    /// Mean L1 loss over the last 100 steps, when known.
    pub final_loss: Option<f64>,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub ema_decay: f64,
    #[serde(default)]
    pub seconds: f64,
    #[serde(default)]
    pub backend: String,
    /// The highest level this run trained on (`TrainConfig::max_level`), when below T: the
    /// runtime refuses to restore from above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_level: Option<usize>,
    /// The training of the bundle this run started from (`cold-train train --init`), when it is a
    /// fine-tune; `steps` and `seconds` above are then this run's alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<Box<TrainingSummary>>,
    /// On a `started_from` summary: the sha256 of that bundle's `weights.bin`, which names the
    /// exact weights the fine-tune started from (its folder may hold another bundle since).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_sha256: Option<String>,
}

impl Default for TrainingSummary {
    fn default() -> Self {
        TrainingSummary {
            version: SUMMARY_VERSION,
            dataset: String::new(),
            steps: 0,
            final_loss: None,
            batch_size: 0,
            learning_rate: 0.0,
            ema_decay: 0.0,
            seconds: 0.0,
            backend: String::new(),
            max_level: None,
            started_from: None,
            weights_sha256: None,
        }
    }
}

impl TrainingSummary {
    /// Steps over the whole lineage: this run's and those of every bundle it started from.
    pub fn total_steps(&self) -> usize {
        self.steps + self.started_from.as_ref().map_or(0, |b| b.total_steps())
    }

    /// Training seconds over the whole lineage.
    pub fn total_seconds(&self) -> f64 {
        self.seconds
            + self
                .started_from
                .as_ref()
                .map_or(0.0, |b| b.total_seconds())
    }
}

/// How a run ended: `summary.json` in the run folder, `training-summary.json` in its bundle.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The file's format version ([`RUN_SUMMARY_VERSION`]).
    #[serde(default = "one")]
    pub version: u32,
    pub steps: usize,
    /// Mean loss over the last 100 steps (none before the first step).
    pub final_loss: Option<f64>,
    /// Seconds of this invocation.
    pub seconds: f64,
    /// Seconds over all invocations of the run (resumes included).
    #[serde(default)]
    pub total_seconds: f64,
    pub steps_per_second: f64,
    pub images_per_second: f64,
    /// Seconds until the first step had finished (includes kernel compilation on a GPU).
    pub first_step_seconds: f64,
    pub interrupted: bool,
    pub backend: String,
}

impl Versioned for RunSummary {
    const WHAT: &'static str = "run summary";
    const FORMAT: Option<&'static str> = None;
    const VERSION: u32 = RUN_SUMMARY_VERSION;
    const UNVERSIONED: Option<u32> = Some(1);
    const REMEDY: &'static str = "it is rewritten when the run ends (`cold-train train --resume`)";
}

impl Versioned for TrainingSummary {
    const WHAT: &'static str = "training summary";
    const FORMAT: Option<&'static str> = None;
    const VERSION: u32 = SUMMARY_VERSION;
    const UNVERSIONED: Option<u32> = Some(1);
    const REMEDY: &'static str = "export the run again with `cold-train export`";
}
