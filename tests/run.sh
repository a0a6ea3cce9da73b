#!/usr/bin/env bash
# The project's test command (README.md and .ci/run use exactly this).
# 1. Installs the pinned, hash-checked Python tools of the ONNX conformance test into .venv
#    (skipped when python3 is absent: that test then reports itself skipped).
# 2. Runs every test of the workspace. ONNX Runtime and MNIST are never needed from the network
#    except ONNX Runtime itself, which the runtime fetches (pinned, sha256-checked) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v python3 >/dev/null 2>&1; then
  if ! .venv/bin/python -c "import onnx" >/dev/null 2>&1; then
    echo "tests/run.sh: installing tests/requirements.txt into .venv" >&2
    python3 -m venv .venv
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
      -r tests/requirements.txt
  fi
else
  echo "tests/run.sh: python3 not found; the ONNX checker test will be skipped" >&2
fi

exec cargo test --workspace --locked "$@"
