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
