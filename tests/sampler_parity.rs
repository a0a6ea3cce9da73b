//! The runtime's sampling loop over the fused step graph gives the same restorations as the
//! Burn sampler on the same network: direct, Algorithm 1 and Algorithm 2, mixed levels in a batch.

use cold_core::training::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions, WeightLoading};
use cold_testkit::{max_abs_diff, random_images, tiny_model, tiny_model_for};
use cold_trainer::CpuBackend as B;
use cold_trainer::export;
use cold_trainer::sample::sample;
use cold_trainer::tensor_io::{to_array, to_tensor};
use rand::SeedableRng;

#[test]
fn runtime_sampling_matches_burn_sampling() {
    let (cfg, net) = tiny_model(3);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let dev = Default::default();
    let deg = cfg.degradation.prepare().expect("deg");
    let none = ndarray::Array2::<f32>::zeros((3, 0));
    let clean = random_images((3, 1, 28, 28), 4);
    for t in [20usize, 7] {
        let xt = deg
            .apply_uniform(clean.view(), t, none.view())
            .expect("apply");
        let levels = vec![t; 3];
        let (direct, alg1) = sample(&net, &deg, to_tensor::<B>(&xt, &dev), t, none.view(), false);
        let (_, alg2) = sample(&net, &deg, to_tensor::<B>(&xt, &dev), t, none.view(), true);
        for (alg, want) in [
            (Algorithm::Direct, direct),
            (Algorithm::One, alg1),
            (Algorithm::Two, alg2),
        ] {
            let got = engine
                .restore(xt.view(), &levels, none.view(), alg, None, false)
                .expect("restore")
                .output;
            let err = max_abs_diff(&got, &to_array(want));
            assert!(err <= 1e-4, "t {t} {alg:?}: max abs error {err}");
        }
    }
    // Mixed levels in one batch equal separate runs.
    let levels = [20usize, 7, 0];
    let xt = deg
        .apply(clean.view(), &levels, none.view())
        .expect("apply");
    let mixed = engine
        .restore(xt.view(), &levels, none.view(), Algorithm::Two, None, false)
        .expect("mixed")
        .output;
    for (i, &t) in levels.iter().enumerate() {
        let one = xt.slice(ndarray::s![i..i + 1, .., .., ..]);
        let alone = engine
            .restore(
                one,
                &[t],
                none.slice(ndarray::s![i..i + 1, ..]),
                Algorithm::Two,
                None,
                false,
            )
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
            .restore(xt.view(), &levels, none.view(), Algorithm::Two, None, false)
            .expect("restore")
            .output;
        assert_eq!(again, mixed, "{weights:?}");
    }
    // A shorter schedule visits fewer levels and still ends at a restoration.
    let r = engine
        .restore(
            xt.view(),
            &[20, 20, 20],
            none.view(),
            Algorithm::Two,
            Some(4),
            true,
        )
        .expect("steps");
    assert_eq!(r.progression.len(), 5);
}

/// With per-image parameters (inpainting centres), the runtime's loop and the Burn sampler agree,
/// and the parameters matter: other centres give other restorations.
#[test]
fn runtime_sampling_matches_burn_sampling_with_per_image_parameters() {
    let (cfg, net) = tiny_model_for("mnist-inpaint", 5);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let dev = Default::default();
    let deg = cfg.degradation.prepare().expect("deg");
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let params = cfg.degradation.sample_params(&mut rng, 3).expect("params");
    let clean = random_images((3, 1, 28, 28), 6);
    let t = 50;
    let xt = deg
        .apply_uniform(clean.view(), t, params.view())
        .expect("apply");
    let (_, alg2) = sample(
        &net,
        &deg,
        to_tensor::<B>(&xt, &dev),
        t,
        params.view(),
        true,
    );
    let got = engine
        .restore(
            xt.view(),
            &[t; 3],
            params.view(),
            Algorithm::Two,
            Some(10),
            false,
        )
        .expect("restore");
    let got_full = engine
        .restore(
            xt.view(),
            &[t; 3],
            params.view(),
            Algorithm::Two,
            None,
            false,
        )
        .expect("restore")
        .output;
    let err = max_abs_diff(&got_full, &to_array(alg2));
    assert!(err <= 1e-4, "Algorithm 2 with centres: {err}");
    assert_eq!(got.output.dim(), (3, 1, 28, 28));
    let shifted = params.mapv(|c| (c + 5.0).min(27.0));
    let other = engine
        .restore(
            xt.view(),
            &[t; 3],
            shifted.view(),
            Algorithm::Two,
            None,
            false,
        )
        .expect("restore")
        .output;
    assert!(
        max_abs_diff(&other, &got_full) > 1e-3,
        "the centres are used"
    );
    // A batch without its parameters is refused with a message naming them.
    let e = engine
        .restore(
            xt.view(),
            &[t; 3],
            ndarray::Array2::zeros((3, 0)).view(),
            Algorithm::Two,
            None,
            false,
        )
        .expect_err("no params");
    assert!(e.to_string().contains("centre_row"), "{e}");
}

/// The estimated-noise sampler of a noise model equals its formula looped on the Burn network
/// (`z_hat` from `x_s` and `x0_hat`, then `x_{s'} = sqrt(abar_{s'}) x0_hat + sqrt(1 - abar_{s'}) z_hat`),
/// with every level and with `--steps`; it needs no noise (other `z` give the same output), unlike
/// Algorithm 2 with the known noise.
#[test]
fn estimated_noise_sampler_matches_its_formula_on_the_burn_network() {
    use cold_core::degradation::MixTables;
    use cold_core::sampler::schedule;
    let (cfg, net) = tiny_model_for("mnist-noise", 7);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let dev = Default::default();
    let deg = cfg.degradation.prepare().expect("deg");
    let mix = deg.tables_as::<MixTables>().expect("noise is a mix");
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let z = cfg.degradation.sample_params(&mut rng, 2).expect("z");
    let clean = random_images((2, 1, 28, 28), 9);
    let t = 30;
    let xt = deg.apply_uniform(clean.view(), t, z.view()).expect("apply");
    for steps in [None, Some(4)] {
        let levels = schedule(t, steps);
        let mut want = xt.clone();
        for w in levels.windows(2) {
            let s = [w[0]; 2];
            let x0 = to_array(net.forward(
                to_tensor::<B>(&want, &dev),
                burn::tensor::Tensor::from_data(
                    burn::tensor::TensorData::new(vec![w[0] as f32; 2], [2]),
                    &dev,
                ),
            ));
            want = mix.estimated_step(want.view(), x0.view(), &s, &[w[1]; 2]);
        }
        let got = engine
            .restore(
                xt.view(),
                &[t; 2],
                z.view(),
                Algorithm::Estimated,
                steps,
                false,
            )
            .expect("estimated")
            .output;
        let err = max_abs_diff(&got, &want);
        assert!(err <= 1e-3, "{steps:?}: {err}");
    }
    let other_z = z.mapv(|v| -v);
    let a = engine
        .restore(
            xt.view(),
            &[t; 2],
            z.view(),
            Algorithm::Estimated,
            None,
            false,
        )
        .expect("estimated")
        .output;
    let b = engine
        .restore(
            xt.view(),
            &[t; 2],
            other_z.view(),
            Algorithm::Estimated,
            None,
            false,
        )
        .expect("estimated")
        .output;
    assert_eq!(a, b, "the estimated sampler does not read z");
    let c = engine
        .restore(
            xt.view(),
            &[t; 2],
            other_z.view(),
            Algorithm::Two,
            None,
            false,
        )
        .expect("alg 2")
        .output;
    assert!(max_abs_diff(&a, &c) > 1e-3, "Algorithm 2 uses the given z");
}

/// `cold eval` on a noise model scores the estimated-noise sampler beside the others.
#[test]
fn eval_of_a_noise_model_adds_the_estimated_sampler() {
    use cold_core::data::{Dataset, Source, Split};
    use cold_runtime::eval::{EvalConfig, evaluate};
    let (cfg, net) = tiny_model_for("mnist-noise", 10);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let data = Dataset::load(
        &Source::Mnist(Some(cold_testkit::mnist_fixture_dir())),
        Split::Test,
    )
    .expect("fixture");
    let report = evaluate(
        &mut engine,
        &data,
        &EvalConfig {
            levels: vec![20],
            limit: Some(4),
            batch: 4,
            input_depth: None,
            seed: 0,
            fid: false,
            steps_curve: vec![],
        },
        Some(&tmp.path().join("grid.png")),
    )
    .expect("eval");
    let methods: Vec<&str> = report.rows.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        [
            "degraded",
            "direct",
            "algorithm1",
            "algorithm2",
            "estimated"
        ]
    );
    assert!(report.rows.iter().all(|r| r.scores.ssim.is_finite()));
    assert!(tmp.path().join("grid.png").is_file());
}
