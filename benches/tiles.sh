#!/usr/bin/env bash
# How R sees an image of another size than the bundle's: the whole image against tiles of several
# sizes and overlaps, quality (SSIM against the originals, benches/photo.sh score) and speed
# (wall seconds, peak RSS from /usr/bin/time -v) of `cold restore` on one folder of photographs.
#
# Usage: benches/tiles.sh MODEL DEGRADED_DIR ORIGINALS_DIR OUT_JSON [CONFIG ...]
#   CONFIG is TILE:OVERLAP (TILE = whole, auto or a side in pixels); default: the set below.
#   Extra `cold restore` flags go in $COLD_FLAGS (e.g. "--steps 10 --threads 2").
# Appends one JSON row per config to OUT_JSON (a JSON list). Never part of the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1 degraded=$2 originals=$3 out_json=$4
shift 4
configs=("$@")
if [ ${#configs[@]} -eq 0 ]; then
  configs=(whole:0 auto:32 512:32 256:32 256:0 256:64 128:16 64:8)
fi
cold=target/release/cold
[ -x "$cold" ] || cargo build --release -p cold-runtime --bin cold
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pixels=$(python3 - "$degraded" <<'PY'
import json, sys
s = json.load(open(sys.argv[1] + "/degradation.json"))
print(sum(e["height"] * e["width"] for e in s["images"].values()))
PY
)
for c in "${configs[@]}"; do
  tile=${c%%:*} overlap=${c##*:}
  dest="$work/$tile-$overlap"
  /usr/bin/time -v "$cold" restore --model "$model" --tile "$tile" --tile-overlap "$overlap" \
    ${COLD_FLAGS:-} "$degraded" "$dest" 2> "$work/log"
  secs=$(grep "Elapsed (wall clock)" "$work/log" | awk '{print $NF}' |
    awk -F: '{ if (NF == 3) print $1*3600+$2*60+$3; else print $1*60+$2 }')
  rss=$(grep "Maximum resident set size" "$work/log" | awk '{print $NF}')
  benches/photo.sh score --originals "$originals" --restored "$dest" \
    --json "$work/score.json" --label "$c" > /dev/null
  python3 - "$out_json" "$work/score.json" "$model" "$c" "$secs" "$rss" "$pixels" \
    "${COLD_FLAGS:-}" <<'PY'
import datetime, json, os, sys
out, score, model, config, secs, rss, pixels, flags = sys.argv[1:]
row = json.load(open(score))[-1]
tile, overlap = config.split(":")
rows = json.load(open(out)) if os.path.exists(out) else []
rows.append({
    "machine": "cpu-box",
    "date": datetime.date.today().isoformat(),
    "what": "restore photographs of their own size: R whole or on tiles",
    "implementation": "cold restore (ONNX Runtime CPU)",
    "model": os.path.basename(model.rstrip("/")),
    "tile": tile,
    "tile_overlap": int(overlap),
    "flags": flags,
    "images": len(row["images"]),
    "megapixels": int(pixels) / 1e6,
    "seconds": float(secs),
    "megapixels_per_s": int(pixels) / 1e6 / float(secs),
    "peak_rss_mb": int(rss) / 1024,
    "ssim_mean": row["mean"],
    "ssim": row["images"],
})
json.dump(rows, open(out, "w"), indent=1)
print(f"{config:>10}  {float(secs):7.1f} s  {int(rss)/1024:7.0f} MB  SSIM {row['mean']:.4f}")
PY
done
