//! `cold report OUT_DIR`: the task reports of an output folder merged, job by job, and what is
//! missing: for a folder job, every input under its input folder whose output is not there
//! (with the reason a task gave, or the task that never reported); for generate, every sample
//! of the job's count that is not there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{State, TaskReport};
use crate::error::Result;
use crate::folder;
use crate::shard;

/// One task of a job, as its report says.
#[derive(Clone, Debug, Serialize)]
pub struct TaskLine {
    pub file: PathBuf,
    /// `K/N`, or `all` for a task that did the whole job.
    pub share: String,
    pub host: String,
    pub pid: u32,
    pub state: State,
    pub planned: usize,
    pub written: usize,
    pub skipped: usize,
    pub failed: usize,
}

/// One item that has no output.
#[derive(Clone, Debug, Serialize)]
pub struct Missing {
    /// The input's relative path (folder jobs) or the sample's file name.
    pub item: String,
    /// The shard it belongs to, `K/N`, when the job was sharded.
    pub shard: Option<String>,
    pub reason: String,
}

/// One job in an output folder: its tasks, and what is missing.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub job: String,
    pub input: Option<PathBuf>,
    pub model: String,
    /// Tasks per job (`N`), when the job was sharded.
    pub shards: Option<usize>,
    pub tasks: Vec<TaskLine>,
    /// Shards of `0..N` without a report: never started, or their report was lost.
    pub shards_without_report: Vec<usize>,
    /// Items of the job (the input folder's images, or the generate count).
    pub items: usize,
    /// Items whose output is there.
    pub done: usize,
    pub missing: Vec<Missing>,
}

/// Reports that could not be read: the file and why.
pub type Unreadable = Vec<(PathBuf, String)>;

/// A job's key (kind, input folder, model) and its reports with their files.
type Jobs = BTreeMap<(String, Option<PathBuf>, String), Vec<(PathBuf, TaskReport)>>;

/// Merges the task reports under `out_dir/.cold/`, one [`Summary`] per job (kind, input folder,
/// model); unreadable reports are returned apart, with their reason.
pub fn summarise(out_dir: &Path) -> Result<(Vec<Summary>, Unreadable)> {
    let mut bad = Vec::new();
    let mut jobs = Jobs::new();
    for (p, r) in TaskReport::read_all(out_dir)? {
        match r {
            Ok(r) => jobs
                .entry((r.job.clone(), r.input.clone(), r.model.clone()))
                .or_default()
                .push((p, r)),
            Err(why) => bad.push((p, why)),
        }
    }
    let mut out = Vec::new();
    for ((job, input, model), reports) in jobs {
        out.push(summarise_job(out_dir, job, input, model, &reports)?);
    }
    Ok((out, bad))
}

fn share_of(r: &TaskReport) -> String {
    r.shard
        .as_ref()
        .map_or("all".into(), |s| format!("{}/{}", s.index, s.count))
}

/// A task's share of a split into several tasks; `None` for a task that did the whole job, as
/// `--shard 0/1` does.
fn split(r: &TaskReport) -> Option<&crate::shard::Shard> {
    r.shard.as_ref().filter(|s| s.count > 1)
}

fn summarise_job(
    out_dir: &Path,
    job: String,
    input: Option<PathBuf>,
    model: String,
    reports: &[(PathBuf, TaskReport)],
) -> Result<Summary> {
    let tasks: Vec<TaskLine> = reports
        .iter()
        .map(|(p, r)| TaskLine {
            file: p.clone(),
            share: share_of(r),
            host: r.host.clone(),
            pid: r.pid,
            state: r.state,
            planned: r.planned.len(),
            written: r.written.len(),
            skipped: r.skipped.len(),
            failed: r.failed.len(),
        })
        .collect();
    // The newest count, when tasks of several splits wrote here.
    let shards = reports
        .iter()
        .filter(|(_, r)| split(r).is_some())
        .max_by_key(|(_, r)| r.started)
        .and_then(|(_, r)| split(r))
        .map(|s| s.count);
    let whole = reports.iter().any(|(_, r)| split(r).is_none());
    let reported: BTreeSet<usize> = reports
        .iter()
        .filter_map(|(_, r)| split(r))
        .filter(|s| Some(s.count) == shards)
        .map(|s| s.index)
        .collect();
    let shards_without_report: Vec<usize> = match shards {
        Some(n) if !whole => (0..n).filter(|k| !reported.contains(k)).collect(),
        _ => Vec::new(),
    };
    // Why an item has no output: a task's failure, else the state of its shard's task.
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    for (_, r) in reports {
        for f in &r.failed {
            failures.insert(f.path.clone(), f.reason.clone());
        }
    }
    let state_of = |k: usize| {
        reports
            .iter()
            .filter(|(_, r)| {
                r.shard
                    .as_ref()
                    .is_some_and(|s| (s.index, Some(s.count)) == (k, shards))
            })
            .map(|(_, r)| r.state)
            .max_by_key(|s| matches!(s, State::Finished))
    };
    let reason = |item: &str, shard: Option<usize>| {
        if let Some(why) = failures.get(item) {
            return format!("failed: {why}");
        }
        match (shard, shard.and_then(state_of)) {
            (Some(k), None) => format!("shard {k} has no report: its task never started"),
            (_, Some(State::Running)) => {
                "not done: its task is still running, or was stopped before it finished".into()
            }
            _ => "not done: rerun the job (finished outputs are skipped)".into(),
        }
    };
    let shard_label = |k: usize| shards.map(|n| format!("{k}/{n}"));
    let (items, missing) = if job == "generate" {
        let count = reports
            .iter()
            .filter_map(|(_, r)| r.settings.get("count").and_then(|c| c.as_u64()))
            .max()
            .unwrap_or(0) as usize;
        let samples = out_dir.join("samples");
        let missing = (0..count)
            .filter_map(|i| {
                let name = format!("{i:05}.png");
                if samples.join(&name).is_file() {
                    return None;
                }
                let k = shards.map(|n| i % n);
                Some(Missing {
                    reason: reason(&name, k),
                    shard: k.and_then(shard_label),
                    item: name,
                })
            })
            .collect::<Vec<_>>();
        (count, missing)
    } else if let Some(dir) = input.as_ref().filter(|d| d.is_dir()) {
        // Every input of the folder, whichever task it was: those without outputs.
        let (todo, rep) = folder::plan(dir, out_dir, false)?;
        let missing = todo
            .iter()
            .map(|it| {
                let key = crate::sidecar::key(&it.rel);
                let k = shards.map(|n| shard::of_path(&it.rel, n));
                Missing {
                    reason: reason(&key, k),
                    shard: k.and_then(shard_label),
                    item: key,
                }
            })
            .collect::<Vec<_>>();
        (
            todo.len() + rep.skipped_existing + rep.failed.len(),
            missing,
        )
    } else {
        // The input folder is not here: what the reports planned and did not do.
        let mut planned = BTreeSet::new();
        let mut done = BTreeSet::new();
        for (_, r) in reports {
            planned.extend(r.planned.iter().cloned());
            done.extend(r.written.iter().chain(&r.skipped).cloned());
        }
        let missing = planned
            .iter()
            .filter(|k| !done.contains(*k))
            .map(|key| {
                let k = shards.map(|n| shard::of_path(Path::new(key), n));
                Missing {
                    reason: reason(key, k),
                    shard: k.and_then(shard_label),
                    item: key.clone(),
                }
            })
            .collect::<Vec<_>>();
        (planned.len(), missing)
    };
    Ok(Summary {
        job,
        input,
        model,
        shards,
        tasks,
        shards_without_report,
        done: items - missing.len().min(items),
        items,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::Shard;

    fn report(shard: Option<(usize, usize)>, started: u64) -> TaskReport {
        let shard = shard.map(|(index, count)| Shard {
            index,
            count,
            from: "--shard".into(),
        });
        let mut r = TaskReport::start("generate", None, "m", shard.as_ref());
        r.started = started;
        r.state = State::Finished;
        r.settings = serde_json::json!({ "count": 6 });
        r
    }

    fn summary_of(dir: &Path) -> Summary {
        let (mut jobs, bad) = summarise(dir).expect("summarise");
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(jobs.len(), 1);
        jobs.remove(0)
    }

    #[test]
    fn a_later_one_of_one_task_is_the_whole_job_not_a_new_split() {
        let dir = tempfile::tempdir().expect("tmp");
        let samples = dir.path().join("samples");
        std::fs::create_dir_all(&samples).expect("mkdir");
        for i in [0, 1, 2, 3, 5] {
            std::fs::write(samples.join(format!("{i:05}.png")), b"x").expect("w");
        }
        for k in 0..3 {
            report(Some((k, 3)), 100).write(dir.path()).expect("w");
        }
        // Started a second later than the split's tasks: before, its count (1) was the job's.
        report(Some((0, 1)), 101).write(dir.path()).expect("w");
        let s = summary_of(dir.path());
        assert_eq!(s.shards, Some(3));
        assert!(s.shards_without_report.is_empty());
        assert_eq!((s.items, s.done), (6, 5));
        assert_eq!(s.missing.len(), 1);
        assert_eq!(s.missing[0].item, "00004.png");
        assert_eq!(s.missing[0].shard.as_deref(), Some("1/3"));
        assert_eq!(s.tasks.len(), 4);
        assert!(s.tasks.iter().any(|t| t.share == "0/1"));

        // A split without its whole-job task: the shard that never reported is named.
        std::fs::remove_file(TaskReport::path(
            dir.path(),
            "generate",
            Some(&Shard {
                index: 0,
                count: 1,
                from: String::new(),
            }),
        ))
        .expect("rm");
        std::fs::remove_file(TaskReport::path(
            dir.path(),
            "generate",
            Some(&Shard {
                index: 2,
                count: 3,
                from: String::new(),
            }),
        ))
        .expect("rm");
        let s = summary_of(dir.path());
        assert_eq!(
            (s.shards, s.shards_without_report.clone()),
            (Some(3), vec![2])
        );
    }
}
