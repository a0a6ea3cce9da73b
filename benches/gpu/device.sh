#!/usr/bin/env bash
# The GPU measurements of issue 31, one script per lease, run from the repository root on the
# device machine after benches/gpu/pack.sh PHASE filled .devicework/PHASE/ here (the call's `carry`:
# one folder per phase, so the second call of a lease needs no packing between the two).
#
# Usage: benches/gpu/device.sh PHASE OUT [--dry-run]        PHASE: restore | train
#
# Writes only: OUT/results.jsonl (one row appended as soon as it is measured, issue 31's schema,
# see benches/gpu/rows.py), OUT/log.txt (everything), OUT/env.txt (nvidia-smi, CUDA, cuDNN, torch),
# OUT/gpu-mem.csv (sampled every second) and OUT/bring-back.tar.gz (the train phase's run folder
# for export and evaluation on the CPU; the restore phase's raw JSON).
#   restore: compact, small and paper networks (random weights, benches/gpu/fill_weights.py) at
#     batch 64 / 256 / 1024, Algorithm 2 from T, on the CUDA provider: default, cuDNN exhaustive
#     search, NHWC, both; then the authors' PyTorch sampling (benches/gpu/torch_peer.py).
#   train: `cold-train bench --backend cuda`, small at batch 32 and 128 and paper at 32, each a
#     fresh process timed from its start; the authors' PyTorch training likewise; a real MNIST run
#     of TRAIN_SECONDS (90) with GPU memory sampled, its run folder brought back.
# Back here: `tar xzf bring-back.tar.gz; cold-train export --run bring/run --out B --mixture-components 0`
# (the mixture needs the training images: `cold-train mixture --model B --dataset mnist`), then
# `cold eval --model B`.
# Every step runs under `timeout`; the phase stops starting steps after PHASE_BUDGET seconds (280).
# Missing files, no GPU, or a CUDA provider / backend that does not start fail the run loudly.
# --dry-run: the same steps on the CPU (ONNX Runtime's CPU provider, Burn's flex backend), tiny
#   sizes, binaries from COLD_BIN_DIR (target/release); under a minute, for CI. The peer runs only
#   where torch and the authors' file (.devicework/PHASE/orig) are present; otherwise it says skipped.
set -uo pipefail
cd "$(dirname "$0")/../.."
phase=${1:?usage: benches/gpu/device.sh restore|train OUT [--dry-run]}
out=${2:?usage: benches/gpu/device.sh restore|train OUT [--dry-run]}
dry=${3:-}
case "$phase" in restore | train) ;; *) echo "device.sh: PHASE is restore or train, not $phase" >&2; exit 2 ;; esac
[ -z "$dry" ] || [ "$dry" = --dry-run ] || { echo "device.sh: third argument must be --dry-run" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec > >(tee -a "$out/log.txt") 2>&1
work=$PWD/.devicework/$phase
scratch=$(mktemp -d)
results=$out/results.jsonl
started=$(date +%s)
budget=${PHASE_BUDGET:-280}
gpu=h200
die() { echo "device.sh: FAILED: $*"; pack; exit 1; }
pack() { tar -C "$scratch" -czf "$out/bring-back.tar.gz" bring 2>/dev/null || true; }
left() { [ $(($(date +%s) - started)) -lt "$budget" ] || { echo "device.sh: phase budget ($budget s) spent: skipping $1"; return 1; }; }
need() { for f in "$@"; do [ -e "$f" ] || die "missing $f (run benches/gpu/pack.sh $phase here first)"; done; }
mkdir -p "$scratch/bring"
echo "device.sh $phase ${dry:-} $(date -u +%FT%TZ)"

# What this machine is, before anything is spent.
{
  date -u +%FT%TZ; uname -a; nproc
  if [ -z "$dry" ]; then
    nvidia-smi || true
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
    /usr/local/cuda/bin/nvcc --version 2>/dev/null | tail -2 || true
  fi
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())" 2>&1 || true
} > "$out/env.txt"

if [ -n "$dry" ]; then
  bin=$(realpath -m "${COLD_BIN_DIR:-target/release}") # absolute: cold-train runs from $scratch
  ep=${DRY_EP:-cpu} backend=flex # DRY_EP=cuda on a CPU-only build checks that a missing provider fails
  need "$bin/cold" "$bin/cold-train" "$bin/examples/bench_bundle"
  cold=$bin/cold train=$bin/cold-train
  echo "unix_seconds,cold_processes_rss_kb" > "$out/gpu-mem.csv"
  ( while sleep 1; do
      echo "$(date +%s),$(ps -eo rss=,comm= | awk '$2 ~ /^cold/ {s += $1} END {print s + 0}')"
    done ) >> "$out/gpu-mem.csv" & sampler=$!
else
  command -v nvidia-smi > /dev/null && nvidia-smi -L || die "no GPU here (nvidia-smi -L failed)"
  ep=cuda backend=cuda gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z ' 'a-z-')
  case "$gpu" in *h200*) gpu=h200 ;; *h100*) gpu=h100 ;; esac
  export CUDA_PATH=${CUDA_PATH:-/usr/local/cuda}
  nvidia-smi --query-gpu=timestamp,memory.used,utilization.gpu --format=csv -l 1 > "$out/gpu-mem.csv" & sampler=$!
fi
trap 'kill $sampler 2>/dev/null; rm -rf "$scratch"' EXIT
machine=$gpu
[ -n "$dry" ] && machine=cpu-dry-run # never an "h200" row from the CPU

peer() { # PHASE MODEL BATCHES SECONDS: one process of the authors' code, its rows appended
  local f=$scratch/bring/torch-$1-$2-b${3//,/-}.jsonl
  echo "== torch $1 $2 batch $3"
  timeout "$4" python3 benches/gpu/torch_peer.py "$work/orig" "$1" --device "$ep" --models "$2" --batches "$3" \
    > "$f" || echo "device.sh: FAILED torch $1 $2 $3 (rc $?)"
  python3 benches/gpu/rows.py torch "$f" "$results" --machine "$machine" --model "$2" || true
}

peer_ok() {
  if [ -f "$work/orig/deblurring_diffusion_pytorch.py" ] && python3 -c "import torch, einops" 2> /dev/null; then
    return 0
  fi
  echo "device.sh: peer skipped: needs torch, einops and .devicework/$phase/orig/deblurring_diffusion_pytorch.py"
  return 1
}

if [ "$phase" = restore ]; then
  if [ -n "$dry" ]; then
    batches=2 models="compact" reps=1 T=${DRY_T:-4}
    for m in $models; do "$bin/examples/bench_bundle" "$m" 28 "$scratch/bundles/$m" --zeros > /dev/null || die "bench_bundle $m"; done
  else
    batches=64,256,1024 models="compact small paper" reps=3 T=
    need "$work/cold.xz" "$work/bundles.tar.xz" "$work/libonnxruntime.so.1.31.1.xz" \
      "$work/libonnxruntime_providers_cuda.so.xz" "$work/libonnxruntime_providers_shared.so"
    lib=$scratch/lib && mkdir -p "$lib"
    for f in libonnxruntime.so.1.31.1 libonnxruntime_providers_cuda.so; do xz -dc "$work/$f.xz" > "$lib/$f" || die "unpack $f"; done
    cp "$work/libonnxruntime_providers_shared.so" "$lib/" && ln -sf libonnxruntime.so.1.31.1 "$lib/libonnxruntime.so"
    nv=$(python3 -c "import nvidia, os; print(':'.join(os.path.join(p, d, 'lib') for p in nvidia.__path__ for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, 'lib'))))" 2> /dev/null || true)
    export LD_LIBRARY_PATH="$lib:$nv:${LD_LIBRARY_PATH:-}" ORT_DYLIB_PATH=$lib/libonnxruntime.so.1.31.1
    xz -dc "$work/cold.xz" > "$scratch/cold" && chmod +x "$scratch/cold" || die "unpack cold"
    cold=$scratch/cold
    tar -C "$scratch" -xJf "$work/bundles.tar.xz" || die "unpack bundles"
  fi
  for m in $models; do timeout 120 python3 benches/gpu/fill_weights.py "$scratch/bundles/$m" || die "fill_weights $m"; done
  # The provider must start: a "skipped" row here ends the run.
  timeout 120 "$cold" bench --model "$scratch/bundles/compact" --ep "$ep" --batch 1 --warmup 0 --repeats 1 \
    --json "$scratch/check.json" > /dev/null || die "cold bench on $ep"
  python3 benches/gpu/rows.py cold-restore "$scratch/check.json" "$scratch/check.jsonl" --machine "$machine" \
    --model compact > /dev/null || die "the $ep execution provider did not start (see above)"
  # Every model with the provider's defaults first, then the reference, then each lever alone and
  # combined, so that a phase cut short by its budget still has both sides of the comparison.
  levers=("graph:--cuda-graph" "nosync:--no-sync" "exhaustive:--cudnn-search exhaustive" "nhwc:--prefer-nhwc"
    "graph+exhaustive:--cuda-graph --cudnn-search exhaustive" "exhaustive+nhwc:--cudnn-search exhaustive --prefer-nhwc")
  [ -n "$dry" ] && levers=("nhwc:--prefer-nhwc")
  # LEVERS="name:flags;name:flags" replaces the list (a second call in the same session); PEER=0
  # leaves the reference out of such a call.
  [ -n "${LEVERS:-}" ] && IFS=';' read -ra levers <<< "$LEVERS"
  restore_one() { # MODEL LEVER FLAGS...
    local m=$1 name=$2 warm=1
    shift 2
    case "$name" in *graph*) warm=2 ;; esac # a step's graph is captured on its second run
    left "restore $m $name" || return 1
    echo "== restore $m $name"
    local j=$scratch/bring/restore-$m-$name.json
    if timeout 150 "$cold" bench --model "$scratch/bundles/$m" --ep "$ep" --batch "$batches" ${T:+--t $T} \
      --warmup "$warm" --repeats "$reps" --json "$j" "$@"; then
      python3 benches/gpu/rows.py cold-restore "$j" "$results" --machine "$machine" --model "$m" --lever "$name" ||
        echo "device.sh: FAILED rows of restore $m $name"
    else
      echo "device.sh: FAILED restore $m $name (rc $?)"
      # rows measured before a time limit are kept (cold bench rewrites its JSON after each batch)
      [ -s "$j" ] && python3 benches/gpu/rows.py cold-restore "$j" "$results" --machine "$machine" --model "$m" \
        --lever "$name" --allow-skipped
    fi
    return 0
  }
  for m in $models; do restore_one "$m" default || break; done
  if [ "${PEER:-1}" != 0 ] && left "the PyTorch reference" && peer_ok; then
    for m in $models; do peer restore "$m" "$batches" 200; done
  fi
  for lv in "${levers[@]}"; do
    name=${lv%%:*} flags=${lv#*:}
    for m in $models; do
      # shellcheck disable=SC2086
      restore_one "$m" "$name" $flags || break 2
    done
  done
else
  if [ -n "$dry" ]; then
    configs=("tiny:2:28" "tiny:4:28") steps=2 secs=${TRAIN_SECONDS:-8}
    mkdir -p "$scratch/mnist"
    for k in images-idx3-ubyte labels-idx1-ubyte; do
      for s in train t10k; do ln -s "$PWD/tests/fixtures/mnist/t10k-$k.gz" "$scratch/mnist/$s-$k.gz"; done
    done
    data=$scratch/mnist
  else
    configs=("small:32:28" "small:128:28" "paper:32:32") steps=20 secs=${TRAIN_SECONDS:-90}
    need "$work/cold-train.xz" "$work/mnist/train-images-idx3-ubyte.gz" "$work/mnist/train-labels-idx1-ubyte.gz" \
      "$work/mnist/t10k-images-idx3-ubyte.gz" "$work/mnist/t10k-labels-idx1-ubyte.gz"
    xz -dc "$work/cold-train.xz" > "$scratch/cold-train" && chmod +x "$scratch/cold-train" || die "unpack cold-train"
    train=$scratch/cold-train data=$work/mnist
  fi
  # cubecl's kernel compilation cache (PTX on CUDA) goes into what comes back; a cache brought
  # back from an earlier lease (.devicework/train/cubecl-cache.tar.gz) is unpacked first, so a
  # first step with compiled kernels can be measured. cubecl reads cubecl.toml from the working
  # directory: cold-train runs from $scratch.
  mkdir -p "$scratch/bring/cubecl-cache"
  if [ -f "$work/cubecl-cache.tar.gz" ]; then
    tar -C "$scratch/bring" -xzf "$work/cubecl-cache.tar.gz" && echo "device.sh: cubecl cache: warm (carried in)"
  else
    echo "device.sh: cubecl cache: cold (none carried in)"
  fi
  printf '[compilation]\ncache = { file = "%s" }\n' "$scratch/bring/cubecl-cache" > "$scratch/cubecl.toml"
  first=1
  for c in "${configs[@]}"; do
    IFS=: read -r m b side <<< "$c"
    left "train bench $m batch $b" || break
    echo "== cold-train bench $m batch $b (${side}x$side)"
    j=$scratch/bring/train-$m-b$b.json t0=$(date +%s.%N)
    if timeout 150 env -C "$scratch" "$train" bench --backend "$backend" --model "$m" --batch "$b" --synthetic "$side" --warmup 2 \
      --steps "$steps" --json "$j"; then
      wall=$(python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 2))" "$t0")
      python3 benches/gpu/rows.py cold-train "$j" "$results" --machine "$machine" --model "$m" --process-seconds "$wall" ||
        echo "device.sh: FAILED rows of train $m $b"
    else
      rc=$?
      # A first bench that fails to start ends the run; one that only ran past its limit (124:
      # kernel compilation can be that slow) does not, so the real run still gets its turn.
      [ "$first" = 1 ] && [ "$rc" != 124 ] && die "the $backend backend did not train (rc $rc): see above"
      echo "device.sh: FAILED train bench $m batch $b (rc $rc)"
    fi
    first=0
  done
  if left "the PyTorch reference" && peer_ok; then
    for c in "${configs[@]}"; do
      IFS=: read -r m b side <<< "$c"
      [ -n "$dry" ] && m=compact
      peer train "$m" "$b" 150
    done
  fi
  m=${configs[0]%%:*}
  echo "== real run: cold-train train --backend $backend, $m on MNIST, $secs s"
  timeout $((secs + 120)) env -C "$scratch" "$train" train --backend "$backend" --dataset "mnist:$data" --preset mnist --model "$m" \
    --batch 32 --lr 3e-4 --steps 1000000 --max-seconds "$secs" --sample-every 1000000 --checkpoint-every 1000000 \
    --out "$scratch/bring/run" || echo "device.sh: FAILED real run (rc $?)"
  # Only what export needs comes back: the EMA weights, not the optimiser's state.
  find "$scratch/bring/run" \( -name optim.mpk -o -name model.mpk \) -delete 2> /dev/null
fi
pack
rows=$(wc -l < "$results" 2> /dev/null || echo 0)
echo "device.sh: $phase done in $(($(date +%s) - started)) s: $rows rows in $results"
[ "$rows" -gt 0 ] || die "no row was measured"
