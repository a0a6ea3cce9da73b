#!/usr/bin/env bash
# Wall time of one restore job over 1,000 digits split into 1, 2 and 4 Slurm array tasks (and one
# plain process), from tests/slurm/check.sh's runs (REPEATS of them, median), into
# benches/results/cpu-box-slurm.json. Run on a quiet machine with the debug binaries built:
#   REPEATS=3 benches/slurm.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
repeats=${REPEATS:-3}
out=$root/benches/results/cpu-box-slurm.json
runs=$(mktemp -d)
for i in $(seq 1 "$repeats"); do
  WORK=$runs/$i "$root/tests/slurm/check.sh" 2>/dev/null
done
python3 - "$runs" "$repeats" "$out" "$(git -C "$root" rev-parse --short HEAD)" <<'PY'
import json, statistics, sys, datetime, os
runs, repeats, out, commit = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
times = {}
for i in range(1, repeats + 1):
    for line in open(os.path.join(runs, str(i), "times.txt")):
        label, secs = line.rsplit(" ", 1)
        times.setdefault(label.rstrip(":"), []).append(float(secs))
rows = []
for label, xs in times.items():
    what = label.split(", ")[1]
    tasks = 1 if what in ("1 process", "1 task") else int(what.split()[0])
    med = statistics.median(xs)
    rows.append({
        "machine": "cpu-box (2 cores)",
        "date": datetime.date.today().isoformat(),
        "what": "restore 1,000 MNIST digits (mnist-inpaint, t = 25, --steps 5)",
        "implementation": "cold " + ("(one process, --threads 1)" if what == "1 process"
                                     else f"under Slurm, sbatch --array of {tasks} task(s), --threads 1 each"),
        "model": "mnist-inpaint",
        "batch": 64,
        "tasks": tasks,
        "wall_seconds": round(med, 2),
        "wall_seconds_runs": xs,
        "images_per_second": round(1000 / med, 1),
        "commit": commit,
    })
rows.sort(key=lambda r: (r["tasks"], "process" not in r["implementation"]))
json.dump(rows, open(out, "w"), indent=2)
open(out, "a").write("\n")
for r in rows:
    print(f'{r["implementation"]}: {r["wall_seconds"]} s ({r["images_per_second"]} img/s) runs {r["wall_seconds_runs"]}')
PY
