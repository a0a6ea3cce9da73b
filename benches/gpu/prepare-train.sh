#!/usr/bin/env bash
# Prepares the GPU training checks (issue: Burn CUDA at PyTorch's speed) on the CPU box: builds
# `cold-train` with the cuda feature, and packs it with MNIST (the pinned download `cold-train fetch
# mnist` keeps in ~/.cache/cold-diffusion/mnist), the PyTorch peer driver and the paper's
# deblurring_diffusion_pytorch.py (from ORIG_DIR, never committed) into .devicework-train/ (ignored
# by git, named in the device run's `carry`; at most 64 MiB).
# Usage: benches/gpu/prepare-train.sh ORIG_DIR   then on the GPU machine:
#        benches/gpu/train-check.sh "$OUT"
set -euo pipefail
cd "$(dirname "$0")/../.."
orig=${1:?usage: benches/gpu/prepare-train.sh ORIG_DIR (folder with deblurring_diffusion_pytorch.py)}
shared=${SHARED:-../shared}
work=.devicework-train
rm -rf "$work" && mkdir -p "$work/orig" "$work/mnist"
CUDARC_CUDA_VERSION=13000 cargo build -q --release -p cold-trainer --features cuda
xz -9 -c target/release/cold-train > "$work/cold-train.xz"
./target/release/cold-train fetch mnist >/dev/null
cp "${XDG_CACHE_HOME:-$HOME/.cache}"/cold-diffusion/mnist/* "$work/mnist/"
cp "$orig/deblurring_diffusion_pytorch.py" "$work/orig/"
cp "$shared/peers/torch_original_bench.py" "$work/"
du -sh "$work"; ls -la "$work"
