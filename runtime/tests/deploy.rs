//! The deployment examples of README's "Many machines": the Kubernetes Indexed Job manifest
//! parses as one, and its command line, run once per completion index with the Job's environment
//! (`JOB_COMPLETION_INDEX`), restores every image exactly once, as one process would. (No
//! cluster runs here; the Slurm script runs under a real one-node cluster in tests/slurm/check.sh.)

use std::fs;
use std::process::Command;

mod common;
use common::{bundle, cold, root, stderr, write_digits};

#[test]
fn the_indexed_job_manifest_runs_its_command_once_per_index() {
    let path = root().join("runtime/deploy/kubernetes/restore-indexed-job.yaml");
    let text = fs::read_to_string(&path).expect("manifest");
    let job: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("YAML");
    assert_eq!(job["apiVersion"].as_str(), Some("batch/v1"));
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    let completions = spec["completions"].as_u64().expect("completions") as usize;
    assert!(spec["parallelism"].as_u64().is_some());
    let container = &spec["template"]["spec"]["containers"][0];
    let command: Vec<String> = container["command"]
        .as_sequence()
        .expect("command")
        .iter()
        .map(|v| v.as_str().expect("string").to_string())
        .collect();
    assert_eq!(command[0], "cold");
    let at = command
        .iter()
        .position(|a| a == "--shard-count")
        .expect("--shard-count");
    assert_eq!(
        command[at + 1],
        completions.to_string(),
        "the count is the Job's completions"
    );
    let mount = container["volumeMounts"][0]["mountPath"]
        .as_str()
        .expect("mount");

    // The command with the volume at a temporary folder and the model at the test bundle.
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    write_digits(&data, "in", 10);
    let model = bundle();
    let args: Vec<String> = command[1..]
        .iter()
        .map(|a| {
            if a.starts_with("/models/") {
                model.display().to_string()
            } else {
                a.replacen(mount, &data.display().to_string(), 1)
            }
        })
        .collect();
    let mut written = 0;
    for i in 0..completions {
        let o = Command::new(env!("CARGO_BIN_EXE_cold"))
            .args(&args)
            .args(["--steps", "2"])
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env("JOB_COMPLETION_INDEX", i.to_string())
            .output()
            .expect("cold");
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("JOB_COMPLETION_INDEX={i}")), "{err}");
        let line = err
            .lines()
            .find(|l| l.contains("restore: ") && l.contains(" written"))
            .expect("closing line");
        let n: usize = line
            .split("restore: ")
            .nth(1)
            .expect("n")
            .split(' ')
            .next()
            .expect("n")
            .parse()
            .expect("number");
        written += n;
    }
    assert_eq!(written, 10, "each image once");
    let one = tmp.path().join("one");
    let m = model.display().to_string();
    let inp = data.join("in").display().to_string();
    let o = cold(&[
        "restore",
        "--model",
        &m,
        "--threads",
        "1",
        "--steps",
        "2",
        &inp,
        one.to_str().expect("p"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for e in fs::read_dir(&one).expect("ls") {
        let e = e.expect("e");
        if e.path().is_file() {
            let other = data.join("out").join(e.file_name());
            assert_eq!(fs::read(e.path()).expect("a"), fs::read(&other).expect("b"));
        }
    }
    let o = cold(&["report", data.join("out").to_str().expect("p")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn the_slurm_script_is_valid_bash() {
    let script = root().join("runtime/deploy/slurm/restore.sbatch");
    let o = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = fs::read_to_string(&script).expect("script");
    assert!(text.contains("#SBATCH") && text.contains("restore --model"));
}
