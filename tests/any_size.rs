//! Bundles of format version 2 restore and degrade images of any size: D runs on the whole image
//! at its own size (equal to the host's exact D there), R on the image padded to the network's
//! stride or on tiles; the fused step graph and the tiled loop agree where both can run; folder
//! jobs work each image at its own size, record it in the sidecar, and refuse what they cannot
//! do one image at a time.

use std::fs;
use std::path::Path;

use cold_core::degrade::DegradeOptions;
use cold_core::folder::{DEFAULT_MAX_PIXELS, Resize};
use cold_core::imageio::{self, BitDepth};
use cold_core::sidecar::Sidecar;
use cold_core::training::TrainingSummary;
use cold_runtime::engine::{Algorithm, Engine, EngineOptions, TileSize, Tiling};
use cold_runtime::jobs::{self, RestoreOptions};
use cold_testkit::{max_abs_diff, random_images, tiny_model_for};
use cold_trainer::export;
use ndarray::{Array2, Array4};

fn bundle(tmp: &Path, preset: &str) -> std::path::PathBuf {
    let (cfg, net) = tiny_model_for(preset, 5);
    let dir = tmp.join(preset);
    export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
        .expect("export");
    dir
}

fn engine(dir: &Path, tile: TileSize, overlap: usize) -> Engine {
    let options = EngineOptions {
        tiling: Tiling {
            tile,
            overlap,
            batch: 3,
        },
        ..EngineOptions::default()
    };
    Engine::open(dir, options).expect("engine")
}

#[test]
fn d_at_other_sizes_is_the_exact_d_at_that_size() {
    let tmp = tempfile::tempdir().expect("tmp");
    for preset in ["mnist", "mnist-inpaint", "mnist-superres"] {
        let dir = bundle(tmp.path(), preset);
        let mut e = engine(&dir, TileSize::Auto, 8);
        let d = e.bundle.manifest.degradation.clone();
        for (h, w) in [(17, 23), (40, 64), (28, 28)] {
            let at = d.at_size(h, w).expect("size");
            let prepared = at.prepare().expect("prepare");
            let x = random_images((3, 1, h, w), 11);
            let t = [0, d.steps / 2, d.steps];
            let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(2);
            let p = at.sample_params(&mut rng, 3).expect("params");
            let got = e.degrade(x.view(), &t, p.view()).expect("engine D");
            let want = prepared.apply(x.view(), &t, p.view()).expect("host D");
            let err = max_abs_diff(got.iter(), want.iter());
            assert!(err < 1e-5, "{preset} at {h}x{w}: {err}");
        }
    }
}

#[test]
fn the_tiled_loop_equals_the_fused_step_graph_on_a_whole_image() {
    let tmp = tempfile::tempdir().expect("tmp");
    for preset in ["mnist", "mnist-inpaint"] {
        let dir = bundle(tmp.path(), preset);
        let mut fused = engine(&dir, TileSize::Auto, 8);
        let mut whole = engine(&dir, TileSize::Whole, 8);
        let d = fused.bundle.manifest.degradation.clone();
        // 20 x 36: a multiple of the tiny network's stride, so the fused graph takes it whole.
        let (h, w) = (20, 36);
        let at = d.at_size(h, w).expect("size");
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(4);
        let p = at.sample_params(&mut rng, 2).expect("params");
        let x = random_images((2, 1, h, w), 3);
        let t = [d.steps, d.steps / 3];
        for algorithm in [Algorithm::Two, Algorithm::One, Algorithm::Direct] {
            let a = fused
                .restore(x.view(), &t, p.view(), algorithm, Some(6), true)
                .expect("fused");
            let b = whole
                .restore(x.view(), &t, p.view(), algorithm, Some(6), true)
                .expect("tiled loop");
            assert_eq!(a.progression.len(), b.progression.len());
            let err = max_abs_diff(a.output.iter(), b.output.iter());
            assert!(err < 1e-4, "{preset} {algorithm:?}: {err}");
        }
    }
}

#[test]
fn odd_sizes_restore_whole_and_in_tiles() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = bundle(tmp.path(), "mnist");
    let (h, w) = (29, 45);
    let x = random_images((2, 1, h, w), 8);
    let none = Array2::<f32>::zeros((2, 0));
    let mut outs = Vec::new();
    for (tile, overlap) in [
        (TileSize::Auto, 8),
        (TileSize::Whole, 0),
        (TileSize::Side(16), 4),
        (TileSize::Side(64), 4),
    ] {
        let mut e = engine(&dir, tile, overlap);
        let r = e
            .restore(
                x.view(),
                &[20, 10],
                none.view(),
                Algorithm::Two,
                Some(4),
                false,
            )
            .expect("restore");
        assert_eq!(r.output.dim(), (2, 1, h, w));
        assert!(r.output.iter().all(|v| v.is_finite()));
        outs.push(r.output);
    }
    // Auto on a small odd image is the whole padded image; a tile larger than the image too.
    assert!(max_abs_diff(outs[0].iter(), outs[1].iter()) < 1e-6);
    assert!(max_abs_diff(outs[1].iter(), outs[3].iter()) < 1e-6);
    // Tiles change what R sees (GroupNorm, attention over the tile), so the output moves.
    assert!(max_abs_diff(outs[1].iter(), outs[2].iter()) > 1e-6);
}

#[test]
fn batches_of_different_sizes_restored_together_equal_each_alone() {
    // Their tiles share R's calls (3 per call here), in lockstep over the levels; each batch's
    // D and update stay its own, so every output equals the batch restored by itself.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = bundle(tmp.path(), "mnist-inpaint");
    let mut e = engine(&dir, TileSize::Side(16), 4);
    let d = e.bundle.manifest.degradation.clone();
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(6);
    let groups: Vec<_> = [(2, 29, 45), (1, 40, 31), (3, 20, 20)]
        .iter()
        .enumerate()
        .map(|(i, &(b, h, w))| {
            let p = d
                .at_size(h, w)
                .expect("size")
                .sample_params(&mut rng, b)
                .expect("p");
            let t = vec![d.steps - i; b];
            (random_images((b, 1, h, w), i as u64), t, p)
        })
        .collect();
    for algorithm in [Algorithm::Two, Algorithm::Direct] {
        let alone: Vec<_> = groups
            .iter()
            .map(|(x, t, p)| {
                e.restore(x.view(), t, p.view(), algorithm, Some(4), true)
                    .expect("alone")
            })
            .collect();
        let together = e.restore_groups(groups.clone(), algorithm, Some(4), true);
        for (a, b) in alone.iter().zip(together) {
            let b = b.expect("together");
            assert_eq!(a.output.dim(), b.output.dim());
            assert_eq!(a.progression.len(), b.progression.len());
            let err = max_abs_diff(a.output.iter(), b.output.iter());
            assert!(err < 1e-5, "{algorithm:?}: {err}");
        }
    }
    // A batch with a wrong level fails alone.
    let mut bad = groups.clone();
    bad[1].1 = vec![d.steps + 1];
    let r = e.restore_groups(bad, Algorithm::Two, Some(4), false);
    assert!(r[0].is_ok() && r[1].is_err() && r[2].is_ok());
}

#[test]
fn images_too_large_for_tables_restore_with_d_computed_directly() {
    // A limit of 0 bytes sends every size but the bundle's own to D without tables: the same
    // restorations as with the kind's tables (blur), to float32 rounding.
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = bundle(tmp.path(), "mnist");
    let mut tables = engine(&dir, TileSize::Side(16), 4);
    let mut direct = Engine::open(
        &dir,
        EngineOptions {
            max_table_bytes: 0,
            ..tables.options.clone()
        },
    )
    .expect("engine");
    let (h, w) = (30, 41);
    let x = random_images((2, 1, h, w), 12);
    let none = Array2::<f32>::zeros((2, 0));
    let t = [20, 7];
    let a = tables.degrade(x.view(), &t, none.view()).expect("tables");
    let b = direct.degrade(x.view(), &t, none.view()).expect("direct");
    assert!(max_abs_diff(a.iter(), b.iter()) < 1e-5);
    for algorithm in [Algorithm::Two, Algorithm::One] {
        let a = tables
            .restore(x.view(), &t, none.view(), algorithm, Some(5), false)
            .expect("tables");
        let b = direct
            .restore(x.view(), &t, none.view(), algorithm, Some(5), false)
            .expect("direct");
        let err = max_abs_diff(a.output.iter(), b.output.iter());
        assert!(err < 1e-4, "{algorithm:?}: {err}");
    }
    // Kinds without a direct path are refused at sizes their tables cannot take, with a message.
    let dir = bundle(tmp.path(), "mnist-inpaint");
    let mut e = engine(&dir, TileSize::Auto, 8);
    let at = e
        .bundle
        .manifest
        .degradation
        .at_size(1200, 1100)
        .expect("size");
    assert!(!at.has_direct());
    let x = ndarray::Array4::<f32>::zeros((1, 1, 1200, 1100));
    let p = Array2::<f32>::zeros((1, 2));
    let err = e.degrade(x.view(), &[10], p.view()).expect_err("too large");
    assert!(
        err.to_string().contains("GB of precomputed tables"),
        "{err}"
    );
}

/// `x` turned by symmetry `g` of the square (bits: 4 transposes, 2 flips rows, 1 flips columns,
/// in that order), written index by index, apart from the engine's views.
fn turned(x: &Array4<f32>, g: u8) -> Array4<f32> {
    let (b, c, h, w) = x.dim();
    let (th, tw) = if g & 4 != 0 { (w, h) } else { (h, w) };
    Array4::from_shape_fn((b, c, th, tw), |(n, k, i, j)| {
        let i = if g & 2 != 0 { th - 1 - i } else { i };
        let j = if g & 1 != 0 { tw - 1 - j } else { j };
        if g & 4 != 0 {
            x[[n, k, j, i]]
        } else {
            x[[n, k, i, j]]
        }
    })
}

/// The inverse of [`turned`]: where each pixel of the image went, read back.
fn turned_back(y: &Array4<f32>, g: u8) -> Array4<f32> {
    let (b, c, th, tw) = y.dim();
    let (h, w) = if g & 4 != 0 { (tw, th) } else { (th, tw) };
    Array4::from_shape_fn((b, c, h, w), |(n, k, i, j)| {
        let (ti, tj) = if g & 4 != 0 { (j, i) } else { (i, j) };
        let ti = if g & 2 != 0 { th - 1 - ti } else { ti };
        let tj = if g & 1 != 0 { tw - 1 - tj } else { tj };
        y[[n, k, ti, tj]]
    })
}

#[test]
fn the_self_ensemble_averages_r_over_the_eight_symmetries() {
    // Direct restoration with the self-ensemble is the mean over the flips and transposes g of
    // g⁻¹ R(g x_t), each R(g x_t) a plain engine's restoration of the turned image; with
    // Algorithm 2 in one step (blur's D commutes with the symmetries) it is x_t - D(m) + m for
    // that mean m, so the update applies D to the averaged estimate. At the bundle's own size
    // too (28x28: the restorer graph instead of the fused step graph).
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = bundle(tmp.path(), "mnist");
    let mut plain = engine(&dir, TileSize::Whole, 0);
    let mut ens = Engine::open(
        &dir,
        EngineOptions {
            self_ensemble: true,
            ..plain.options.clone()
        },
    )
    .expect("engine");
    let none = Array2::<f32>::zeros((2, 0));
    let t = [20, 7];
    for (h, w) in [(20, 36), (28, 28)] {
        let x = random_images((2, 1, h, w), 6);
        for (algorithm, steps) in [(Algorithm::Direct, None), (Algorithm::Two, Some(1))] {
            let got = ens
                .restore(x.view(), &t, none.view(), algorithm, steps, false)
                .expect("ensemble")
                .output;
            let mut want = Array4::<f32>::zeros(x.dim());
            for g in 0..8 {
                let y = plain
                    .restore(
                        turned(&x, g).view(),
                        &t,
                        none.view(),
                        algorithm,
                        steps,
                        false,
                    )
                    .expect("plain")
                    .output;
                want += &turned_back(&y, g);
            }
            want /= 8.0;
            let err = max_abs_diff(got.iter(), want.iter());
            assert!(err < 1e-5, "{h}x{w} {algorithm:?}: {err}");
            // The tiny network has no symmetry of its own: the average is not one restoration.
            let one = plain
                .restore(x.view(), &t, none.view(), algorithm, steps, false)
                .expect("plain")
                .output;
            assert!(max_abs_diff(got.iter(), one.iter()) > 1e-3, "{h}x{w}");
        }
    }
}

fn write_png(path: &Path, h: usize, w: usize, seed: u64) {
    let x = random_images((1, 1, h, w), seed);
    imageio::save_unit_png(path, x.index_axis(ndarray::Axis(0), 0)).expect("png");
}

#[test]
fn folders_of_mixed_sizes_degrade_and_restore_at_their_own_size() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = bundle(tmp.path(), "mnist-inpaint");
    let mut e = engine(&dir, TileSize::Auto, 8);
    let (inp, deg, out) = (
        tmp.path().join("in"),
        tmp.path().join("deg"),
        tmp.path().join("out"),
    );
    fs::create_dir_all(&inp).expect("mkdir");
    let sizes = [(28, 28), (17, 23), (40, 31), (9, 64)];
    for (i, &(h, w)) in sizes.iter().enumerate() {
        write_png(&inp.join(format!("{i}.png")), h, w, i as u64);
    }
    // Too many pixels for --max-pixels: refused before decoding, the others go on.
    write_png(&inp.join("big.png"), 50, 60, 9);
    let o = DegradeOptions {
        t: 30,
        batch: 3,
        resize: Resize::Keep,
        overwrite: false,
        depth: BitDepth::Sixteen,
        seed: 1,
        max_pixels: 2_000,
        shard: None,
    };
    let rep = jobs::degrade_folder(&mut e, &inp, &deg, &o).expect("degrade");
    assert_eq!((rep.written, rep.failed.len()), (4, 1), "{:?}", rep.failed);
    assert!(rep.failed[0].1.contains("--max-pixels"), "{:?}", rep.failed);
    let side = Sidecar::read(&deg).expect("read").expect("sidecar");
    for (i, &(h, w)) in sizes.iter().enumerate() {
        let e = &side.images[&format!("{i}.png")];
        assert_eq!((e.height, e.width), (h, w));
        let (fw, fh) = image::image_dimensions(deg.join(format!("{i}.png"))).expect("dims");
        assert_eq!(
            (fh as usize, fw as usize),
            (h, w),
            "degraded at its own size"
        );
    }
    // An entry for another size than its image is refused for that image alone.
    let mut bad = side.clone();
    bad.images.get_mut("1.png").expect("entry").height = 18;
    bad.write(&deg).expect("write");
    let ro = RestoreOptions {
        t: None,
        algorithm: Algorithm::Two,
        steps: Some(3),
        batch: 4,
        progression: false,
        resize: Resize::Keep,
        max_pixels: DEFAULT_MAX_PIXELS,
        shard: None,
        overwrite: false,
    };
    let rep = jobs::restore_folder(&mut e, &deg, &out, &ro).expect("restore");
    assert_eq!((rep.written, rep.failed.len()), (3, 1), "{:?}", rep.failed);
    assert!(
        rep.failed[0].1.contains("degraded at 23x18"),
        "{:?}",
        rep.failed
    );
    for (i, &(h, w)) in sizes.iter().enumerate().filter(|(i, _)| *i != 1) {
        let (fw, fh) = image::image_dimensions(out.join(format!("{i}.png"))).expect("dims");
        assert_eq!((fh as usize, fw as usize), (h, w));
    }
    // --resize refuse keeps the model's size only.
    let refuse = RestoreOptions {
        resize: Resize::Refuse,
        overwrite: true,
        ..ro
    };
    let rep = jobs::restore_folder(&mut e, &deg, &out, &refuse).expect("restore");
    assert_eq!(rep.written, 1, "{:?}", rep.failed);
    assert!(
        rep.failed
            .iter()
            .any(|(_, why)| why.contains("works on 28x28"))
    );
}
