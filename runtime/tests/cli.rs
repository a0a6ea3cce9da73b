//! The `cold` binary on real files: folder restoration with bad inputs, reruns, atomic outputs,
//! progression strips, resizing, degrade, info, bench, and clear errors for bad bundles, missing
//! providers and a missing ONNX Runtime library.

use std::fs;
use std::path::Path;
use std::process::Command;

use cold_core::data::{Dataset, Source, Split};
use cold_core::imageio;

mod common;
use common::{bundle, cold, copy_bundle, root, stderr, write_digits};

/// CRC-32 (ISO-HDLC) as PNG chunks use it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn no_temp_files(dir: &Path) {
    for e in fs::read_dir(dir).expect("ls") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            !name.ends_with(".tmp") && !name.ends_with(".part"),
            "leftover temp file {name}"
        );
        if e.path().is_dir() {
            no_temp_files(&e.path());
        }
    }
}

#[test]
fn restore_a_folder_with_bad_files_reports_and_continues() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    let out = tmp.path().join("out");
    write_digits(&inp, "a/b", 3);
    write_digits(&inp, "", 2);
    // Bad inputs, each of which must be reported and skipped.
    fs::write(inp.join("zero.png"), b"").expect("w");
    fs::write(inp.join("text.jpg"), b"this is not an image").expect("w");
    let good = fs::read(inp.join("digit0.png")).expect("r");
    fs::write(inp.join("truncated.png"), &good[..good.len() / 2]).expect("w");
    let mut corrupt = good.clone();
    for b in corrupt.iter_mut().skip(40) {
        *b ^= 0x5a;
    }
    fs::write(inp.join("corrupt.png"), corrupt).expect("w");
    // Another size than the model's: restored at its own size (the bundle's graphs take any).
    image::GrayImage::new(32, 36)
        .save(inp.join("other_size.png"))
        .expect("w");
    // A PNG whose header claims 60000 x 60000 pixels: refused before any decoding.
    let mut huge = good[..33].to_vec();
    huge[16..20].copy_from_slice(&60000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&60000u32.to_be_bytes());
    let crc = crc32(&huge[12..29]);
    huge[29..33].copy_from_slice(&crc.to_be_bytes());
    huge.extend_from_slice(&good[33..]);
    fs::write(inp.join("huge.png"), huge).expect("w");
    // Convertible inputs: 16-bit grayscale and RGBA of the right size are restored.
    image::ImageBuffer::<image::Luma<u16>, _>::from_pixel(28, 28, image::Luma([30000u16]))
        .save(inp.join("sixteen.png"))
        .expect("w");
    image::RgbaImage::from_pixel(28, 28, image::Rgba([200, 10, 10, 128]))
        .save(inp.join("alpha.png"))
        .expect("w");

    let o = cold(&[
        "restore",
        "--model",
        bundle().to_str().expect("utf8"),
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    let err = stderr(&o);
    assert_eq!(
        o.status.code(),
        Some(2),
        "some inputs failed: exit code 2\n{err}"
    );
    for bad in [
        "zero.png",
        "text.jpg",
        "truncated.png",
        "corrupt.png",
        "huge.png",
    ] {
        assert!(err.contains(bad), "{bad} must be reported:\n{err}");
        let stem = bad.rsplit_once('.').expect("ext").0;
        assert!(
            !out.join(format!("{stem}.png")).exists(),
            "{bad} must not produce an output"
        );
    }
    assert!(err.contains("0 bytes"), "{err}");
    assert!(err.contains("60000x60000"), "{err}");
    for ok in [
        "a/b/digit0.png",
        "a/b/digit1.png",
        "a/b/digit2.png",
        "digit0.png",
        "digit1.png",
        "sixteen.png",
        "alpha.png",
    ] {
        let p = out.join(ok);
        let im = image::open(&p).unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!((im.width(), im.height()), (28, 28), "{ok}");
        assert_eq!(
            im.color(),
            image::ColorType::L8,
            "{ok}: 8-bit grayscale like the model"
        );
    }
    let im = image::open(out.join("other_size.png")).expect("other size restored");
    assert_eq!((im.width(), im.height()), (32, 36), "at its own size");
    assert!(err.contains("8 written"), "{err}");
    no_temp_files(&out);

    // A rerun skips finished outputs (and does not touch them) unless --overwrite.
    let before = fs::metadata(out.join("digit0.png"))
        .expect("m")
        .modified()
        .expect("mtime");
    let o = cold(&[
        "restore",
        "--model",
        bundle().to_str().expect("utf8"),
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert!(
        stderr(&o).contains("0 written, 8 already done"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fs::metadata(out.join("digit0.png"))
            .expect("m")
            .modified()
            .expect("mtime"),
        before
    );
    let o = cold(&[
        "restore",
        "--model",
        bundle().to_str().expect("utf8"),
        "--overwrite",
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert!(stderr(&o).contains("8 written"), "{}", stderr(&o));
    // --resize refuse keeps to the model's own size.
    let o = cold(&[
        "restore",
        "--model",
        bundle().to_str().expect("utf8"),
        "--overwrite",
        "--resize",
        "refuse",
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    let err = stderr(&o);
    assert!(err.contains("7 written"), "{err}");
    assert!(
        err.contains("image is 32x36 but the model works on 28x28"),
        "{err}"
    );
}

#[test]
fn output_folder_may_not_be_the_input_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    write_digits(tmp.path(), "", 1);
    let p = tmp.path().to_str().expect("p");
    let o = cold(&["restore", "--model", bundle().to_str().expect("utf8"), p, p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("is the input folder"), "{}", stderr(&o));
    // The input is untouched.
    assert_eq!(fs::read_dir(tmp.path()).expect("ls").count(), 1);
}

#[test]
fn progression_strips_and_resize() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    let out = tmp.path().join("out");
    write_digits(&inp, "", 2);
    let big = image::imageops::resize(
        &image::open(inp.join("digit0.png"))
            .expect("open")
            .to_luma8(),
        56,
        56,
        image::imageops::FilterType::Nearest,
    );
    big.save(inp.join("big.png")).expect("save");
    let o = cold(&[
        "restore",
        "--model",
        bundle().to_str().expect("utf8"),
        "--t",
        "5",
        "--save-progression",
        "--resize",
        "scale",
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // x_5 ... x_0: six frames of 28 pixels with 1-pixel gaps.
    let strip = image::open(out.join("digit0_progression.png")).expect("strip");
    assert_eq!((strip.width(), strip.height()), (6 * 28 + 5, 28));
    let big_out = image::open(out.join("big.png")).expect("big");
    assert_eq!(
        (big_out.width(), big_out.height()),
        (56, 56),
        "scaled back to the input's size"
    );
    // The first frame is the input itself.
    let first = strip.crop_imm(0, 0, 28, 28).to_luma8();
    assert_eq!(
        first,
        image::open(inp.join("digit0.png")).expect("in").to_luma8()
    );

    // A bundle that recommends 2 sampling steps restores with 2 by default; --steps 0 visits
    // every level.
    let rec = tmp.path().join("rec");
    copy_bundle(&rec);
    let mpath = rec.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(&mpath).expect("m")).expect("json");
    m["sampling"] = serde_json::json!({"recommended_steps": 2, "chosen_by": "test"});
    fs::write(&mpath, serde_json::to_vec(&m).expect("json")).expect("w");
    for (steps, frames) in [(None, 3u32), (Some("0"), 6), (Some("1"), 2)] {
        let out = tmp.path().join(format!("rec-out-{frames}"));
        let mut args = vec![
            "restore",
            "--model",
            rec.to_str().expect("p"),
            "--t",
            "5",
            "--save-progression",
            "--resize",
            "scale",
        ];
        if let Some(k) = steps {
            args.extend(["--steps", k]);
        }
        args.extend([inp.to_str().expect("p"), out.to_str().expect("p")]);
        let o = cold(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let strip = image::open(out.join("digit0_progression.png")).expect("strip");
        assert_eq!(strip.width(), frames * 28 + frames - 1, "--steps {steps:?}");
    }
}

#[test]
fn tile_batch_shares_calls_across_image_sizes_and_changes_no_output() {
    // Images of three sizes, each cut into tiles of 16: restored with one tile per call of R
    // and with 5 tiles per call taken from all of them, the outputs agree.
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    write_digits(&inp, "", 3);
    for (i, (w, h)) in [(56u32, 40u32), (45, 70), (56, 40)].into_iter().enumerate() {
        let p = inp.join(format!("digit{i}.png"));
        let im = image::open(&p).expect("open").to_luma8();
        image::imageops::resize(&im, w, h, image::imageops::FilterType::Triangle)
            .save(&p)
            .expect("save");
    }
    let model = bundle();
    let run = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "restore",
            "--model",
            model.to_str().expect("utf8"),
            "--t",
            "6",
            "--steps",
            "3",
            "--tile",
            "16",
            "--tile-overlap",
            "4",
        ];
        args.extend(extra);
        args.extend([inp.to_str().expect("p"), out.to_str().expect("p")]);
        let o = cold(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    let (one, shared) = (tmp.path().join("one"), tmp.path().join("shared"));
    run(&one, &["--tile-batch", "1"]);
    run(&shared, &["--tile-batch", "5"]);
    for i in 0..3 {
        let name = format!("digit{i}.png");
        let a = image::open(one.join(&name)).expect("a").to_luma8();
        let b = image::open(shared.join(&name)).expect("b").to_luma8();
        let src = image::open(inp.join(&name)).expect("in");
        assert_eq!(a.dimensions(), (src.width(), src.height()), "its own size");
        assert_eq!(a.dimensions(), b.dimensions());
        // The same maths in other batches: at most a rounding step of the 8-bit output.
        let worst = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| x.abs_diff(*y))
            .max()
            .expect("pixels");
        assert!(worst <= 1, "{name}: {worst}");
    }
}

#[test]
fn degrade_matches_the_exact_operators() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    let out = tmp.path().join("out");
    let files = write_digits(&inp, "", 3);
    let o = cold(&[
        "degrade",
        "--model",
        bundle().to_str().expect("utf8"),
        "--t",
        "4",
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ops = cold_core::degradation::Degradation::preset("mnist")
        .expect("preset")
        .prepare()
        .expect("ops");
    // The largest difference between D(x, t) by the exact operators and what `out` holds for `f`.
    let degrade_err = |f: &Path, out: &Path, t: usize| {
        let x = imageio::load_unit(f, 1, 28, 28).expect("in");
        let want = ops
            .apply_uniform(
                x.insert_axis(ndarray::Axis(0)).view(),
                t,
                ndarray::Array2::zeros((1, 0)).view(),
            )
            .expect("apply");
        let got =
            imageio::load_unit(&out.join(f.file_name().expect("name")), 1, 28, 28).expect("out");
        let err = want
            .iter()
            .zip(got.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        (err, got)
    };
    for f in &files {
        let (err, _) = degrade_err(f, &out, 4);
        assert!(err <= 1.0 / 127.5 + 1e-6, "8-bit rounding only, got {err}");
    }
    // 16-bit outputs keep what 8 bits round away: at t = 20 a digit spans about one 8-bit level.
    let out16 = tmp.path().join("out16");
    let o = cold(&[
        "degrade",
        "--model",
        bundle().to_str().expect("utf8"),
        "--t",
        "20",
        "--depth",
        "16",
        inp.to_str().expect("p"),
        out16.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let f = &files[0];
    let written = image::open(out16.join(f.file_name().expect("name"))).expect("16-bit png");
    assert_eq!(written.color(), image::ColorType::L16);
    let (err, got) = degrade_err(f, &out16, 20);
    assert!(
        err <= 1.0 / 65535.0 + 1e-6,
        "16-bit rounding only, got {err}"
    );
    let spread = |a: &ndarray::Array3<f32>| {
        a.iter().cloned().fold(f32::MIN, f32::max) - a.iter().cloned().fold(f32::MAX, f32::min)
    };
    assert!(
        spread(&got) > 100.0 / 65535.0 * 2.0,
        "the faint digit survives in 16 bits: spread {}",
        spread(&got)
    );
    let o = cold(&[
        "degrade",
        "--model",
        bundle().to_str().expect("utf8"),
        "--t",
        "99",
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert!(
        stderr(&o).contains("beyond this model's T = 20"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn corrupt_or_mismatched_bundles_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    write_digits(&inp, "", 1);
    let out = tmp.path().join("out");

    let missing = cold(&[
        "info",
        "--model",
        tmp.path().join("nope").to_str().expect("p"),
    ]);
    assert!(
        stderr(&missing).contains("no such folder"),
        "{}",
        stderr(&missing)
    );

    let b = tmp.path().join("flipped");
    copy_bundle(&b);
    let mut w = fs::read(b.join("weights.bin")).expect("r");
    w[1000] ^= 1;
    fs::write(b.join("weights.bin"), w).expect("w");
    let o = cold(&[
        "restore",
        "--model",
        b.to_str().expect("p"),
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("weights.bin does not match its sha256"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists(), "nothing is written for a refused bundle");

    let b = tmp.path().join("version");
    copy_bundle(&b);
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("manifest.json")).expect("r")).expect("json");
    m["format_version"] = serde_json::json!(99);
    fs::write(b.join("manifest.json"), m.to_string()).expect("w");
    let o = cold(&["info", "--model", b.to_str().expect("p")]);
    assert!(stderr(&o).contains("format version 99"), "{}", stderr(&o));

    let b = tmp.path().join("garbled");
    copy_bundle(&b);
    fs::write(b.join("manifest.json"), b"{ not json").expect("w");
    let o = cold(&["info", "--model", b.to_str().expect("p")]);
    assert!(stderr(&o).contains("not valid JSON"), "{}", stderr(&o));

    let b = tmp.path().join("incomplete");
    copy_bundle(&b);
    fs::remove_file(b.join("step.onnx")).expect("rm");
    let o = cold(&["info", "--model", b.to_str().expect("p")]);
    assert!(
        stderr(&o).contains("step.onnx is missing"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn unavailable_providers_and_libraries_are_clear_errors() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    write_digits(&inp, "", 1);
    let out = tmp.path().join("out");
    let args = |ep: &'static str| {
        vec![
            "restore".to_string(),
            "--model".into(),
            bundle().display().to_string(),
            "--ep".into(),
            ep.into(),
            inp.display().to_string(),
            out.display().to_string(),
        ]
    };
    for ep in ["cuda", "tensorrt"] {
        let o = Command::new(env!("CARGO_BIN_EXE_cold"))
            .args(args(ep))
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(1));
        let e = stderr(&o);
        assert!(e.contains(&format!("execution provider {ep}")), "{e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    // `auto` falls back to the CPU and says so.
    let o = Command::new(env!("CARGO_BIN_EXE_cold"))
        .args(args("auto"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("execution provider: cpu (auto"),
        "{}",
        stderr(&o)
    );

    let o = Command::new(env!("CARGO_BIN_EXE_cold"))
        .args(args("cpu"))
        .env("ORT_DYLIB_PATH", tmp.path().join("missing.so"))
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("ORT_DYLIB_PATH"), "{}", stderr(&o));
    let fake = tmp.path().join("libonnxruntime.so");
    fs::write(&fake, b"not a library").expect("w");
    let o = Command::new(env!("CARGO_BIN_EXE_cold"))
        .args(args("cpu"))
        .env("ORT_DYLIB_PATH", &fake)
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("could not be loaded"), "{}", stderr(&o));
}

#[test]
fn info_and_bench() {
    let o = cold(&["info", "--model", bundle().to_str().expect("utf8")]);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("gaussian blur, kernel 11x11, constant sigma 7"),
        "{s}"
    );
    assert!(s.contains("60388 parameters"), "{s}");
    let o = cold(&[
        "info",
        "--json",
        "--model",
        bundle().to_str().expect("utf8"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["degradation"]["steps"], 20);

    let tmp = tempfile::tempdir().expect("tmp");
    let js = tmp.path().join("bench.json");
    let o = cold(&[
        "bench",
        "--model",
        bundle().to_str().expect("utf8"),
        "--batch",
        "2,3",
        "--t",
        "3",
        "--warmup",
        "0",
        "--repeats",
        "2",
        "--json",
        js.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(&js).expect("json")).expect("parse");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["batch"], 3);
    assert_eq!(rows[1]["steps"], 3);
    assert!(rows[0]["images_per_second"].as_f64().expect("f") > 0.0);
    // The second run restored the same batch to the same images as the first.
    assert_eq!(rows[0]["replay_max_abs_diff"].as_f64(), Some(0.0));
    assert_eq!(rows[0]["cuda_graph"], false);

    // CUDA graphs and unsynchronised steps are settings of the CUDA provider.
    for flag in ["--cuda-graph", "--no-sync"] {
        let o = cold(&[
            "bench",
            "--model",
            bundle().to_str().expect("utf8"),
            "--batch",
            "2",
            flag,
        ]);
        assert_eq!(o.status.code(), Some(1), "{flag}");
        assert!(
            stderr(&o).contains("use them with --ep cuda"),
            "{}",
            stderr(&o)
        );
    }

    // Several providers in one run: the ones that are not there are skipped with their reason.
    let o = cold(&[
        "bench",
        "--model",
        bundle().to_str().expect("utf8"),
        "--ep",
        "cpu,cuda,tensorrt",
        "--batch",
        "2",
        "--t",
        "1",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--json",
        js.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&fs::read(&js).expect("json")).expect("parse");
    let rows = v.as_array().expect("array");
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["ep"], "cpu");
    assert!(rows[0]["images_per_second"].as_f64().expect("f") > 0.0);
    for (row, ep) in rows[1..].iter().zip(["cuda", "tensorrt"]) {
        assert_eq!(row["ep"], ep);
        let why = row["skipped"].as_str().expect("a reason");
        assert!(
            why.contains("rebuild") || why.contains("ORT_DYLIB_PATH"),
            "{why}"
        );
    }
    assert!(stderr(&o).contains("skipped cuda"), "{}", stderr(&o));
    // Other commands take one provider.
    let o = cold(&["info", "--model", bundle().to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(0));
    let o = cold(&[
        "degrade",
        "--model",
        bundle().to_str().expect("utf8"),
        "--ep",
        "cpu,cuda",
        "--t",
        "1",
        "a",
        "b",
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("one execution provider"),
        "{}",
        stderr(&o)
    );
}

/// RMSE over all pixels on [0, 1] (the reference's protocol), computed here independently.
fn rmse01(a: &ndarray::Array4<f32>, b: &ndarray::Array4<f32>) -> f64 {
    let sq: f64 = a
        .iter()
        .zip(b.iter())
        .map(|(x, y)| (f64::from(*x - *y) * 0.5).powi(2))
        .sum();
    (sq / a.len() as f64).sqrt()
}

#[test]
fn eval_writes_table_json_and_grid_with_the_reference_rmse() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = format!("mnist:{}", root().join("tests/fixtures/mnist").display());
    let model = bundle();
    let run = |out: &Path, depth: Option<&str>| -> serde_json::Value {
        let mut args = vec![
            "eval",
            "--model",
            model.to_str().expect("utf8"),
            "--data",
            &data,
            "--t",
            "20,5",
            "--limit",
            "12",
            "--batch",
            "5",
            "--out",
            out.to_str().expect("p"),
        ];
        if let Some(d) = depth {
            // FID is checked on the float run only (it runs the Inception network).
            args.extend(["--input-depth", d, "--no-fid"]);
        } else {
            args.extend(["--steps-curve", "1,3"]);
        }
        let o = cold(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let md = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(md.contains("| 20 | algorithm2 |"), "{md}");
        assert_eq!(
            fs::read_to_string(out.join("eval.md"))
                .expect("eval.md")
                .trim(),
            md.split_once("\n\n").expect("table").1.trim()
        );
        serde_json::from_slice(&fs::read(out.join("eval.json")).expect("json")).expect("parse")
    };
    let float = run(&tmp.path().join("float"), None);
    assert_eq!(float["images"], 12);
    assert_eq!(float["inputs"], "float");
    let rows = float["rows"].as_array().expect("rows");
    let methods: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["t"].as_u64().expect("t"),
                r["method"].as_str().expect("m"),
            )
        })
        .collect();
    let want: Vec<(u64, &str)> = [20u64, 5]
        .iter()
        .flat_map(|&t| {
            ["degraded", "direct", "algorithm1", "algorithm2"]
                .into_iter()
                .map(move |m| (t, m))
        })
        .collect();
    assert_eq!(methods, want);
    for r in rows {
        let (rmse, ssim) = (
            r["rmse"].as_f64().expect("rmse"),
            r["ssim"].as_f64().expect("s"),
        );
        assert!(
            (0.0..=1.0).contains(&rmse) && ssim <= 1.0 && ssim > -1.0,
            "{r}"
        );
        // FID of every method against the originals (12 images: a noisy but finite value).
        let fid = r["fid"].as_f64().expect("an FID column");
        assert!(fid.is_finite() && fid > 0.0, "{r}");
    }
    assert!(
        fs::read_to_string(tmp.path().join("float/eval.md"))
            .expect("md")
            .contains("| FID |")
    );
    // The steps curve: Algorithm 2 with 1 and 3 steps from t = 20.
    let curve = float["steps_curve"].as_array().expect("curve");
    assert_eq!(curve.len(), 2);
    assert_eq!(
        (curve[0]["t"].as_u64(), curve[0]["steps"].as_u64()),
        (Some(20), Some(1))
    );
    assert_eq!(curve[1]["steps"].as_u64(), Some(3));
    for r in curve {
        assert!(r["images_per_second"].as_f64().expect("ips") > 0.0);
        assert!(r["fid"].as_f64().expect("fid") > 0.0);
    }

    // The degraded rows equal the RMSE of the exact operators' output, over the 12 digits.
    let d = Dataset::load(
        &Source::Mnist(Some(root().join("tests/fixtures/mnist"))),
        Split::Test,
    )
    .expect("fixture");
    let x0 = d.batch(&(0..12).collect::<Vec<_>>());
    let ops = cold_core::degradation::Degradation::preset("mnist")
        .expect("preset")
        .prepare()
        .expect("ops");
    for (i, t) in [(0usize, 20usize), (4, 5)] {
        let xt = ops
            .apply_uniform(x0.view(), t, ndarray::Array2::zeros((12, 0)).view())
            .expect("apply");
        let got = rows[i]["rmse"].as_f64().expect("rmse");
        let want = rmse01(&xt, &x0);
        assert!((got - want).abs() < 1e-5, "t {t}: {got} vs {want}");
    }

    // 8-bit inputs move each degraded pixel by at most half a level: the degraded RMSE by at most
    // 0.5/255, and the rest of the table is still produced.
    let eight = run(&tmp.path().join("eight"), Some("8"));
    assert_eq!(eight["inputs"], "8-bit");
    for i in [0usize, 4] {
        let (a, b) = (
            float["rows"][i]["rmse"].as_f64().expect("a"),
            eight["rows"][i]["rmse"].as_f64().expect("b"),
        );
        assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6, "{a} vs {b}");
    }
    // Columns degraded | direct | alg 1 | alg 2 | original, one row per image of the first batch (5),
    // 28-pixel tiles with 2-pixel gaps, scaled 4x.
    let grid = image::open(tmp.path().join("float/comparison.png")).expect("grid");
    let side = 4 * (5 * (28 + 2) + 2);
    assert_eq!((grid.width(), grid.height()), (side, side));
}

#[test]
fn generate_is_deterministic_and_needs_a_mixture() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = bundle();
    let run = |out: &Path, seed: &str| {
        cold(&[
            "generate",
            "--model",
            model.to_str().expect("utf8"),
            "--count",
            "5",
            "--batch",
            "2",
            "--seed",
            seed,
            out.to_str().expect("p"),
        ])
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let o = run(&a, "3");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Sampling by class needs a class-conditioned model.
    let o = cold(&[
        "generate",
        "--model",
        model.to_str().expect("utf8"),
        "--class",
        "3",
        tmp.path().join("c").to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not conditioned on classes"),
        "{}",
        stderr(&o)
    );
    assert!(!tmp.path().join("c/samples").exists());
    let names = |d: &Path| {
        let mut v: Vec<String> = fs::read_dir(d)
            .expect("ls")
            .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // The samples apart from the grid, so that `cold fid a/samples` counts only samples.
    assert_eq!(names(&a), [".cold", "grid.png", "samples"]);
    assert_eq!(
        names(&a.join("samples")),
        [
            "00000.png",
            "00001.png",
            "00002.png",
            "00003.png",
            "00004.png"
        ]
    );
    assert_eq!(run(&b, "3").status.code(), Some(0));
    for n in names(&a.join("samples")) {
        let n = format!("samples/{n}");
        assert_eq!(
            fs::read(a.join(&n)).expect("a"),
            fs::read(b.join(&n)).expect("b"),
            "{n}"
        );
    }
    assert_eq!(
        fs::read(a.join("grid.png")).expect("a"),
        fs::read(b.join("grid.png")).expect("b")
    );
    // Again into the same folder: the same job resumes (nothing to do); another seed is refused
    // without --overwrite, nothing changed.
    let before = fs::read(a.join("samples/00000.png")).expect("a");
    let o = run(&a, "3");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(said.contains("0 written, 5 already done"), "{said}");
    let o = run(&a, "5");
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("--overwrite"), "{}", stderr(&o));
    assert_eq!(fs::read(a.join("samples/00000.png")).expect("a"), before);
    let c = tmp.path().join("c");
    assert_eq!(run(&c, "4").status.code(), Some(0));
    assert_ne!(
        fs::read(a.join("samples/00000.png")).expect("a"),
        fs::read(c.join("samples/00000.png")).expect("c"),
        "another seed, other images"
    );
    // A bundle without a mixture says how to get one.
    let nomix = tmp.path().join("nomix");
    copy_bundle(&nomix);
    let mpath = nomix.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(&mpath).expect("m")).expect("json");
    m["generation"] = serde_json::Value::Null;
    fs::write(&mpath, serde_json::to_vec(&m).expect("json")).expect("w");
    let o = cold(&[
        "generate",
        "--model",
        nomix.to_str().expect("p"),
        tmp.path().join("d").to_str().expect("p"),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("cold-train mixture"), "{}", stderr(&o));
}

/// A model at the paper's 32x32 evaluates on MNIST's 28x28 digits by padding them (the shipped
/// `mnist32-superres`), and restores far above its 4x4 inputs.
#[test]
fn eval_pads_mnist_for_a_32x32_model() {
    let data = format!("mnist:{}", root().join("tests/fixtures/mnist").display());
    let model = root().join("models/mnist32-superres");
    let o = cold(&[
        "eval",
        "--model",
        model.to_str().expect("utf8"),
        "--data",
        &data,
        "--t",
        "3",
        "--limit",
        "16",
        "--no-fid",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("to the model's 32x32"),
        "{}",
        stderr(&o)
    );
    let md = String::from_utf8_lossy(&o.stdout).into_owned();
    let ssim = |method: &str| -> f64 {
        let row = md
            .lines()
            .find(|l| l.starts_with(&format!("| 3 | {method} |")))
            .unwrap_or_else(|| panic!("no {method} row in {md}"));
        row.split('|')
            .nth(4)
            .expect("ssim")
            .trim()
            .parse()
            .expect("number")
    };
    assert!(ssim("degraded") < 0.3 && ssim("algorithm2") > 0.5, "{md}");
}

#[test]
fn self_ensemble_makes_restoration_commute_with_flips() {
    // Blur's D commutes with flips and transposes, and with --self-ensemble so does R's averaged
    // estimate: restoring a mirrored digit gives the mirrored restoration (to the 8-bit output's
    // rounding). The tiny network alone has no such symmetry.
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    write_digits(&inp, "", 2);
    let mirrored = tmp.path().join("mirrored");
    fs::create_dir_all(&mirrored).expect("mkdir");
    for i in 0..2 {
        let name = format!("digit{i}.png");
        let im = image::open(inp.join(&name)).expect("open").to_luma8();
        image::imageops::flip_horizontal(&im)
            .save(mirrored.join(&name))
            .expect("save");
    }
    let model = bundle();
    // A copy whose manifest makes the self-ensemble its default.
    let ensembled = tmp.path().join("ensembled");
    copy_bundle(&ensembled);
    let manifest = ensembled.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).expect("read")).expect("json");
    m["sampling"] = serde_json::json!({"recommended_steps": 4, "chosen_by": "a test",
        "self_ensemble": true});
    fs::write(&manifest, m.to_string()).expect("write");
    let run = |from: &Path, out: &Path, extra: &[&str]| {
        let by_default = extra.contains(&"--bundle-default");
        let extra: Vec<&str> = extra
            .iter()
            .copied()
            .filter(|a| *a != "--bundle-default")
            .collect();
        let m = if by_default { &ensembled } else { &model };
        let mut args = vec!["restore", "--model", m.to_str().expect("utf8")];
        args.extend(["--t", "12", "--steps", "4"]);
        args.extend(extra);
        args.extend([from.to_str().expect("p"), out.to_str().expect("p")]);
        let o = cold(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    };
    // The worst pixel difference between the restoration of each digit and the mirror image of
    // the restoration of its mirrored copy.
    let asymmetry = |extra: &[&str], tag: &str| -> u8 {
        let (a, b) = (tmp.path().join(tag), tmp.path().join(format!("{tag}-m")));
        run(&inp, &a, extra);
        run(&mirrored, &b, extra);
        (0..2)
            .flat_map(|i| {
                let name = format!("digit{i}.png");
                let x = image::open(a.join(&name)).expect("a").to_luma8();
                let y = image::open(b.join(&name)).expect("b").to_luma8();
                let y = image::imageops::flip_horizontal(&y);
                x.iter()
                    .zip(y.iter())
                    .map(|(p, q)| p.abs_diff(*q))
                    .collect::<Vec<_>>()
            })
            .max()
            .expect("pixels")
    };
    assert!(asymmetry(&["--self-ensemble"], "ens") <= 1);
    assert!(asymmetry(&["--tta"], "tta") <= 1);
    assert!(
        asymmetry(&[], "plain") > 4,
        "the plain network is symmetric already"
    );
    // A bundle that self-ensembles by default does so without the flag, and not with
    // --no-self-ensemble.
    assert!(asymmetry(&["--bundle-default"], "default") <= 1);
    assert!(asymmetry(&["--bundle-default", "--no-self-ensemble"], "off") > 4);
    // A bundle of format version 1 has no restorer graph: refused up front, saying what to do.
    let old = tmp.path().join("v1");
    copy_bundle(&old);
    let manifest = old.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).expect("read")).expect("json");
    m["format_version"] = serde_json::json!(1);
    fs::write(&manifest, m.to_string()).expect("write");
    let out = tmp.path().join("v1-out");
    let o = cold(&[
        "restore",
        "--model",
        old.to_str().expect("utf8"),
        "--self-ensemble",
        inp.to_str().expect("p"),
        out.to_str().expect("p"),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("cold-train reexport"), "{}", stderr(&o));
    assert!(!out.join("digit0.png").exists());
}

#[test]
fn the_null_class_generates_on_a_bundle_with_a_default_guidance() {
    // models/mnist-gen carries a default guidance weight (2); it weighs a class against none, so
    // `--class none` runs without it instead of being refused, and an explicit weight is still
    // refused there.
    let tmp = tempfile::tempdir().expect("tmp");
    let model = root().join("models/mnist-gen");
    let run = |out: &str, extra: &[&str]| {
        let out = tmp.path().join(out);
        let mut args = vec!["generate", "--model", model.to_str().expect("utf8")];
        args.extend(["--count", "2", "--class", "none"]);
        args.extend(extra);
        args.push(out.to_str().expect("p"));
        (cold(&args), out)
    };
    let (o, out) = run("null", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.join("samples/00001.png").is_file());
    let text = fs::read_to_string(out.join("classes.json")).expect("classes.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(v["samples"]["00000.png"].is_null(), "{text}");
    let (o, _) = run("null-guided", &["--guidance", "2"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("no class to weigh"), "{}", stderr(&o));
}

#[test]
fn generate_draws_with_the_bundles_temperature_unless_asked() {
    // A copy of models/mnist-gen with a default temperature of 0.5 in its manifest: without
    // --temperature it draws exactly what --temperature 0.5 draws, and 1 draws other starts.
    let tmp = tempfile::tempdir().expect("tmp");
    let model = tmp.path().join("gen");
    fs::create_dir_all(&model).expect("mkdir");
    for e in fs::read_dir(root().join("models/mnist-gen")).expect("ls") {
        let e = e.expect("e");
        if e.path().is_file() {
            fs::copy(e.path(), model.join(e.file_name())).expect("copy");
        }
    }
    let manifest = model.join("manifest.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&manifest).expect("read")).expect("json");
    m["generation"]["temperature"] = serde_json::json!({"value": 0.5, "chosen_by": "a test"});
    fs::write(&manifest, m.to_string()).expect("write");
    let run = |out: &str, extra: &[&str]| {
        let out = tmp.path().join(out);
        let mut args = vec!["generate", "--model", model.to_str().expect("utf8")];
        args.extend(["--count", "3", "--class", "8"]);
        args.extend(extra);
        args.push(out.to_str().expect("p"));
        let o = cold(&args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        (0..3)
            .map(|i| fs::read(out.join(format!("samples/0000{i}.png"))).expect("png"))
            .collect::<Vec<_>>()
    };
    let default = run("default", &[]);
    assert_eq!(default, run("half", &["--temperature", "0.5"]));
    assert_ne!(default, run("one", &["--temperature", "1"]));
    let o = cold(&[
        "generate",
        "--model",
        model.to_str().expect("utf8"),
        "--temperature",
        "-1",
        tmp.path().join("bad").to_str().expect("p"),
    ]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("finite number >= 0"), "{}", stderr(&o));
}
