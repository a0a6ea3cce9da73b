#!/usr/bin/env bash
# Runs the Python peer benchmark (benches/peer_ort.py) in .venv-peer (pinned, hash-checked).
# Usage: benches/peer.sh --model models/mnist-blur --batch 64,256 [--fused] [--json out.json]
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv-peer/bin/python -c "import onnxruntime, numpy" >/dev/null 2>&1; then
  python3 -m venv .venv-peer
  .venv-peer/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r benches/requirements.txt
fi
exec .venv-peer/bin/python benches/peer_ort.py "$@"
