//! Model bundles: a folder with the restorer, degradation and sampling-step graphs, one shared
//! weights file (ONNX external data, 64-byte aligned) and `manifest.json`, which describes
//! everything the runtime needs and the sha256 of every file.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::degradation::Degradation;
use crate::error::{Error, Result};
use crate::files::{self, Versioned};
use crate::generation::Generation;
use crate::network::NetworkSpec;
use crate::training::TrainingSummary;

/// The `format` string of a manifest.
pub const FORMAT: &str = "cold-diffusion-bundle";
/// The manifest version this build writes, and the newest it reads:
/// - 1: graphs for the bundle's own image size, the degradation's tables inside them;
/// - 2: graphs with symbolic batch, height and width; the degradation's size-dependent tables
///   (per-level operators, mask canvases) are graph inputs, which the runtime computes for the
///   images' size.
pub const FORMAT_VERSION: u32 = 2;
/// The oldest manifest version this build reads.
pub(crate) const OLDEST_FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "manifest.json";

/// Input and output names of the bundle's graphs.
pub mod io {
    /// Images `[B, C, H, W]` f32 (restorer and degradation input).
    pub const X: &str = "x";
    /// Levels `[B]` i64 (restorer and degradation input).
    pub const T: &str = "t";
    /// Degradation output.
    pub const Y: &str = "y";
    /// Step input: the current state.
    pub const X_S: &str = "x_s";
    /// Step input: its level.
    pub const S: &str = "s";
    /// Step input: the level to step to.
    pub const S_PREV: &str = "s_prev";
    /// Restorer output, and the step's estimate of the clean image.
    pub const X0_HAT: &str = "x0_hat";
    /// Step output: the Algorithm 2 next state.
    pub const X_NEXT: &str = "x_next";
    /// Step output: the Algorithm 1 next state.
    pub const X_NEXT_ALG1: &str = "x_next_alg1";
    /// The estimated-noise step's next state (step graphs of noise and animorphosis models).
    pub const X_NEXT_EST: &str = "x_next_est";
    /// Per-image degradation parameters `[B, P]` f32 (degradation and step input, only for kinds
    /// that have them, e.g. the inpainting centre).
    pub const PARAMS: &str = "params";
    /// Classes `[B]` i64 (restorer and step input, only for class-conditioned networks; the
    /// null class, `UNetConfig::null_class`, for none).
    pub const CLASS: &str = "class";
}

/// Image geometry and value range.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Pixel values the graphs work in; 8-bit pixels map linearly onto it.
    pub value_range: [f32; 2],
}

/// File names of the bundle's graphs and weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Files {
    /// R(x, t): inputs `x` [B,C,H,W] f32, `t` [B] i64; output `x0_hat`.
    pub restorer: String,
    /// D(x, t): inputs `x`, `t` (and `params` [B, P] f32 for kinds with per-image parameters);
    /// output `y`.
    pub degradation: String,
    /// One sampling step: inputs `x_s` [B,C,H,W] f32, `s` and `s_prev` [B] i64 (the level to step
    /// to); outputs `x0_hat`, `x_next` (Algorithm 2) and `x_next_alg1` (Algorithm 1).
    pub step: String,
    /// The external-data file all graphs share.
    pub weights: String,
}

/// Sampling defaults a bundle carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplingDefaults {
    /// Levels Algorithms 1 and 2 visit by default (`cold restore --steps`), from t down to 0.
    pub recommended_steps: usize,
    /// Why: the measurement it was chosen by.
    #[serde(default)]
    pub chosen_by: String,
    /// Whether `cold restore` averages the restorer's estimate over the eight flips and transposes
    /// of its input by default (`--self-ensemble`; `--no-self-ensemble` turns it off).
    #[serde(default, skip_serializing_if = "is_false")]
    pub self_ensemble: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub image: ImageSpec,
    pub degradation: Degradation,
    /// The network's size (the trainer's `UNetConfig`) plus its parameter count.
    pub network: NetworkSpec,
    pub training: TrainingSummary,
    pub opset: i64,
    pub files: Files,
    /// For unconditional generation: the Gaussian mixture over per-channel means, when fitted.
    #[serde(default)]
    pub generation: Option<Generation>,
    /// Sampling defaults chosen by measurement (`cold eval --steps-curve`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<SamplingDefaults>,
    /// sha256 of every file but the manifest.
    pub sha256: BTreeMap<String, String>,
    pub created_by: String,
}

impl Manifest {
    /// The bundle's generation mixture, checked; an error that says how to add one when there is none.
    pub fn mixture(&self) -> Result<Generation> {
        let Some(g) = &self.generation else {
            return Err(Error::InvalidArgument(format!(
                "model {} has no Gaussian mixture for generation: export it again with \
                 `cold-train export` (which fits one), or add one to this bundle with \
                 `cold-train mixture --model <bundle> --dataset <its data set>`",
                self.name
            )));
        };
        g.validate(self.image.channels)?;
        if let Some(s) = &g.subspace {
            let im = &self.image;
            s.validate((im.channels, im.height, im.width), self.degradation.steps)?;
        }
        self.check_trained_level(g.start_level(self.degradation.steps))
            .map_err(|e| {
                Error::InvalidArgument(format!(
                    "{e}. Its generation starts there: fit the mixture at a level it was trained \
                     on (`cold-train mixture --level`)"
                ))
            })?;
        Ok(g.clone())
    }

    /// Refuses level `t` when the network was trained on lower levels only (`cold-train train
    /// --max-level`): its estimates above are untrained.
    pub fn check_trained_level(&self, t: usize) -> Result<()> {
        match self.training.max_level {
            Some(k) if t > k => Err(Error::InvalidArgument(format!(
                "model {} was trained on levels 1..={k} only (cold-train train --max-level {k}), \
                 so it cannot start from level {t}: use a level up to {k}, or a model trained on \
                 every level",
                self.name
            ))),
            _ => Ok(()),
        }
    }
}

impl Versioned for Manifest {
    const WHAT: &'static str = "bundle manifest";
    const FORMAT: Option<&'static str> = Some(FORMAT);
    const VERSION_FIELD: &'static str = "format_version";
    const VERSION: u32 = FORMAT_VERSION;
    const OLDEST: u32 = OLDEST_FORMAT_VERSION;
    const REMEDY: &'static str = "export the bundle again with `cold-train export`";

    fn precheck(value: &serde_json::Value) -> std::result::Result<(), String> {
        crate::degradation::check_kind_of_file(value)
    }
}

fn bundle_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Bundle {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A bundle on disk whose manifest has been read and checked.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Bundle {
    /// Reads and checks a bundle: manifest format and version, file names inside the folder, and
    /// (when `verify` is set) the sha256 of every file.
    pub fn open(dir: &Path, verify: bool) -> Result<Self> {
        let mpath = dir.join(MANIFEST);
        if !dir.is_dir() {
            return Err(bundle_err(
                dir,
                "no such folder (pass --model models/<name>, a folder with manifest.json)",
            ));
        }
        let text = fs::read_to_string(&mpath).map_err(|e| {
            bundle_err(
                dir,
                format!("cannot read {MANIFEST}: {e}; is this a model bundle folder?"),
            )
        })?;
        let manifest: Manifest = files::parse(&text)
            .map_err(|reason| bundle_err(dir, format!("{MANIFEST}: {reason}")))?;
        let b = Bundle {
            dir: dir.to_path_buf(),
            manifest,
        };
        for name in b.file_names() {
            let p = Path::new(&name);
            if p.components().count() != 1
                || !matches!(p.components().next(), Some(std::path::Component::Normal(_)))
            {
                return Err(bundle_err(
                    dir,
                    format!("file name '{name}' must be a plain name inside the bundle"),
                ));
            }
            if !b.manifest.sha256.contains_key(&name) {
                return Err(bundle_err(
                    dir,
                    format!("{MANIFEST} has no sha256 for {name}"),
                ));
            }
        }
        if verify {
            b.verify()?;
        }
        Ok(b)
    }

    /// Every file the manifest names.
    pub fn file_names(&self) -> Vec<String> {
        let f = &self.manifest.files;
        vec![
            f.restorer.clone(),
            f.degradation.clone(),
            f.step.clone(),
            f.weights.clone(),
        ]
    }

    /// Checks every file against its sha256.
    pub fn verify(&self) -> Result<()> {
        for (name, want) in &self.manifest.sha256 {
            let p = self.dir.join(name);
            if !p.is_file() {
                return Err(bundle_err(
                    &self.dir,
                    format!("{name} is missing; the bundle is incomplete, export it again"),
                ));
            }
            let got = atomic::sha256_file(&p)?;
            if &got != want {
                return Err(bundle_err(
                    &self.dir,
                    format!(
                        "{name} does not match its sha256 in {MANIFEST} (file corrupt or modified); export the bundle again"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// Writes a complete bundle folder atomically: the files go to a temporary sibling folder that
/// is renamed into place. An existing different bundle is only replaced with `force`; an
/// identical one is left as it is.
pub fn write_bundle(
    out: &Path,
    mut manifest: Manifest,
    files: &[(String, Vec<u8>)],
    force: bool,
) -> Result<PathBuf> {
    manifest.sha256 = files
        .iter()
        .map(|(n, b)| (n.clone(), atomic::sha256_bytes(b)))
        .collect();
    let json = files::to_json(&manifest)?;
    write_folder(out, MANIFEST, &json, files, force)
}

/// Writes a folder of `files` and its manifest `manifest_name` (bytes `json`) atomically, as
/// [`write_bundle`] does (the classifier's folder too).
pub fn write_folder(
    out: &Path,
    manifest_name: &str,
    json: &[u8],
    files: &[(String, Vec<u8>)],
    force: bool,
) -> Result<PathBuf> {
    if out.exists() {
        let existing = fs::read(out.join(manifest_name)).ok();
        match existing {
            Some(bytes) if bytes == json => return Ok(out.to_path_buf()),
            _ if !force => {
                return Err(bundle_err(
                    out,
                    "a different bundle (or other files) is already here: pass --force to replace it, or choose another --out",
                ));
            }
            _ => {}
        }
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let name = out
        .file_name()
        .ok_or_else(|| bundle_err(out, "not a folder name"))?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    for (n, b) in files {
        atomic::write_atomic(&tmp.join(n), b)?;
    }
    atomic::write_atomic(&tmp.join(manifest_name), json)?;
    if out.exists() {
        let old = parent.join(format!(".{name}.{}.old", std::process::id()));
        fs::rename(out, &old).map_err(|e| Error::io(out, e))?;
        fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
        // Keep anything the user added beside the bundle files (a model card, pictures).
        if let Ok(rd) = fs::read_dir(&old) {
            for e in rd.flatten() {
                let target = out.join(e.file_name());
                if !target.exists() {
                    let _ = fs::rename(e.path(), target);
                }
            }
        }
        let _ = fs::remove_dir_all(&old);
    } else {
        fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    }
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::{newer_is_refused, round_trip};

    fn shipped(name: &str) -> Manifest {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(name)
            .join(MANIFEST);
        files::parse(&fs::read_to_string(&p).expect("shipped manifest")).expect("typed")
    }

    #[test]
    fn manifests_round_trip_and_newer_versions_are_refused() {
        for name in ["mnist-blur", "cifar10-blur", "mnist-noise"] {
            let m = shipped(name);
            round_trip(&m);
            newer_is_refused(&m);
        }
        let m = shipped("mnist-blur");
        assert_eq!(m.network.config.dim_mults, vec![1, 2, 4]);
        assert_eq!(m.generation.as_ref().map(|g| g.components.len()), Some(1));
    }

    #[test]
    fn a_bundle_with_a_newer_manifest_is_refused_as_newer() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut v = serde_json::to_value(shipped("mnist-blur")).expect("json");
        v["format_version"] = serde_json::json!(FORMAT_VERSION + 1);
        // A newer format may change any field: the version is what the message is about.
        v["network"] = serde_json::json!("described otherwise");
        fs::write(dir.path().join(MANIFEST), v.to_string()).expect("write");
        let e = Bundle::open(dir.path(), false).expect_err("newer");
        let s = e.to_string();
        assert!(s.contains("format version 3") && s.contains("newer"), "{s}");
        v["format_version"] = serde_json::json!(FORMAT_VERSION);
        fs::write(dir.path().join(MANIFEST), v.to_string()).expect("write");
        let e = Bundle::open(dir.path(), false).expect_err("bad network");
        assert!(e.to_string().contains("export the bundle again"), "{e}");
    }
}
