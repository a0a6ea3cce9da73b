//! The runtime's sampling loop over the fused step graph gives the same restorations as the
//! Burn sampler on the same network: direct, Algorithm 1 and Algorithm 2, mixed levels in a batch.

use cold_runtime::bundle::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions, WeightLoading};
use cold_testkit::{max_abs_diff, random_images, tiny_model};
use cold_trainer::CpuBackend as B;
use cold_trainer::degrade::DeviceDegradation;
use cold_trainer::export;
use cold_trainer::sample::sample;
use cold_trainer::tensor_io::{to_array, to_tensor};

#[test]
fn runtime_sampling_matches_burn_sampling() {
    let (cfg, net) = tiny_model(3);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    export::export_model(&net, &cfg, TrainingSummary::default(), &dir, false).expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let dev = Default::default();
    let deg = DeviceDegradation::<B>::new(&cfg.degradation, &dev).expect("deg");
    let ops = cfg.degradation.operators().expect("ops");
    let clean = random_images((3, 1, 28, 28), 4);
    for t in [20usize, 7] {
        let xt = ops.apply_uniform(clean.view(), t).expect("apply");
        let levels = vec![t; 3];
        let (direct, alg1) = sample(&net, &deg, to_tensor::<B>(&xt, &dev), t, false);
        let (_, alg2) = sample(&net, &deg, to_tensor::<B>(&xt, &dev), t, true);
        for (alg, want) in [
            (Algorithm::Direct, direct),
            (Algorithm::One, alg1),
            (Algorithm::Two, alg2),
        ] {
            let got = engine
                .restore(xt.view(), &levels, alg, None, false)
                .expect("restore")
                .output;
            let err = max_abs_diff(&got, &to_array(want));
            assert!(err <= 1e-4, "t {t} {alg:?}: max abs error {err}");
        }
    }
    // Mixed levels in one batch equal separate runs.
    let levels = [20usize, 7, 0];
    let xt = ops.apply(clean.view(), &levels).expect("apply");
    let mixed = engine
        .restore(xt.view(), &levels, Algorithm::Two, None, false)
        .expect("mixed")
        .output;
    for (i, &t) in levels.iter().enumerate() {
        let one = xt.slice(ndarray::s![i..i + 1, .., .., ..]);
        let alone = engine
            .restore(one, &[t], Algorithm::Two, None, false)
            .expect("alone")
            .output;
        let err = max_abs_diff(&alone, mixed.slice(ndarray::s![i..i + 1, .., .., ..]));
        assert!(err <= 1e-5, "sample {i} (t {t}): {err}");
    }
    // A level-0 input is returned unchanged.
    assert_eq!(
        mixed.index_axis(ndarray::Axis(0), 2),
        xt.index_axis(ndarray::Axis(0), 2)
    );
    // Every way of handing over the weights gives the same restorations.
    for weights in [WeightLoading::Mmap, WeightLoading::Read] {
        let mut other = Engine::open(
            &dir,
            EngineOptions {
                weights,
                ..EngineOptions::default()
            },
        )
        .expect("engine");
        let again = other
            .restore(xt.view(), &levels, Algorithm::Two, None, false)
            .expect("restore")
            .output;
        assert_eq!(again, mixed, "{weights:?}");
    }
    // A shorter schedule visits fewer levels and still ends at a restoration.
    let r = engine
        .restore(xt.view(), &[20, 20, 20], Algorithm::Two, Some(4), true)
        .expect("steps");
    assert_eq!(r.progression.len(), 5);
}
