#!/usr/bin/env bash
# The GPU restoration checks, one script (run on the GPU machine from the repository root, after
# benches/gpu/prepare.sh here): unpacks .devicework/, then for the paper, small and compact
# networks measures Algorithm 2 restorations (T = 20) on the CUDA execution provider at batch
# 64 / 256 / 1024 with each lever on its own (default, cuDNN exhaustive search, NHWC), the CPU
# provider for reference, and `cold eval` of the shipped model on CUDA against the CPU on the same
# digits. JSON results go to OUT_DIR.
#
# Usage: benches/gpu/run.sh OUT_DIR
# GPU_DRY_RUN=1 runs the same steps on the CPU provider with small batches (the check of this
# script on a machine without a GPU; its numbers are not GPU numbers).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: benches/gpu/run.sh OUT_DIR}
mkdir -p "$out"
work=.devicework
dry=${GPU_DRY_RUN:-}
if [ -n "$dry" ]; then
  cold=./target/release/cold; ep=cpu; batches=${BATCHES:-2,4}; bundles=$work/dry-bundles
  mkdir -p "$bundles"
  [ -d "$bundles/compact" ] || cargo run -q --release -p cold-trainer --example bench_bundle -- compact 28 "$bundles/compact" --zeros >/dev/null
  cp -r models/mnist-blur "$bundles/" 2>/dev/null || true
  models="compact"
else
  lib=$work/lib; mkdir -p "$lib"
  for f in libonnxruntime.so.1.31.1 libonnxruntime_providers_cuda.so; do
    [ -f "$lib/$f" ] || xz -dc "$work/$f.xz" > "$lib/$f"
  done
  cp "$work/libonnxruntime_providers_shared.so" "$lib/"
  ln -sf libonnxruntime.so.1.31.1 "$lib/libonnxruntime.so"
  nv=$(python3 -c "import nvidia, os; print(':'.join(os.path.join(p, d, 'lib') for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, 'lib'))))" 2>/dev/null || true)
  export LD_LIBRARY_PATH="$lib:${nv}:${LD_LIBRARY_PATH:-}"
  export ORT_DYLIB_PATH="$lib/libonnxruntime.so.1.31.1" CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
  xz -dc "$work/cold.xz" > "$work/cold" && chmod +x "$work/cold"
  tar -C "$work" -xJf "$work/bundles.tar.xz"
  cold=$work/cold; ep=cuda; batches=${BATCHES:-64,256,1024}; bundles=$work/bundles
  models="small paper compact"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.csv" || true
fi
run() { # name, extra args...
  local name=$1; shift
  echo "== $name" >&2
  "$cold" bench --ep "$ep" --batch "$batches" --warmup 1 --repeats 3 --json "$out/$name.json" "$@" \
    > "$out/$name.txt" 2> "$out/$name.log" || echo "FAILED $name (see $out/$name.log)" >&2
}
for m in $models; do
  run "restore-$m-default" --model "$bundles/$m"
  [ -n "$dry" ] && continue
  run "restore-$m-exhaustive" --model "$bundles/$m" --cudnn-search exhaustive
  run "restore-$m-nhwc" --model "$bundles/$m" --prefer-nhwc
done
# Providers side by side, one table (unavailable ones are listed as skipped).
"$cold" bench --model "$bundles/$(echo $models | cut -d' ' -f1)" --ep cpu,cuda,tensorrt --batch 64 \
  --warmup 1 --repeats 3 --json "$out/providers.json" > "$out/providers.txt" 2>&1 || true
# The same restorations on the GPU and the CPU: metrics of the shipped model on 1,000 test digits.
if [ -d "$bundles/mnist-blur" ]; then
  for e in $ep cpu; do
    "$cold" eval --model "$bundles/mnist-blur" --ep "$e" --data "${EVAL_DATA:-mnist}" --limit "${EVAL_LIMIT:-1000}" \
      --t 20 --out "$out/eval-$e" > "$out/eval-$e.txt" 2>&1 || echo "FAILED eval on $e" >&2
  done
fi
ls -la "$out" >&2
