#!/usr/bin/env bash
# The GPU training checks, one script (run on the GPU machine from the repository root, after
# benches/gpu/prepare-train.sh here; it builds nothing): 
#  1. `cold-train bench --backend cuda --synthetic`: small U-Net at batch 32 and 128 (28x28) and
#     the paper U-Net at batch 32 (32x32), steps/s and time to the first step, from process start;
#  2. the authors' PyTorch code on the same GPU (torch_original_bench.py), the same session;
#  3. a real run: `cold-train train --backend cuda` of the small model on MNIST for TRAIN_SECONDS
#     (default 300) with GPU memory sampled every 5 s (burn #4792 reports a leak), its run folder
#     kept without optimiser state so that `cold-train export` and `cold eval` can run on the CPU.
# JSON and logs go to OUT_DIR.
#
# Usage: benches/gpu/train-check.sh OUT_DIR
# GPU_DRY_RUN=1 runs the same steps on the CPU (flex backend, the tiny model, a few seconds each):
# the check of this script on a machine without a GPU; its numbers are not GPU numbers.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: benches/gpu/train-check.sh OUT_DIR}
mkdir -p "$out"
work=.devicework-train
if [ -n "${GPU_DRY_RUN:-}" ]; then
  train=./target/release/cold-train; backend=flex; small=tiny; paper=tiny; secs=${TRAIN_SECONDS:-10}
  steps=3; data=mnist
else
  xz -dc "$work/cold-train.xz" > "$work/cold-train" && chmod +x "$work/cold-train"
  export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
  train=$work/cold-train; backend=cuda; small=small; paper=paper; secs=${TRAIN_SECONDS:-300}
  steps=20; data=mnist:$work/mnist
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" || true
fi
bench() { # name, model, batch, side
  local t0; t0=$(date +%s.%N)
  echo "== bench $1" >&2
  "$train" bench --backend "$backend" --model "$2" --batch "$3" --synthetic "$4" --warmup 2 \
    --steps "$steps" --json "$out/bench-$1.json" > "$out/bench-$1.txt" 2> "$out/bench-$1.log" \
    || echo "FAILED bench $1 (see $out/bench-$1.log)" >&2
  python3 -c "import sys,time; print(round(time.time()-float(sys.argv[1]),2))" "$t0" > "$out/bench-$1.wall_seconds"
}
bench small-b32 "$small" 32 28
bench small-b128 "$small" 128 28
bench paper-b32 "$paper" 32 32
if [ -z "${GPU_DRY_RUN:-}" ] && [ -f "$work/torch_original_bench.py" ]; then
  echo "== pytorch" >&2
  python3 "$work/torch_original_bench.py" "$work/orig" --device cuda > "$out/pytorch.jsonl" 2> "$out/pytorch.log" \
    || echo "FAILED pytorch (see $out/pytorch.log)" >&2
fi
echo "== real run ($secs s)" >&2
( while true; do
    if command -v nvidia-smi >/dev/null; then
      nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader >> "$out/gpu-memory.csv" 2>/dev/null || true
    else
      ps -o rss= -C cold-train >> "$out/cpu-rss-kb.txt" 2>/dev/null || true
    fi
    sleep 5
  done ) & mon=$!
"$train" train --backend "$backend" --dataset "$data" --preset mnist --model "$small" --batch 32 --lr 3e-4 \
  --steps 1000000 --max-seconds "$secs" --sample-every 1000 --checkpoint-every 1000000 \
  --out "$out/run-$backend" > "$out/run.json" 2> "$out/run.log" || echo "FAILED real run (see $out/run.log)" >&2
kill "$mon" 2>/dev/null || true
# Keep the EMA weights for export here; drop what only resuming needs.
find "$out/run-$backend/checkpoints" \( -name optim.mpk -o -name model.mpk \) -delete 2>/dev/null || true
echo "train-check: results in $out" >&2
