//! Every typed file the repository ships (bundle manifests, training configs, run summaries,
//! evaluation reports, degraded folders' sidecars) reads as its type, and writing it back keeps
//! every field it had: a field the type does not know would otherwise be dropped silently.

use std::path::{Path, PathBuf};

use cold_core::bundle::Manifest;
use cold_core::files::{self, Versioned};
use cold_core::report::EvalReport;
use cold_core::sidecar::Sidecar;
use cold_core::training::{RunSummary, TrainConfig};
use serde_json::Value;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

/// Every key of `original` is in `written` with the same value (numbers to a relative 1e-7: the
/// files hold f32 values, which a JSON value widens to f64).
fn keeps(original: &Value, written: &Value, at: &str) -> Result<(), String> {
    match (original, written) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let w = b
                    .get(k)
                    .ok_or_else(|| format!("{at}.{k} is dropped when written back"))?;
                keeps(v, w, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .try_for_each(|(i, (v, w))| keeps(v, w, &format!("{at}[{i}]"))),
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            if (a - b).abs() <= 1e-7 * a.abs().max(1.0) {
                Ok(())
            } else {
                Err(format!("{at}: {a} written back as {b}"))
            }
        }
        (a, b) if a == b => Ok(()),
        (a, b) => Err(format!("{at}: {a} written back as {b}")),
    }
}

fn check<T: Versioned>(path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let typed: T = files::parse(&text)?;
    let written = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let original: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    keeps(&original, &written, "")?;
    let again: T = files::from_value(written.clone())?;
    let twice = serde_json::to_value(&again).map_err(|e| e.to_string())?;
    if twice != written {
        return Err("not stable across a second round trip".into());
    }
    Ok(())
}

#[test]
fn every_shipped_typed_file_reads_and_writes_back_whole() {
    let mut paths = Vec::new();
    walk(&models(), &mut paths);
    let mut counts = [0usize; 5];
    let mut failures = Vec::new();
    for p in &paths {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let r = if name == "manifest.json" {
            counts[0] += 1;
            check::<Manifest>(p)
        } else if name.starts_with("training-summary") {
            counts[1] += 1;
            check::<RunSummary>(p)
        } else if name.starts_with("training-config") || name.ends_with("-config.json") {
            counts[2] += 1;
            check::<TrainConfig>(p)
        } else if name == "eval.json" {
            counts[3] += 1;
            check::<EvalReport>(p)
        } else if name == "degradation.json" {
            counts[4] += 1;
            check::<Sidecar>(p)
        } else {
            continue;
        };
        if let Err(e) = r {
            failures.push(format!("{}: {e}", p.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every bundle's manifest, and files of every type, were seen.
    let bundles = std::fs::read_dir(models())
        .expect("models")
        .flatten()
        .filter(|e| e.path().join("manifest.json").is_file())
        .count();
    assert_eq!(counts[0], bundles);
    assert!(counts.iter().all(|&n| n > 0), "{counts:?}");
}
