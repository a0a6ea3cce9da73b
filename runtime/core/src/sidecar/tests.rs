use super::*;
use crate::files::tests::{newer_is_refused, round_trip};

#[test]
fn the_sidecar_round_trips_and_newer_versions_are_refused() {
    let d = Degradation::preset("mnist-inpaint").expect("preset");
    let mut s = Sidecar::new(&d, 25, 7);
    s.images.insert(
        "a/b.png".into(),
        s.draw(Path::new("a/b.png"), 28, 28).expect("draw"),
    );
    s.images.insert(
        "c.png".into(),
        s.draw(Path::new("c.png"), 17, 40).expect("draw"),
    );
    round_trip(&s);
    newer_is_refused(&s);
    let dir = tempfile::tempdir().expect("tmp");
    s.write(dir.path()).expect("write");
    assert_eq!(Sidecar::read(dir.path()).expect("read"), Some(s.clone()));
    let mut v = serde_json::to_value(&s).expect("json");
    v["version"] = serde_json::json!(VERSION + 1);
    std::fs::write(Sidecar::path(dir.path()), v.to_string()).expect("write");
    let e = Sidecar::read(dir.path()).expect_err("newer");
    assert!(e.to_string().contains("degradation.json"), "{e}");
}

#[test]
fn a_model_with_the_same_d_at_another_training_size_matches() {
    let d = Degradation::preset("cifar10").expect("preset");
    let s = Sidecar::new(&d, 50, 7);
    let dir = Path::new("in");
    s.check_matches(dir, &d.at_size(64, 64).expect("64"))
        .expect("the same D trained at 64x64");
    let e = s
        .check_matches(dir, &Degradation::preset("cifar10-inpaint").expect("p"))
        .expect_err("another kind");
    assert!(e.to_string().contains("but the model inverts"), "{e}");
    let mut other_t = d.clone();
    other_t.steps = 40;
    assert!(s.check_matches(dir, &other_t).is_err());
    let mut grey = d.clone();
    grey.channels = 1;
    assert!(s.check_matches(dir, &grey).is_err());
}

#[test]
fn version_1_entries_read_at_the_degradation_size_and_sizes_are_checked() {
    let d = Degradation::preset("mnist-inpaint").expect("preset");
    let s = Sidecar::new(&d, 25, 7);
    let mut v = serde_json::to_value(&s).expect("json");
    v["version"] = serde_json::json!(1);
    v["images"] = serde_json::json!({"a.png": [3.0, 4.0]});
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(Sidecar::path(dir.path()), v.to_string()).expect("write");
    let back = Sidecar::read(dir.path()).expect("read").expect("there");
    let e = &back.images["a.png"];
    assert_eq!(
        (e.height, e.width, e.params.clone()),
        (28, 28, vec![3.0, 4.0])
    );
    assert_eq!(back.version, VERSION);
    let rel = Path::new("a.png");
    let p = back.lookup(dir.path(), &[rel], 28, 28).expect("lookup");
    assert_eq!(p.row(0).to_vec(), vec![3.0, 4.0]);
    let why = back.lookup(dir.path(), &[rel], 30, 28).expect_err("size");
    assert!(why.contains("degraded at 28x28"), "{why}");
    let why = back
        .lookup(dir.path(), &[Path::new("b.png")], 28, 28)
        .expect_err("missing");
    assert!(why.contains("not listed"), "{why}");
}

#[test]
fn shard_sidecars_are_merged_and_conflicts_refused() {
    let d = Degradation::preset("mnist-inpaint").expect("preset");
    let s = Sidecar::new(&d, 25, 7);
    let dir = tempfile::tempdir().expect("tmp");
    let shards: Vec<Shard> = (0..2)
        .map(|index| Shard {
            index,
            count: 2,
            from: "test".into(),
        })
        .collect();
    let mut all = s.clone();
    for i in 0..20 {
        let rel = format!("d/{i}.png");
        all.images.insert(
            rel.clone(),
            all.draw(Path::new(&rel), 28, 28).expect("draw"),
        );
    }
    // Each task writes its own file, with its own images only.
    for sh in &shards {
        all.write_shard(dir.path(), sh).expect("write");
        let one = Sidecar::read_file(&Sidecar::shard_path(dir.path(), sh)).expect("read");
        assert!(!one.images.is_empty() && one.images.len() < 20);
        assert!(one.images.keys().all(|k| sh.takes_path(Path::new(k))));
    }
    assert!(!Sidecar::path(dir.path()).exists());
    assert_eq!(Sidecar::read(dir.path()).expect("read"), Some(all.clone()));
    // A main file with the same entries merges too; a differing entry is refused by name.
    all.write(dir.path()).expect("write");
    assert_eq!(Sidecar::read(dir.path()).expect("read"), Some(all.clone()));
    let mut other = all.clone();
    let k = other.images.keys().next().expect("k").clone();
    other.images.get_mut(&k).expect("e").params[0] += 1.0;
    other.write(dir.path()).expect("write");
    let e = Sidecar::read(dir.path()).expect_err("conflict");
    assert!(
        e.to_string().contains(&k) && e.to_string().contains("differs"),
        "{e}"
    );
    // Another seed in one shard's file: two jobs mixed.
    let reseeded = Sidecar {
        seed: 8,
        ..all.clone()
    };
    all.write(dir.path()).expect("write");
    reseeded.write_shard(dir.path(), &shards[1]).expect("write");
    let e = Sidecar::read(dir.path()).expect_err("mixed");
    assert!(e.to_string().contains("mixes two degrade jobs"), "{e}");
}

#[test]
fn parameters_are_drawn_at_the_image_size() {
    // Random inpainting centres lie on the image's own grid (extended by one on each side).
    let d = Degradation::preset("mnist-inpaint").expect("preset");
    let s = Sidecar::new(&d, 25, 7);
    for i in 0..50 {
        let rel = format!("{i}.png");
        let e = s.draw(Path::new(&rel), 9, 300).expect("draw");
        assert_eq!((e.height, e.width), (9, 300));
        assert!(e.params[0] >= -1.0 && e.params[0] <= 9.0, "{:?}", e.params);
        assert!(
            e.params[1] >= -1.0 && e.params[1] <= 300.0,
            "{:?}",
            e.params
        );
    }
    let wide = (0..50)
        .map(|i| {
            s.draw(Path::new(&format!("{i}.png")), 9, 300)
                .expect("draw")
                .params[1]
        })
        .fold(0.0f32, f32::max);
    assert!(wide > 28.0, "centres stay on the 28-pixel grid: {wide}");
    // The same image and size draws the same parameters.
    let a = s.draw(Path::new("x.png"), 40, 41).expect("draw");
    assert_eq!(a, s.draw(Path::new("x.png"), 40, 41).expect("draw"));
}
