//! `cold fid`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct FidArgs {
    /// A folder of images (any size; grey or colour), or a .fidstats file.
    a: PathBuf,
    /// The other folder or .fidstats file (optional with --save-stats).
    b: Option<PathBuf>,
    /// Print {"fid", "files_a", "files_b"} as JSON.
    #[arg(long)]
    json: bool,
    /// Also save the feature statistics of A here (a .fidstats file to compare against later).
    #[arg(long)]
    save_stats: Option<PathBuf>,
    /// Images per network run.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

pub fn run(a: FidArgs) -> Result<ExitCode> {
    let c = cold_runtime::fid::compare(
        &a.a,
        a.b.as_deref(),
        a.save_stats.as_deref(),
        a.batch,
        a.threads,
    )?;
    if let Some(d) = c.fid {
        if a.json {
            println!(
                "{}",
                serde_json::json!({"fid": d, "files_a": c.files_a, "files_b": c.files_b})
            );
        } else {
            println!("FID {d:.4} ({} images in A, {} in B)", c.files_a, c.files_b);
        }
    }
    Ok(ExitCode::SUCCESS)
}
