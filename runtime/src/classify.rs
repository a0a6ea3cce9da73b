//! `cold classify`: a classifier folder (`cold-train classifier`) run over a folder of images, to
//! say which classes a generator draws (each class's share) and how many samples it recognises
//! with confidence at all (a blob is not a digit).

use std::path::{Path, PathBuf};

use cold_core::classifier::{ClassShares, ClassifierBundle, INPUT, OUTPUT, softmax};
use cold_core::imageio;
use ndarray::{Array4, ArrayView4, Axis};
use ort::session::Session;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ortlib;

/// A classifier's ONNX Runtime session (CPU).
pub struct Classifier {
    pub bundle: ClassifierBundle,
    session: Session,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("dir", &self.bundle.dir)
            .finish()
    }
}

/// One image's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub file: PathBuf,
    pub class: String,
    pub probability: f32,
}

/// What `cold classify` reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Classification {
    pub classifier: String,
    /// The classifier's own accuracy on its data set's test images.
    pub classifier_test_accuracy: f64,
    pub summary: ClassShares,
    /// Files that could not be classified (unreadable, another size), with the reason.
    pub failed: Vec<(PathBuf, String)>,
    pub images: Vec<Verdict>,
}

impl Classifier {
    /// Opens (and checks) a classifier folder; `threads` intra-op threads (0 = all cores).
    pub fn open(dir: &Path, threads: usize) -> Result<Self> {
        let bundle = ClassifierBundle::open(dir)?;
        let session = ortlib::cpu_session(&bundle.graph_path(), threads)?;
        Ok(Classifier { bundle, session })
    }

    /// Class probabilities of images `[B, C, H, W]` in [-1, 1] at the classifier's size.
    pub fn probabilities(&mut self, x: ArrayView4<f32>) -> Result<Vec<Vec<f32>>> {
        let im = &self.bundle.manifest.image;
        let (_, c, h, w) = x.dim();
        if (c, h, w) != (im.channels, im.height, im.width) {
            return Err(Error::invalid(format!(
                "the classifier reads {}x{}x{} images, got {c}x{h}x{w}",
                im.channels, im.height, im.width
            )));
        }
        let mut out = Vec::with_capacity(x.dim().0);
        for chunk in x.axis_chunks_iter(Axis(0), 256) {
            let chunk = chunk.as_standard_layout();
            let o = self.session.run(ort::inputs! {
                INPUT => TensorRef::from_array_view(chunk.view())?,
            })?;
            let logits = o[OUTPUT].try_extract_array::<f32>()?;
            for row in logits.outer_iter() {
                out.push(softmax(&row.iter().copied().collect::<Vec<_>>()));
            }
        }
        Ok(out)
    }

    /// Every image under `dir` (recursively); images of another size or unreadable ones are
    /// listed as failed, the rest classified.
    pub fn classify_folder(&mut self, dir: &Path, confidence: f64) -> Result<Classification> {
        let files = imageio::list_images(dir)?;
        if files.is_empty() {
            return Err(Error::invalid(format!(
                "{}: no images (PNG, JPEG, WebP, ...) to classify",
                dir.display()
            )));
        }
        let im = self.bundle.manifest.image.clone();
        let mut failed = Vec::new();
        let mut ok = Vec::new();
        let mut pixels = Vec::new();
        for rel in files {
            let f = dir.join(&rel);
            match imageio::load_unit(&f, im.channels, im.height, im.width) {
                Ok(a) => {
                    pixels.extend(a.iter().copied());
                    ok.push(rel);
                }
                // The size message names `restore`'s --resize, which classify has not.
                Err(e) => failed.push((
                    rel,
                    e.to_string()
                        .replace("the model works on", "the classifier reads")
                        .replace(" (use --resize to scale inputs)", ""),
                )),
            }
        }
        if ok.is_empty() {
            return Err(Error::invalid(format!(
                "{}: none of its {} image(s) could be classified (the first: {})",
                dir.display(),
                failed.len(),
                failed[0].1
            )));
        }
        let x = Array4::from_shape_vec((ok.len(), im.channels, im.height, im.width), pixels)
            .map_err(|e| Error::invalid(e.to_string()))?;
        let probs = self.probabilities(x.view())?;
        let classes = &self.bundle.manifest.classes;
        let images = ok
            .iter()
            .zip(&probs)
            .map(|(f, p)| {
                let (k, &best) = p
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .expect("classes");
                Verdict {
                    file: f.clone(),
                    class: classes[k].clone(),
                    probability: best,
                }
            })
            .collect();
        Ok(Classification {
            classifier: self.bundle.manifest.name.clone(),
            classifier_test_accuracy: self.bundle.manifest.training.test_accuracy,
            summary: ClassShares::from_probabilities(classes, &probs, confidence),
            failed,
            images,
        })
    }
}
