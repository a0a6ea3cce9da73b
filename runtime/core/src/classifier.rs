//! A small image classifier beside the generation models: a folder with `classifier.onnx`, its
//! weights and `classifier.json` (what it reads, its classes, its test accuracy, the sha256 of
//! every file). `cold classify` runs it over a folder of samples to say which classes a generator
//! draws and how many samples are recognisably anything at all; `cold-train classifier` trains
//! and exports it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::bundle::ImageSpec;
use crate::error::{Error, Result};
use crate::files::{self, Versioned};

/// The `format` string of a classifier manifest.
pub const FORMAT: &str = "cold-diffusion-classifier";
/// The version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
/// The manifest's file name.
pub const MANIFEST: &str = "classifier.json";
/// The graph: input `x` `[B, C, H, W]` f32 in the image's value range, output `logits` `[B, K]`.
pub const GRAPH: &str = "classifier.onnx";
/// Its external weights.
pub const WEIGHTS: &str = "weights.bin";
/// Graph input and output names.
pub const INPUT: &str = "x";
pub const OUTPUT: &str = "logits";

/// How the classifier was trained and how well it does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassifierTraining {
    pub dataset: String,
    pub steps: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
    pub seconds: f64,
    /// Share of the data set's test images classified right.
    pub test_accuracy: f64,
    pub test_images: usize,
}

/// `classifier.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassifierManifest {
    pub format: String,
    pub format_version: u32,
    pub name: String,
    pub image: ImageSpec,
    /// Class names, in the order of the logits.
    pub classes: Vec<String>,
    /// The network, in words, and its parameter count.
    pub architecture: String,
    pub parameters: usize,
    pub training: ClassifierTraining,
    /// sha256 of every file but the manifest.
    pub sha256: BTreeMap<String, String>,
    pub created_by: String,
}

impl Versioned for ClassifierManifest {
    const WHAT: &'static str = "classifier manifest";
    const FORMAT: Option<&'static str> = Some(FORMAT);
    const VERSION_FIELD: &'static str = "format_version";
    const VERSION: u32 = FORMAT_VERSION;
    const REMEDY: &'static str = "train it again with `cold-train classifier`";
}

fn err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Bundle {
        path: path.into(),
        reason: reason.into(),
    }
}

/// A classifier folder whose manifest and files have been checked.
#[derive(Clone, Debug)]
pub struct ClassifierBundle {
    pub dir: PathBuf,
    pub manifest: ClassifierManifest,
}

impl ClassifierBundle {
    /// Reads `dir/classifier.json` and checks every file against its sha256.
    pub fn open(dir: &Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST);
        let text = fs::read_to_string(&mpath).map_err(|e| {
            err(
                dir,
                format!(
                    "cannot read {MANIFEST}: {e}; pass --classifier models/mnist-classifier \
                     (or a folder written by `cold-train classifier`)"
                ),
            )
        })?;
        let manifest: ClassifierManifest =
            files::parse(&text).map_err(|reason| err(dir, format!("{MANIFEST}: {reason}")))?;
        if manifest.classes.is_empty() {
            return Err(err(dir, format!("{MANIFEST} names no classes")));
        }
        for name in [GRAPH, WEIGHTS] {
            let want = manifest
                .sha256
                .get(name)
                .ok_or_else(|| err(dir, format!("{MANIFEST} has no sha256 for {name}")))?;
            let p = dir.join(name);
            if !p.is_file() {
                return Err(err(dir, format!("{name} is missing: train it again")));
            }
            if &atomic::sha256_file(&p)? != want {
                return Err(err(
                    dir,
                    format!("{name} does not match its sha256 in {MANIFEST} (corrupt or modified)"),
                ));
            }
        }
        Ok(ClassifierBundle {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    pub fn graph_path(&self) -> PathBuf {
        self.dir.join(GRAPH)
    }
}

/// Writes a classifier folder atomically (graph, weights, manifest with their sha256).
pub fn write(
    out: &Path,
    mut manifest: ClassifierManifest,
    graph: Vec<u8>,
    weights: Vec<u8>,
    force: bool,
) -> Result<PathBuf> {
    let files = vec![(GRAPH.to_string(), graph), (WEIGHTS.to_string(), weights)];
    manifest.sha256 = files
        .iter()
        .map(|(n, b)| (n.clone(), atomic::sha256_bytes(b)))
        .collect();
    let json = files::to_json(&manifest)?;
    crate::bundle::write_folder(out, MANIFEST, &json, &files, force)
}

/// What a classifier says about a set of images: each class's share of the images it takes for
/// that class, and the share it recognises with at least `confidence`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassShares {
    pub images: usize,
    pub confidence: f64,
    /// Per class (the manifest's order): share of the images whose most probable class it is.
    pub shares: Vec<(String, f64)>,
    /// Share of the images whose most probable class has probability >= `confidence`.
    pub confident: f64,
}

impl ClassShares {
    /// From each image's class probabilities (`probs[i]` sums to 1).
    pub fn from_probabilities(classes: &[String], probs: &[Vec<f32>], confidence: f64) -> Self {
        let mut counts = vec![0usize; classes.len()];
        let mut confident = 0usize;
        for p in probs {
            let (k, &best) = p
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one class");
            counts[k] += 1;
            if f64::from(best) >= confidence {
                confident += 1;
            }
        }
        let n = probs.len().max(1) as f64;
        ClassShares {
            images: probs.len(),
            confidence,
            shares: classes
                .iter()
                .zip(&counts)
                .map(|(c, &k)| (c.clone(), k as f64 / n))
                .collect(),
            confident: confident as f64 / n,
        }
    }
}

/// Softmax of one row of logits.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = logits.iter().map(|v| (v - m).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_count_the_most_probable_class_and_the_confident_ones() {
        let classes: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let probs = vec![
            vec![0.95, 0.03, 0.02],
            vec![0.2, 0.5, 0.3],
            vec![0.1, 0.85, 0.05],
            vec![0.0, 0.0, 1.0],
        ];
        let s = ClassShares::from_probabilities(&classes, &probs, 0.9);
        assert_eq!(s.images, 4);
        let shares: Vec<f64> = s.shares.iter().map(|(_, v)| *v).collect();
        assert_eq!(shares, vec![0.25, 0.5, 0.25]);
        assert_eq!(s.confident, 0.5);
        let p = softmax(&[1.0, 2.0, 3.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6 && p[2] > p[1] && p[1] > p[0]);
    }
}
