use super::*;

#[test]
fn plan_refuses_in_place_and_skips_done() {
    let dir = tempfile::tempdir().expect("tmp");
    let inp = dir.path().join("in");
    fs::create_dir_all(inp.join("s")).expect("mkdir");
    for p in ["a.png", "a.jpg", "s/b.png"] {
        fs::write(inp.join(p), b"x").expect("w");
    }
    assert!(plan(&inp, &inp, false).is_err());
    let out = dir.path().join("out");
    fs::create_dir_all(out.join("s")).expect("mkdir");
    fs::write(out.join("s/b.png"), b"done").expect("w");
    let (items, rep) = plan(&inp, &out, false).expect("plan");
    assert_eq!(rep.skipped_existing, 1);
    // a.jpg and a.png both map to a.png: the second is reported, not silently overwritten.
    assert_eq!(rep.failed.len(), 1);
    assert_eq!(items.len(), 1);
    let (items, rep) = plan(&inp, &out, true).expect("plan");
    assert_eq!((items.len(), rep.skipped_existing), (2, 0));
}

#[test]
fn a_killed_run_s_temporary_files_of_this_share_are_removed() {
    let dir = tempfile::tempdir().expect("tmp");
    let (inp, out) = (dir.path().join("in"), dir.path().join("out"));
    fs::create_dir_all(&inp).expect("mkdir");
    fs::create_dir_all(&out).expect("mkdir");
    fs::write(inp.join("a.png"), b"x").expect("w");
    let ours = out.join(".a.png.123.456.0.tmp");
    let theirs = out.join(".b.png.123.456.1.tmp");
    fs::write(&ours, b"partial").expect("w");
    fs::write(&theirs, b"another task's").expect("w");
    let (items, _) = plan(&inp, &out, false).expect("plan");
    assert_eq!(items.len(), 1);
    assert!(
        ours.exists(),
        "planning alone (cold report) removes nothing"
    );
    remove_stale_temps(&items);
    assert!(!ours.exists(), "a stale temporary file of a planned output");
    assert!(theirs.exists(), "not this run's image");
}

/// A run of 4 images per batch for a colour model of 8x8 that takes any size.
fn rgb8_run<'a>(items: &'a [Item], out: &'a Path, chunk_pixels: u64) -> FolderRun<'a> {
    FolderRun {
        items,
        out_dir: out,
        shape: Shape {
            channels: 3,
            height: 8,
            width: 8,
        },
        resize: Resize::Keep,
        any_size: true,
        max_pixels: DEFAULT_MAX_PIXELS,
        batch: 4,
        chunk_pixels,
        what: "test",
    }
}

/// A `w x h` RGB PNG whose EXIF orientation says "rotate 90 degrees clockwise", bright at
/// its top-left pixel.
fn rotated_png(path: &Path, w: u32, h: u32) {
    use image::ImageEncoder;
    let mut im = image::RgbImage::new(w, h);
    im.put_pixel(0, 0, image::Rgb([255, 255, 255]));
    let file = fs::File::create(path).expect("create");
    let mut enc = image::codecs::png::PngEncoder::new(file);
    // A little-endian TIFF header and one IFD entry: Orientation (0x0112), SHORT, 6.
    let exif = vec![
        0x49, 0x49, 0x2A, 0x00, 0x08, 0, 0, 0, 1, 0, 0x12, 0x01, 0x03, 0x00, 1, 0, 0, 0, 6, 0, 0,
        0, 0, 0, 0, 0,
    ];
    enc.set_exif_metadata(exif).expect("exif");
    enc.write_image(im.as_raw(), w, h, image::ExtendedColorType::Rgb8)
        .expect("png");
}

#[test]
fn conversions_are_reported_and_exif_orientation_is_applied() {
    let dir = tempfile::tempdir().expect("tmp");
    let (inp, out) = (dir.path().join("in"), dir.path().join("out"));
    fs::create_dir_all(&inp).expect("mkdir");
    image::GrayImage::new(8, 8)
        .save(inp.join("grey.png"))
        .expect("w");
    image::RgbaImage::new(8, 8)
        .save(inp.join("alpha.png"))
        .expect("w");
    image::RgbImage::new(8, 8)
        .save(inp.join("plain.png"))
        .expect("w");
    rotated_png(&inp.join("turned.png"), 10, 6);
    let (items, report) = plan(&inp, &out, false).expect("plan");
    let run = rgb8_run(&items, &out, 0);
    let report = run_batched(&run, report, |x: Array4<f32>, _: &[&Item]| {
        x.outer_iter()
            .map(|im| Ok::<_, Error>(vec![(String::new(), imageio::unit_to_image(im)?)]))
            .collect()
    })
    .expect("run");
    assert_eq!(
        (report.written, report.failed.len()),
        (4, 0),
        "{:?}",
        report.failed
    );
    let notes: HashMap<String, String> = report
        .converted
        .iter()
        .map(|(p, how)| {
            (
                p.file_name().expect("name").to_string_lossy().into(),
                how.clone(),
            )
        })
        .collect();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_eq!(notes["grey.png"], "grey to RGB");
    assert_eq!(notes["alpha.png"], "alpha dropped");
    assert_eq!(notes["turned.png"], "EXIF orientation applied");
    // Rotated a quarter turn clockwise: 6 wide, 10 high, the bright pixel at the top right.
    let turned = image::open(out.join("turned.png")).expect("out").to_rgb8();
    assert_eq!(turned.dimensions(), (6, 10));
    assert_eq!(turned.get_pixel(5, 0).0, [255, 255, 255]);
    assert_eq!(turned.get_pixel(0, 0).0, [0, 0, 0]);
}

#[test]
fn chunk_pixels_let_images_of_several_sizes_reach_one_call() {
    let dir = tempfile::tempdir().expect("tmp");
    let (inp, out) = (dir.path().join("in"), dir.path().join("out"));
    fs::create_dir_all(&inp).expect("mkdir");
    // Three images larger than the model's 8x8, two of one size.
    for (name, w, h) in [("a.png", 20, 12), ("b.png", 9, 30), ("c.png", 20, 12)] {
        image::RgbImage::new(w, h).save(inp.join(name)).expect("w");
    }
    let (items, _) = plan(&inp, &out, true).expect("plan");
    let calls = |chunk_pixels: u64| {
        let run = rgb8_run(&items, &out, chunk_pixels);
        let mut seen: Vec<Vec<(usize, usize, usize)>> = Vec::new();
        let report = plan(&inp, &out, true).expect("plan").1;
        let rep = run_groups(&run, report, &|_, _, _| Ok(()), |groups| {
            seen.push(
                groups
                    .iter()
                    .map(|(x, it)| (it.len(), x.dim().2, x.dim().3))
                    .collect(),
            );
            groups
                .into_iter()
                .map(|(x, _)| {
                    x.outer_iter()
                        .map(|im| Ok::<_, Error>((String::new(), imageio::unit_to_image(im)?)))
                        .map(|r| r.map(|o| vec![o]))
                        .collect()
                })
                .collect()
        })
        .expect("run");
        assert_eq!(rep.written, 3, "{:?}", rep.failed);
        seen
    };
    // By default a chunk holds `batch` model-sized images' worth of pixels: one image each.
    assert_eq!(calls(0).len(), 3);
    // With room for all three: one call, a batch per size, in order of appearance.
    assert_eq!(calls(2_000), vec![vec![(2, 12, 20), (1, 30, 9)]]);
}
