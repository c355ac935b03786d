#!/usr/bin/env bash
# Python venv for training the bundled models, making fixtures and `make bench`.
# Not needed by `make test` or `make demo`. Lives outside the repo; prints its path.
set -euo pipefail
CACHE="${ROTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rotbench}"
VENV="${ROTBENCH_VENV:-$CACHE/venv}"
if [ -f "$VENV/.complete" ]; then echo "$VENV"; exit 0; fi
mkdir -p "$CACHE"
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet torch==2.13.0 torchvision==0.28.0 scikit-learn scipy statsmodels pillow >&2
touch "$VENV/.complete"
echo "$VENV"
