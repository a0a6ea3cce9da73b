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
use crate::shard::Shard;

/// The sidecar's file name, at the top of a degraded folder.
pub const FILE: &str = "degradation.json";
const FORMAT: &str = "cold-diffusion-degraded-folder";
/// Version 2 records each image's size with its parameters; version 1 (every image at the
/// degradation's size, parameters alone) still reads.
const VERSION: u32 = 2;

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
    /// Image path relative to the folder (`/`-separated, the input's name) -> the size D was
    /// applied at and the image's parameters.
    pub images: BTreeMap<String, Entry>,
}

/// One degraded image: the size D was applied at (the image's own, or the model's with
/// `--resize scale`) and its per-image parameters at that size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "EntryFile")]
pub struct Entry {
    pub height: usize,
    pub width: usize,
    pub params: Vec<f32>,
}

/// An entry as files hold it: version 2's, or version 1's bare parameters (size 0 x 0 until
/// [`Sidecar::read`] gives them the degradation's size).
#[derive(Deserialize)]
#[serde(untagged)]
enum EntryFile {
    Sized {
        height: usize,
        width: usize,
        params: Vec<f32>,
    },
    Bare(Vec<f32>),
}

impl From<EntryFile> for Entry {
    fn from(e: EntryFile) -> Self {
        match e {
            EntryFile::Sized {
                height,
                width,
                params,
            } => Entry {
                height,
                width,
                params,
            },
            EntryFile::Bare(params) => Entry {
                height: 0,
                width: 0,
                params,
            },
        }
    }
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

    /// The sidecar a task of a sharded degrade writes: `degradation.shard-K-of-N.json`, beside
    /// `degradation.json`, so that no file is written by two processes.
    pub fn shard_path(dir: &Path, shard: &Shard) -> PathBuf {
        dir.join(format!("degradation.{}.json", shard.tag()))
    }

    /// Every sidecar file of `dir`: `degradation.json` first, then the shards' files.
    fn files(dir: &Path) -> Result<Vec<PathBuf>> {
        let mut out = Vec::new();
        let main = Self::path(dir);
        if main.is_file() {
            out.push(main);
        }
        let rd = match fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(dir, e)),
        };
        let mut shards = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("degradation.shard-") && name.ends_with(".json") {
                shards.push(e.path());
            }
        }
        shards.sort();
        out.extend(shards);
        Ok(out)
    }

    /// Reads one sidecar file.
    fn read_file(p: &Path) -> Result<Self> {
        let text = fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
        let mut s: Sidecar = files::parse(&text).map_err(|reason| err(p, reason))?;
        // Version 1: every image had the degradation's size.
        let (h, w) = (s.degradation.height, s.degradation.width);
        for e in s.images.values_mut().filter(|e| e.height == 0) {
            (e.height, e.width) = (h, w);
        }
        s.version = VERSION;
        Ok(s)
    }

    /// Reads `dir/degradation.json` and the sidecars of a sharded degrade
    /// (`degradation.shard-K-of-N.json`), merged; `None` when there is none. Files that describe
    /// another degradation, level or seed, or give one image two different entries, are refused
    /// naming both.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let mut merged: Option<(PathBuf, Sidecar)> = None;
        let mut owner: BTreeMap<String, PathBuf> = BTreeMap::new();
        for p in Self::files(dir)? {
            let s = Self::read_file(&p)?;
            let Some((first, m)) = merged.as_mut() else {
                for k in s.images.keys() {
                    owner.insert(k.clone(), p.clone());
                }
                merged = Some((p, s));
                continue;
            };
            if (&s.degradation, s.t, s.seed) != (&m.degradation, m.t, m.seed) {
                return Err(err(
                    &p,
                    format!(
                        "describes \"{}\" at t = {} (seed {}), but {} describes \"{}\" at t = {} \
                         (seed {}): the folder mixes two degrade jobs; degrade again into a fresh \
                         folder",
                        s.degradation.describe(),
                        s.t,
                        s.seed,
                        first.display(),
                        m.degradation.describe(),
                        m.t,
                        m.seed
                    ),
                ));
            }
            for (k, e) in s.images {
                match m.images.get(&k) {
                    Some(old) if *old != e => {
                        return Err(err(
                            &p,
                            format!(
                                "its entry for {k} differs from the one in {}: degrade that image \
                                 again into a fresh folder",
                                owner.get(&k).unwrap_or(first).display()
                            ),
                        ));
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(k.clone(), p.clone());
                        m.images.insert(k, e);
                    }
                }
            }
        }
        Ok(merged.map(|(_, s)| s))
    }

    /// Writes `dir/degradation.json` atomically.
    pub fn write(&self, dir: &Path) -> Result<()> {
        self.write_file(&Self::path(dir))
    }

    /// Writes the sidecar of one task of a sharded degrade ([`Sidecar::shard_path`]): the
    /// entries of that task's images only.
    pub fn write_shard(&self, dir: &Path, shard: &Shard) -> Result<()> {
        let mut s = Sidecar {
            format: self.format.clone(),
            version: self.version,
            degradation: self.degradation.clone(),
            t: self.t,
            seed: self.seed,
            param_names: self.param_names.clone(),
            images: BTreeMap::new(),
        };
        for (k, e) in &self.images {
            if shard.takes_path(Path::new(k)) {
                s.images.insert(k.clone(), e.clone());
            }
        }
        s.write_file(&Self::shard_path(dir, shard))
    }

    fn write_file(&self, path: &Path) -> Result<()> {
        let s = self;
        // Kinds whose parameters are whole images (snow, noise) write compact JSON.
        let js = if s.images.values().any(|e| e.params.len() > 16) {
            serde_json::to_vec(s)
        } else {
            serde_json::to_vec_pretty(s)
        }
        .map_err(|e| err(path, e))?;
        atomic::write_atomic(path, &js)
    }

    /// The entry of one image degraded at `height x width`: its parameters at that size, drawn
    /// from a generator seeded by the folder's seed and the image's key, so they do not depend on
    /// the order or batching of the images.
    pub fn draw(&self, rel: &Path, height: usize, width: usize) -> Result<Entry> {
        let k = key(rel);
        let mix = atomic::hash_u64(k.as_bytes());
        let mut rng = StdRng::seed_from_u64(self.seed ^ mix);
        let d = self.degradation.at_size(height, width)?;
        Ok(Entry {
            height,
            width,
            params: d.sample_params(&mut rng, 1)?.row(0).to_vec(),
        })
    }

    /// The parameters of images of one size `height x width` (`[n, P]`), from their entries. An
    /// image that is not listed, or whose entry is for another size, is an error naming it.
    pub fn lookup(
        &self,
        dir: &Path,
        rels: &[&Path],
        height: usize,
        width: usize,
    ) -> std::result::Result<Array2<f32>, String> {
        let p = self
            .degradation
            .at_size(height, width)
            .map_err(|e| e.to_string())?
            .param_count();
        let mut out = Array2::zeros((rels.len(), p));
        for (i, rel) in rels.iter().enumerate() {
            let e = self.entry(dir, rel, height, width)?;
            if e.params.len() != p {
                return Err(format!(
                    "{}: {} parameters in {}, expected {p}",
                    key(rel),
                    e.params.len(),
                    Self::path(dir).display()
                ));
            }
            out.row_mut(i)
                .assign(&ndarray::ArrayView1::from(e.params.as_slice()));
        }
        Ok(out)
    }

    /// The entry of one image restored at `height x width`: refused when it is not listed or was
    /// degraded at another size.
    pub fn entry(
        &self,
        dir: &Path,
        rel: &Path,
        height: usize,
        width: usize,
    ) -> std::result::Result<&Entry, String> {
        let k = key(rel);
        let e = self.images.get(&k).ok_or_else(|| {
            format!(
                "{k} is not listed in {}: it was not degraded by `cold degrade` into this folder",
                Self::path(dir).display()
            )
        })?;
        if (e.height, e.width) != (height, width) {
            return Err(format!(
                "{k} is {width}x{height} here, but {} says it was degraded at {}x{}: restore it at \
                 that size (--resize as when it was degraded), or degrade it again",
                Self::path(dir).display(),
                e.width,
                e.height
            ));
        }
        Ok(e)
    }

    /// Checks the images were degraded by the model's D: the same kind, parameters, T and channels.
    /// The size is each image's own (its entry's), so a bundle trained at 64x64 restores a folder
    /// degraded by one trained at 32x32 with the same schedule.
    pub fn check_matches(&self, dir: &Path, model: &Degradation) -> Result<()> {
        use crate::degradation::Spec;
        let same = Spec::of(&self.degradation) == Spec::of(model)
            && self.degradation.channels == model.channels;
        if !same {
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
mod tests;
