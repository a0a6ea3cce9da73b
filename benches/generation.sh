#!/usr/bin/env bash
# Generation report of a bundle: class shares and confidence of its samples (the shipped MNIST
# classifier), by-class accuracy with each guidance weight, the nearest training images, and FID
# of N samples against the 10,000 MNIST test digits (the paper's protocol at N = 10,000). Every
# measurement is appended to RESULTS.json as soon as it is made.
#
#   benches/generation.sh MODEL WORK RESULTS.json
#
# WORK holds the samples and logs. Environment (defaults in brackets):
#   COLD [target/release/cold]   the cold binary
#   SAMPLES [500]                samples of the default job and of --class none
#   PER_CLASS [50]               samples of each --class c
#   GUIDANCE ["1 3"]             guidance weights to measure
#   FID [10000]                  samples for FID (0: none), at FID_GUIDANCE [the bundle's default]
#   TEST_STATS [WORK/test10k.fidstats]  the test digits' FID statistics (computed when missing)
#   LABEL                        what to call the model in the rows (default: its folder name)
#   SEED [0]                     the samples' seed (cold generate --seed)
set -euo pipefail
[ $# -eq 3 ] || { sed -n 2,18p "$0"; exit 2; }
model=$1 work=$2 results=$3
cold=${COLD:-target/release/cold}
samples=${SAMPLES:-500} per_class=${PER_CLASS:-50} guidance=${GUIDANCE:-1 3} fid=${FID:-10000}
stats=${TEST_STATS:-$work/test10k.fidstats}
label=${LABEL:-$(basename "$model")}
seed=${SEED:-0}
mkdir -p "$work"
[ -x "$cold" ] || { echo "no cold binary at $cold (cargo build --release -p cold-runtime)" >&2; exit 1; }
"$cold" info --model "$model" > "$work/info.txt"
classes=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['network'].get('classes') or []))" "$model/manifest.json")

# row JSON_FIELDS...: append one row (machine, date, model and the given fields) to RESULTS.
row() {
  python3 - "$results" "$label" "$@" <<'EOF'
import json, os, sys, datetime
path, label, fields = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
rows = json.load(open(path)) if os.path.exists(path) else []
rows.append({"machine": "cpu-box", "date": datetime.date.today().isoformat(),
             "implementation": "cold (ONNX Runtime cpu)", "model": label,
             "seed": int(os.environ.get("SEED", "0")), **fields})
tmp = path + ".tmp"
json.dump(rows, open(tmp, "w"), indent=1)
os.replace(tmp, path)
print(json.dumps(fields))
EOF
}

# classify DIR: {"shares", "confident", "images"} of a folder of samples, and where cold generate
# recorded each sample's class (DIR/../classes.json), the share classified as that class.
classify() {
  "$cold" classify --json "$1" > "$1.classify.json"
  python3 -c "
import json,os,sys; r=json.load(open(sys.argv[1])); s=r['summary']
out = {'shares': s['shares'], 'confident': s['confident'], 'images': s['images']}
rec = os.path.join(os.path.dirname(os.path.abspath(sys.argv[2])), 'classes.json')
if os.path.exists(rec):
    want = json.load(open(rec))['samples']
    ims = [i for i in r['images'] if want.get(i['file']) is not None]
    if ims:
        out['classified_as_generated'] = sum(i['class'] == want[i['file']] for i in ims) / len(ims)
print(json.dumps(out))" "$1.classify.json" "$1"
}

# job NAME ARGS...: generate, classify, one row.
job() {
  local name=$1; shift
  local t0; t0=$(date +%s)
  rm -rf "${work:?}/$name"
  "$cold" generate --model "$model" --seed "$seed" --batch 100 "$@" "$work/$name" > /dev/null
  local secs=$(( $(date +%s) - t0 ))
  row "$(python3 -c "
import json,sys; c=json.loads(sys.argv[1]); a=sys.argv[3:]
print(json.dumps({'what': 'generate', 'args': ' '.join(a), 'seconds': int(sys.argv[2]), **c}))" \
    "$(classify "$work/$name/samples")" "$secs" "$@")"
}

if [ "$classes" -gt 0 ]; then
  for w in $guidance; do job "drawn-w$w" --count "$samples" --guidance "$w"; done
  job null --count "$samples" --class none
  for w in $guidance; do
    t0=$(date +%s)
    for c in $(seq 0 $((classes - 1))); do
      rm -rf "${work:?}/w$w/c$c"
      "$cold" generate --model "$model" --seed "$seed" --class "$c" --guidance "$w" --count "$per_class" \
        --batch "$per_class" "$work/w$w/c$c" > /dev/null
      classify "$work/w$w/c$c/samples" > /dev/null
    done
    row "$(python3 - "$work/w$w" "$classes" "$w" "$(( $(date +%s) - t0 ))" <<'EOF'
import json, sys
d, n, w, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
acc, conf = [], []
for c in range(n):
    ims = json.load(open(f"{d}/c{c}/samples.classify.json"))["images"]
    acc.append(sum(i["class"] == str(c) for i in ims) / len(ims))
    conf.append(sum(i["class"] == str(c) and i["probability"] >= 0.9 for i in ims) / len(ims))
print(json.dumps({"what": "generate by class", "guidance": w, "per_class": len(ims), "seconds": secs,
                  "accuracy_by_class": acc, "accuracy_mean": sum(acc) / n, "accuracy_min": min(acc),
                  "asked_and_confident": sum(conf) / n}))
EOF
)"
  done
else
  job default --count "$samples"
fi

first=$work/default
for w in $guidance; do [ -d "$work/drawn-w$w" ] && { first=$work/drawn-w$w; break; }; done
"$cold" nearest --dataset mnist --count 16 --k 4 --grid "$work/nearest.png" --json "$first/samples" \
  > "$work/nearest.json"
row "$(python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print(json.dumps({'what': 'nearest training images', 'samples': len(r['samples']),
  'samples_median_rms': r['samples_median'], 'held_out_median_rms': r['held_out_median'],
  'nearer_than_any_held_out': r['nearer_than_any_held_out']}))" "$work/nearest.json")"

if [ "$fid" -gt 0 ]; then
  if [ ! -f "$stats" ]; then
    rm -rf "$work/test10k"
    target/release/cold-train dump --split test --count 10000 "$work/test10k" > /dev/null
    t0=$(date +%s)
    "$cold" fid "$work/test10k" --save-stats "$stats" > /dev/null
    echo "test statistics: $(( $(date +%s) - t0 )) s" >&2
  fi
  args=(--count "$fid")
  [ -n "${FID_GUIDANCE:-}" ] && args+=(--guidance "$FID_GUIDANCE")
  t0=$(date +%s)
  rm -rf "${work:?}/fid"
  "$cold" generate --model "$model" --seed "$seed" --batch 100 "${args[@]}" "$work/fid" > /dev/null
  gen_secs=$(( $(date +%s) - t0 ))
  cls=$(classify "$work/fid/samples")
  t0=$(date +%s)
  f=$("$cold" fid --json "$work/fid/samples" "$stats")
  row "$(python3 -c "
import json,sys; f=json.loads(sys.argv[1]); c=json.loads(sys.argv[2])
print(json.dumps({'what': 'fid', 'args': sys.argv[5], 'fid': f['fid'], 'samples': f['files_a'],
  'against': '%d MNIST test digits' % f['files_b'] if f.get('files_b') else 'the MNIST test digits',
  'generate_seconds': int(sys.argv[3]), 'fid_seconds': int(sys.argv[4]), **c}))" \
    "$f" "$cls" "$gen_secs" "$(( $(date +%s) - t0 ))" "${args[*]}")"
fi
echo "rows in $results" >&2
