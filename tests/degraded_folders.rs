//! Degrading a folder writes `degradation.json` (level, seed, each image's parameters) beside the
//! images; restoring reads it. A missing, mismatched or incomplete sidecar is a clear error that
//! loses nothing. Uses a tiny inpainting bundle exported here (its masks have a centre per image).

use std::fs;
use std::path::Path;

use cold_core::bundle::Bundle;
use cold_core::data::{Dataset, Source, Split};
use cold_core::degradation::{Degradation, Prepared};
use cold_core::degrade::{self, DegradeOptions};
use cold_core::folder::{DEFAULT_MAX_PIXELS, Resize};
use cold_core::imageio::{self, BitDepth};
use cold_core::sidecar::Sidecar;
use cold_core::training::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions};
use cold_runtime::jobs;
use cold_testkit::{mnist_fixture_dir, restore_options, tiny_bundle_dir, tiny_model_for};
use cold_trainer::export;

fn write_digits(dir: &Path, n: usize) {
    let d = Dataset::load(&Source::Mnist(Some(mnist_fixture_dir())), Split::Test).expect("fixture");
    for i in 0..n {
        let sub = if i % 2 == 0 { "even" } else { "odd" };
        let x = d.batch(&[i]);
        imageio::save_unit_png(
            &dir.join(sub).join(format!("{i:02}.png")),
            x.index_axis(ndarray::Axis(0), 0),
        )
        .expect("png");
    }
}

fn degrade_opts(t: usize, seed: u64) -> DegradeOptions {
    DegradeOptions {
        t,
        batch: 4,
        resize: Resize::Refuse,
        overwrite: false,
        depth: BitDepth::Sixteen,
        seed,
        max_pixels: DEFAULT_MAX_PIXELS,
        shard: None,
    }
}

/// The 16-bit file `out/key` is D(x, t) of `inp/key` with the parameters `params`, clipped to the
/// image range as image files are (within 1/65535 per pixel).
fn assert_degraded_file(
    prepared: &Prepared,
    inp: &Path,
    out: &Path,
    key: &str,
    params: &[f32],
    t: usize,
) {
    let x = imageio::load_unit(&inp.join(key), 1, 28, 28).expect("in");
    let params =
        ndarray::Array2::from_shape_vec((1, params.len()), params.to_vec()).expect("params");
    let want = prepared
        .apply_uniform(x.insert_axis(ndarray::Axis(0)).view(), t, params.view())
        .expect("D")
        .mapv(|v| v.clamp(-1.0, 1.0));
    let got = imageio::load_unit(&out.join(key), 1, 28, 28).expect("out");
    let err = want
        .iter()
        .zip(got.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err <= 2.0 / 65535.0 + 1e-5, "{key}: {err}");
}

fn count_pngs(dir: &Path) -> usize {
    imageio::list_images(dir).map(|v| v.len()).unwrap_or(0)
}

#[test]
fn degrade_then_restore_through_the_sidecar() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (cfg, net) = tiny_model_for("mnist-inpaint", 3);
    let bundle = tmp.path().join("inpaint");
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &bundle, false)
        .expect("export");
    let mut engine = Engine::open(&bundle, EngineOptions::default()).expect("engine");
    let (inp, out) = (tmp.path().join("in"), tmp.path().join("out"));
    write_digits(&inp, 7);

    // degrade: 7 images and a sidecar listing each one's centre
    let t = 30;
    let rep = jobs::degrade_folder(&mut engine, &inp, &out, &degrade_opts(t, 9)).expect("degrade");
    assert_eq!((rep.written, rep.failed.len()), (7, 0));
    let side = Sidecar::read(&out).expect("read").expect("sidecar written");
    assert_eq!((side.t, side.seed, side.images.len()), (t, 9, 7));
    assert_eq!(side.param_names, ["centre_row", "centre_col"]);
    assert!(side.images.contains_key("odd/01.png"));
    for c in side.images.values() {
        assert!(
            c.params
                .iter()
                .all(|v| (-1.0..=27.0).contains(v) && v.fract() == 0.0),
            "{c:?}"
        );
    }
    // Each image is D(x, t) with its own centre (16-bit files: within 1/65535 per pixel).
    let prepared = cfg.degradation.prepare().expect("prepare");
    let mut distinct = std::collections::BTreeSet::new();
    for (key, c) in &side.images {
        assert_eq!((c.height, c.width), (28, 28));
        assert_degraded_file(&prepared, &inp, &out, key, &c.params, t);
        distinct.insert(format!("{c:?}"));
    }
    assert!(distinct.len() > 1, "centres differ between images");

    // The same exact D without a model (cold-train degrade) writes the same parameters.
    let exact = tmp.path().join("exact");
    let rep = degrade::degrade_folder_exact(&cfg.degradation, &inp, &exact, &degrade_opts(t, 9))
        .expect("exact degrade");
    assert_eq!(rep.written, 7);
    assert_eq!(
        Sidecar::read(&exact)
            .expect("read")
            .expect("sidecar")
            .images,
        side.images
    );

    // A rerun with another seed into the same folder is refused, and changes nothing.
    let before = fs::read(Sidecar::path(&out)).expect("sidecar");
    let e =
        jobs::degrade_folder(&mut engine, &inp, &out, &degrade_opts(t, 10)).expect_err("refused");
    assert!(e.to_string().contains("--overwrite"), "{e}");
    assert_eq!(fs::read(Sidecar::path(&out)).expect("sidecar"), before);

    // restore reads the level and the centres from the sidecar
    let restored = tmp.path().join("restored");
    let rep =
        jobs::restore_folder(&mut engine, &out, &restored, &restore_options()).expect("restore");
    assert_eq!((rep.written, rep.failed.len()), (7, 0));

    // An image the sidecar does not list is reported and skipped; the others are restored.
    fs::copy(inp.join("even/00.png"), out.join("stray.png")).expect("copy");
    let again = tmp.path().join("again");
    let rep = jobs::restore_folder(&mut engine, &out, &again, &restore_options()).expect("restore");
    assert_eq!((rep.written, rep.failed.len()), (7, 1));
    assert!(
        rep.failed[0].1.contains("not listed"),
        "{}",
        rep.failed[0].1
    );

    // --t other than the sidecar's level is refused.
    let mut o = restore_options();
    o.t = Some(10);
    let e = jobs::restore_folder(&mut engine, &out, &tmp.path().join("t10"), &o).expect_err("t");
    assert!(e.to_string().contains("t = 30"), "{e}");

    // A model of another degradation refuses the folder instead of restoring it wrongly.
    let mut blur = Engine::open(&tiny_bundle_dir(), EngineOptions::default()).expect("blur");
    let wrong = tmp.path().join("wrong");
    let e =
        jobs::restore_folder(&mut blur, &out, &wrong, &restore_options()).expect_err("mismatch");
    assert!(e.to_string().contains("degraded by"), "{e}");
    assert_eq!(count_pngs(&wrong), 0);

    // Without the sidecar the inpainting model cannot restore: a clear error, nothing written.
    fs::remove_file(Sidecar::path(&out)).expect("rm");
    let none = tmp.path().join("none");
    let e =
        jobs::restore_folder(&mut engine, &out, &none, &restore_options()).expect_err("missing");
    let msg = e.to_string();
    assert!(
        msg.contains("degradation.json") && msg.contains("cold degrade"),
        "{msg}"
    );
    assert_eq!(count_pngs(&none), 0);
    assert_eq!(count_pngs(&out), 8, "the inputs are untouched");
}

#[test]
fn a_bundle_of_an_unknown_kind_says_which_kind() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("b");
    fs::create_dir_all(&dir).expect("mkdir");
    for e in fs::read_dir(tiny_bundle_dir()).expect("ls") {
        let e = e.expect("entry");
        fs::copy(e.path(), dir.join(e.file_name())).expect("copy");
    }
    let mpath = dir.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(&mpath).expect("read")).expect("json");
    m["degradation"]["transform"] = serde_json::json!({"kind": "swirl", "angle": 0.7});
    fs::write(&mpath, serde_json::to_vec(&m).expect("json")).expect("write");
    let e = Bundle::open(&dir, false).expect_err("unknown kind");
    let msg = e.to_string();
    assert!(msg.contains("'swirl'") && !msg.contains("corrupt"), "{msg}");
    // ... and a sidecar of an unknown kind likewise.
    let side = serde_json::json!({
        "format": "cold-diffusion-degraded-folder", "version": 1,
        "degradation": {"transform": {"kind": "swirl"}, "steps": 3, "channels": 1, "height": 28, "width": 28},
        "t": 3, "seed": 0, "param_names": [], "images": {}
    });
    fs::write(dir.join("degradation.json"), side.to_string()).expect("write");
    let e = Sidecar::read(&dir).expect_err("unknown kind");
    assert!(e.to_string().contains("'swirl'"), "{e}");
    // Presets of every kind load.
    for p in cold_core::degradation::PRESETS {
        Degradation::preset(p)
            .expect("preset")
            .prepare()
            .expect("prepare");
    }
}

/// Snow and noise carry whole images as per-image parameters (a snow base, a noise image): the
/// sidecar holds them, degraded files are D(x, t) with them (clipped to the image range, as any
/// image file), and restoring reads them back. The estimated-noise sampler is the noise kind's own.
#[test]
fn snow_and_noise_folders_round_trip_through_the_sidecar() {
    for (preset, t) in [("mnist-snow", 120), ("mnist-noise", 40)] {
        let tmp = tempfile::tempdir().expect("tmp");
        let (cfg, net) = tiny_model_for(preset, 4);
        let bundle = tmp.path().join("b");
        export::export_model(&net, &cfg, TrainingSummary::default(), None, &bundle, false)
            .expect("export");
        let mut engine = Engine::open(&bundle, EngineOptions::default()).expect("engine");
        let (inp, out) = (tmp.path().join("in"), tmp.path().join("out"));
        write_digits(&inp, 3);
        let rep =
            jobs::degrade_folder(&mut engine, &inp, &out, &degrade_opts(t, 5)).expect("degrade");
        assert_eq!((rep.written, rep.failed.len()), (3, 0), "{preset}");
        let side = Sidecar::read(&out).expect("read").expect("sidecar");
        let p = cfg.degradation.param_count();
        assert!(
            side.images.values().all(|v| v.params.len() == p),
            "{preset}"
        );
        let prepared = cfg.degradation.prepare().expect("prepare");
        for (key, v) in &side.images {
            assert_degraded_file(&prepared, &inp, &out, key, &v.params, t);
        }
        let mut algorithms = vec![Algorithm::Two, Algorithm::One];
        if preset.ends_with("noise") {
            algorithms.push(Algorithm::Estimated);
        }
        for a in algorithms {
            let dir = tmp.path().join(format!("restored-{a:?}"));
            let mut o = restore_options();
            o.algorithm = a;
            let rep = jobs::restore_folder(&mut engine, &out, &dir, &o).expect("restore");
            assert_eq!((rep.written, rep.failed.len()), (3, 0), "{preset} {a:?}");
        }
        if preset.ends_with("snow") {
            let mut o = restore_options();
            o.algorithm = Algorithm::Estimated;
            let dir = tmp.path().join("estimated");
            let e = jobs::restore_folder(&mut engine, &out, &dir, &o).expect_err("not a mix");
            assert!(e.to_string().contains("algorithm 2"), "{e}");
            assert_eq!(count_pngs(&dir), 0);
        }
    }
}
