//! Generation from a mixture over a principal-component subspace of `D(x, L)` (`cold-train
//! mixture --level L --dims K`): starts drawn in the subspace and restored from L.

use cold_core::generation::{Component, Generation, Subspace};
use cold_core::training::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions};
use cold_runtime::generation::generate;
use cold_testkit::{random_images, tiny_model};
use cold_trainer::export;
use ndarray::Array2;

/// A mixture over a subspace of `D(x, L)`: each sample starts from the subspace's image of its
/// drawn coefficients and Algorithm 2 restores it from L, not T; a subspace fitted at another
/// size is refused before anything is written.
#[test]
fn a_subspace_mixture_starts_from_its_images_at_its_level() {
    let (cfg, net) = tiny_model(3);
    let (level, side) = (5usize, 28usize);
    let mean = random_images((1, 1, side, side), 11).mapv(|v| 0.5 * v);
    let ramp: Vec<f32> = (0..side * side).map(|k| (k % side) as f32 - 13.5).collect();
    let norm = ramp.iter().map(|v| v * v).sum::<f32>().sqrt();
    let space = Subspace {
        level,
        mean: mean.iter().copied().collect(),
        basis: vec![ramp.iter().map(|v| v / norm).collect()],
        explained: 0.9,
    };
    // One component at coefficient 3 with a negligible spread.
    let g = Generation {
        components: vec![Component {
            weight: 1.0,
            mean: vec![3.0],
            covariance: vec![vec![1e-12]],
        }],
        fitted_on: "test".into(),
        images: 0,
        by_class: Vec::new(),
        guidance: None,
        temperature: None,
        subspace: Some(space.clone()),
    };
    let options = cold_testkit::three_samples;
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("subspace");
    export::export_model(
        &net,
        &cfg,
        TrainingSummary::default(),
        Some(g.clone()),
        &dir,
        false,
    )
    .expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let out = tmp.path().join("out");
    assert_eq!(
        generate(&mut engine, &out, &options())
            .expect("generate")
            .written,
        3
    );
    // The start: the mean plus 3 times the direction (the covariance is negligible).
    let start: Vec<f32> = space.image(&[3.0]).iter().map(|&v| v as f32).collect();
    let x = ndarray::Array4::from_shape_vec((1, 1, side, side), start).expect("start");
    let params = Array2::<f32>::zeros((1, 0));
    let from = |e: &mut Engine, t: usize| {
        e.restore(x.view(), &[t], params.view(), Algorithm::Two, None, false)
            .expect("restore")
            .output
    };
    let want = from(&mut engine, level);
    let other = from(&mut engine, cfg.degradation.steps);
    let png = cold_core::imageio::read_image(&out.join("samples/00001.png"))
        .expect("png")
        .to_luma8();
    let mut worst = (0.0f32, 0.0f32);
    for (k, &p) in png.as_raw().iter().enumerate() {
        let got = f32::from(p) / 255.0 * 2.0 - 1.0;
        let (a, b) = (
            want[[0, 0, k / side, k % side]],
            other[[0, 0, k / side, k % side]],
        );
        worst.0 = worst.0.max((got - a.clamp(-1.0, 1.0)).abs());
        worst.1 = worst.1.max((got - b.clamp(-1.0, 1.0)).abs());
    }
    assert!(
        worst.0 <= 1.0 / 255.0 + 1e-4,
        "from level {level}: {}",
        worst.0
    );
    // Beyond the rounding the match above allows (a random network changes little with t).
    assert!(worst.1 > 1.0 / 255.0 + 1e-3, "not from T: {}", worst.1);
    // Temperature 0 draws the component's mean however wide it is; 1 spreads around it.
    let mut wide = g.clone();
    wide.components[0].covariance = vec![vec![4.0]];
    let dir_w = tmp.path().join("wide");
    export::export_model(
        &net,
        &cfg,
        TrainingSummary::default(),
        Some(wide),
        &dir_w,
        false,
    )
    .expect("export");
    let mut engine = Engine::open(&dir_w, EngineOptions::default()).expect("engine");
    let sample = |e: &mut Engine, name: &str, temperature: f64| {
        let out = tmp.path().join(name);
        let o = cold_runtime::generation::GenerateOptions {
            temperature,
            ..options()
        };
        generate(e, &out, &o).expect("generate");
        let png = cold_core::imageio::read_image(&out.join("samples/00001.png")).expect("png");
        let got: Vec<f32> = png
            .to_luma8()
            .as_raw()
            .iter()
            .map(|&p| f32::from(p) / 255.0 * 2.0 - 1.0)
            .collect();
        got.iter()
            .zip(want.iter())
            .map(|(g, w)| (g - w.clamp(-1.0, 1.0)).abs())
            .fold(0.0f32, f32::max)
    };
    let cold = sample(&mut engine, "t0", 0.0);
    assert!(cold <= 1.0 / 255.0 + 1e-4, "temperature 0: {cold}");
    let warm = sample(&mut engine, "t1", 1.0);
    assert!(
        warm > 1.0 / 255.0 + 1e-3,
        "temperature 1 draws around the mean: {warm}"
    );
    // A subspace of another image size: refused, nothing written.
    let mut small = g;
    small.subspace = Some(Subspace {
        mean: vec![0.0; 16],
        basis: vec![vec![0.25; 16]],
        ..space
    });
    let dir2 = tmp.path().join("small");
    export::export_model(
        &net,
        &cfg,
        TrainingSummary::default(),
        Some(small),
        &dir2,
        false,
    )
    .expect("export");
    let mut engine = Engine::open(&dir2, EngineOptions::default()).expect("engine");
    let e = generate(&mut engine, &tmp.path().join("o2"), &options()).expect_err("refused");
    assert!(e.to_string().contains("another size"), "{e}");
    assert!(!tmp.path().join("o2/samples/00000.png").exists());
}

/// A network trained on the low levels only (`cold-train train --max-level K`) refuses what lies
/// above them: restoring from t > K, and generating from a mixture whose start is above K; at
/// K itself both run.
#[test]
fn a_network_trained_on_low_levels_refuses_to_start_above_them() {
    use cold_runtime::jobs::{RestoreOptions, restore_folder};
    let (cfg, net) = tiny_model(3);
    let side = 28usize;
    let space = |level| Subspace {
        level,
        mean: vec![0.0; side * side],
        basis: vec![vec![1.0 / side as f32; side * side]],
        explained: 0.9,
    };
    let mixture = |level| Generation {
        components: vec![Component {
            weight: 1.0,
            mean: vec![0.5],
            covariance: vec![vec![0.01]],
        }],
        fitted_on: "test".into(),
        images: 0,
        by_class: Vec::new(),
        guidance: None,
        temperature: None,
        subspace: Some(space(level)),
    };
    let trained = TrainingSummary {
        max_level: Some(4),
        ..TrainingSummary::default()
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let bundle = |name: &str, level| {
        let dir = tmp.path().join(name);
        export::export_model(
            &net,
            &cfg,
            trained.clone(),
            Some(mixture(level)),
            &dir,
            false,
        )
        .expect("export");
        Engine::open(&dir, EngineOptions::default()).expect("engine")
    };
    let mut above = bundle("above", 5);
    let e = generate(
        &mut above,
        &tmp.path().join("g5"),
        &cold_testkit::three_samples(),
    )
    .expect_err("start above the trained levels");
    assert!(e.to_string().contains("trained on levels 1..=4"), "{e}");
    assert!(!tmp.path().join("g5/samples/00000.png").exists());
    // Fitting a mixture that would start above the trained levels is refused too.
    let data = cold_core::data::Dataset::load(
        &cold_core::data::Source::Mnist(Some(cold_testkit::mnist_fixture_dir())),
        cold_core::data::Split::Test,
    )
    .expect("fixture");
    let fit = |level| export::MixtureOptions {
        components: 1,
        images: 0,
        subspace: Some((level, 4)),
    };
    let e = export::add_mixture(&tmp.path().join("above"), &data, fit(5)).expect_err("level 5");
    assert!(e.to_string().contains("trained on levels 1..=4"), "{e}");
    let mut at = bundle("at", 4);
    let report = generate(
        &mut at,
        &tmp.path().join("g4"),
        &cold_testkit::three_samples(),
    );
    assert_eq!(report.expect("start at K").written, 3);

    let inputs = tmp.path().join("in");
    let x = random_images((1, 1, side, side), 3);
    cold_core::imageio::save_unit_png(&inputs.join("a.png"), x.index_axis(ndarray::Axis(0), 0))
        .expect("png");
    let opts = |t| RestoreOptions {
        t: Some(t),
        steps: None,
        ..cold_testkit::restore_options()
    };
    let e = restore_folder(&mut at, &inputs, &tmp.path().join("r5"), &opts(5))
        .expect_err("t above the trained levels");
    assert!(e.to_string().contains("cannot start from level 5"), "{e}");
    assert!(!tmp.path().join("r5/a.png").exists());
    let r = restore_folder(&mut at, &inputs, &tmp.path().join("r4"), &opts(4)).expect("t = K");
    assert_eq!(r.written, 1);
}
