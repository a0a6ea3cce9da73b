//! Tests of the schedules table and of spec lines.

use super::*;

#[test]
fn every_schedule_is_valid_and_reads_back_from_its_line() {
    for s in SCHEDULES {
        let spec = s.spec();
        let line = spec.to_line();
        assert_eq!(Spec::parse(&line).expect(&line), spec, "{}", s.name);
        assert_eq!(Spec::parse(s.name).expect(s.name), spec);
    }
}

#[test]
fn lines_change_fields_and_build_kinds_from_scratch() {
    let s = Spec::parse("cifar10-blur:T=25").expect("T");
    assert_eq!(s.steps, 25);
    assert_eq!(
        s.transform,
        schedule("cifar10-blur").expect("s").spec().transform
    );
    let s = Spec::parse(
        "blur:kernel_size=15,schedule.routine=exponential,schedule.rate=0.01,padding=reflect,T=200",
    )
    .expect("blur");
    assert_eq!(s, schedule("celeba-blur").expect("s").spec());
    let s = Spec::parse("inpaint-centred:kernel_std=0.2,initial_mask=1,T=100").expect("in");
    assert_eq!(s, schedule("celeba-inpaint").expect("s").spec());
    // The degradation meets its size later; the same spec serves every size.
    let d = s.at(3, 100, 60).expect("at");
    assert_eq!((d.channels, d.height, d.width, d.steps), (3, 100, 60, 100));
    assert_eq!(Spec::of(&d), s);
}

#[test]
fn files_in_toml_and_json_read_as_manifests_write_them() {
    let dir = tempfile::tempdir().expect("tmp");
    let toml_path = dir.path().join("blur.toml");
    std::fs::write(
        &toml_path,
        "steps = 50\n[transform]\nkind = \"blur\"\nkernel_size = 11\npadding = \"reflect\"\n\
         [transform.schedule]\nroutine = \"cifar\"\n",
    )
    .expect("w");
    let want = schedule("cifar10-blur").expect("s").spec();
    assert_eq!(
        Spec::parse(toml_path.to_str().expect("utf8")).expect("toml"),
        want
    );
    let json_path = dir.path().join("blur.json");
    std::fs::write(&json_path, serde_json::to_string(&want).expect("json")).expect("w");
    assert_eq!(Spec::read(&json_path).expect("json"), want);
}

#[test]
fn bad_specs_say_what_is_wrong() {
    let e = |s: &str| Spec::parse(s).expect_err(s).to_string();
    assert!(
        e("wobble").contains("neither a schedule"),
        "{}",
        e("wobble")
    );
    assert!(e("blur:kernel_size=11,T=5").contains("missing field"));
    assert!(e("blur:kernel_size").contains("not key=value"));
    assert!(
        e("cifar10-blur:T=0").contains("T >= 1"),
        "{}",
        e("cifar10-blur:T=0")
    );
    assert!(
        e("cifar10-blur:kernel_size=4").contains("odd"),
        "{}",
        e("cifar10-blur:kernel_size=4")
    );
    assert!(e("cifar10-blur:colour=red").contains("unknown field"));
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("x.toml");
    std::fs::write(&p, "steps = [").expect("w");
    assert!(e(p.to_str().expect("utf8")).contains("not a degradation spec"));
    let p = dir.path().join("newer.json");
    std::fs::write(&p, r#"{"transform": {"kind": "warp"}, "steps": 3}"#).expect("w");
    assert!(e(p.to_str().expect("utf8")).contains("not known to this version"));
}
