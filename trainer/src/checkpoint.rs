//! Checkpoints: `checkpoints/step-NNNNNNN/{model,ema,optim}.mpk + state.json`, written into a
//! temporary folder and renamed into place, then named in `checkpoints/latest` (written atomically).
//! An interrupted save leaves the previous checkpoint as the latest.

use std::fs;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use cold_core::atomic;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};
use crate::model::{InitUNet, UNet};
use crate::state::TrainState;

type Rec = NamedMpkBytesRecorder<FullPrecisionSettings>;

/// What `state.json` records.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    pub step: usize,
    pub format: u32,
    /// Training seconds up to this checkpoint, over every invocation of the run.
    #[serde(default)]
    pub seconds: f64,
    /// The backend that trained it (flex, cuda); empty in checkpoints written before it was recorded.
    #[serde(default)]
    pub backend: String,
}

fn ck_err(path: &Path, reason: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.into(),
        reason: reason.to_string(),
    }
}

/// The name of the latest complete checkpoint, if any.
pub(crate) fn latest_name(dir: &Path) -> Option<String> {
    let name = fs::read_to_string(dir.join("latest"))
        .ok()?
        .trim()
        .to_string();
    dir.join(&name).join("state.json").is_file().then_some(name)
}

/// Saves a checkpoint and prunes old ones, keeping `keep`. Returns its name.
pub(crate) fn save<B: AutodiffBackend>(
    dir: &Path,
    state: &TrainState<B>,
    backend: &str,
    keep: usize,
) -> Result<String> {
    let name = format!("step-{:07}", state.step);
    let tmp = dir.join(format!(".{name}.tmp"));
    let final_dir = dir.join(&name);
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| TrainError::io(&tmp, e))?;
    let rec = Rec::new();
    let model: Vec<u8> = Recorder::<B>::record(&rec, state.model.clone().into_record(), ())
        .map_err(|e| ck_err(&tmp, e))?;
    let ema: Vec<u8> =
        Recorder::<B::InnerBackend>::record(&rec, state.ema.clone().into_record(), ())
            .map_err(|e| ck_err(&tmp, e))?;
    let optim: Vec<u8> =
        Recorder::<B>::record(&rec, state.optim.to_record(), ()).map_err(|e| ck_err(&tmp, e))?;
    atomic::write_atomic(&tmp.join("model.mpk"), &model)?;
    atomic::write_atomic(&tmp.join("ema.mpk"), &ema)?;
    atomic::write_atomic(&tmp.join("optim.mpk"), &optim)?;
    let js = serde_json::to_vec_pretty(&Checkpoint {
        step: state.step,
        format: 1,
        seconds: state.seconds,
        backend: backend.into(),
    })
    .map_err(|e| ck_err(&tmp, e))?;
    atomic::write_atomic(&tmp.join("state.json"), &js)?;
    if final_dir.exists() {
        fs::remove_dir_all(&final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    }
    fs::rename(&tmp, &final_dir).map_err(|e| TrainError::io(&final_dir, e))?;
    atomic::write_atomic(&dir.join("latest"), name.as_bytes())?;
    prune(dir, keep, &name)?;
    Ok(name)
}

fn prune(dir: &Path, keep: usize, current: &str) -> Result<()> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| TrainError::io(dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("step-"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep.max(1));
    for n in names.into_iter().take(excess) {
        if n != current {
            let p = dir.join(&n);
            fs::remove_dir_all(&p).map_err(|e| TrainError::io(&p, e))?;
        }
    }
    Ok(())
}

fn latest_dir(dir: &Path) -> Result<PathBuf> {
    let name = latest_name(dir).ok_or_else(|| {
        ck_err(
            dir,
            "no complete checkpoint here (train first, or point --run at a training run folder)",
        )
    })?;
    Ok(dir.join(name))
}

fn read(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| TrainError::io(path, e))
}

fn read_state(d: &Path) -> Result<Checkpoint> {
    let p = d.join("state.json");
    serde_json::from_slice(&read(&p)?).map_err(|e| ck_err(&p, e))
}

/// Loads the latest checkpoint for training.
pub(crate) fn load_latest<B: AutodiffBackend>(
    dir: &Path,
    cfg: &TrainConfig,
    device: &B::Device,
) -> Result<TrainState<B>> {
    let d = latest_dir(dir)?;
    let st = read_state(&d)?;
    let rec = Rec::new();
    let model_rec = Recorder::<B>::load(&rec, read(&d.join("model.mpk"))?, device)
        .map_err(|e| ck_err(&d, e))?;
    let model = cfg.model.init::<B>(device).load_record(model_rec);
    let ema_rec = Recorder::<B::InnerBackend>::load(&rec, read(&d.join("ema.mpk"))?, device)
        .map_err(|e| ck_err(&d, e))?;
    let ema = cfg
        .model
        .init::<B::InnerBackend>(device)
        .load_record(ema_rec);
    let optim_rec = Recorder::<B>::load(&rec, read(&d.join("optim.mpk"))?, device)
        .map_err(|e| ck_err(&d, e))?;
    let optim = crate::config::optimizer::<B>(cfg).load_record(optim_rec);
    Ok(TrainState {
        model,
        ema,
        optim,
        step: st.step,
        seconds: st.seconds,
    })
}

/// Loads only the EMA weights of the latest checkpoint, for sampling and export, with its
/// step and training seconds.
pub(crate) fn load_latest_ema<B: Backend>(
    dir: &Path,
    cfg: &TrainConfig,
    device: &B::Device,
) -> Result<(UNet<B>, Checkpoint)> {
    let d = latest_dir(dir)?;
    let st = read_state(&d)?;
    let rec = Rec::new();
    let ema_rec =
        Recorder::<B>::load(&rec, read(&d.join("ema.mpk"))?, device).map_err(|e| ck_err(&d, e))?;
    Ok((cfg.model.init::<B>(device).load_record(ema_rec), st))
}
/// Loads the EMA weights of a run's latest checkpoint for inference.
pub fn load_ema<B: Backend>(
    run: &crate::run_dir::RunDir,
    device: &B::Device,
) -> Result<(TrainConfig, UNet<B>, Checkpoint)> {
    let cfg = run.load_config()?;
    let (ema, state) = load_latest_ema::<B>(&run.checkpoints(), &cfg, device)?;
    Ok((cfg, ema, state))
}
