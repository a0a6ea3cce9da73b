//! What the engine runs on: the execution provider and its settings, and how the weights reach
//! ONNX Runtime.

/// Which execution provider runs the graphs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ep {
    Cpu,
    Cuda,
    #[value(name = "tensorrt")]
    TensorRt,
    /// TensorRT, then CUDA, then CPU: the first that starts.
    Auto,
}

impl Ep {
    pub fn name(self) -> &'static str {
        match self {
            Ep::Cpu => "cpu",
            Ep::Cuda => "cuda",
            Ep::TensorRt => "tensorrt",
            Ep::Auto => "auto",
        }
    }
}

/// How the weights file reaches ONNX Runtime.
///
/// Measured with ONNX Runtime 1.31.1 on the CPU (BENCHMARKS.md): handing ONNX Runtime a mapping
/// (`mmap`) or a buffer (`read`) through `AddExternalInitializersFromFilesInMemory` does not save
/// a copy, because ONNX Runtime copies the initializers out of it; letting it open the files
/// itself (`path`) keeps one copy of the weights and starts fastest, so it is the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WeightLoading {
    /// ONNX Runtime opens the graph and its external weights file by path.
    Path,
    /// memmap2 the weights file and hand ONNX Runtime the mapping.
    Mmap,
    /// Read the weights file into memory and hand ONNX Runtime the buffer.
    Read,
}

/// cuDNN's convolution algorithm choice on the CUDA execution provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvSearch {
    /// Time every algorithm on first use of a shape (slow start, fastest kernels).
    Exhaustive,
    /// cuDNN's heuristics (fast start).
    #[default]
    Heuristic,
    /// cuDNN's default algorithm.
    Default,
}

/// Execution-provider settings.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub ep: Ep,
    /// GPU index for CUDA / TensorRT.
    pub device_id: i32,
    /// TensorRT: build FP16 engines.
    pub trt_fp16: bool,
    /// TensorRT: folder for the engine cache (engines are slow to build).
    pub trt_cache: Option<std::path::PathBuf>,
    /// Intra-op threads on the CPU (0 = all cores).
    pub threads: usize,
    pub weights: WeightLoading,
    /// Check the sha256 of every bundle file when opening.
    pub verify: bool,
    /// CUDA: cuDNN convolution algorithm search.
    pub conv_search: ConvSearch,
    /// CUDA: prefer the NHWC layout for convolutions (tensor-core friendly).
    pub prefer_nhwc: bool,
    /// CUDA: capture each step of the sampling loop as a CUDA graph on its first runs and replay
    /// it afterwards (one launch per step instead of one per kernel). Needs every node on the
    /// CUDA provider, so the step session's sizes, batch included, are fixed: the session is
    /// created again when the batch size changes (a folder job's last, smaller batch).
    pub cuda_graph: bool,
    /// CUDA: do not synchronise the device after each step of the sampling loop (only after the
    /// last one): the steps queue on one stream back to back.
    pub no_sync: bool,
    /// How R sees images of another size than the bundle's.
    pub tiling: super::tiles::Tiling,
    /// R's estimate averaged over the eight flips and transposes of its input
    /// ([`super::ensemble`]): eight runs of R per step, on the restorer graph (bundles of format
    /// version 2), images of the bundle's own size included.
    pub self_ensemble: bool,
    /// Images whose degradation tables would take more memory than this have D computed on the
    /// host without tables, one channel at a time (kinds that can; the others are refused).
    pub max_table_bytes: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            ep: Ep::Cpu,
            device_id: 0,
            trt_fp16: false,
            trt_cache: None,
            threads: 0,
            weights: WeightLoading::Path,
            verify: true,
            conv_search: ConvSearch::Heuristic,
            prefer_nhwc: false,
            cuda_graph: false,
            no_sync: false,
            tiling: super::tiles::Tiling::default(),
            self_ensemble: false,
            max_table_bytes: cold_core::degradation::MAX_TABLE_BYTES,
        }
    }
}
