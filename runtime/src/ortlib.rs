//! Finding, fetching and loading the ONNX Runtime shared library, and the process's one
//! ONNX Runtime environment.
//!
//! The library is `ORT_DYLIB_PATH` when set; otherwise the CPU build of ONNX Runtime 1.31.1 is
//! taken from the PyPI wheel `onnxruntime==1.31.1` (pinned URL and sha256 of the wheel and of the
//! library inside it) and cached under the cache folder.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;

use crate::error::{Error, Result};
use cold_core::atomic;
use cold_core::fetch::{self, Pinned};

/// The ONNX Runtime version this runtime is built against (`ort` 2.0.0-rc.15, API 31).
pub(crate) const ORT_VERSION: &str = "1.31.1";

/// The CPU wheel of ONNX Runtime 1.31.1 on PyPI.
pub(crate) const ORT_WHEEL: Pinned = Pinned {
    name: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    url: "https://files.pythonhosted.org/packages/b4/1d/0f85ee31a3d93f2243a5cc29252becf858f53ac5cfa6c9c15d9ffe107eea/onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
    size: 23_753_652,
};
/// The C-API library inside the wheel.
const LIB_IN_WHEEL: &str = "onnxruntime/capi/libonnxruntime.so.1.31.1";
const LIB_NAME: &str = "libonnxruntime.so.1.31.1";
const LIB_SHA256: &str = "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3";

/// Where the library is, fetching it on first use unless `ORT_DYLIB_PATH` names one.
pub(crate) fn library_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(Error::OnnxRuntime(format!(
                "ORT_DYLIB_PATH={} does not exist: point it at libonnxruntime.so (ONNX Runtime {ORT_VERSION}), \
                 or unset it to use the cached CPU build",
                p.display()
            )));
        }
        return Ok(p);
    }
    fetch_library(&fetch::cache_dir()?.join(format!("onnxruntime-{ORT_VERSION}")))
}

/// Makes sure `dir/libonnxruntime.so.1.31.1` exists and matches its pinned hash.
pub(crate) fn fetch_library(dir: &Path) -> Result<PathBuf> {
    let lib = dir.join(LIB_NAME);
    // The size is checked on every start; the hash when the file is written.
    if fs::metadata(&lib)
        .map(|m| m.len() == 29_352_200)
        .unwrap_or(false)
    {
        return Ok(lib);
    }
    if cfg!(not(all(target_os = "linux", target_arch = "x86_64"))) {
        return Err(Error::OnnxRuntime(format!(
            "no pinned ONNX Runtime build for this platform: install ONNX Runtime {ORT_VERSION} and set ORT_DYLIB_PATH"
        )));
    }
    tracing::info!(
        "fetching ONNX Runtime {ORT_VERSION} (CPU) from PyPI into {}",
        dir.display()
    );
    let wheel = fetch::fetch(&ORT_WHEEL, dir).map_err(|e| {
        Error::OnnxRuntime(format!(
            "{e}. Without network access, download {} yourself and set ORT_DYLIB_PATH to the extracted {LIB_IN_WHEEL}",
            ORT_WHEEL.url
        ))
    })?;
    let f = File::open(&wheel).map_err(|e| Error::io(&wheel, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::OnnxRuntime(format!("{}: not a valid wheel: {e}", wheel.display())))?;
    let mut entry = zip.by_name(LIB_IN_WHEEL).map_err(|e| {
        Error::OnnxRuntime(format!("{}: {LIB_IN_WHEEL} missing: {e}", wheel.display()))
    })?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&wheel, e))?;
    let actual = atomic::sha256_bytes(&bytes);
    if actual != LIB_SHA256 {
        return Err(cold_core::Error::HashMismatch {
            what: LIB_IN_WHEEL.into(),
            expected: LIB_SHA256.into(),
            actual,
        }
        .into());
    }
    atomic::write_atomic(&lib, &bytes)?;
    drop(entry);
    let _ = fs::remove_file(&wheel);
    Ok(lib)
}

static ENV: Mutex<Option<Environment>> = Mutex::new(None);

/// The process's ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<Environment> {
    let mut g = ENV
        .lock()
        .map_err(|_| Error::OnnxRuntime("environment lock poisoned".into()))?;
    if let Some(env) = &*g {
        return Ok(env.clone());
    }
    let path = library_path()?;
    let builder = ort::init_from(&path).map_err(|e| {
        let hint = match &e {
            ort::LoadDynamicError::BadVersion { version_str, .. } => format!(
                "it is ONNX Runtime {version_str}, but {ORT_VERSION} or newer is needed"
            ),
            _ => "it could not be loaded".to_string(),
        };
        Error::OnnxRuntime(format!(
            "{}: {hint} ({e}). Unset ORT_DYLIB_PATH to use the pinned CPU build, or point it at ONNX Runtime {ORT_VERSION}",
            path.display()
        ))
    })?;
    let env = builder.with_name("cold").with_telemetry(false).build()?;
    *g = Some(env.clone());
    Ok(env)
}

/// A CPU session over the ONNX file `graph` (its external data beside it), fully optimised, with
/// `threads` intra-op threads (0 = all cores): the FID network's and the classifier's.
pub(crate) fn cpu_session(graph: &Path, threads: usize) -> Result<ort::session::Session> {
    let env = environment()?;
    let threads = if threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        threads
    };
    Ok(ort::session::Session::builder(&env)?
        .with_optimization_level(ort::session::builder::GraphOptimizationLevel::All)
        .map_err(ort::Error::<()>::from)?
        .with_intra_threads(threads)
        .map_err(ort::Error::<()>::from)?
        .commit_from_file(graph)?)
}
