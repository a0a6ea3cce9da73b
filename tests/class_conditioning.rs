//! A class-conditioned network end to end: its exported graphs take the class and agree with
//! Burn for every class and for none (the null class), the runtime restores with or without
//! classes, and `generate` samples by class from the class's own mixture.

use burn::prelude::*;
use cold_core::generation::{Component, Generation};
use cold_core::training::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions};
use cold_runtime::generation::{CLASSES_FILE, ClassChoice, GenerateOptions, generate};
use cold_testkit::{max_abs_diff, random_images, three_samples as options, tiny_model};
use cold_trainer::CpuBackend as B;
use cold_trainer::export;
use cold_trainer::model::InitUNet;
use cold_trainer::tensor_io::{to_array, to_tensor};
use ndarray::Array2;

const CLASSES: [&str; 3] = ["zero", "one", "two"];

/// A one-component mixture at `mean`.
fn mixture(mean: f64) -> Generation {
    Generation {
        components: vec![Component {
            weight: 1.0,
            mean: vec![mean],
            covariance: vec![vec![0.01]],
        }],
        fitted_on: "test".into(),
        images: 0,
        by_class: Vec::new(),
        guidance: None,
        temperature: None,
        subspace: None,
    }
}

#[test]
fn a_class_conditioned_bundle_restores_and_generates_by_class() {
    let (mut cfg, _) = tiny_model(3);
    cfg.model.classes = Some(CLASSES.map(String::from).to_vec());
    let dev = Default::default();
    B::seed(&dev, 3);
    let net = cfg.model.init::<B>(&dev);
    // Every class starts from its own constant level, the unconditioned samples from another.
    let mut g = mixture(-0.9);
    g.by_class = vec![mixture(-0.5), mixture(0.0), mixture(0.5)];
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("cond");
    export::export_model(&net, &cfg, TrainingSummary::default(), Some(g), &dir, false)
        .expect("export");

    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let x = random_images((4, 1, 28, 28), 9);
    let t = [3usize, 7, 11, 20];
    let params = Array2::<f32>::zeros((4, 0));
    let levels = || {
        let f: Vec<f32> = t.iter().map(|&v| v as f32).collect();
        Tensor::<B, 1>::from_data(TensorData::new(f, [4]), &dev)
    };
    let burn = |class: Option<Vec<i64>>| {
        let c = class.map(|c| Tensor::<B, 1, Int>::from_data(TensorData::new(c, [4]), &dev));
        to_array(net.forward_with(to_tensor::<B>(&x, &dev), levels(), c))
    };
    // R through the step graph: each image's class, the null class (3) among them.
    let classes = vec![0i64, 2, 3, 1];
    let got = engine
        .restore_conditioned(
            x.view(),
            &t,
            params.view(),
            Algorithm::Direct,
            None,
            false,
            &classes,
            1.0,
        )
        .expect("conditioned")
        .output;
    let want = burn(Some(classes.clone()));
    let err = max_abs_diff(&got, &want);
    assert!(err <= 1e-4, "conditioned R: {err}");
    // Without classes: the null class, as Burn's forward without one.
    let plain = engine
        .restore(x.view(), &t, params.view(), Algorithm::Direct, None, false)
        .expect("plain")
        .output;
    let err = max_abs_diff(&plain, &burn(None));
    assert!(err <= 1e-4, "null-class R: {err}");
    let err = max_abs_diff(&plain, &burn(Some(vec![3; 4])));
    assert!(err <= 1e-4, "null class is index 3: {err}");
    assert!(
        max_abs_diff(&plain, &got) > 1e-3,
        "the class changes the output"
    );
    // The whole sampler with classes runs and differs from the unconditioned one.
    let two = |e: &mut Engine, c: Option<&[i64]>| {
        match c {
            Some(c) => e.restore_conditioned(
                x.view(),
                &t,
                params.view(),
                Algorithm::Two,
                None,
                false,
                c,
                1.0,
            ),
            None => e.restore(x.view(), &t, params.view(), Algorithm::Two, None, false),
        }
        .expect("algorithm 2")
        .output
    };
    let a = two(&mut engine, Some(&[1, 1, 1, 1]));
    assert!(max_abs_diff(&a, &two(&mut engine, None)) > 1e-3);
    // Images of another size go through the restorer graph with the null class.
    let big = random_images((1, 1, 20, 36), 4);
    engine
        .restore(
            big.view(),
            &[5],
            Array2::<f32>::zeros((1, 0)).view(),
            Algorithm::Two,
            Some(2),
            false,
        )
        .expect("another size, no class");
    let e = engine
        .restore_conditioned(
            big.view(),
            &[5],
            Array2::<f32>::zeros((1, 0)).view(),
            Algorithm::Two,
            None,
            false,
            &[1],
            1.0,
        )
        .expect_err("classes at another size");
    assert!(e.to_string().contains("own size"), "{e}");
    let e = engine
        .restore_conditioned(
            x.view(),
            &t,
            params.view(),
            Algorithm::Two,
            None,
            false,
            &[0, 1, 2, 4],
            1.0,
        )
        .expect_err("class 4");
    assert!(
        e.to_string().contains("not one of the model's 3 classes"),
        "{e}"
    );

    // Classifier-free guidance: x0 = u + w (c - u) ...
    let one = [1usize; 4];
    let run = |e: &mut Engine, alg: Algorithm, t: &[usize], w: Option<f32>| {
        match w {
            Some(w) => {
                e.restore_conditioned(x.view(), t, params.view(), alg, None, false, &classes, w)
            }
            None => e.restore(x.view(), t, params.view(), alg, None, false),
        }
        .expect("restore")
        .output
    };
    let (c, u) = (
        run(&mut engine, Algorithm::Direct, &t, Some(1.0)),
        run(&mut engine, Algorithm::Direct, &t, None),
    );
    let guided = run(&mut engine, Algorithm::Direct, &t, Some(2.5));
    let want = &u + &((&c - &u) * 2.5);
    assert!(max_abs_diff(&guided, &want) <= 1e-5, "guided x0");
    // ... and a step from the guided x0 is the same combination of the two steps (D is affine):
    // x_0 = x_1 - D(x0, 1) + x0.
    let step = run(&mut engine, Algorithm::Two, &one, Some(2.5));
    let x0 = run(&mut engine, Algorithm::Direct, &one, Some(2.5));
    let d1 = engine.degrade(x0.view(), &one, params.view()).expect("D");
    let want = &x - &d1 + &x0;
    assert!(max_abs_diff(&step, &want) <= 1e-4, "guided step");
    // Weight 0 is the unconditional sampler over all levels.
    let zero = run(&mut engine, Algorithm::Two, &t, Some(0.0));
    let plain = run(&mut engine, Algorithm::Two, &t, None);
    assert!(max_abs_diff(&zero, &plain) <= 1e-5, "guidance 0");

    // generate --class 2 starts from class 2's mixture: with no noise and t = T the start is the
    // constant 0.5, and the samples differ from the unconditioned ones.
    let out_c = tmp.path().join("gen-two");
    let o = GenerateOptions {
        class: Some(ClassChoice::One(2)),
        ..options()
    };
    let r = generate(&mut engine, &out_c, &o).expect("generate --class");
    assert_eq!(r.written, 3);
    let out_u = tmp.path().join("gen-none");
    let null = GenerateOptions {
        class: Some(ClassChoice::Null),
        ..options()
    };
    generate(&mut engine, &out_u, &null).expect("generate --class none");
    let read = |d: &std::path::Path| {
        cold_core::imageio::read_image(&d.join("samples/00000.png"))
            .expect("png")
            .to_luma8()
            .into_raw()
    };
    assert_ne!(read(&out_c), read(&out_u));
    let e = generate(
        &mut engine,
        &tmp.path().join("gen-bad"),
        &GenerateOptions {
            class: Some(ClassChoice::One(3)),
            ..options()
        },
    )
    .expect_err("class 3 of 3");
    assert!(e.to_string().contains("has 3 classes"), "{e}");
    let e = generate(
        &mut engine,
        &tmp.path().join("gen-guided"),
        &GenerateOptions {
            guidance: 3.0,
            ..null.clone()
        },
    )
    .expect_err("guidance with the null class");
    assert!(e.to_string().contains("no class to weigh"), "{e}");
    let guided_dir = tmp.path().join("gen-guided");
    generate(
        &mut engine,
        &guided_dir,
        &GenerateOptions {
            class: Some(ClassChoice::One(2)),
            guidance: 3.0,
            ..options()
        },
    )
    .expect("generate --class 2 --guidance 3");
    assert_ne!(read(&guided_dir), read(&out_c));
    // A rerun of the class job in its folder resumes; another class there is refused.
    assert_eq!(generate(&mut engine, &out_c, &o).expect("rerun").skipped, 3);
    let e = generate(
        &mut engine,
        &out_c,
        &GenerateOptions {
            class: Some(ClassChoice::One(1)),
            ..options()
        },
    )
    .expect_err("another class in the same folder");
    assert!(e.to_string().contains("another job"), "{e}");

    // By default a conditioned model draws each sample's class in the training proportions and
    // generates it as that class: with every training image in class 2 (and starts without
    // spread), the default job writes what --class 2 does, and not what the null class does.
    let manifest = dir.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("read")).expect("json");
    for (k, c) in m["generation"]["by_class"]
        .as_array_mut()
        .expect("by_class")
        .iter_mut()
        .enumerate()
    {
        c["images"] = (if k == 2 { 5 } else { 0 }).into();
        c["components"][0]["covariance"] = serde_json::json!([[1e-12]]);
    }
    std::fs::write(&manifest, m.to_string()).expect("write");
    // The default guidance weight a bundle carries (`cold-train steps --guidance`).
    cold_trainer::steps::recommend_guidance(&dir, Some(3.0), "a test").expect("guidance");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let g = engine.bundle.manifest.generation.clone().expect("mixture");
    assert_eq!(g.guidance.map(|w| w.weight), Some(3.0));
    assert!(cold_trainer::steps::recommend_guidance(&dir, Some(f32::NAN), "").is_err());
    let (drawn, two) = (
        tmp.path().join("gen-drawn"),
        tmp.path().join("gen-two-again"),
    );
    generate(&mut engine, &drawn, &options()).expect("generate, default classes");
    generate(&mut engine, &two, &o).expect("generate --class 2");
    for i in 0..3 {
        let png = |d: &std::path::Path| {
            cold_core::imageio::read_image(&d.join(format!("samples/0000{i}.png")))
                .expect("png")
                .to_luma8()
                .into_raw()
        };
        // The same up to the rounding of 8-bit files (the starts differ by ~1e-6).
        let diff = |a: Vec<u8>, b: Vec<u8>| {
            let d: Vec<f64> = a
                .iter()
                .zip(&b)
                .map(|(&p, &q)| (f64::from(p) - f64::from(q)).abs())
                .collect();
            (
                d.iter().copied().fold(0.0, f64::max),
                d.iter().sum::<f64>() / d.len() as f64,
            )
        };
        let (max, _) = diff(png(&drawn), png(&two));
        assert!(max <= 1.0, "sample {i}: {max} levels from --class 2");
        let (_, mean) = diff(png(&drawn), png(&out_u));
        assert!(
            mean > 5.0,
            "sample {i}: {mean} levels from the null class on average"
        );
    }

    // classes.json names the class each sample was generated as: class 2 for every sample of
    // both jobs here, none (null) for the null class's.
    let recorded = |d: &std::path::Path, n: usize| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(d.join(CLASSES_FILE)).expect("classes.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["classes"], serde_json::json!(CLASSES));
        (0..n)
            .map(|i| v["samples"][format!("{i:05}.png")].clone())
            .collect()
    };
    assert!(recorded(&drawn, 3).iter().all(|c| c == "two"));
    assert!(recorded(&two, 3).iter().all(|c| c == "two"));
    assert!(recorded(&out_u, 3).iter().all(|c| c.is_null()));
    // With two classes in the training data, the drawn classes vary, and each sample is what
    // `--class` of its recorded class generates.
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("read")).expect("json");
    m["generation"]["by_class"][0]["images"] = 5.into();
    std::fs::write(&manifest, m.to_string()).expect("write");
    let mut engine = Engine::open(&dir, EngineOptions::default()).expect("engine");
    let many = GenerateOptions {
        count: 12,
        ..options()
    };
    let mixed = tmp.path().join("gen-mixed");
    generate(&mut engine, &mixed, &many).expect("generate, two classes drawn");
    let classes = recorded(&mixed, 12);
    assert!(classes.iter().any(|c| c == "zero") && classes.iter().any(|c| c == "two"));
    assert!(!classes.iter().any(|c| c == "one"), "{classes:?}");
    for (k, name) in [(0, "zero"), (2, "two")] {
        let by = tmp.path().join(format!("gen-by-{name}"));
        let o = GenerateOptions {
            class: Some(ClassChoice::One(k)),
            ..many.clone()
        };
        generate(&mut engine, &by, &o).expect("generate by class");
        for (i, c) in classes.iter().enumerate() {
            if c != name {
                continue;
            }
            let png = |d: &std::path::Path| {
                cold_core::imageio::read_image(&d.join(format!("samples/{i:05}.png")))
                    .expect("png")
                    .to_luma8()
                    .into_raw()
            };
            let worst = png(&mixed)
                .iter()
                .zip(png(&by))
                .map(|(p, q)| p.abs_diff(q))
                .max()
                .expect("pixels");
            assert!(
                worst <= 1,
                "sample {i} ({name}): {worst} levels from --class {k}"
            );
        }
    }
}

#[test]
fn class_requests_on_an_unconditioned_bundle_are_refused() {
    let bundle = cold_testkit::tiny_bundle_dir();
    let mut engine = Engine::open(&bundle, EngineOptions::default()).expect("engine");
    let tmp = tempfile::tempdir().expect("tmp");
    let e = generate(
        &mut engine,
        tmp.path(),
        &GenerateOptions {
            class: Some(ClassChoice::One(0)),
            ..options()
        },
    )
    .expect_err("not conditioned");
    assert!(e.to_string().contains("not conditioned on classes"), "{e}");
    let cfg = engine.bundle.manifest.network.config.clone();
    let e = cfg.class_index("3").expect_err("no classes");
    assert!(e.contains("cold-train train --classes"), "{e}");
    let x = random_images((1, 1, 28, 28), 1);
    let e = engine
        .restore_conditioned(
            x.view(),
            &[3],
            Array2::<f32>::zeros((1, 0)).view(),
            Algorithm::Two,
            None,
            false,
            &[0],
            1.0,
        )
        .expect_err("not conditioned");
    assert!(e.to_string().contains("not conditioned"), "{e}");
    // Names and indices of a conditioned network's classes.
    let mut c = cfg.clone();
    c.classes = Some(CLASSES.map(String::from).to_vec());
    assert_eq!(c.class_index("two"), Ok(2));
    assert_eq!(c.class_index("1"), Ok(1));
    let e = c.class_index("3").expect_err("3 of 3");
    assert!(e.contains("zero, one, two"), "{e}");
}
