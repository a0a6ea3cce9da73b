//! A folder job's task report: `OUT_DIR/.cold/<job>[.shard-K-of-N].json`, written when the task
//! starts (state `running`) and when it ends (`finished`), so that many tasks of one job (Slurm
//! array tasks, Kubernetes Indexed Job pods) over one output folder can say what each did, and
//! `cold report OUT_DIR` what is missing. The folder is dot-named, so the outputs still mirror
//! the inputs file for file and no folder job takes a report for an image.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::files::{self, Versioned};
use crate::folder::Report;
use crate::shard::Shard;
use crate::sidecar;

mod summary;
pub use summary::{Missing, Summary, TaskLine, summarise};

/// The reports' folder inside an output folder.
pub const DIR: &str = ".cold";
const FORMAT: &str = "cold-diffusion-task-report";
const VERSION: u32 = 1;

impl Versioned for TaskReport {
    const WHAT: &'static str = "task report";
    const FORMAT: Option<&'static str> = Some(FORMAT);
    const VERSION: u32 = VERSION;
    const REMEDY: &'static str = "run the task again (it rewrites its report)";
}

/// Whether the task is still going (or was killed before it could say otherwise).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Finished,
}

/// One input that could not be done, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub path: String,
    pub reason: String,
}

/// What one task of a job planned and did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    pub format: String,
    pub version: u32,
    /// `restore`, `degrade` or `generate`.
    pub job: String,
    /// The input folder (absolute), for folder jobs.
    pub input: Option<PathBuf>,
    /// The model bundle's name.
    pub model: String,
    /// This task's share; `None` for a task that did the whole job.
    pub shard: Option<Shard>,
    pub host: String,
    pub pid: u32,
    pub state: State,
    /// Seconds since the Unix epoch.
    pub started: u64,
    pub finished: Option<u64>,
    /// Every item of this task's share: relative input paths (`/`-separated), or sample file names.
    pub planned: Vec<String>,
    /// Items this run wrote.
    pub written: Vec<String>,
    /// Items whose outputs were already there.
    pub skipped: Vec<String>,
    pub failed: Vec<Failure>,
    /// What else the job needs to resume identically (generate: count, seed, noise).
    #[serde(default)]
    pub settings: serde_json::Value,
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn host() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

fn keys(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| sidecar::key(p)).collect()
}

impl TaskReport {
    /// A report of a task that starts now.
    pub fn start(job: &str, input: Option<&Path>, model: &str, shard: Option<&Shard>) -> Self {
        TaskReport {
            format: FORMAT.into(),
            version: VERSION,
            job: job.into(),
            input: input.map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf())),
            model: model.into(),
            shard: shard.cloned(),
            host: host(),
            pid: std::process::id(),
            state: State::Running,
            started: now(),
            finished: None,
            planned: Vec::new(),
            written: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
            settings: serde_json::Value::Null,
        }
    }

    /// The report's path under `out_dir`.
    pub fn path(out_dir: &Path, job: &str, shard: Option<&Shard>) -> PathBuf {
        let name = match shard {
            Some(s) => format!("{job}.{}.json", s.tag()),
            None => format!("{job}.json"),
        };
        out_dir.join(DIR).join(name)
    }

    /// Writes the report atomically (creating `OUT_DIR/.cold/`).
    pub fn write(&self, out_dir: &Path) -> Result<()> {
        let p = Self::path(out_dir, &self.job, self.shard.as_ref());
        let dir = out_dir.join(DIR);
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        files::write(&p, self)
    }

    /// This task's share of a folder job: what [`crate::folder::plan_share`] listed.
    pub fn planned_folder(mut self, items: &[crate::folder::Item], report: &Report) -> Self {
        let mut all: Vec<PathBuf> = items.iter().map(|it| it.rel.clone()).collect();
        all.extend(report.skipped_items.iter().cloned());
        all.sort();
        self.planned = keys(&all);
        self
    }

    /// The finished report of a folder job, from its [`Report`].
    pub fn finish_folder(mut self, report: &Report) -> Self {
        self.written = keys(&report.written_items);
        self.skipped = keys(&report.skipped_items);
        self.failed = report
            .failed
            .iter()
            .map(|(p, why)| Failure {
                path: self
                    .input
                    .as_ref()
                    .and_then(|i| p.strip_prefix(i).ok())
                    .map_or_else(|| p.display().to_string(), sidecar::key),
                reason: why.clone(),
            })
            .collect();
        self.finish()
    }

    /// The report of a task that ends now.
    pub fn finish(mut self) -> Self {
        self.state = State::Finished;
        self.finished = Some(now());
        self
    }

    /// Every task report under `out_dir/.cold/`, with its path; unreadable ones as errors.
    pub fn read_all(
        out_dir: &Path,
    ) -> Result<Vec<(PathBuf, std::result::Result<TaskReport, String>)>> {
        let dir = out_dir.join(DIR);
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        let mut out = Vec::new();
        for e in rd {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let r = files::read::<TaskReport>(&p).map_err(|e| e.to_string());
            out.push((p, r));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::tests::{newer_is_refused, round_trip};

    #[test]
    fn reports_round_trip_and_are_named_by_job_and_shard() {
        let shard = Shard {
            index: 1,
            count: 4,
            from: "--shard".into(),
        };
        let mut r = TaskReport::start("restore", Some(Path::new("/in")), "m", Some(&shard));
        r.planned = vec!["a.png".into()];
        round_trip(&r);
        newer_is_refused(&r);
        let out = Path::new("/out");
        assert_eq!(
            TaskReport::path(out, "restore", Some(&shard)),
            Path::new("/out/.cold/restore.shard-1-of-4.json")
        );
        assert_eq!(
            TaskReport::path(out, "degrade", None),
            Path::new("/out/.cold/degrade.json")
        );
        let dir = tempfile::tempdir().expect("tmp");
        let report = Report {
            written_items: vec![PathBuf::from("s/a.png")],
            failed: vec![(PathBuf::from("/in/b.png"), "corrupt".into())],
            ..Report::default()
        };
        let done = r.finish_folder(&report);
        assert_eq!(done.state, State::Finished);
        assert_eq!(done.written, vec!["s/a.png".to_string()]);
        assert_eq!(done.failed[0].path, "b.png");
        done.write(dir.path()).expect("write");
        fs::write(dir.path().join(DIR).join("broken.json"), "{").expect("w");
        let all = TaskReport::read_all(dir.path()).expect("read");
        assert_eq!(all.len(), 2);
        assert!(
            all.iter()
                .any(|(_, r)| r.as_ref().is_ok_and(|r| *r == done))
        );
        assert!(all.iter().any(|(_, r)| r.is_err()));
    }
}
