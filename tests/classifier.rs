//! The sample classifier: trained with Burn (`cold-train classifier`'s library), exported to ONNX
//! and run by `cold classify`'s library: the two agree image by image, the folder checks its files.

use cold_core::data::{Dataset, Source, Split};
use cold_runtime::classify::Classifier as OrtClassifier;
use cold_testkit::mnist_fixture_dir;
use cold_trainer::classifier::{self, ClassifierConfig};
use cold_trainer::tensor_io::to_tensor;

#[test]
fn a_trained_classifier_exports_and_classifies_folders_as_burn_does() {
    let data =
        Dataset::load(&Source::Mnist(Some(mnist_fixture_dir())), Split::Test).expect("fixture");
    let cfg = ClassifierConfig {
        steps: 80,
        batch: 16,
        learning_rate: 2e-3,
        seed: 3,
        shift: 0,
    };
    let (net, _) = classifier::train_on_cpu(&data, 10, &cfg);
    let device = Default::default();
    let acc = classifier::accuracy(&net, &data, &device);
    assert!(acc >= 0.6, "80 steps on 48 digits should learn them: {acc}");

    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("clf");
    let image = cold_core::bundle::ImageSpec {
        channels: 1,
        height: 28,
        width: 28,
        value_range: [-1.0, 1.0],
    };
    let training = cold_core::classifier::ClassifierTraining {
        test_accuracy: acc,
        test_images: data.len(),
        ..Default::default()
    };
    classifier::write(&net, image, data.class_names.clone(), training, &dir, false).expect("write");

    // The digits as files, one of them unreadable and one of another size.
    let imgs = tmp.path().join("digits");
    cold_core::data::dump(
        &format!("mnist:{}", mnist_fixture_dir().display()),
        Split::Test,
        0,
        48,
        None,
        &imgs,
    )
    .expect("dump");
    std::fs::write(imgs.join("broken.png"), b"not a png").expect("w");
    cold_core::imageio::save_unit_png(
        &imgs.join("big.png"),
        ndarray::Array3::zeros((1, 32, 32)).view(),
    )
    .expect("w");

    let mut ort = OrtClassifier::open(&dir, 1).expect("open");
    let r = ort.classify_folder(&imgs, 0.9).expect("classify");
    assert_eq!(r.images.len(), 48);
    assert_eq!(r.failed.len(), 2, "{:?}", r.failed);
    let burn_probs = burn::tensor::activation::softmax(
        net.forward(to_tensor(
            &data.batch(&(0..48).collect::<Vec<_>>()),
            &device,
        )),
        1,
    );
    let burn_probs: Vec<f32> = burn_probs.into_data().iter::<f32>().collect();
    let probs = ort
        .probabilities(data.batch(&(0..48).collect::<Vec<_>>()).view())
        .expect("probs");
    let mut right = 0;
    for (i, v) in r.images.iter().enumerate() {
        // Files sort as the digits' order: NNNNN_<label>.png.
        assert!(
            v.file.to_string_lossy().starts_with(&format!("{i:05}_")),
            "{v:?}"
        );
        let b = &burn_probs[i * 10..(i + 1) * 10];
        let err = b
            .iter()
            .zip(&probs[i])
            .map(|(a, c)| (a - c).abs())
            .fold(0.0f32, f32::max);
        assert!(err < 1e-4, "image {i}: ONNX and Burn differ by {err}");
        assert!((v.probability - probs[i].iter().copied().fold(0.0, f32::max)).abs() < 1e-6);
        if v.class == data.class_names[data.labels[i] as usize] {
            right += 1;
        }
    }
    assert!(
        (right as f64 / 48.0 - acc).abs() < 1e-9,
        "{right}/48 against Burn's {acc}"
    );
    let total: f64 = r.summary.shares.iter().map(|(_, s)| s).sum();
    assert!((total - 1.0).abs() < 1e-9);

    // A modified weights file is refused before anything runs.
    let w = dir.join(cold_core::classifier::WEIGHTS);
    let mut bytes = std::fs::read(&w).expect("r");
    bytes[100] ^= 1;
    std::fs::write(&w, bytes).expect("w");
    let e = OrtClassifier::open(&dir, 1)
        .expect_err("corrupt")
        .to_string();
    assert!(e.contains("does not match its sha256"), "{e}");
}
