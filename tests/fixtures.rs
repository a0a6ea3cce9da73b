//! The committed tiny bundle (`tests/fixtures/tiny-bundle`, a seeded random tiny network) that
//! the runtime's own tests use is exactly what the exporter writes today.
//! Regenerate it with `COLD_UPDATE_FIXTURES=1 cargo test --test fixtures`.

use cold_core::training::TrainingSummary;
use cold_testkit::{tiny_bundle_dir, tiny_model};
use cold_trainer::export;

#[test]
fn tiny_bundle_fixture_is_current() {
    let (cfg, net) = tiny_model(7);
    let training = TrainingSummary {
        dataset: "none (random weights, test fixture)".into(),
        ..Default::default()
    };
    // A fixed mixture (not fitted), so that `cold generate` can be tested on the fixture.
    let generation = Some(cold_core::generation::Generation {
        components: vec![cold_core::generation::Component {
            weight: 1.0,
            mean: vec![-0.8],
            covariance: vec![vec![0.01]],
        }],
        fitted_on: "none (test fixture)".into(),
        images: 0,
        by_class: Vec::new(),
        guidance: None,
        temperature: None,
        subspace: None,
    });
    let fixture = tiny_bundle_dir();
    if std::env::var_os("COLD_UPDATE_FIXTURES").is_some() {
        export::export_model(&net, &cfg, training, generation, &fixture, true).expect("export");
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("tiny-bundle");
    export::export_model(&net, &cfg, training, generation, &dir, false).expect("export");
    for name in [
        "manifest.json",
        "restorer.onnx",
        "degradation.onnx",
        "step.onnx",
        "weights.bin",
    ] {
        let want = std::fs::read(dir.join(name)).expect("exported");
        let have = std::fs::read(fixture.join(name)).unwrap_or_default();
        assert!(
            want == have,
            "{name} of the fixture differs from a fresh export: run COLD_UPDATE_FIXTURES=1 cargo test --test fixtures"
        );
    }
}
