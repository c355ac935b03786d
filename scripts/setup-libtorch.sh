#!/usr/bin/env bash
# Build a slim CPU libtorch (the version in Cargo.toml) from PyPI wheels, in a cache outside the repo.
#
# Usage: scripts/setup-libtorch.sh        # prints the libtorch folder on stdout
#
# - Respects a user's own libtorch: if LIBTORCH is set and holds lib/libtorch_cpu.so,
#   nothing is downloaded and that folder is printed.
# - Idempotent: a finished folder carries a .complete stamp; a half-finished one
#   is rebuilt from scratch.
# - Only PyPI is reached (pip download). Progress goes to stderr.
set -euo pipefail

# The one place the version is written: Cargo.toml's [package.metadata.rotbench].
TORCH_VERSION="$(sed -n '/^\[package.metadata.rotbench\]/,/^\[/s/^libtorch *= *"\(.*\)"/\1/p' "$(dirname "$0")/../Cargo.toml")"
[ -n "$TORCH_VERSION" ] || { echo "setup-libtorch: no libtorch version under [package.metadata.rotbench] in Cargo.toml" >&2; exit 2; }
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85

log() { printf 'setup-libtorch: %s\n' "$*" >&2; }

if [ -n "${LIBTORCH:-}" ]; then
  if [ -f "$LIBTORCH/lib/libtorch_cpu.so" ]; then
    echo "$LIBTORCH"; exit 0
  fi
  log "LIBTORCH=$LIBTORCH has no lib/libtorch_cpu.so; unset LIBTORCH to use the cached slim set-up, or point it at a libtorch $TORCH_VERSION folder"
  exit 2
fi

CACHE="${ROTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rotbench}"
DEST="$CACHE/libtorch-$TORCH_VERSION-cpu"
if [ -f "$DEST/.complete" ]; then
  echo "$DEST"; exit 0
fi

command -v python3 >/dev/null || { log "python3 is needed to run pip download; install python3 (with pip) and rerun"; exit 2; }
python3 -m pip --version >/dev/null 2>&1 || { log "pip is missing; install it (apt-get install python3-pip) and rerun"; exit 2; }

mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.setup.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
log "downloading torch==$TORCH_VERSION (about 540 MB with the CUDA runtime wheels) into $WORK"
python3 -m pip download --quiet --no-deps --only-binary :all: \
  -d "$WORK/wheels" \
  "torch==$TORCH_VERSION" "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION" >&2

STAGE="$WORK/libtorch"
mkdir -p "$STAGE/lib"
log "unpacking headers and libraries"
python3 "$(dirname "$0")/unpack-libtorch.py" "$WORK/wheels" "$STAGE" \
  libtorch_cpu.so libtorch.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13
echo "$TORCH_VERSION" > "$STAGE/build-version"
touch "$STAGE/.complete"
rm -rf "$DEST"
mv "$STAGE" "$DEST"
log "libtorch $TORCH_VERSION ready at $DEST ($(du -sh "$DEST" | cut -f1))"
echo "$DEST"
