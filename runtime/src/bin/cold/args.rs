//! What several subcommands share: the model and execution-provider flags, and the exit code of
//! a folder job.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use cold_core::folder::{DEFAULT_MAX_PIXELS, Report, Resize};
use cold_core::shard::{self, Shard};
use cold_runtime::engine::{ConvSearch, EngineOptions, Ep, WeightLoading};

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Model bundle folder (models/<name>).
    #[arg(long, default_value = "models/mnist-blur")]
    pub model: PathBuf,
    /// Execution provider: cpu, cuda, tensorrt or auto (`bench` takes a list, e.g. cpu,cuda).
    #[arg(long, value_enum, default_value = "cpu", value_delimiter = ',')]
    pub ep: Vec<Ep>,
    /// GPU index (cuda, tensorrt).
    #[arg(long, default_value_t = 0)]
    device: i32,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// TensorRT: build FP16 engines.
    #[arg(long)]
    trt_fp16: bool,
    /// TensorRT: engine cache folder.
    #[arg(long)]
    trt_cache: Option<PathBuf>,
    /// How the weights reach ONNX Runtime (see BENCHMARKS.md for start-up time and memory).
    #[arg(long, value_enum, default_value = "path")]
    weights: WeightLoading,
    /// CUDA: cuDNN convolution algorithm search (exhaustive: slower first run, faster kernels).
    #[arg(long, value_enum, default_value = "heuristic")]
    cudnn_search: ConvSearch,
    /// CUDA: prefer the NHWC layout for convolutions.
    #[arg(long)]
    prefer_nhwc: bool,
    /// CUDA: capture each sampling step as a CUDA graph and replay it (the sampling session is
    /// fixed at the batch size, and made again when it changes).
    #[arg(long)]
    cuda_graph: bool,
    /// CUDA: synchronise the device only after the last sampling step, not after each.
    #[arg(long)]
    no_sync: bool,
}

impl ModelArgs {
    /// The options of a single-provider command.
    pub fn options(&self) -> Result<EngineOptions> {
        if self.ep.len() != 1 {
            bail!("--ep takes one execution provider here (only `bench` takes a list)");
        }
        Ok(self.options_for(self.ep[0]))
    }

    pub fn options_for(&self, ep: Ep) -> EngineOptions {
        EngineOptions {
            ep,
            device_id: self.device,
            trt_fp16: self.trt_fp16,
            trt_cache: self.trt_cache.clone(),
            threads: self.threads,
            weights: self.weights,
            verify: true,
            conv_search: self.cudnn_search,
            prefer_nhwc: self.prefer_nhwc,
            cuda_graph: self.cuda_graph,
            no_sync: self.no_sync,
            ..EngineOptions::default()
        }
    }
}

/// How a folder job treats images of other sizes than the model's.
#[derive(Args, Debug)]
pub struct SizeArgs {
    /// Images of another size than the model's: `keep` works on each at its own size (bundles of
    /// format version 2; a bundle fixed at its size refuses them), `scale` scales it to the
    /// model's size and the output back, `refuse` skips it.
    #[arg(long, value_enum, default_value = "keep")]
    pub resize: Resize,
    /// Refuse images of more pixels than this (before decoding them), rather than run out of
    /// memory.
    #[arg(long, default_value_t = DEFAULT_MAX_PIXELS)]
    pub max_pixels: u64,
}

/// Logs a folder job's report; exit code 2 when some files failed.
pub fn finish(report: Report, what: &str) -> ExitCode {
    report.log(what);
    if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// A task's share of a job split by a scheduler.
#[derive(Args, Debug)]
pub struct ShardArgs {
    /// Do this task's share only, K of N (0-based): the images whose relative path hashes to K
    /// (generate: the samples i with i mod N = K). Without it, the share comes from a Slurm array
    /// task (SLURM_ARRAY_TASK_ID, _MIN, _COUNT) or a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX with --shard-count); `--shard 0/1` takes everything.
    #[arg(long, value_name = "K/N", value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// The number of tasks, where the scheduler gives an index but no count (a Kubernetes
    /// Indexed Job: its `completions`).
    #[arg(long, value_name = "N")]
    shard_count: Option<usize>,
}

fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    shard::parse(s).map_err(|e| e.to_string())
}

impl ShardArgs {
    /// This task's share (logged), or `None` for the whole job.
    pub fn resolve(&self) -> Result<Option<Shard>> {
        let s = shard::from_env(self.shard, self.shard_count)?;
        if let Some(s) = &s {
            tracing::info!("this task does {s}");
        }
        Ok(s)
    }
}
