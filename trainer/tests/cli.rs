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
        "--out",
        run_s,
    ]));
    let summary: serde_json::Value = serde_json::from_str(&out).expect("summary JSON");
    assert_eq!(summary["steps"], 2);
    assert!(run.join("config.json").is_file() && run.join("loss.csv").is_file());

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
}
