//! `eval.json`, the report of `cold eval`: written by the runtime, read back by `cold-train
//! steps` (the steps curve) and by anyone comparing models. Typed both ways, so a renamed field
//! is an error where it is read, not a silent 0.

use serde::{Deserialize, Serialize};

use crate::files::Versioned;
use crate::metrics::Scores;

/// The report's format version.
pub const REPORT_VERSION: u32 = 1;

/// The report's file name in `cold eval --out DIR`.
pub const FILE: &str = "eval.json";

fn one() -> u32 {
    1
}

/// One point of the quality/speed curve of Algorithm 2 with K steps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepsRow {
    pub t: usize,
    pub steps: usize,
    #[serde(flatten)]
    pub scores: Scores,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    /// Restorations per second (the sampling loop only, this machine, this provider).
    pub images_per_second: f64,
}

/// One line of the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalRow {
    pub t: usize,
    pub method: String,
    #[serde(flatten)]
    pub scores: Scores,
    /// FID of this method's images against the originals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The file's format version ([`REPORT_VERSION`]; reports without it are version 1).
    #[serde(default = "one")]
    pub version: u32,
    pub model: String,
    pub dataset: String,
    pub images: usize,
    pub ep: String,
    /// `float`, `16-bit` or `8-bit`: how the degraded inputs reached the restorer.
    pub inputs: String,
    pub seconds: f64,
    pub rows: Vec<EvalRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps_curve: Vec<StepsRow>,
}

impl Versioned for EvalReport {
    const WHAT: &'static str = "evaluation report";
    const FORMAT: Option<&'static str> = None;
    const VERSION: u32 = REPORT_VERSION;
    const UNVERSIONED: Option<u32> = Some(1);
    const REMEDY: &'static str = "run `cold eval --out DIR` again";
}

impl EvalReport {
    /// The row of `method` (`degraded`, `direct`, `algorithm1`, `algorithm2`, `estimated`) at
    /// level `t`.
    pub fn row(&self, t: usize, method: &str) -> Option<&EvalRow> {
        self.rows.iter().find(|r| r.t == t && r.method == method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::{newer_is_refused, round_trip};

    fn report() -> EvalReport {
        let scores = |rmse, ssim| Scores {
            rmse,
            ssim,
            images: 500,
        };
        EvalReport {
            version: REPORT_VERSION,
            model: "mnist-blur".into(),
            dataset: "mnist".into(),
            images: 500,
            ep: "cpu".into(),
            inputs: "float".into(),
            seconds: 12.5,
            rows: vec![
                EvalRow {
                    t: 20,
                    method: "degraded".into(),
                    scores: scores(0.5, 0.25),
                    fid: None,
                },
                EvalRow {
                    t: 20,
                    method: "algorithm2".into(),
                    scores: scores(0.125, 0.75),
                    fid: Some(24.5),
                },
            ],
            steps_curve: vec![StepsRow {
                t: 20,
                steps: 1,
                scores: scores(0.25, 0.5),
                fid: Some(30.0),
                images_per_second: 100.0,
            }],
        }
    }

    #[test]
    fn the_report_round_trips_and_newer_versions_are_refused() {
        round_trip(&report());
        newer_is_refused(&report());
        assert_eq!(
            report().row(20, "algorithm2").and_then(|r| r.fid),
            Some(24.5)
        );
        assert!(report().row(10, "algorithm2").is_none());
    }

    #[test]
    fn a_renamed_score_is_an_error_not_a_zero() {
        let mut v = serde_json::to_value(report()).expect("json");
        let row = &mut v["rows"][1];
        let ssim = row["ssim"].take();
        row.as_object_mut().expect("row").remove("ssim");
        row["ssim_mean"] = ssim;
        let e = crate::files::from_value::<EvalReport>(v).expect_err("renamed");
        assert!(e.contains("ssim"), "{e}");
    }
}
