#!/usr/bin/env bash
# cold against the classical answer on real photographs: scikit-image's astronaut, coffee,
# chelsea and rocket blurred at full size by the model's own D (`cold degrade`, the CIFAR-10
# schedule for photo-blur) at each level and bit depth, then restored by
#   - `cold restore --model MODEL` with its defaults (the level read from degradation.json),
#   - Wiener (balance 0.003) and Richardson-Lucy (300 iterations) with the true composed kernel
#     (benches/photo_restore.py classical), from the same PNGs;
# scored with SSIM against the originals (benches/photo.sh score: Gaussian weights, sigma 1.5,
# data range 1). Appends one JSON row per (t, depth) to OUT_JSON; with STRIPS_DIR set, writes
# strips-t<T>-<depth>bit.png (degraded | cold | Wiener | original) there. Never part of the tests.
#
# Usage: benches/photo_blur.sh MODEL OUT_JSON [T ...]     (default T: 50 25)
#   DEPTHS="8 16" (default), RL_ITER=300 (0 skips Richardson-Lucy), COLD_FLAGS for cold restore.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 out_json=$2
shift 2
levels=("$@")
[ ${#levels[@]} -eq 0 ] && levels=(50 25)
cold=target/release/cold
[ -x "$cold" ] || cargo build --release -p cold-runtime --bin cold
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
benches/photo.sh prepare --out "$work/originals" > /dev/null
for t in "${levels[@]}"; do
  for depth in ${DEPTHS:-8 16}; do
    d="$work/t$t-$depth"
    "$cold" degrade --model "$model" --t "$t" --depth "$depth" "$work/originals" "$d/blurred" 2> /dev/null
    start=$(date +%s.%N)
    "$cold" restore --model "$model" ${COLD_FLAGS:-} "$d/blurred" "$d/cold" 2> "$d/cold.log"
    end=$(date +%s.%N)
    benches/photo.sh classical --originals "$work/originals" --t "$t" --from "$d/blurred" \
      --out "$d/classical" --depth 16 --rl-iter "${RL_ITER:-300}" > "$d/classical.log"
    benches/photo.sh score --originals "$work/originals" --restored "$d/cold" \
      --json "$d/score.json" --label cold > /dev/null
    if [ -n "${STRIPS_DIR:-}" ]; then
      mkdir -p "$STRIPS_DIR"
      benches/photo.sh strips --out "$STRIPS_DIR/strips-t$t-${depth}bit.png" --side 160 \
        degraded="$d/blurred" cold="$d/cold" wiener="$d/classical/wiener" \
        original="$work/originals" > /dev/null
    fi
    python3 - "$out_json" "$d" "$model" "$t" "$depth" "$start" "$end" "${RL_ITER:-300}" \
      "${COLD_FLAGS:-}" <<'PY'
import datetime, json, os, sys
out, d, model, t, depth, start, end, rl_iter, flags = sys.argv[1:]
classical = json.load(open(os.path.join(d, "classical", "classical.json")))
cold = json.load(open(os.path.join(d, "score.json")))[-1]
mean = dict(classical["mean"])
mean["cold"] = cold["mean"]
per = {n: dict(v, cold=cold["images"][n]) for n, v in classical["images"].items()}
if int(rl_iter) == 0:  # Richardson-Lucy skipped: its column would be the blurred image's
    mean.pop("rl")
    for v in per.values():
        v.pop("rl")
rows = json.load(open(out)) if os.path.exists(out) else []
rows.append({
    "machine": "cpu-box",
    "date": datetime.date.today().isoformat(),
    "what": "deblur scikit-image photographs at full size: cold against Wiener and Richardson-Lucy with the true kernel",
    "implementation": "cold restore (ONNX Runtime CPU, defaults) / skimage.restoration 0.25.2",
    "model": os.path.basename(model.rstrip("/")),
    "flags": flags,
    "t": int(t),
    "depth": int(depth),
    "rl_iter": int(rl_iter),
    "ssim_convention": classical["ssim"],
    "ssim_mean": mean,
    "ssim": per,
    "cold_seconds": round(float(end) - float(start), 2),
    "classical_timing": classical.get("timing", {}),
})
json.dump(rows, open(out, "w"), indent=2)
print(f"t={t} {depth}-bit  " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items()))
PY
  done
done
