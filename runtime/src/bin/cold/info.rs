//! `cold info`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::bundle::Bundle;

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[arg(long, default_value = "models/mnist-blur")]
    model: PathBuf,
    /// Print the manifest as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(a: InfoArgs) -> Result<ExitCode> {
    let b = Bundle::open(&a.model, true)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&b.manifest)?);
    } else {
        print!("{}", cold_runtime::info::describe(&b));
    }
    Ok(ExitCode::SUCCESS)
}
