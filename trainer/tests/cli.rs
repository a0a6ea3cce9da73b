//! `cold-train` end to end on the MNIST fixture: a few steps of the tiny network, export, the
//! bundle written again, a recommendation, and bad input refused with a message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn cold_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cold-train"))
        .args(args)
        .env("RAYON_NUM_THREADS", "2")
        .output()
        .expect("run cold-train")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn train_export_reexport_and_recommend() {
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("run");
    let data = format!("mnist:{}", root().join("tests/fixtures/mnist").display());
    // The fixture holds MNIST's test split only: a config file says so (the flags override it).
    let mut cfg = cold_trainer::config::TrainConfig::new(&data, "mnist", "tiny").expect("config");
    cfg.split = "test".into();
    let config = tmp.path().join("config.json");
    cold_core::files::write(&config, &cfg).expect("write config");
    let run_s = run.to_str().expect("path");
    let out = ok(&cold_train(&[
        "train",
        "--config",
        config.to_str().expect("path"),
        "--steps",
        "2",
        "--batch",
        "2",
        "--sample-every",
        "0",
        "--levels",
        "linear",
        "--out",
        run_s,
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).expect("summary JSON");
    assert_eq!(summary["steps"], 2);
    assert!(run.join("config.json").is_file() && run.join("loss.csv").is_file());
    let written: cold_trainer::config::TrainConfig =
        cold_core::files::read(&run.join("config.json")).expect("run config");
    assert_eq!(written.levels, cold_trainer::config::Levels::Linear);

    let bundle = tmp.path().join("bundle");
    let bundle_s = bundle.to_str().expect("path");
    ok(&cold_train(&["export", "--run", run_s, "--out", bundle_s]));
    let m = cold_core::bundle::Bundle::open(&bundle, true).expect("bundle");
    assert_eq!(m.manifest.training.steps, 2);
    assert!(m.manifest.generation.is_some(), "export fits the mixture");

    ok(&cold_train(&["reexport", "--model", bundle_s]));
    ok(&cold_train(&[
        "steps",
        "--model",
        bundle_s,
        "--recommend",
        "5",
        "--because",
        "a test",
    ]));
    let m = cold_core::bundle::Bundle::open(&bundle, true).expect("bundle");
    assert_eq!(m.manifest.sampling.map(|s| s.recommended_steps), Some(5));

    // Resuming a finished run with --model is refused, saying why.
    let o = cold_train(&["train", "--resume", "--model", "small", "--out", run_s]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("fixed by the config"), "{err}");
    // A recommendation beyond T.
    let o = cold_train(&["steps", "--model", bundle_s, "--recommend", "99"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("beyond the model's T = 20"));
    // A default guidance weight needs a class-conditioned model.
    let o = cold_train(&["steps", "--model", bundle_s, "--guidance", "3"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not conditioned on classes"));
}

/// Images of mixed sizes and formats, flat in `dir`.
fn mixed_photos(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let gradient = |w: u32, h: u32| {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 2) as u8, ((x + y) % 256) as u8])
        })
    };
    gradient(80, 50).save(dir.join("a.png")).expect("png");
    gradient(70, 90).save(dir.join("b.jpg")).expect("jpg");
    image::GrayImage::from_fn(64, 64, |x, _| image::Luma([(x * 4) as u8]))
        .save(dir.join("c.webp"))
        .expect("webp");
    image::DynamicImage::ImageRgb8(gradient(120, 71))
        .to_rgba8()
        .save(dir.join("d.bmp"))
        .expect("bmp");
}

#[test]
fn trains_on_a_folder_of_any_size_and_format() {
    let tmp = tempfile::tempdir().expect("tmp");
    let photos = tmp.path().join("photos");
    mixed_photos(&photos);
    let run = tmp.path().join("run");
    let dataset = format!("folder:{}", photos.display());
    let run_s = run.to_str().expect("path");
    let out = ok(&cold_train(&[
        "train",
        "--dataset",
        &dataset,
        "--size",
        "64",
        "--model",
        "tiny",
        "--steps",
        "3",
        "--batch",
        "2",
        "--out",
        run_s,
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).expect("summary JSON");
    assert_eq!(summary["steps"], 3);
    // Colour data, no degradation named: the CIFAR-10 blur schedule at 64 x 64.
    let cfg: cold_trainer::config::TrainConfig =
        cold_core::files::read(&run.join("config.json")).expect("config");
    assert_eq!(cfg.image_size, Some(64));
    let d = &cfg.degradation;
    assert_eq!((d.channels, d.height, d.width, d.steps), (3, 64, 64, 50));
    assert_eq!(
        cold_core::degradation::Spec::of(d),
        cold_core::degradation::Spec::parse("cifar10-blur").expect("spec")
    );
    let grid = image::open(run.join("samples/latest.png")).expect("grid");
    assert!(
        grid.width() >= 4 * 64 && grid.height() >= 5 * 64,
        "{}x{}",
        grid.width(),
        grid.height()
    );

    // The degradation by its parameters, grey whatever the data holds.
    let run2 = tmp.path().join("run2");
    ok(&cold_train(&[
        "train",
        "--dataset",
        &dataset,
        "--size",
        "32",
        "--channels",
        "1",
        "--degradation",
        "inpaint-centred:T=5",
        "--model",
        "tiny",
        "--steps",
        "1",
        "--batch",
        "2",
        "--sample-every",
        "0",
        "--out",
        run2.to_str().expect("path"),
    ]));
    let cfg: cold_trainer::config::TrainConfig =
        cold_core::files::read(&run2.join("config.json")).expect("config");
    let d = &cfg.degradation;
    assert_eq!(
        (d.channels, d.height, d.steps, d.transform.kind()),
        (1, 32, 5, "inpaint")
    );

    // Without --size, images of several sizes are refused, saying what to do.
    let o = cold_train(&[
        "train",
        "--dataset",
        &dataset,
        "--model",
        "tiny",
        "--steps",
        "1",
        "--out",
        tmp.path().join("run3").to_str().expect("path"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--size"), "{err}");
    // A spec that makes no sense says so.
    let o = cold_train(&[
        "train",
        "--dataset",
        &dataset,
        "--size",
        "32",
        "--degradation",
        "blur:kernel_size=4,T=3",
        "--out",
        tmp.path().join("run4").to_str().expect("path"),
    ]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("degradation 'blur:kernel_size=4,T=3'"),
        "{err}"
    );
}
