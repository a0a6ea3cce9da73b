//! Shared support for the workspace-level tests and benchmarks.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// The committed MNIST fixture: the first 48 test digits as gzipped IDX.
pub fn mnist_fixture_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/mnist")
}

use burn::prelude::*;
use cold_trainer::CpuBackend;
use cold_trainer::model::{InitUNet, UNet};
use cold_trainer::train::TrainConfig;
use ndarray::Array4;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// A tiny seeded network and its config (MNIST blur preset: 1x28x28, T = 20).
pub fn tiny_model(seed: u64) -> (TrainConfig, UNet<CpuBackend>) {
    tiny_model_for("mnist", seed)
}

/// A tiny seeded network for a degradation preset.
pub fn tiny_model_for(preset: &str, seed: u64) -> (TrainConfig, UNet<CpuBackend>) {
    let cfg = TrainConfig::new("mnist", preset, "tiny").expect("config");
    let device = Default::default();
    CpuBackend::seed(&device, seed);
    let net = cfg.model.init::<CpuBackend>(&device);
    (cfg, net)
}

/// Uniform random images in [-1, 1].
pub fn random_images(shape: (usize, usize, usize, usize), seed: u64) -> Array4<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array4::from_shape_fn(shape, |_| rng.random_range(-1.0f32..1.0))
}

/// Largest absolute difference.
pub fn max_abs_diff<'a>(
    a: impl IntoIterator<Item = &'a f32>,
    b: impl IntoIterator<Item = &'a f32>,
) -> f32 {
    a.into_iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The committed tiny bundle (random weights) used by the runtime's tests.
pub fn tiny_bundle_dir() -> PathBuf {
    workspace_root().join("tests/fixtures/tiny-bundle")
}

/// Restoring a folder with Algorithm 2 from the level in its sidecar (or T), 5 steps, in
/// batches of 4, images of the model's own size only.
pub fn restore_options() -> cold_runtime::jobs::RestoreOptions {
    cold_runtime::jobs::RestoreOptions {
        t: None,
        algorithm: cold_runtime::engine::Algorithm::Two,
        steps: Some(5),
        batch: 4,
        progression: false,
        resize: cold_core::folder::Resize::Refuse,
        max_pixels: cold_core::folder::DEFAULT_MAX_PIXELS,
        shard: None,
        overwrite: false,
    }
}

/// Three samples in batches of two, seed 1, no broken-symmetry noise, no class, guidance 1, temperature 1.
pub fn three_samples() -> cold_runtime::generation::GenerateOptions {
    cold_runtime::generation::GenerateOptions {
        count: 3,
        seed: 1,
        noise: 0.0,
        batch: 2,
        overwrite: false,
        shard: None,
        class: None,
        guidance: 1.0,
        temperature: 1.0,
    }
}
