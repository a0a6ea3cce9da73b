#!/usr/bin/env bash
# Our sampler against the reference's at equal budget (issue 30, item 5): the authors' PyTorch
# deblurring code and cold-train trained alike (mnist-blur's schedule: kernel 11, sigma 7,
# circular, T 20; the compact network; MNIST at 28x28 without augmentation; batch, learning rate,
# steps, EMA 0.995 every 10 steps from step 2000; 2 CPU threads), then the same test digits
# restored from t = 20 by each one's own direct restoration and Algorithm 2 over all 20 levels,
# scored by one scorer (benches/sampler_check.py score) and `cold fid`. Appends one JSON row to
# OUT_JSON. Never part of the tests.
#
# Usage: benches/sampler_check.sh ORIG_PKG_DIR WORK_DIR OUT_JSON
#   ORIG_PKG_DIR holds the authors' deblurring_diffusion_pytorch.py (fetched, never committed).
#   STEPS=6000 BATCH=16 LR=1e-4 COUNT=1000 (test digits), PY (a python with Debian's python3-torch
#   and benches/requirements-sampler-check.txt; default WORK_DIR/venv, made when missing).
#   WORK_DIR keeps both runs: a second call resumes or reuses them.
set -euo pipefail
cd "$(dirname "$0")/.."
orig=$1 work=$2 out_json=$3
steps=${STEPS:-6000} batch=${BATCH:-16} lr=${LR:-1e-4} count=${COUNT:-1000}
[ -f "$orig/deblurring_diffusion_pytorch.py" ] || { echo "$orig has no deblurring_diffusion_pytorch.py" >&2; exit 1; }
mkdir -p "$work"
py=${PY:-$work/venv/bin/python}
if [ ! -x "$py" ]; then
  /usr/bin/python3 -c 'import torch' 2> /dev/null ||
    { echo "Debian's python3-torch is missing: apt-get install python3-torch python3-torchvision" >&2; exit 1; }
  /usr/bin/python3 -m venv --system-site-packages "$work/venv"
  "$work/venv/bin/pip" install -q --require-hashes --no-deps -r benches/requirements-sampler-check.txt
fi
cold=target/release/cold train=target/release/cold-train
[ -x "$cold" ] && [ -x "$train" ] || cargo build --release -p cold-runtime --bin cold -p cold-trainer --bin cold-train
export RAYON_NUM_THREADS=2

# 1. Ours.
if [ ! -f "$work/ours-bundle/manifest.json" ]; then
  "$train" train --dataset mnist --degradation mnist-blur --model compact --batch "$batch" --lr "$lr" \
    --steps "$steps" --ema-decay 0.995 --ema-every 10 --ema-start 2000 --flip false --shift 0 \
    --seed 1 --checkpoint-every 1000 --out "$work/ours" $( [ -d "$work/ours" ] && echo --resume )
  "$train" export --run "$work/ours" --out "$work/ours-bundle" --mixture-components 0
fi
# 2. The reference (resumes from its checkpoint).
"$py" benches/sampler_check.py train "$orig" --out "$work/ref" --steps "$steps" --batch "$batch" \
  --lr "$lr" --threads 2
# 3. The same digits through both.
"$py" benches/sampler_check.py digits --out "$work/digits" --count "$count"
"$cold" degrade --model "$work/ours-bundle" --t 20 --depth 16 --overwrite "$work/digits" "$work/blurred"
for alg in direct 2; do
  "$cold" restore --model "$work/ours-bundle" --algorithm "$alg" --steps 0 --overwrite \
    "$work/blurred" "$work/ours-$alg"
done
"$py" benches/sampler_check.py restore "$orig" --run "$work/ref" --digits "$work/digits" --out "$work/ref-out"
"$py" benches/sampler_check.py score --digits "$work/digits" --json "$work/score.json" \
  "cold direct=$work/ours-direct" "cold alg2=$work/ours-2" \
  "reference direct=$work/ref-out/direct" "reference alg2=$work/ref-out/alg2"
fid() { "$cold" fid --json "$1" "$work/digits" | python3 -c 'import json,sys; print(json.load(sys.stdin)["fid"])'; }
fids=$(printf '{"cold direct": %s, "cold alg2": %s, "reference direct": %s, "reference alg2": %s}' \
  "$(fid "$work/ours-direct")" "$(fid "$work/ours-2")" "$(fid "$work/ref-out/direct")" "$(fid "$work/ref-out/alg2")")
python3 - "$out_json" "$work/score.json" "$fids" "$steps" "$batch" "$lr" "$count" <<'PY'
import datetime, json, os, sys
out, score, fids, steps, batch, lr, count = sys.argv[1:]
s, f = json.load(open(score)), json.loads(fids)
for k in s:
    s[k]["fid"] = f[k]
rows = json.load(open(out)) if os.path.exists(out) else []
rows.append({
    "machine": "cpu-box",
    "date": datetime.date.today().isoformat(),
    "what": "direct against Algorithm 2 over all 20 levels from t = 20, ours and the authors' code trained alike",
    "implementation": "cold-train + cold restore / the authors' deblurring_diffusion_pytorch.py (torch 1.13, CPU)",
    "model": "compact (0.92M), mnist-blur schedule, MNIST 28x28",
    "training": {"steps": int(steps), "batch": int(batch), "lr": float(lr), "ema": "0.995 every 10 from 2000"},
    "test_digits": int(count),
    "metrics": s,
})
json.dump(rows, open(out, "w"), indent=2)
for k, v in s.items():
    print(f"{k:>18}: SSIM {v['ssim']:.4f}  RMSE {v['rmse']:.4f}  FID {v['fid']:.2f}")
PY
