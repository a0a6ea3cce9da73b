//! `degradation.json`: written by `degrade` next to the images it writes, read by `restore`. It
//! records the degradation, the level and every image's per-image parameters (the inpainting
//! centre, ...), which restoring needs and the images alone do not carry.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ndarray::Array2;
use rand::{SeedableRng, rngs::StdRng};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::degradation::Degradation;
use crate::error::{Error, Result};
use crate::files::{self, Versioned};

/// The sidecar's file name, at the top of a degraded folder.
pub const FILE: &str = "degradation.json";
const FORMAT: &str = "cold-diffusion-degraded-folder";
const VERSION: u32 = 1;

impl Versioned for Sidecar {
    const WHAT: &'static str = "degraded folder's sidecar";
    const FORMAT: Option<&'static str> = Some(FORMAT);
    const VERSION: u32 = VERSION;
    const REMEDY: &'static str = "degrade the images again";

    fn precheck(value: &serde_json::Value) -> std::result::Result<(), String> {
        crate::degradation::check_kind_of_file(value)
    }
}

/// The contents of `degradation.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub format: String,
    pub version: u32,
    pub degradation: Degradation,
    /// The level every image was degraded to.
    pub t: usize,
    /// The seed the per-image parameters were drawn from.
    pub seed: u64,
    pub param_names: Vec<String>,
    /// Image path relative to the folder (`/`-separated, the input's name) -> its parameters.
    pub images: BTreeMap<String, Vec<f32>>,
}

fn err(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!("{}: {reason}", path.display()))
}

/// The key of an image: its relative path with `/` separators.
pub fn key(rel: &Path) -> String {
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Sidecar {
    pub fn new(degradation: &Degradation, t: usize, seed: u64) -> Self {
        Sidecar {
            format: FORMAT.into(),
            version: VERSION,
            degradation: degradation.clone(),
            t,
            seed,
            param_names: degradation
                .param_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            images: BTreeMap::new(),
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(FILE)
    }

    /// Reads `dir/degradation.json`, if there is one.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let p = Self::path(dir);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&p, e)),
        };
        let s: Sidecar = files::parse(&text).map_err(|reason| err(&p, reason))?;
        Ok(Some(s))
    }

    /// Writes `dir/degradation.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        // Kinds whose parameters are whole images (snow, noise) write compact JSON.
        let js = if self.degradation.param_count() > 16 {
            serde_json::to_vec(self)
        } else {
            serde_json::to_vec_pretty(self)
        }
        .map_err(|e| err(dir, e))?;
        atomic::write_atomic(&Self::path(dir), &js)
    }

    /// The parameters of one image: drawn from a generator seeded by the folder's seed and the
    /// image's key, so they do not depend on the order or batching of the images.
    pub fn draw(&self, rel: &Path) -> Result<Vec<f32>> {
        let k = key(rel);
        let h = atomic::sha256_bytes(k.as_bytes());
        let mix = u64::from_str_radix(&h[..16], 16).unwrap_or(0);
        let mut rng = StdRng::seed_from_u64(self.seed ^ mix);
        Ok(self.degradation.sample_params(&mut rng, 1)?.row(0).to_vec())
    }

    /// The parameters `[B, P]` of a batch of images, from the sidecar.
    pub fn lookup(&self, dir: &Path, rels: &[&Path]) -> std::result::Result<Array2<f32>, String> {
        let p = self.degradation.param_count();
        let mut out = Array2::zeros((rels.len(), p));
        for (i, rel) in rels.iter().enumerate() {
            let k = key(rel);
            let v = self.images.get(&k).ok_or_else(|| {
                format!(
                    "{k} is not listed in {}: it was not degraded by `cold degrade` into this folder",
                    Self::path(dir).display()
                )
            })?;
            if v.len() != p {
                return Err(format!(
                    "{k}: {} parameters in {}, expected {p}",
                    v.len(),
                    Self::path(dir).display()
                ));
            }
            out.row_mut(i)
                .assign(&ndarray::ArrayView1::from(v.as_slice()));
        }
        Ok(out)
    }

    /// Checks that the images were degraded by the same process a model inverts.
    pub fn check_matches(&self, dir: &Path, model: &Degradation) -> Result<()> {
        if &self.degradation != model {
            return Err(err(
                &Self::path(dir),
                format!(
                    "these images were degraded by \"{}\" but the model inverts \"{}\": use the \
                     model they were degraded for, or degrade them again with this one",
                    self.degradation.describe(),
                    model.describe()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::{newer_is_refused, round_trip};

    #[test]
    fn the_sidecar_round_trips_and_newer_versions_are_refused() {
        let d = Degradation::preset("mnist-inpaint").expect("preset");
        let mut s = Sidecar::new(&d, 25, 7);
        s.images.insert(
            "a/b.png".into(),
            s.draw(Path::new("a/b.png")).expect("draw"),
        );
        round_trip(&s);
        newer_is_refused(&s);
        let dir = tempfile::tempdir().expect("tmp");
        s.write(dir.path()).expect("write");
        assert_eq!(Sidecar::read(dir.path()).expect("read"), Some(s.clone()));
        let mut v = serde_json::to_value(&s).expect("json");
        v["version"] = serde_json::json!(VERSION + 1);
        std::fs::write(Sidecar::path(dir.path()), v.to_string()).expect("write");
        let e = Sidecar::read(dir.path()).expect_err("newer");
        assert!(e.to_string().contains("degradation.json"), "{e}");
    }
}
