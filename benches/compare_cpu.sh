#!/usr/bin/env bash
# `cold bench` and its Python peer (benches/peer_ort.py: the same bundle through Python onnxruntime,
# with a numpy Algorithm 2 loop, and with the fused step graph) measured in alternating rounds on
# the same machine, so that machine noise hits all three alike. Prints a Markdown table of the
# median over rounds of each round's median, and writes the raw results to OUT_DIR.
# Usage: benches/compare_cpu.sh [MODEL] [BATCHES] [ROUNDS] [OUT_DIR] [THREADS (0 = all cores)]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/mnist-blur}; batches=${2:-1,16,64}; rounds=${3:-5}; out=${4:-target/compare_cpu}; threads=${5:-0}
mkdir -p "$out"
cargo build -q --release -p cold-runtime
benches/peer.sh --help >/dev/null   # sets up .venv-peer
for r in $(seq 1 "$rounds"); do
  ./target/release/cold bench --model "$model" --ep cpu --batch "$batches" --warmup 2 --repeats 9 \
    --threads "$threads" --json "$out/cold_$r.json" >/dev/null 2>&1
  .venv-peer/bin/python benches/peer_ort.py --model "$model" --batch "$batches" --warmup 2 --repeats 9 \
    --threads "$threads" --json "$out/peer_numpy_$r.json" >/dev/null
  .venv-peer/bin/python benches/peer_ort.py --model "$model" --batch "$batches" --warmup 2 --repeats 9 --fused \
    --threads "$threads" --json "$out/peer_fused_$r.json" >/dev/null
  echo "round $r/$rounds done" >&2
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
for name in ["cold", "peer_numpy", "peer_fused"]:
    for r in range(1, rounds + 1):
        for x in json.load(open(f"{out}/{name}_{r}.json")):
            rows.setdefault((name, x["batch"]), []).append(x["median_seconds"])
batches = sorted({b for _, b in rows})
label = {"cold": "cold (Rust, step.onnx)", "peer_numpy": "Python onnxruntime + numpy loop (R, D)",
         "peer_fused": "Python onnxruntime + step.onnx"}
print("| implementation | " + " | ".join(f"batch {b}: img/s (median s)" for b in batches) + " |")
print("|---|" + "---|" * len(batches))
for name in ["cold", "peer_numpy", "peer_fused"]:
    cells = []
    for b in batches:
        med = statistics.median(rows[(name, b)])
        cells.append(f"{b / med:.1f} ({med:.4f}, rounds {min(rows[(name, b)]):.4f}-{max(rows[(name, b)]):.4f})")
    print(f"| {label[name]} | " + " | ".join(cells) + " |")
for b in batches:
    c = statistics.median(rows[("cold", b)])
    print(f"batch {b}: cold is {statistics.median(rows[('peer_numpy', b)]) / c:.2f}x the numpy-loop peer, "
          f"{statistics.median(rows[('peer_fused', b)]) / c:.2f}x the fused-graph peer")
PY
