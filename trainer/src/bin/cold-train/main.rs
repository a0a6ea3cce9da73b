//! `cold-train`: train the attention U-Net, degrade folders, fetch data, export model bundles.
//! This file only parses the command line and hands each subcommand to its module, which calls
//! the library.

mod bench;
mod classifier;
mod data;
mod degrade;
mod export;
mod steps;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "cold-train",
    version,
    about = "Train and export Cold Diffusion restorers (Burn)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train (or resume) a restorer; writes config, loss log and curve, sample grids, checkpoints.
    Train(Box<train::TrainArgs>),
    /// Apply D(x, t) of a preset to every image of a folder (PNGs at the same relative paths, plus
    /// degradation.json with the level and per-image parameters).
    Degrade(degrade::DegradeArgs),
    /// Download a data set into the cache (pinned and sha256-checked).
    Fetch(data::FetchArgs),
    /// Write images of a data set as PNG files (`NNNNN_<label>.png`), e.g. to make test inputs.
    Dump(data::DumpArgs),
    /// Measure training steps per second.
    Bench(bench::BenchArgs),
    /// Train the small classifier `cold classify` uses (class shares of generated samples) and
    /// write its folder (classifier.onnx, weights.bin, classifier.json with its test accuracy).
    Classifier(classifier::ClassifierArgs),
    /// Export a trained run to a self-describing ONNX model bundle for the `cold` runtime.
    Export(export::ExportArgs),
    /// Fit the generation mixture (Gaussians over per-channel image means) of an existing bundle.
    Mixture(export::MixtureArgs),
    /// Write a bundle again from its own weights with this build's graphs (any image size; the
    /// training record, mixture, sampling defaults and the files beside it are kept).
    Reexport(export::ReexportArgs),
    /// List the paper's degradation schedules that --degradation names, with their fields.
    Schedules,
    /// Set the number of sampling steps a bundle restores with by default, and plot the
    /// quality/speed curve it was chosen from (`cold eval --steps-curve ... --out DIR`); set a
    /// class-conditioned bundle's default guidance weight.
    Steps(steps::StepsArgs),
}

fn main() -> ExitCode {
    cold_trainer::bench::PROCESS_START.get_or_init(std::time::Instant::now);
    cold_trainer::setup_cpu();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match Cli::parse().command {
        Command::Train(a) => train::run(*a),
        Command::Degrade(a) => degrade::run(a),
        Command::Fetch(a) => data::fetch(a),
        Command::Dump(a) => data::dump(a),
        Command::Bench(a) => bench::run(a),
        Command::Classifier(a) => classifier::run(a),
        Command::Export(a) => export::export(a),
        Command::Reexport(a) => export::reexport(a),
        Command::Mixture(a) => export::mixture(a),
        Command::Steps(a) => steps::run(a),
        Command::Schedules => {
            for s in cold_core::degradation::SCHEDULES {
                println!(
                    "{:<18} {}\n{:<18} {}",
                    s.name,
                    s.about,
                    "",
                    s.spec().to_line()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
