#!/usr/bin/env bash
# Python venv for training the bundled models, making fixtures and `make bench`.
# Not needed by `make test` or `make demo`. Lives outside the repo; prints its path.
# Installs exactly scripts/requirements-fixtures.txt (every package pinned, with hashes;
# rewrite it with scripts/pin-fixture-requirements.py). The `.complete` stamp holds that
# file's sha256, so editing it brings the venv up to date on the next call.
set -euo pipefail
CACHE="${ROTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rotbench}"
VENV="${ROTBENCH_VENV:-$CACHE/venv}"
REQ="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/requirements-fixtures.txt"
# The fixtures' torch must be the libtorch rotbench links (Cargo.toml, the one place it is written).
TORCH="$(sed -n '/^\[package.metadata.rotbench\]/,/^\[/s/^libtorch *= *"\(.*\)"/\1/p' "$(dirname "$REQ")/../Cargo.toml")"
if ! grep -q "^torch==$TORCH " "$REQ"; then
  echo "setup-venv: $REQ does not pin torch==$TORCH, the libtorch in Cargo.toml's [package.metadata.rotbench]; install torch==$TORCH in the venv and rerun scripts/pin-fixture-requirements.py" >&2
  exit 2
fi
WANT="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ -f "$VENV/.complete" ] && [ "$(cat "$VENV/.complete")" = "$WANT" ]; then echo "$VENV"; exit 0; fi
mkdir -p "$CACHE"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
rm -f "$VENV/.complete"
"$VENV/bin/pip" install --quiet --require-hashes -r "$REQ" >&2
echo "$WANT" > "$VENV/.complete"
echo "$VENV"
