//! Folder jobs split into tasks (issue 32): `--shard K/N` and the schedulers' environments, one
//! output folder written by many tasks, the per-shard sidecars of `degrade`, the task reports and
//! `cold report`. The real scheduler (a one-node Slurm cluster) is `tests/slurm/check.sh`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{bundle, cold, stderr, write_digits};

fn cold_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cold"));
    c.args(args);
    for k in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_STEP",
        "JOB_COMPLETION_INDEX",
    ] {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run cold")
}

/// Every file under `dir` (relative path -> bytes), dot-named folders left out.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).expect("ls") {
            let e = e.expect("e");
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                if !name.starts_with('.') {
                    stack.push(e.path());
                }
            } else {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .expect("rel")
                    .display()
                    .to_string();
                out.insert(rel, fs::read(e.path()).expect("read"));
            }
        }
    }
    out
}

/// The number in "restore: N written" of a task's closing line (exactly one such line).
fn written(o: &Output, what: &str) -> usize {
    let err = stderr(o);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&format!("{what}: ")) && l.contains(" written"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    let tail = lines[0].split(&format!("{what}: ")).nth(1).expect("tail");
    tail.split(' ').next().expect("n").parse().expect("number")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8")
}

#[test]
fn shards_of_a_restore_write_each_image_once_and_match_one_process() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    write_digits(&inp, "a", 14);
    write_digits(&inp, "b", 10);
    let model = bundle();
    let restore = |out: &Path, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "restore",
            "--model",
            s(&model),
            "--steps",
            "2",
            "--batch",
            "5",
        ];
        args.extend_from_slice(extra);
        args.extend([s(&inp), s(out)]);
        cold_env(&args, env)
    };
    let single = tmp.path().join("single");
    let o = restore(&single, &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(written(&o, "restore"), 24);

    // Three tasks into one folder: --shard for the first, a Slurm array whose ids start at 4 for
    // the others.
    let shared = tmp.path().join("shared");
    let mut total = 0;
    let o = restore(&shared, &["--shard", "0/3"], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    total += written(&o, "restore");
    for id in ["5", "6"] {
        let env = [
            ("SLURM_ARRAY_TASK_ID", id),
            ("SLURM_ARRAY_TASK_MIN", "4"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        let o = restore(&shared, &[], &env);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            stderr(&o).contains("SLURM_ARRAY_TASK_ID="),
            "{}",
            stderr(&o)
        );
        let n = written(&o, "restore");
        assert!(n > 0 && n < 24, "a share, not everything: {n}");
        total += n;
    }
    assert_eq!(total, 24, "every image written exactly once");
    assert_eq!(
        files(&shared),
        files(&single),
        "byte-identical to one process"
    );
    let reports: Vec<_> = fs::read_dir(shared.join(".cold"))
        .expect("reports")
        .map(|e| e.expect("e").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(reports.len(), 3, "{reports:?}");

    // An explicit --shard wins over the environment; an index out of range is an error.
    let env = [
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "2"),
    ];
    let o = restore(&shared, &["--shard", "0/1"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("0 written, 24 already done"),
        "{}",
        stderr(&o)
    );
    let o = restore(&shared, &[], &[("JOB_COMPLETION_INDEX", "3")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--shard-count"), "{}", stderr(&o));
    let o = restore(
        &shared,
        &["--shard-count", "3"],
        &[("JOB_COMPLETION_INDEX", "3")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("beyond the 3 tasks"), "{}", stderr(&o));
    let o = restore(&shared, &["--shard", "3/3"], &[]);
    assert_eq!(o.status.code(), Some(2), "clap's usage error");

    // cold report: complete; then a lost output and a task that never reported.
    let o = cold(&["report", s(&shared)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(table.contains("24 of 24 done, 0 missing"), "{table}");
    let victim = fs::read_dir(shared.join("b"))
        .expect("ls")
        .next()
        .expect("one")
        .expect("e")
        .path();
    fs::remove_file(&victim).expect("rm");
    let o = cold(&["report", "--json", s(&shared)]);
    assert_eq!(o.status.code(), Some(2), "something is missing");
    let js: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let restore_job = js
        .as_array()
        .expect("jobs")
        .iter()
        .find(|j| j["shards"] == 3)
        .expect("the sharded job");
    let missing = restore_job["missing"].as_array().expect("missing");
    assert_eq!(missing.len(), 1, "{missing:?}");
    let name = victim
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    assert_eq!(missing[0]["item"], format!("b/{name}"));
    assert!(missing[0]["shard"].as_str().expect("shard").ends_with("/3"));
}

#[test]
fn a_sharded_degrade_then_one_plain_restore() {
    let tmp = tempfile::tempdir().expect("tmp");
    let inp = tmp.path().join("in");
    write_digits(&inp, "", 12);
    let model = bundle();
    let deg = tmp.path().join("deg");
    for k in ["0/2", "1/2"] {
        let o = cold_env(
            &[
                "degrade",
                "--model",
                s(&model),
                "--t",
                "10",
                "--shard",
                k,
                s(&inp),
                s(&deg),
            ],
            &[],
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    assert!(
        !deg.join("degradation.json").exists(),
        "no file written by two tasks"
    );
    for k in 0..2 {
        assert!(
            deg.join(format!("degradation.shard-{k}-of-2.json"))
                .is_file()
        );
    }
    let one = tmp.path().join("deg1");
    let o = cold(&[
        "degrade",
        "--model",
        s(&model),
        "--t",
        "10",
        s(&inp),
        s(&one),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let (a, b) = (files(&deg), files(&one));
    let pngs = |m: &BTreeMap<String, Vec<u8>>| {
        m.iter()
            .filter(|(k, _)| k.ends_with(".png"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(pngs(&a), pngs(&b));
    assert_eq!(pngs(&a).len(), 12);
    // One restore over the whole folder reads both sidecars: t comes from them, no --t.
    let out = tmp.path().join("out");
    let o = cold(&[
        "restore",
        "--model",
        s(&model),
        "--steps",
        "2",
        s(&deg),
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("12 written"), "{}", stderr(&o));
}

#[test]
fn generate_shards_draw_the_images_of_one_process() {
    let tmp = tempfile::tempdir().expect("tmp");
    let model = bundle();
    let gen_ = |out: &Path, extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            s(&model),
            "--count",
            "9",
            "--batch",
            "4",
        ];
        args.extend_from_slice(extra);
        args.push(s(out));
        cold_env(&args, &[])
    };
    let one = tmp.path().join("one");
    let o = gen_(&one, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let split = tmp.path().join("split");
    let o = gen_(&split, &["--shard", "1/2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !split.join("grid.png").exists(),
        "the first samples are not all there yet"
    );
    let o = cold(&["report", s(&split)]);
    assert_eq!(o.status.code(), Some(2), "half missing");
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 of 9 done, 5 missing"));
    let o = gen_(&split, &["--shard", "0/2"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("5 written"));
    assert_eq!(files(&split), files(&one), "the same samples and grid");
    let o = cold(&["report", s(&split)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
