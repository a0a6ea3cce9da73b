//! `cold setup`: what the runtime fetches on first use (pinned and sha256-checked), fetched now.

use std::path::PathBuf;

use crate::error::Result;

/// Fetches ONNX Runtime and the FID network into the cache; returns where they are.
pub fn fetch_all() -> Result<Vec<PathBuf>> {
    Ok(vec![
        crate::ortlib::library_path()?,
        crate::fid::inception::ensure(&crate::fid::cache_dir()?)?,
    ])
}
