//! What the `cold` binary's integration tests share: the fixture bundle, running `cold`, and
//! real MNIST digits as PNG files.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cold_core::data::{Dataset, Source, Split};

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn bundle() -> PathBuf {
    root().join("tests/fixtures/tiny-bundle")
}

pub fn cold(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cold"))
        .args(args)
        .output()
        .expect("run cold")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes `n` real MNIST test digits as 8-bit PNGs under `dir/<sub>/`.
pub fn write_digits(dir: &Path, sub: &str, n: usize) -> Vec<PathBuf> {
    let d = Dataset::load(
        &Source::Mnist(Some(root().join("tests/fixtures/mnist"))),
        Split::Test,
    )
    .expect("fixture");
    (0..n)
        .map(|i| {
            let p = dir.join(sub).join(format!("digit{i}.png"));
            fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            let im = image::GrayImage::from_raw(28, 28, d.image_u8(i).to_vec()).expect("28x28");
            im.save(&p).expect("save");
            p
        })
        .collect()
}

pub fn copy_bundle(to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for e in fs::read_dir(bundle()).expect("ls") {
        let e = e.expect("e");
        fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}
