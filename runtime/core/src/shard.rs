//! A task's share of a folder job, for schedulers that split work into indexed tasks (Slurm job
//! arrays, Kubernetes Indexed Jobs): `--shard K/N` (0-based), or the scheduler's environment.
//! An image belongs to shard `hash(its output's relative path) mod N`, so a share does not move
//! when files are added (as cargo-nextest's `--partition hash:`), and inputs that share an output
//! (`a.png`, `a.jpg`) land in the same task; a generated sample `i` belongs to shard `i mod N`.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::error::{Error, Result};
use crate::sidecar;

/// One task's share: index `index` of `count`, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
    /// `--shard`, or the environment variables it was read from.
    pub from: String,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shard {}/{} (from {})",
            self.index, self.count, self.from
        )
    }
}

fn invalid(why: String) -> Error {
    Error::InvalidArgument(why)
}

/// Parses `K/N` (0-based K < N).
pub fn parse(s: &str) -> Result<(usize, usize)> {
    let bad = || {
        invalid(format!(
            "--shard takes K/N with 0 <= K < N (e.g. 0/4 .. 3/4), not '{s}'"
        ))
    };
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n) = (
        k.trim().parse::<usize>().map_err(|_| bad())?,
        n.trim().parse::<usize>().map_err(|_| bad())?,
    );
    if n == 0 || k >= n {
        return Err(bad());
    }
    Ok((k, n))
}

fn var_usize(env: &dyn Fn(&str) -> Option<String>, name: &str) -> Result<Option<usize>> {
    match env(name) {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v.trim().parse::<usize>().map(Some).map_err(|_| {
            invalid(format!(
                "{name}={v} is not a task index or count: pass --shard K/N instead"
            ))
        }),
    }
}

/// The share of this task: an explicit `--shard K/N` always wins; else a Slurm array task
/// (`SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`, over `SLURM_ARRAY_TASK_STEP`, of
/// `SLURM_ARRAY_TASK_COUNT`; `--shard-count` overrides the count); else a Kubernetes Indexed Job
/// (`JOB_COMPLETION_INDEX`, of `--shard-count`, since Kubernetes gives no count); else the whole
/// job (`None`). `env` reads a variable (`std::env::var` in the binaries).
pub fn resolve(
    explicit: Option<(usize, usize)>,
    shard_count: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Shard>> {
    if let Some((index, count)) = explicit {
        if shard_count.is_some_and(|c| c != count) {
            return Err(invalid(format!(
                "--shard {index}/{count} and --shard-count {} disagree: pass one of them",
                shard_count.unwrap_or(0)
            )));
        }
        return Ok(Some(Shard {
            index,
            count,
            from: "--shard".into(),
        }));
    }
    if shard_count == Some(0) {
        return Err(invalid("--shard-count must be at least 1".into()));
    }
    let share = |index: usize, count: usize, from: String| {
        if index >= count {
            Err(invalid(format!(
                "{from} gives task index {index}, beyond the {count} tasks: pass --shard K/N \
                 (0 <= K < N) or a matching --shard-count"
            )))
        } else {
            Ok(Some(Shard { index, count, from }))
        }
    };
    if let Some(id) = var_usize(env, "SLURM_ARRAY_TASK_ID")? {
        let min = var_usize(env, "SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let step = var_usize(env, "SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
        let count = match shard_count {
            Some(c) => c,
            None => var_usize(env, "SLURM_ARRAY_TASK_COUNT")?.ok_or_else(|| {
                invalid(
                    "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: pass \
                     --shard-count N (the array's size) or --shard K/N"
                        .into(),
                )
            })?,
        };
        if id < min || (id - min) % step != 0 {
            return Err(invalid(format!(
                "SLURM_ARRAY_TASK_ID={id} is not on the array's grid (min {min}, step {step}): \
                 use a contiguous array such as --array=0-{} or pass --shard K/N",
                count.saturating_sub(1)
            )));
        }
        let from = if min > 0 || step > 1 {
            format!(
                "SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_STEP={step}"
            )
        } else {
            format!("SLURM_ARRAY_TASK_ID={id}")
        };
        let from = match shard_count {
            Some(_) => format!("{from}, --shard-count {count}"),
            None => format!("{from}, SLURM_ARRAY_TASK_COUNT={count}"),
        };
        return share((id - min) / step, count, from);
    }
    if let Some(index) = var_usize(env, "JOB_COMPLETION_INDEX")? {
        let count = shard_count.ok_or_else(|| {
            invalid(format!(
                "JOB_COMPLETION_INDEX={index} (a Kubernetes Indexed Job) gives no task count: \
                 pass --shard-count N, the Job's completions"
            ))
        })?;
        return share(
            index,
            count,
            format!("JOB_COMPLETION_INDEX={index}, --shard-count {count}"),
        );
    }
    if let Some(c) = shard_count {
        return Err(invalid(format!(
            "--shard-count {c} without a task index: no SLURM_ARRAY_TASK_ID or \
             JOB_COMPLETION_INDEX is set; pass --shard K/{c}"
        )));
    }
    Ok(None)
}

/// [`resolve`] from the process environment.
pub fn from_env(
    explicit: Option<(usize, usize)>,
    shard_count: Option<usize>,
) -> Result<Option<Shard>> {
    resolve(explicit, shard_count, &|k| std::env::var(k).ok())
}

/// The shard of the output at `rel` (relative to the folder; the extension is ignored, so
/// `a.png` and `a.jpg`, which share an output, share a shard) among `count`.
pub fn of_path(rel: &Path, count: usize) -> usize {
    let key = sidecar::key(&rel.with_extension(""));
    (atomic::hash_u64(key.as_bytes()) % count.max(1) as u64) as usize
}

impl Shard {
    /// Whether the image at `rel` is this task's.
    pub fn takes_path(&self, rel: &Path) -> bool {
        of_path(rel, self.count) == self.index
    }

    /// Whether generated sample `i` is this task's.
    pub fn takes_index(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    /// A file-name tag: `shard-K-of-N`.
    pub fn tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn parse_takes_k_of_n_and_refuses_out_of_range() {
        assert_eq!(parse("0/4").expect("ok"), (0, 4));
        assert_eq!(parse("3/4").expect("ok"), (3, 4));
        for bad in ["4/4", "1/0", "a/4", "2", "-1/4", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn explicit_wins_then_slurm_then_kubernetes() {
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("JOB_COMPLETION_INDEX", "1"),
        ]);
        let s = resolve(Some((0, 1)), None, &slurm)
            .expect("ok")
            .expect("some");
        assert_eq!((s.index, s.count, s.from.as_str()), (0, 1, "--shard"));
        let s = resolve(None, None, &slurm).expect("ok").expect("some");
        assert_eq!((s.index, s.count), (2, 4), "ids start at 5: {}", s.from);
        assert!(s.from.contains("SLURM_ARRAY_TASK_MIN=5"), "{}", s.from);
        // A stepped array (--array=0-6:2) is 4 tasks 0, 2, 4, 6.
        let stepped = env(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        let s = resolve(None, None, &stepped).expect("ok").expect("some");
        assert_eq!((s.index, s.count), (3, 4));
        let k8s = env(&[("JOB_COMPLETION_INDEX", "2")]);
        let s = resolve(None, Some(3), &k8s).expect("ok").expect("some");
        assert_eq!((s.index, s.count), (2, 3));
        let e = resolve(None, None, &k8s).expect_err("no count");
        assert!(e.to_string().contains("--shard-count"), "{e}");
        assert_eq!(resolve(None, None, &env(&[])).expect("ok"), None);
    }

    #[test]
    fn an_index_out_of_range_is_an_error() {
        let e = resolve(None, Some(2), &env(&[("JOB_COMPLETION_INDEX", "2")])).expect_err("range");
        assert!(e.to_string().contains("beyond the 2 tasks"), "{e}");
        let off_grid = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(resolve(None, None, &off_grid).is_err());
        let no_count = env(&[("SLURM_ARRAY_TASK_ID", "1")]);
        assert!(resolve(None, None, &no_count).is_err());
        assert!(resolve(None, Some(4), &env(&[])).is_err(), "a count alone");
        assert!(
            resolve(Some((1, 4)), Some(3), &env(&[])).is_err(),
            "disagree"
        );
    }

    #[test]
    fn shares_partition_the_paths_and_stay_put_when_files_are_added() {
        let paths: Vec<PathBuf> = (0..400)
            .map(|i| PathBuf::from(format!("d{}/{i}.png", i % 7)))
            .collect();
        let shards: Vec<Shard> = (0..4)
            .map(|index| Shard {
                index,
                count: 4,
                from: "test".into(),
            })
            .collect();
        let mut sizes = [0usize; 4];
        for p in &paths {
            let owners: Vec<usize> = shards
                .iter()
                .filter(|s| s.takes_path(p))
                .map(|s| s.index)
                .collect();
            assert_eq!(owners.len(), 1, "{}", p.display());
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| (60..=140).contains(&n)), "{sizes:?}");
        // A path's shard depends on the path alone, and not on its extension.
        assert_eq!(
            of_path(Path::new("d1/8.png"), 4),
            of_path(Path::new("d1/8.jpg"), 4)
        );
        let before: Vec<usize> = paths.iter().map(|p| of_path(p, 4)).collect();
        let again: Vec<usize> = paths.iter().map(|p| of_path(p, 4)).collect();
        assert_eq!(before, again);
        assert!(shards[1].takes_index(5) && !shards[1].takes_index(6));
    }
}
