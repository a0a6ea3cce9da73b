#!/usr/bin/env bash
# Runs the photograph benchmark (benches/photo_restore.py) in .venv-photo (pinned, hash-checked).
# Usage: benches/photo.sh prepare --out DIR | blur ... | classical ... | score ...
#        (benches/photo.sh --help, benches/photo.sh SUBCOMMAND --help)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv-photo/bin/python -c "import skimage" >/dev/null 2>&1; then
  python3 -m venv .venv-photo
  .venv-photo/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
    -r benches/requirements-photo.txt
fi
exec .venv-photo/bin/python benches/photo_restore.py "$@"
