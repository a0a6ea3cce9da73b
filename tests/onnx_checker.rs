//! The exported graphs are valid ONNX for independent tools: `onnx.checker.check_model` with
//! `full_check=True` and strict shape inference pass on every graph of a bundle.
//! Python comes from `.venv` (made by tests/run.sh) or `python3`; only a missing Python skips
//! this test, with a message. A Python without the `onnx` package fails it.

use std::path::PathBuf;
use std::process::Command;

use cold_core::training::TrainingSummary;
use cold_testkit::{tiny_model_for, workspace_root};
use cold_trainer::export;

fn python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("COLD_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let venv = workspace_root().join(".venv/bin/python");
    if venv.is_file() {
        return Some(venv);
    }
    Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3".into())
}

const CHECK: &str = r#"
import sys, onnx
from onnx import shape_inference
for path in sys.argv[1:]:
    onnx.checker.check_model(path, full_check=True)
    model = onnx.load(path, load_external_data=False)
    inferred = shape_inference.infer_shapes(model, check_type=True, strict_mode=True, data_prop=True)
    outs = {o.name: [d.dim_value or d.dim_param for d in o.type.tensor_type.shape.dim] for o in inferred.graph.output}
    print(path.rsplit("/", 1)[-1], "ok", outs)
"#;

#[test]
fn exported_graphs_pass_onnx_checker_and_shape_inference() {
    let Some(py) = python() else {
        eprintln!(
            "SKIPPED exported_graphs_pass_onnx_checker_and_shape_inference: no Python found (install python3 and run tests/run.sh)"
        );
        return;
    };
    let probe = Command::new(&py)
        .args(["-c", "import onnx; print(onnx.__version__)"])
        .output()
        .expect("run python");
    assert!(
        probe.status.success(),
        "{} cannot import onnx: run tests/run.sh (it installs tests/requirements.txt into .venv)\n{}",
        py.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let tmp = tempfile::tempdir().expect("tmp");
    for preset in [
        "mnist",
        "mnist-inpaint",
        "mnist-inpaint-centred",
        "mnist-superres",
        "mnist-superres-clipped",
        "mnist-snow",
        "mnist-noise",
    ] {
        let (cfg, net) = tiny_model_for(preset, 5);
        let dir = tmp.path().join(preset);
        export::export_model(&net, &cfg, TrainingSummary::default(), None, &dir, false)
            .expect("export");
        check(&py, &dir);
    }
    let shipped = workspace_root().join("models/mnist-blur");
    assert!(
        shipped.join("manifest.json").is_file(),
        "the default model bundle models/mnist-blur is missing"
    );
    check(&py, &shipped);
}

fn check(py: &std::path::Path, b: &std::path::Path) {
    let graphs: Vec<String> = ["restorer.onnx", "degradation.onnx", "step.onnx"]
        .iter()
        .map(|g| b.join(g).display().to_string())
        .collect();
    let out = Command::new(py)
        .arg("-c")
        .arg(CHECK)
        .args(&graphs)
        .output()
        .expect("run checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "onnx checker failed on {}:\n{stdout}\n{}",
        b.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("step.onnx ok"), "{stdout}");
    // Graphs of format version 2 take any image size: the outputs keep the inputs' symbols.
    let version = cold_core::bundle::Bundle::open(b, false)
        .expect("bundle")
        .manifest
        .format_version;
    let want = if version >= 2 {
        "'x_next': ['batch', 1, 'height', 'width']"
    } else {
        "'x_next': ['batch', 1, 28, 28]"
    };
    assert!(
        stdout.contains(want),
        "shape inference must give the image outputs their shapes ({want}):\n{stdout}"
    );
    eprintln!("{stdout}");
}
