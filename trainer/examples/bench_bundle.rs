//! Writes an untrained bundle of any network size, for throughput measurements only (its
//! restorations are meaningless). `--zeros` sets every weight to zero: the speed is the same and
//! the weights file then compresses to almost nothing, so a 56.6M-parameter bundle can be moved
//! to another machine cheaply.
//!
//!     cargo run --release -p cold-trainer --example bench_bundle -- paper 32 /tmp/bench-paper-32 --zeros

use burn::module::{ModuleMapper, Param};
use burn::prelude::*;
use cold_core::training::TrainingSummary;
use cold_trainer::CpuBackend as B;
use cold_trainer::export;
use cold_trainer::model::InitUNet;
use cold_trainer::train::TrainConfig;

struct Zero;
impl<Bk: Backend> ModuleMapper<Bk> for Zero {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<Bk, D>>) -> Param<Tensor<Bk, D>> {
        let (id, t, mapper) = p.consume();
        Param::from_mapped_value(id, t.zeros_like(), mapper)
    }
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        anyhow::bail!(
            "usage: bench_bundle MODEL SIDE OUT_DIR [--zeros]   (MODEL: tiny, compact, small, paper)"
        );
    }
    let (model, side, out) = (
        &args[0],
        args[1].parse::<usize>()?,
        std::path::PathBuf::from(&args[2]),
    );
    let mut cfg = TrainConfig::new("none", "mnist", model)?;
    cfg.degradation.height = side;
    cfg.degradation.width = side;
    cfg.validate()?;
    let device = Default::default();
    B::seed(&device, 0);
    let mut net = cfg.model.init::<B>(&device);
    if args.iter().any(|a| a == "--zeros") {
        net = net.map(&mut Zero);
    }
    let training = TrainingSummary {
        dataset: "none (untrained, for benchmarks)".into(),
        ..Default::default()
    };
    export::export_model(&net, &cfg, training, None, &out, true)?;
    println!("{}", out.display());
    Ok(())
}
