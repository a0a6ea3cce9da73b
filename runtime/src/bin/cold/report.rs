//! `cold report OUT_DIR`: what the tasks of the jobs that wrote into OUT_DIR did, and what is
//! missing (see `cold_core::task::summarise`); writes a generate job's grid once its first 64
//! samples are there.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::task::{self, Summary};
use cold_runtime::generation;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The output folder of `cold restore`, `degrade` or `generate` (one or many tasks).
    out_dir: PathBuf,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Missing items listed by name in the table (all of them in --json).
    #[arg(long, default_value_t = 20)]
    list: usize,
}

fn table(s: &Summary, list: usize) {
    let from = s
        .input
        .as_ref()
        .map_or(String::new(), |i| format!(" of {}", i.display()));
    let split = s
        .shards
        .map_or("one task".into(), |n| format!("split in {n} shards"));
    println!("{}{from} (model {}), {split}", s.job, s.model);
    println!(
        "  {:<8} {:<20} {:>8} {:<9} {:>8} {:>8} {:>8} {:>7}",
        "share", "host", "pid", "state", "planned", "written", "skipped", "failed"
    );
    for t in &s.tasks {
        let state = match t.state {
            task::State::Running => "running",
            task::State::Finished => "finished",
        };
        println!(
            "  {:<8} {:<20} {:>8} {:<9} {:>8} {:>8} {:>8} {:>7}",
            t.share, t.host, t.pid, state, t.planned, t.written, t.skipped, t.failed
        );
    }
    for k in &s.shards_without_report {
        println!(
            "  {k}/{}: no report (the task never started, or ran elsewhere)",
            s.shards.unwrap_or(0)
        );
    }
    println!(
        "  {} of {} done, {} missing",
        s.done,
        s.items,
        s.missing.len()
    );
    for m in s.missing.iter().take(list) {
        let shard = m
            .shard
            .as_ref()
            .map_or(String::new(), |k| format!(" [{k}]"));
        println!("    {}{shard}: {}", m.item, m.reason);
    }
    if s.missing.len() > list {
        println!(
            "    ... and {} more (--json lists them all)",
            s.missing.len() - list
        );
    }
}

/// Exit code 0 when nothing is missing, 2 when something is, 1 on error.
pub fn run(a: ReportArgs) -> Result<ExitCode> {
    if !a.out_dir.is_dir() {
        anyhow::bail!("{} is not a folder", a.out_dir.display());
    }
    let (jobs, bad) = task::summarise(&a.out_dir)?;
    for (p, why) in &bad {
        tracing::error!("{}: {why}", p.display());
    }
    if jobs.is_empty() && bad.is_empty() {
        anyhow::bail!(
            "{} holds no task reports ({}/): it was not written by cold restore, degrade or \
             generate of this version",
            a.out_dir.display(),
            task::DIR
        );
    }
    for s in jobs
        .iter()
        .filter(|s| s.job == "generate" && s.missing.is_empty())
    {
        let channels = image_channels(&a.out_dir);
        if generation::write_grid_if_complete(&a.out_dir, s.items.min(64), channels)? {
            tracing::info!("wrote {}", a.out_dir.join("grid.png").display());
        }
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&jobs)?);
    } else {
        for s in &jobs {
            table(s, a.list);
        }
    }
    let missing = jobs
        .iter()
        .any(|s| !s.missing.is_empty() || !s.shards_without_report.is_empty());
    Ok(if missing || !bad.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The channels of the first sample (grey or RGB), for the grid.
fn image_channels(out_dir: &std::path::Path) -> usize {
    let first = out_dir
        .join(generation::SAMPLES_DIR)
        .join(generation::sample_name(0));
    match image::open(first) {
        Ok(im) if im.color().channel_count() < 3 => 1,
        _ => 3,
    }
}
