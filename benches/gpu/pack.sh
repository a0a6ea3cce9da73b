#!/usr/bin/env bash
# Fills .devicework/PHASE/ (ignored by git) with what benches/gpu/device.sh PHASE needs on the GPU
# machine, and measures what the device call will carry against its 64 MiB limit.
#
# Usage: benches/gpu/pack.sh restore|train ORIG_DIR
#   ORIG_DIR: the folder holding the authors' deblurring_diffusion_pytorch.py (never committed:
#   `fetch` github:arpitbansal297/Cold-Diffusion-Models, then `git show HEAD:deblurring-diffusion-pytorch/
#   deblurring_diffusion_pytorch/deblurring_diffusion_pytorch.py`).
#   restore: `cold` built with cuda,tensorrt (stripped, xz), zero-weight compact/small (28x28) and
#     paper (32x32) bundles (filled with random weights there), ONNX Runtime's CUDA build from
#     ../shared/gpu (~57 MiB: the bulk of the carry).
#   train: `cold-train` built with cuda (stripped, xz) and MNIST gzipped (`cold-train fetch mnist`);
#     with CUBECL_CACHE=FILE.tar.gz, an earlier lease's cubecl kernel cache (see below).
# The working tree travels too: move models/ (42 MB) out of it for the call, e.g.
#   mv models ../models.away && <run device.sh> ; mv ../models.away models
# This script fails when tree (less models/) + .devicework/PHASE exceeds 64 MiB; carry only
# .devicework/PHASE (the other phase's folder is ignored by git and does not travel unless named).
set -euo pipefail
cd "$(dirname "$0")/../.."
phase=${1:?usage: benches/gpu/pack.sh restore|train ORIG_DIR}
orig=${2:?usage: benches/gpu/pack.sh restore|train ORIG_DIR}
shared=${SHARED:-../shared}
work=.devicework/$phase
[ -f "$orig/deblurring_diffusion_pytorch.py" ] || { echo "pack.sh: no deblurring_diffusion_pytorch.py in $orig" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/orig"
cp "$orig/deblurring_diffusion_pytorch.py" "$work/orig/"
export CUDARC_CUDA_VERSION=13000
case "$phase" in
  restore)
    cargo build -q --release -p cold-runtime --bin cold --features cuda,tensorrt
    cargo build -q --release -p cold-trainer --example bench_bundle
    strip -o "$work/cold" target/release/cold && xz -9 -T2 "$work/cold"
    mkdir -p "$work/bundles"
    for spec in "compact 28" "small 28" "paper 32"; do
      set -- $spec
      target/release/examples/bench_bundle "$1" "$2" "$work/bundles/$1" --zeros > /dev/null
    done
    tar -C "$work" -cJf "$work/bundles.tar.xz" bundles && rm -rf "$work/bundles"
    cp "$shared"/gpu/ort-cuda-sm90/* "$work/"
    ;;
  train)
    cargo build -q --release -p cold-trainer --bin cold-train --features cuda
    strip -o "$work/cold-train" target/release/cold-train && xz -9 -T2 "$work/cold-train"
    mnist=$(target/release/cold-train fetch mnist 2> /dev/null | tail -1)
    [ -d "$mnist" ] || mnist=${XDG_CACHE_HOME:-$HOME/.cache}/cold-diffusion/mnist
    mkdir -p "$work/mnist"
    for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
      gzip -9 -c "$mnist/$f" > "$work/mnist/$f.gz"
    done
    # A cubecl kernel cache from an earlier lease (bring/cubecl-cache of its bring-back.tar.gz,
    # packed with `tar -C bring -czf cubecl-cache.tar.gz cubecl-cache`) makes the first step warm.
    if [ -n "${CUBECL_CACHE:-}" ]; then cp "$CUBECL_CACHE" "$work/cubecl-cache.tar.gz"; fi
    ;;
  *) echo "pack.sh: PHASE is restore or train" >&2; exit 2 ;;
esac
tree=$(git ls-files -z --cached --others --exclude-standard | grep -zv '^models/' | xargs -0 -r du -cb 2> /dev/null | tail -1 | cut -f1)
dw=$(du -sb "$work" | cut -f1)
total=$((tree + dw))
ls -la "$work"
echo "pack.sh: carry for $phase: tree without models/ $((tree / 1024)) KiB + .devicework $((dw / 1024)) KiB = $((total / 1048576)) MiB of 64"
[ "$total" -le $((64 * 1048576)) ] || { echo "pack.sh: over 64 MiB: trim before the call" >&2; exit 1; }
