//! `cold`: restore, degrade, evaluate and benchmark with an exported model bundle. This file only
//! parses the command line and hands each subcommand to its module, which calls the library.
//!
//! Exit codes: 0 success; 1 error (nothing or not everything could be done); 2 some input files
//! were skipped (each one is reported).

mod args;
mod bench;
mod classify;
mod degrade;
mod eval;
mod fid;
mod generate;
mod info;
mod nearest;
mod report;
mod restore;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cold",
    version,
    about = "Cold Diffusion runtime: restore images with an exported model bundle."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Restore every image in IN_DIR (recursively) into OUT_DIR at the same relative paths.
    Restore(restore::RestoreArgs),
    /// Apply the bundle's degradation D(x, t) to every image in IN_DIR.
    Degrade(degrade::DegradeArgs),
    /// Describe a model bundle.
    Info(info::InfoArgs),
    /// Measure full restorations per second.
    Bench(bench::BenchArgs),
    /// RMSE and SSIM of degraded, direct, Algorithm 1 and Algorithm 2 on a test set.
    Eval(eval::EvalArgs),
    /// Which classes a folder of samples falls in, by a small classifier (`cold-train
    /// classifier`), and how many it recognises with confidence.
    Classify(classify::ClassifyArgs),
    /// Are samples memorised? Each one's nearest training images, against how near held-out
    /// images come (and a PNG of strips).
    Nearest(nearest::NearestArgs),
    /// Fréchet Inception Distance between two folders of images (or saved statistics).
    Fid(fid::FidArgs),
    /// Generate images from nothing: Algorithm 2 from constant images drawn from the bundle's
    /// Gaussian mixture over channel means (or, for a mixture fitted with `cold-train mixture
    /// --level L --dims K`, from images drawn in a subspace of D(x, L), restored from L).
    Generate(generate::GenerateArgs),
    /// What the tasks of the jobs that wrote into OUT_DIR did (one or many: Slurm arrays,
    /// Kubernetes Indexed Jobs), and what is missing. Exit code 2 when something is.
    Report(report::ReportArgs),
    /// Fetch ONNX Runtime and the FID network into the cache now (otherwise on first use).
    Setup,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Restore(a) => restore::run(a),
        Command::Degrade(a) => degrade::run(a),
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Fid(a) => fid::run(a),
        Command::Nearest(a) => nearest::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Report(a) => report::run(a),
        Command::Setup => cold_runtime::setup::fetch_all()
            .map(|paths| {
                for p in paths {
                    println!("{}", p.display());
                }
                ExitCode::SUCCESS
            })
            .map_err(Into::into),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
