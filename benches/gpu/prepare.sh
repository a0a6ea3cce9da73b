#!/usr/bin/env bash
# Prepares the GPU restoration checks (issue: CUDA EP throughput) on the CPU box: builds `cold` with
# the cuda and tensorrt features, writes zero-weight bundles of the paper, small and compact
# networks (speed does not depend on the values; zeros compress to almost nothing), and packs
# everything with ONNX Runtime's CUDA build from ../shared/gpu into .devicework/ (ignored by git,
# named in the device run's `carry`; at most 64 MiB).
# Usage: benches/gpu/prepare.sh            then on the GPU machine: benches/gpu/run.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/../.."
work=.devicework
shared=${SHARED:-../shared}
rm -rf "$work" && mkdir -p "$work/bundles"
CUDARC_CUDA_VERSION=13000 cargo build -q --release -p cold-runtime --features cuda,tensorrt
cargo build -q --release -p cold-trainer --example bench_bundle
for spec in "paper 32" "small 32" "compact 28"; do
  set -- $spec
  ./target/release/examples/bench_bundle "$1" "$2" "$work/bundles/$1" --zeros >/dev/null
done
cp -r models/mnist-blur "$work/bundles/mnist-blur"
rm -rf "$work/bundles/mnist-blur/examples"
tar -C "$work" -cJf "$work/bundles.tar.xz" bundles && rm -rf "$work/bundles"
xz -9 -c target/release/cold > "$work/cold.xz"
cp "$shared"/gpu/ort-cuda-sm90/* "$work/"
cp "$shared"/peers/torch_original_bench.py "$work/" 2>/dev/null || true
du -sh "$work"; ls -la "$work"
