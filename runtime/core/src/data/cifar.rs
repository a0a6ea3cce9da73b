//! CIFAR-10's official binary batches (`cifar-10-batches-bin`).

use std::fs::{self};
use std::path::PathBuf;

use super::Dataset;
use crate::error::{Error, Result};

/// CIFAR-10 class names in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// Loads CIFAR-10 binary batches: records of one label byte and 3072 pixel bytes (R, G, B planes).
pub fn load_cifar_bins(files: &[PathBuf]) -> Result<Dataset> {
    const REC: usize = 1 + 3 * 32 * 32;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for f in files {
        let bytes = fs::read(f).map_err(|e| Error::io(f, e))?;
        if bytes.is_empty() || bytes.len() % REC != 0 {
            return Err(Error::DatasetFormat {
                path: f.clone(),
                reason: format!(
                    "{} bytes is not a whole number of {REC}-byte records",
                    bytes.len()
                ),
            });
        }
        for rec in bytes.chunks_exact(REC) {
            if rec[0] > 9 {
                return Err(Error::DatasetFormat {
                    path: f.clone(),
                    reason: format!("label {} outside 0..=9", rec[0]),
                });
            }
            labels.push(u32::from(rec[0]));
            pixels.extend_from_slice(&rec[1..]);
        }
    }
    let classes = CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect();
    Dataset::from_parts("cifar10", (3, 32, 32), pixels, labels, classes)
}
