//! The exported graphs run in ONNX Runtime (CPU) and agree with the Burn model they came from.

use std::collections::BTreeSet;
use std::path::Path;

use burn::prelude::*;
use cold_core::bundle::Bundle;
use cold_core::bundle::io;
use cold_core::degradation::{MixTables, Prepared, Transform};
use cold_core::training::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions};
use cold_runtime::ortlib;
use cold_testkit::{max_abs_diff, random_images, tiny_model, tiny_model_for, workspace_root};
use cold_trainer::CpuBackend as B;
use cold_trainer::ema::flat_params;
use cold_trainer::export;
use cold_trainer::import;
use cold_trainer::model::UNet;
use cold_trainer::tensor_io::{to_array, to_tensor};
use ndarray::{Array2, Array4, ArrayD, Ix4};
use ort::session::Session;
use ort::value::{Tensor as OrtTensor, TensorRef};
use protobuf::Message;
use rand::SeedableRng;

fn session(path: &Path) -> Session {
    let env = ortlib::environment().expect("ONNX Runtime");
    Session::builder(&env)
        .expect("builder")
        .commit_from_file(path)
        .expect("session")
}

fn arr4(v: ArrayD<f32>) -> Array4<f32> {
    v.into_dimensionality::<Ix4>().expect("4-D")
}

fn levels_tensor(levels: &[i64]) -> OrtTensor<i64> {
    OrtTensor::from_array(([levels.len()], levels.to_vec())).expect("levels")
}

fn burn_levels(levels: &[i64]) -> Tensor<B, 1> {
    let dev = Default::default();
    let f: Vec<f32> = levels.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(f, [levels.len()]), &dev)
}

type Inputs<'v> = Vec<(
    std::borrow::Cow<'static, str>,
    ort::session::SessionInputValue<'v>,
)>;

/// Adds the per-image parameter input when the degradation has parameters, and the tables the
/// graph takes as inputs (bundles of format version 2).
fn with_params<'v>(
    mut inputs: Inputs<'v>,
    params: &'v Array2<f32>,
    tables: &'v Prepared,
    session: &Session,
) -> Inputs<'v> {
    if params.ncols() > 0 {
        inputs.push((
            io::PARAMS.into(),
            TensorRef::from_array_view(params.view())
                .expect("params")
                .into(),
        ));
    }
    for (name, v) in tables.table_values() {
        if session.inputs().iter().any(|i| i.name() == name) {
            inputs.push((
                name.into(),
                TensorRef::from_array_view(v).expect("table").into(),
            ));
        }
    }
    inputs
}

/// Checks R, D and the fused step of the bundle in `dir` against `net` on random inputs, at the
/// bundle's own size and (graphs of format version 2, which take any size) at 20x36, where D's
/// tables are computed for that size.
fn check_parity(dir: &Path, net: &UNet<B>, seed: u64) {
    let bundle = Bundle::open(dir, true).expect("bundle");
    let m = &bundle.manifest;
    let mut sizes = vec![(m.image.height, m.image.width)];
    if m.format_version >= 2 {
        sizes.push((20, 36));
    }
    for (h, w) in sizes {
        check_parity_at(&bundle, net, seed, h, w);
    }
    check_engine(&bundle, net, seed);
}

/// The runtime's engine (which feeds the tables and fixes the image size in its sessions) gives
/// the host D and the Burn restorer.
fn check_engine(bundle: &Bundle, net: &UNet<B>, seed: u64) {
    let m = &bundle.manifest;
    let mut engine = Engine::open(&bundle.dir, EngineOptions::default()).expect("engine");
    let x = random_images(
        (3, m.image.channels, m.image.height, m.image.width),
        seed + 1,
    );
    let d = &m.degradation;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed + 2);
    let params = match d.transform {
        Transform::Animorph(_) => Array2::from_shape_fn((3, d.param_count()), |_| {
            rand::Rng::random_range(&mut rng, -1.0f32..1.0)
        }),
        _ => d.sample_params(&mut rng, 3).expect("params"),
    };
    let t = [0, 1, d.steps];
    let got = engine
        .degrade(x.view(), &t, params.view())
        .expect("engine D");
    let want = d
        .prepare()
        .expect("prepare")
        .apply(x.view(), &t, params.view())
        .expect("D");
    let err = max_abs_diff(&got, &want);
    assert!(err <= 1e-5, "engine D: {err}");
    let direct = engine
        .restore(
            x.view(),
            &[1, 2, 3],
            params.view(),
            Algorithm::Direct,
            None,
            false,
        )
        .expect("engine R")
        .output;
    let want = to_array(net.forward(
        to_tensor::<B>(&x, &Default::default()),
        burn_levels(&[1, 2, 3]),
    ));
    let err = max_abs_diff(&direct, &want);
    assert!(err <= 1e-4, "engine R: {err}");
}

fn check_parity_at(bundle: &Bundle, net: &UNet<B>, seed: u64, h: usize, w: usize) {
    let m = &bundle.manifest;
    let c = m.image.channels;
    let degradation = m
        .degradation
        .at_size(h, w)
        .expect("the kind works at this size");
    let big_t = m.degradation.steps as i64;
    let dev = Default::default();
    let x = random_images((4, c, h, w), seed);
    let t: Vec<i64> = vec![0, 1, big_t / 2, big_t];
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    // Animorphosis draws z from Fashion-MNIST, which CI does not have: random images instead
    // (the graphs do not care where z comes from).
    let params = match degradation.transform {
        Transform::Animorph(_) => Array2::from_shape_fn((4, degradation.param_count()), |_| {
            rand::Rng::random_range(&mut rng, -1.0f32..1.0)
        }),
        _ => degradation.sample_params(&mut rng, 4).expect("params"),
    };
    let prepared = degradation.prepare().expect("prepare");

    // R(x, t)
    let mut r = session(&bundle.path(&m.files.restorer));
    let out = r
        .run(ort::inputs! { "x" => TensorRef::from_array_view(x.view()).expect("x"), "t" => levels_tensor(&t) })
        .expect("run R");
    let got = arr4(
        out["x0_hat"]
            .try_extract_array::<f32>()
            .expect("f32")
            .to_owned(),
    );
    let want = to_array(net.forward(to_tensor::<B>(&x, &dev), burn_levels(&t)));
    let err_r = max_abs_diff(&got, &want);
    assert!(err_r <= 1e-4, "restorer: max abs error {err_r}");

    // D(x, t)
    let mut d = session(&bundle.path(&m.files.degradation));
    let inputs = with_params(
        ort::inputs! { "x" => TensorRef::from_array_view(x.view()).expect("x"), "t" => levels_tensor(&t) },
        &params,
        &prepared,
        &d,
    );
    let out = d.run(inputs).expect("run D");
    let got = arr4(out["y"].try_extract_array::<f32>().expect("f32").to_owned());
    let tu: Vec<usize> = t.iter().map(|&v| v as usize).collect();
    let want = prepared.apply(x.view(), &tu, params.view()).expect("apply");
    let err_d = max_abs_diff(&got, &want);
    assert!(err_d <= 1e-5, "degradation: max abs error {err_d}");

    // The fused step, with one sample already at level 0.
    let s: Vec<i64> = vec![0, 1, big_t / 2, big_t];
    let s_prev: Vec<i64> = vec![0, 0, big_t / 2 - 1, big_t - 3];
    let mut st = session(&bundle.path(&m.files.step));
    let inputs = with_params(
        ort::inputs! {
            "x_s" => TensorRef::from_array_view(x.view()).expect("x"),
            "s" => levels_tensor(&s),
            "s_prev" => levels_tensor(&s_prev),
        },
        &params,
        &prepared,
        &st,
    );
    let out = st.run(inputs).expect("run step");
    let x0_onnx = arr4(
        out["x0_hat"]
            .try_extract_array::<f32>()
            .expect("f32")
            .to_owned(),
    );
    let alg2_onnx = arr4(
        out["x_next"]
            .try_extract_array::<f32>()
            .expect("f32")
            .to_owned(),
    );
    let alg1_onnx = arr4(
        out["x_next_alg1"]
            .try_extract_array::<f32>()
            .expect("f32")
            .to_owned(),
    );
    let xb = to_tensor::<B>(&x, &dev);
    let x0 = to_array(net.forward(xb, burn_levels(&s)));
    let su: Vec<usize> = s.iter().map(|&v| v as usize).collect();
    let spu: Vec<usize> = s_prev.iter().map(|&v| v as usize).collect();
    let d_s = prepared.apply(x0.view(), &su, params.view()).expect("D");
    let d_prev = prepared.apply(x0.view(), &spu, params.view()).expect("D");
    let mut alg2 = &x - &d_s + &d_prev;
    let mut alg1 = d_prev;
    // Level-0 samples pass through unchanged.
    alg2.index_axis_mut(ndarray::Axis(0), 0)
        .assign(&x.index_axis(ndarray::Axis(0), 0));
    alg1.index_axis_mut(ndarray::Axis(0), 0)
        .assign(&x.index_axis(ndarray::Axis(0), 0));
    for (name, got, want) in [
        ("x0_hat", &x0_onnx, &x0),
        ("x_next", &alg2_onnx, &alg2),
        ("x_next_alg1", &alg1_onnx, &alg1),
    ] {
        let err = max_abs_diff(got, want);
        assert!(err <= 1e-4, "step {name}: max abs error {err}");
    }
    assert_eq!(
        alg2_onnx.index_axis(ndarray::Axis(0), 0),
        x.index_axis(ndarray::Axis(0), 0)
    );
    // Mixes also give the estimated-noise step.
    match (prepared.tables_as::<MixTables>(), out.get("x_next_est")) {
        (Some(mix), Some(est)) => {
            let got = arr4(est.try_extract_array::<f32>().expect("f32").to_owned());
            let want = mix.estimated_step(x.view(), x0.view(), &su, &spu);
            let err = max_abs_diff(&got, &want);
            assert!(err <= 1e-4, "step x_next_est: max abs error {err}");
        }
        (Some(_), None) => panic!("a mix's step graph has x_next_est"),
        (_, Some(_)) => panic!("only mixes have x_next_est"),
        (_, None) => {}
    }
    eprintln!(
        "parity {} at {h}x{w}: R {err_r:.2e}, D {err_d:.2e}",
        bundle.dir.display()
    );
}

#[test]
fn tiny_bundle_matches_burn() {
    let (cfg, net) = tiny_model(11);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("tiny");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    check_parity(&dir, &net, 5);

    // Every Burn parameter is an ONNX initializer of the same name, and reads back identically.
    let model = onnx_protobuf::ModelProto::parse_from_bytes(
        &std::fs::read(dir.join("restorer.onnx")).expect("read"),
    )
    .expect("parse");
    let names: BTreeSet<String> = import::external_initializers(&model).into_keys().collect();
    let paths: BTreeSet<String> = import::parameter_paths(&net).into_iter().collect();
    assert_eq!(names, paths);
    let (_, back) = import::load_bundle_model::<B>(&dir, &Default::default()).expect("import");
    assert_eq!(flat_params(&back), flat_params(&net));

    // Weights are 64-byte aligned in the shared file and the graphs hold no float weights inline.
    for (name, (offset, _, _)) in import::external_initializers(&model) {
        assert_eq!(offset % 64, 0, "{name} at {offset}");
    }
    let inline_floats: usize = model
        .graph
        .initializer
        .iter()
        .map(|i| i.float_data.len() + i.raw_data.len() / 4)
        .sum();
    assert!(inline_floats < 64, "{inline_floats} inline float values");
}

/// Every kind of degradation exports graphs that agree with Burn and the shared D, per-image
/// parameters included.
#[test]
fn every_degradation_kind_exports_matching_graphs() {
    for (i, preset) in [
        "mnist-inpaint",
        "mnist-inpaint-centred",
        "mnist-superres",
        "mnist-superres-clipped",
        "mnist-snow",
        "cifar10-snow",
        "mnist-noise",
        "mnist-animorph",
        "cifar10-decolor",
        "mnist-generation-blur",
        "mnist-mask-generation-28",
        "cifar10-mask-generation-32",
    ]
    .into_iter()
    .enumerate()
    {
        let (cfg, net) = tiny_model_for(preset, 20 + i as u64);
        let tmp = tempfile::tempdir().expect("tmp");
        let dir = tmp.path().join(preset);
        export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
            .expect("export");
        check_parity(&dir, &net, 30 + i as u64);
    }
}

#[test]
fn export_refuses_to_overwrite_a_different_bundle() {
    let (cfg, net) = tiny_model(1);
    let (_, other) = tiny_model(2);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    // The same model again is fine (nothing changes).
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("same again");
    let err = export::export_model(&other, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect_err("refuse");
    assert!(err.to_string().contains("--force"), "{err}");
    // A forced re-export keeps what the user added beside the bundle files (model card, examples).
    std::fs::write(dir.join("README.md"), "model card").expect("card");
    std::fs::create_dir_all(dir.join("examples/t20")).expect("mkdir");
    std::fs::write(dir.join("examples/t20/a.png"), b"png").expect("example");
    export::export_model(&other, &cfg, TrainingSummary::default(), None, &dir, true)
        .expect("forced");
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).expect("card"),
        "model card"
    );
    assert!(dir.join("examples/t20/a.png").is_file());
    let siblings: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(siblings.len(), 1, "no temporary folders left: {siblings:?}");
    let (_, back) = import::load_bundle_model::<B>(&dir, &Default::default()).expect("import");
    assert_eq!(flat_params(&back), flat_params(&other));
}

#[test]
fn shipped_default_model_matches_burn() {
    let dir = workspace_root().join("models/mnist-blur");
    let (_, net) = import::load_bundle_model::<B>(&dir, &Default::default())
        .expect("the shipped bundle loads into Burn");
    check_parity(&dir, &net, 9);
}

/// `cold-train reexport` writes a bundle again with this build's graphs: the network's weights
/// are the same bits, the manifest keeps what it recorded, the files beside it stay.
#[test]
fn a_reexported_bundle_keeps_its_weights_record_and_files() {
    let (cfg, net) = tiny_model_for("mnist-inpaint", 41);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    let training = TrainingSummary {
        dataset: "mnist".into(),
        steps: 7,
        ..Default::default()
    };
    export::export_model(&net, &cfg, training, None, &dir, false).expect("export");
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("m"))
            .expect("json");
    m["sampling"] = serde_json::json!({"recommended_steps": 3, "chosen_by": "a test"});
    // As an older cold-train wrote it (the hashes stay valid: the manifest is not hashed).
    m["format_version"] = serde_json::json!(1);
    std::fs::write(dir.join("manifest.json"), m.to_string()).expect("w");
    std::fs::write(dir.join("README.md"), "card").expect("card");
    let read = |name: &str| std::fs::read(dir.join(name)).expect("read");
    let before =
        import::initializer_bytes(&read("restorer.onnx"), &read("weights.bin")).expect("w");
    export::reexport(&dir).expect("reexport");
    let after = import::initializer_bytes(&read("restorer.onnx"), &read("weights.bin")).expect("w");
    assert_eq!(before, after);
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).expect("card"),
        "card"
    );
    let b = Bundle::open(&dir, true).expect("bundle");
    assert_eq!(b.manifest.format_version, cold_core::bundle::FORMAT_VERSION);
    assert_eq!(b.manifest.training.steps, 7);
    assert_eq!(b.manifest.sampling.map(|s| s.recommended_steps), Some(3));
    check_parity(&dir, &net, 42);
}

/// A reversed-mask bundle (the paper's mask generation, a fewer-level variant) generates without
/// a mixture: each sample starts from its drawn fill colour (level T is that constant image),
/// the same seed gives the same samples, and the start is what the bundle's own D gives at T.
#[test]
fn a_mask_generation_bundle_generates_from_its_fill_colours() {
    use cold_core::degradation::Spec;
    use cold_runtime::generation::{GenerateOptions, generate};
    let d = Spec::parse("mask-generation-28:T=12,kernel_std=1.0")
        .and_then(|s| s.at(1, 16, 16))
        .expect("spec");
    let cfg = cold_core::training::TrainConfig::with_degradation("mnist", d, "tiny").expect("cfg");
    let dev = Default::default();
    B::seed(&dev, 5);
    let net = cold_trainer::model::InitUNet::init::<B>(&cfg.model, &dev);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("maskgen");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    // Level T of the bundle's D is each image's colour, whatever the image.
    let x = random_images((3, 1, 16, 16), 8);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let p = engine
        .bundle
        .manifest
        .degradation
        .sample_params(&mut rng, 3)
        .expect("p");
    let y = engine
        .degrade(x.view(), &[12, 12, 12], p.view())
        .expect("D");
    for (i, img) in y.outer_iter().enumerate() {
        assert!(
            img.iter().all(|&v| (v - p[[i, 0]]).abs() <= 1e-6),
            "image {i}"
        );
    }
    let o = GenerateOptions {
        count: 3,
        seed: 4,
        noise: 0.002,
        batch: 2,
        overwrite: false,
        shard: None,
        class: None,
        guidance: 1.0,
        temperature: 1.0,
    };
    let read = |d: &Path, i: usize| {
        cold_core::imageio::read_image(&d.join(format!("samples/0000{i}.png")))
            .expect("png")
            .to_luma8()
            .into_raw()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    assert_eq!(generate(&mut engine, &a, &o).expect("generate").written, 3);
    generate(
        &mut engine,
        &b,
        &GenerateOptions {
            seed: 5,
            ..o.clone()
        },
    )
    .expect("generate");
    let again = tmp.path().join("a2");
    generate(&mut engine, &again, &o).expect("generate");
    for i in 0..3 {
        assert_eq!(read(&a, i), read(&again, i), "sample {i}: the same seed");
    }
    assert_ne!(read(&a, 0), read(&b, 0), "another seed");
    assert_ne!(read(&a, 0), read(&a, 1), "samples of one job differ");
    // No mixture to draw from: a temperature other than 1 is refused, nothing written.
    let t = tmp.path().join("t");
    let e = generate(
        &mut engine,
        &t,
        &GenerateOptions {
            temperature: 0.5,
            ..o.clone()
        },
    )
    .expect_err("no mixture");
    assert!(e.to_string().contains("--temperature"), "{e}");
    assert!(!t.join("samples/00000.png").exists());
}
