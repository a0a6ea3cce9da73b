#!/usr/bin/env bash
# Training throughput on the CPU: `cold-train bench --synthetic SIDE` and the paper's own U-Net in
# PyTorch (benches/peer_torch_train.py) in alternating rounds on the same machine, same networks,
# same batch sizes, same thread count. Writes one JSON row per (implementation, model, batch) with
# the median over rounds to RESULTS (default benches/results/cpu-box-train.json, replaced) and
# prints a Markdown table.
#
# Usage: benches/train_cpu.sh ORIG_DIR [MODELS] [BATCHES] [ROUNDS] [RESULTS] [RAW_DIR]
#   ORIG_DIR: folder with deblurring_diffusion_pytorch.py from arpitbansal297/Cold-Diffusion-Models
#   (never committed). Needs Debian's python3-torch (apt-get install python3-torch python3-torchvision).
# Environment: MACHINE (default cpu-box), THREADS (default 2), STEPS (default 20), SIDE (default 28).
set -euo pipefail
cd "$(dirname "$0")/.."
orig=${1:?usage: benches/train_cpu.sh ORIG_DIR [MODELS] [BATCHES] [ROUNDS] [RESULTS] [RAW_DIR]}
models=${2:-compact,small}; batches=${3:-16,32}; rounds=${4:-3}
results=${5:-benches/results/${MACHINE:-cpu-box}-train.json}; raw=${6:-target/train_cpu}
threads=${THREADS:-2}; steps=${STEPS:-20}; side=${SIDE:-28}
mkdir -p "$raw" "$(dirname "$results")"
if [ -z "${SKIP_BUILD:-}" ]; then cargo build -q --release -p cold-trainer; fi
if ! .venv-torch/bin/python -c "import torch, einops" >/dev/null 2>&1; then
  /usr/bin/python3 -c "import torch" 2>/dev/null || {
    echo "benches/train_cpu.sh: Debian's python3-torch is missing: apt-get install python3-torch python3-torchvision" >&2; exit 1; }
  /usr/bin/python3 -m venv --system-site-packages .venv-torch
  .venv-torch/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r benches/requirements-torch.txt
fi
for r in $(seq 1 "$rounds"); do
  RAYON_NUM_THREADS=$threads ./target/release/cold-train bench --synthetic "$side" --model "$models" \
    --batch "$batches" --warmup 3 --steps "$steps" --json "$raw/cold_$r.json" >/dev/null 2>&1
  .venv-torch/bin/python benches/peer_torch_train.py "$orig" --threads "$threads" --model "$models" \
    --batch "$batches" --side "$side" --steps "$steps" > "$raw/torch_$r.jsonl"
  echo "round $r/$rounds done" >&2
done
python3 - "$raw" "$rounds" "$results" "${MACHINE:-cpu-box}" "$threads" <<'PY'
import datetime, json, statistics, sys
raw, rounds, results, machine, threads = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
runs = {}
for r in range(1, rounds + 1):
    for x in json.load(open(f"{raw}/cold_{r}.json")):
        runs.setdefault(("cold-train", x["model"], x["batch_size"]), []).append(x)
    for line in open(f"{raw}/torch_{r}.jsonl"):
        x = json.loads(line)
        runs.setdefault(("pytorch", x["model"], x["batch"]), []).append(x)
date = datetime.date.today().isoformat()
rows = []
for (impl, model, batch), xs in sorted(runs.items()):
    sps = [x["steps_per_second"] for x in xs]
    med = statistics.median(sps)
    rows.append(dict(
        machine=machine, date=date, what="train", implementation=impl,
        version=xs[0].get("version", "flex"), model=model, parameters=xs[0]["parameters"],
        batch=batch, image=xs[0]["image"], threads=threads,
        steps_per_second=round(med, 4), images_per_second=round(med * batch, 2),
        first_step_seconds=round(statistics.median(x["first_step_seconds"] for x in xs), 4),
        rounds=len(xs), steps_per_second_rounds=[round(v, 4) for v in sps],
        command="benches/train_cpu.sh"))
with open(results, "w") as f:
    json.dump(rows, f, indent=1)
    f.write("\n")
by = {(r["implementation"], r["model"], r["batch"]): r for r in rows}
print("| model | batch | cold-train steps/s (rounds) | PyTorch steps/s (rounds) | cold-train / PyTorch |")
print("|---|---|---|---|---|")
for (impl, model, batch), r in sorted(by.items()):
    if impl != "cold-train":
        continue
    p = by.get(("pytorch", model, batch))
    fmt = lambda x: f"{x['steps_per_second']:.2f} ({', '.join(f'{v:.2f}' for v in x['steps_per_second_rounds'])})"
    ratio = f"{r['steps_per_second'] / p['steps_per_second']:.2f}x" if p else "-"
    print(f"| {model} {r['parameters'] / 1e6:.2f}M | {batch} | {fmt(r)} | {fmt(p) if p else '-'} | {ratio} |")
PY
