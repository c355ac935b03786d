#!/usr/bin/env bash
# `make test-wheel`: install the built wheel the way a PyTorch user would and check it.
#
#   scripts/test-wheel.sh dist/rotbench-VERSION-TAG.whl
#
# 1. torch==X (Cargo.toml's libtorch) and its dependencies from PyPI as wheels, kept in
#    the cache ($CACHE/wheels/torch-X, about 2.7 GB the first time, reused after).
# 2. A fresh venv with that torch; `pip install` of the rotbench wheel (timed, with the
#    demo sweep after it); then, with an empty HOME and no rotbench cache:
#    `rotbench --version`, `python -m rotbench --version`, `rotbench doctor`, and
#    `rotbench demo`, whose per_angle.csv and predictions.csv must equal the source
#    build's sweep of the same models, data and angles byte for byte; then an .onnx
#    sweep on an installed onnxruntime package (the launcher finds it; nothing fetched).
# 3. Each failure mode, with its message: no torch (a venv without it), the wrong torch
#    (a venv whose torch says 2.12.0: metadata only, beside the real check above), a
#    CPU-only torch (X+cpu) satisfying the wheel's requirement without an index, a torch
#    without its libraries, a missing bundled model, and `--device cuda` where libtorch
#    sees no GPU.
# 4. The Python API (issue 33: rotbench.sweep/load/export, Results), by
#    scripts/wheel/tests/test_python_api.py in the venv of 2.: first without pandas (the
#    DataFrames' ImportError names `pip install 'rotbench[pandas]'`), then after
#    `pip install WHEEL[pandas]` (an nn.Module round trip against models/mnist-cnn.pt, a
#    failing run the process survives, ...), then docs/notebooks/quickstart.ipynb executed
#    headless (nbclient) with its summary table in the output; and in the venv without torch.
#    pandas, nbclient, nbformat, ipykernel (pinned in API_REQ) and their dependencies come
#    from PyPI as wheels, kept in $CACHE/wheels/python-api-HASH (43 MB).
# ROTBENCH_SRC_BIN: the source build to compare the demo with (default target/release/rotbench).
# Exit 0 when every check passes; the first failure stops it with exit 1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEEL="$(readlink -f "${1:?usage: scripts/test-wheel.sh WHEEL}")"
TORCH="$(sed -n '/^\[package.metadata.rotbench\]/,/^\[/s/^libtorch *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml")"
CACHE="${ROTBENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rotbench}"
WHEELS="$CACHE/wheels/torch-$TORCH"
PY="${PYTHON:-python3}"
ANGLES="${TEST_WHEEL_ANGLES:-0:360:45}"
SRC_BIN="${ROTBENCH_SRC_BIN:-$ROOT/target/release/rotbench}"
API_REQ="pandas==3.1.1 nbclient==0.11.0 nbformat==5.11.1 ipykernel==7.4.0"
API_WHEELS="$CACHE/wheels/python-api-$(echo "$API_REQ" | sha256sum | cut -c1-12)"
API_TEST="$ROOT/scripts/wheel/tests/test_python_api.py"
T_START=$(date +%s)
[ -x "$SRC_BIN" ] || { echo "test-wheel: $SRC_BIN is missing; run make build" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/rotbench-test-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT
pass() { printf 'ok    %s\n' "$*"; }
die() { printf 'FAIL  %s\n' "$*" >&2; exit 1; }
# expect_fail NAME NEEDLE CMD...: CMD must exit 2 and print NEEDLE on stderr.
expect_fail() {
  local name=$1 needle=$2; shift 2
  local rc=0
  "$@" >"$work/out" 2>"$work/err" || rc=$?
  [ "$rc" = 2 ] || { cat "$work/out" "$work/err" >&2; die "$name: exit $rc, expected 2"; }
  grep -qF -- "$needle" "$work/err" || { cat "$work/err" >&2; die "$name: the message lacks '$needle'"; }
  pass "$name: exit 2, $(head -c 300 "$work/err" | tr '\n' ' ')"
}

echo "== torch==$TORCH wheels in $WHEELS"
if [ ! -f "$WHEELS/.complete" ]; then
  mkdir -p "$WHEELS"
  t0=$(date +%s)
  "$PY" -m pip download --quiet --only-binary :all: -d "$WHEELS" "torch==$TORCH"
  touch "$WHEELS/.complete"
  echo "downloaded $(du -sh "$WHEELS" | cut -f1) in $(( $(date +%s) - t0 )) s"
fi

echo "== a venv with torch==$TORCH"
"$PY" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --no-index --find-links "$WHEELS" "torch==$TORCH"
t0=$(date +%s.%N)
"$work/venv/bin/pip" install --quiet --no-index --find-links "$WHEELS" "$WHEEL"
t1=$(date +%s.%N)
pass "pip install $(basename "$WHEEL") ($(du -h "$WHEEL" | cut -f1)) in $(awk "BEGIN{printf \"%.1f\", $t1-$t0}") s"

# A user's shell: empty HOME, no rotbench cache, nothing of ours in the environment.
export HOME="$work/home" XDG_CACHE_HOME="$work/home/.cache"
mkdir -p "$HOME"
unset ROTBENCH_SHARE LIBTORCH LD_LIBRARY_PATH ROTBENCH_CACHE
RB="$work/venv/bin/rotbench"
cd "$work"

v="$("$RB" --version)" && [ "$v" = "rotbench $(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1)" ] \
  || die "rotbench --version printed '$v'"
pass "rotbench --version: $v"
v2="$("$work/venv/bin/python" -m rotbench --version)" && [ "$v2" = "$v" ] || die "python -m rotbench --version printed '$v2'"
pass "python -m rotbench --version"

"$RB" doctor >"$work/doctor" 2>&1 || { cat "$work/doctor"; die "rotbench doctor exited non-zero"; }
grep -q "from the Python torch package" "$work/doctor" || { cat "$work/doctor"; die "doctor did not use the Python torch's libtorch"; }
grep -q "check     cpu     pass" "$work/doctor" || { cat "$work/doctor"; die "doctor's CPU check did not pass"; }
pass "rotbench doctor:"; sed 's/^/      /' "$work/doctor"

"$RB" demo --out "$work/demo" --angles "$ANGLES" -- --quiet
t2=$(date +%s.%N)
pass "rotbench demo --angles $ANGLES finished $(awk "BEGIN{printf \"%.1f\", $t2-$t0}") s after pip install began"
if ls -d "$HOME"/.cache/rotbench/libtorch-* >/dev/null 2>&1; then die "the wheel downloaded a libtorch into $HOME/.cache/rotbench"; fi
pass "no second libtorch: $HOME/.cache holds no libtorch"
"$SRC_BIN" sweep --quiet --model "$ROOT/models/mnist-cnn.pt" --model "$ROOT/models/mnist-cnn-aug.pt" \
  --model "$ROOT/models/mnist-p4cnn.pt" --data "$ROOT/datasets/mnist" --angles "$ANGLES" \
  --out "$work/source" --no-cache
for f in per_angle.csv predictions.csv per_class.csv confusion.csv; do
  cmp -s "$work/demo/$f" "$work/source/$f" || die "$f differs between the wheel's demo and the source build's sweep"
done
pass "the wheel's demo equals the source build's sweep (per_angle, predictions, per_class, confusion: byte for byte)"

# ONNX models through an installed onnxruntime package: the launcher hands its library
# to rotbench, which then fetches nothing.
ORTW="$CACHE/wheels/onnxruntime"
mkdir -p "$ORTW"
"$work/venv/bin/pip" download --quiet --no-deps --only-binary :all: -d "$ORTW" onnxruntime==1.31.1
"$work/venv/bin/pip" install --quiet --no-deps --no-index --find-links "$ORTW" onnxruntime==1.31.1
"$RB" doctor | grep -q "from the Python onnxruntime package" || die "doctor did not find the installed onnxruntime"
"$RB" sweep --quiet --no-report --model "$ROOT/models/mnist-cnn.onnx" --data "$ROOT/datasets/mnist" \
  --angles 0,90 --limit 500 --out "$work/onnx"
grep -q '"backend": "onnxruntime 1.31.1"' "$work/onnx/summary.json" || die "the .onnx sweep did not run on onnxruntime 1.31.1"
if ls -d "$HOME"/.cache/rotbench/onnxruntime-* >/dev/null 2>&1; then die "rotbench fetched its own ONNX Runtime beside the installed one"; fi
pass "an .onnx sweep runs on the installed onnxruntime package's library, fetching nothing"

echo "== the Python API"
"$work/venv/bin/python" "$API_TEST" --phase no-pandas
if [ ! -f "$API_WHEELS/.complete" ]; then
  mkdir -p "$API_WHEELS"
  # shellcheck disable=SC2086
  "$work/venv/bin/pip" download --quiet --only-binary :all: -d "$API_WHEELS" $API_REQ
  touch "$API_WHEELS/.complete"
fi
# The extra the wheel declares: pip resolves `rotbench[pandas]` to the pinned pandas.
"$work/venv/bin/pip" install --quiet --no-index --find-links "$API_WHEELS" "$WHEEL[pandas]" \
  || die "pip install '$(basename "$WHEEL")[pandas]' failed"
pv="$("$work/venv/bin/python" -c 'import pandas; print(pandas.__version__)')" \
  || die "pip install 'rotbench[pandas]' did not install pandas"
pass "pip install 'rotbench[pandas]' installs pandas $pv"
"$work/venv/bin/python" "$API_TEST" --phase pandas
# shellcheck disable=SC2086
"$work/venv/bin/pip" install --quiet --no-index --find-links "$API_WHEELS" $API_REQ
"$work/venv/bin/python" "$API_TEST" --phase notebook

echo "== failure modes"
"$PY" -m venv "$work/bare"
"$work/bare/bin/pip" install --quiet --no-index --no-deps "$WHEEL"
expect_fail "no torch" "pip install 'torch==$TORCH'" \
  "$work/bare/bin/rotbench" sweep --model x.pt --data y --angles 0 --out z
"$work/bare/bin/python" "$API_TEST" --phase no-torch
site="$("$work/bare/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
mkdir -p "$site/torch" "$site/torch-2.12.0.dist-info"
echo "__version__ = '2.12.0'" > "$site/torch/__init__.py"
printf 'Metadata-Version: 2.1\nName: torch\nVersion: 2.12.0\n' > "$site/torch-2.12.0.dist-info/METADATA"
expect_fail "torch 2.12.0 installed" "built for torch ${TORCH%.*}.x" "$work/bare/bin/rotbench" doctor
# A CPU-only torch of the right version satisfies the wheel's requirement: pip installs
# it with no index at all, so it could not have fetched a CUDA torch in its place.
rm -rf "$site/torch-2.12.0.dist-info"
mkdir -p "$site/torch-$TORCH+cpu.dist-info"
printf 'Metadata-Version: 2.1\nName: torch\nVersion: %s+cpu\n' "$TORCH" > "$site/torch-$TORCH+cpu.dist-info/METADATA"
"$work/bare/bin/pip" uninstall --quiet --yes rotbench
"$work/bare/bin/pip" install --quiet --no-index "$WHEEL" \
  || die "pip would not install the wheel beside torch $TORCH+cpu without an index"
pass "torch $TORCH+cpu satisfies the wheel's requirement (pip install --no-index)"
expect_fail "a torch without its libraries" "has no lib/libtorch_cpu.so" "$work/bare/bin/rotbench" doctor
share="$("$work/venv/bin/python" -c 'import rotbench; print(rotbench.share_dir())')"
mv "$share/models/mnist-cnn.pt" "$work/moved.pt"
expect_fail "a bundled model missing" "$share/models/mnist-cnn.pt" "$RB" doctor
mv "$work/moved.pt" "$share/models/mnist-cnn.pt"
if "$work/venv/bin/python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  "$RB" doctor --device cuda >/dev/null || die "doctor --device cuda failed on a machine with a GPU"
  pass "doctor --device cuda on a GPU"
else
  # PyPI's torch is a CUDA build: libtorch_cuda.so must have been opened (the one
  # binary for CPU and CUDA), and only the missing GPU stops it.
  expect_fail "--device cuda without a GPU" "--device cuda: libtorch has CUDA (" "$RB" doctor --device cuda
fi
echo "test-wheel: all checks passed in $(( $(date +%s) - T_START )) s"
