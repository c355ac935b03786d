#!/usr/bin/env bash
# Build a stripped release `rotbench` against the libtorch of Python torch 2.11.0
# (the CUDA 13.0 wheel on PyPI), for a GPU machine that has only that torch
# installed and cannot be given our own libtorch (libtorch_cuda.so alone is
# ~450 MB) or reach the internet.
#
# Usage: scripts/build-device-binary.sh SRC_DIR OUT_BINARY
#
# On the GPU machine, run the result with that torch's lib folder first on the
# library path, e.g.
#   LD_LIBRARY_PATH=/path/to/site-packages/torch/lib ./rotbench ...
# libtorch_cpu.so carries an RPATH ($ORIGIN/../../nvidia/...) that finds the
# CUDA runtime wheels installed beside torch, so nothing else is needed there.
#
# Why this is not just `cargo build`: tch 0.26 / torch-sys 0.26 are written for
# libtorch 2.13, and rotbench pins that version in Cargo.toml. Against 2.11:
#   - torch-sys's generated C wrappers (libtch/torch_api_generated.cpp) call a
#     handful of ATen ops that 2.11 does not have (or has with another
#     signature), so the C++ does not compile. We build from a patched copy of
#     torch-sys whose affected wrappers throw at run time instead; rotbench
#     never calls them. The list is STUB_OPS below; a syntax check against the
#     2.11 headers fails fast (with the compiler's errors) if it is incomplete.
#   - tch's and rotbench's version checks refuse 2.11; we bypass tch's
#     (LIBTORCH_BYPASS_VERSION_CHECK) and point rotbench's pin at 2.11.0 in a
#     scratch copy of the sources.
#   - The lib folder we link against holds only what the link needs (not
#     libtorch_cuda.so: rotbench opens it at run time); libtorch's
#     own dependencies that we do not ship (cuBLAS, cuDNN, NCCL, ...) are left
#     unresolved with --allow-shlib-undefined: the device's torch provides them.
#
# How (all state lives in $CACHE, default ~/.cache/rotbench/device-build; the
# repository given as SRC_DIR is only read):
#   1. once: pip download the torch 2.11.0 wheel (+ the small CUDA runtime and
#      CUPTI wheels libtorch_cpu.so needs to load at all), unpack headers and a
#      few libraries into $CACHE/libtorch-2.11.0 (.complete stamp).
#   2. once: copy torch-sys 0.26.0 from the cargo registry to
#      $CACHE/torch-sys-0.26.0 and stub the wrappers (.complete stamp).
#   3. every run: rsync SRC_DIR to $CACHE/src (no target/, .git/, .libtorch),
#      add [patch.crates-io] torch-sys = { path = ... } and libtorch = "2.11.0"
#      to its Cargo.toml, build with CARGO_TARGET_DIR=$CACHE/target (kept, so a
#      second run only recompiles the rotbench crates).
#   4. strip the binary to OUT_BINARY and print its NEEDED/RUNPATH entries.
#
# Needs: python3 with pip (PyPI reachable on first run), cargo, g++, rsync,
# unzip-free (python's zipfile is used), strip, readelf. Progress goes to stderr.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

TORCH_VERSION=2.11.0
TORCH_SYS_VERSION=0.26.0
# torch 2.11.0 requires cuda-toolkit==13.0.2, whose cudart/cupti extras pin these.
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85
PY_VERSION=3.12
# Tried in order until pip finds a torch wheel.
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64)
# ATen ops torch-sys 0.26's generated wrappers call that libtorch 2.11 lacks
# (or, for _scaled_dot_product_attention_math_for_mps, has with fewer arguments).
# Every wrapper calling one of them is stubbed.
STUB_OPS=(
  _flash_attention_forward_no_dropout_inplace
  _philox_key_fold_in _philox_key_split
  _philox_normal _philox_normal_ _philox_normal_out
  _philox_uniform _philox_uniform_ _philox_uniform_out
  _scaled_dot_product_attention_math_for_mps
  _upsample_lanczos2d_aa _upsample_lanczos2d_aa_out
  _upsample_lanczos2d_aa_backward _upsample_lanczos2d_aa_backward_out
)

log() { printf 'build-device-binary: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ $# -eq 2 ] || { echo "usage: $0 SRC_DIR OUT_BINARY" >&2; exit 2; }
SRC_DIR=$(cd "$1" && pwd) || die "no such folder: $1"
OUT=$2
[ -f "$SRC_DIR/Cargo.toml" ] || die "$SRC_DIR has no Cargo.toml"
for tool in python3 cargo g++ rsync strip readelf; do
  command -v "$tool" >/dev/null || die "$tool is needed"
done

CACHE=${ROTBENCH_DEVICE_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rotbench/device-build}
LT=$CACHE/libtorch-$TORCH_VERSION
TS=$CACHE/torch-sys-$TORCH_SYS_VERSION
SCRATCH=$CACHE/src
export CARGO_TARGET_DIR=$CACHE/target
mkdir -p "$CACHE"
START=$SECONDS

WORK=
cleanup() { if [ -n "$WORK" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT

# ---------------------------------------------------------------- step 1: libtorch
if [ -f "$LT/.complete" ]; then
  log "step 1: libtorch $TORCH_VERSION already at $LT"
else
  python3 -m pip --version >/dev/null 2>&1 || die "pip is missing (python3 -m pip)"
  WORK=$(mktemp -d "$CACHE/.libtorch.XXXXXX")
  platform=
  for p in "${PLATFORMS[@]}"; do
    log "step 1: downloading torch==$TORCH_VERSION (cp${PY_VERSION/./}, $p; about 530 MB)"
    t0=$(date +%s.%N)
    if python3 -m pip download --quiet --no-deps --only-binary :all: \
         --python-version "$PY_VERSION" --platform "$p" \
         -d "$WORK/wheels" "torch==$TORCH_VERSION" >&2; then
      t1=$(date +%s.%N)
      platform=$p
      break
    fi
    log "step 1: no torch wheel for $p"
  done
  [ -n "$platform" ] || die "pip found no torch==$TORCH_VERSION wheel for ${PLATFORMS[*]}"
  whl=$(ls "$WORK"/wheels/torch-*.whl)
  python3 - "$whl" "$t0" "$t1" <<'PY' >&2
import os, sys
size = os.path.getsize(sys.argv[1]) / 1e6
secs = max(float(sys.argv[3]) - float(sys.argv[2]), 1e-3)
print(f"build-device-binary: step 1: {os.path.basename(sys.argv[1])}: {size:.1f} MB in {secs:.1f} s ({size/secs:.1f} MB/s)")
PY
  log "step 1: downloading nvidia-cuda-runtime==$CUDART_VERSION and nvidia-cuda-cupti==$CUPTI_VERSION (libtorch_cpu.so NEEDs libcudart.so.13 and libcupti.so.13)"
  # These carry other manylinux tags than torch (cupti: 2_25), so offer pip all
  # glibc levels up to torch's.
  plat_args=()
  for i in $(seq 28 -1 17); do plat_args+=(--platform "manylinux_2_${i}_x86_64"); done
  python3 -m pip download --quiet --no-deps --only-binary :all: \
    --python-version "$PY_VERSION" "${plat_args[@]}" --platform manylinux2014_x86_64 \
    -d "$WORK/wheels" "nvidia-cuda-runtime==$CUDART_VERSION" "nvidia-cuda-cupti==$CUPTI_VERSION" >&2
  STAGE=$WORK/libtorch
  mkdir -p "$STAGE/include" "$STAGE/lib"
  log "step 1: unpacking torch/include and the libraries the link needs"
  # What rotbench links (libtorch_cpu, libc10, libtorch, libgomp) and the two CUDA
  # runtime libraries libtorch_cpu.so NEEDs to load at all. libtorch_cuda.so is not
  # linked: the binary opens it at run time from the device's own torch.
  python3 "$HERE/unpack-libtorch.py" "$WORK/wheels" "$STAGE" \
    libtorch_cpu.so libtorch.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13
  echo "$TORCH_VERSION" > "$STAGE/build-version"
  touch "$STAGE/.complete"
  rm -rf "$LT"
  mv "$STAGE" "$LT"
  rm -rf "$WORK"; WORK=
  log "step 1: libtorch $TORCH_VERSION at $LT ($(du -sh "$LT" | cut -f1))"
fi

# ------------------------------------------------------------ step 3a: sources
# (before step 2, so that `cargo fetch` can bring torch-sys if the registry lacks it)
log "step 3: copying $SRC_DIR to $SCRATCH"
mkdir -p "$SCRATCH"
# Cargo.toml is written below only when its patched text changes, so that its
# mtime (build.rs reruns on it) stays put between runs.
# -c and no -t: a changed file gets a new mtime here, so cargo sees it changed even
# when its mtime in SRC_DIR is older than the last build here (an edit during that build).
rsync -rlpc --delete --exclude 'target/' --exclude '.git/' --exclude '/.libtorch' \
  --exclude '/Cargo.toml' "$SRC_DIR/" "$SCRATCH/"
python3 - "$SRC_DIR/Cargo.toml" "$SCRATCH/Cargo.toml" "$TS" "$TORCH_VERSION" <<'PY'
import pathlib, re, sys
src, dst, ts, version = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3], sys.argv[4]
text = pathlib.Path(src).read_text()
out, table, pinned = [], None, False
for line in text.splitlines():
    s = line.strip()
    if s.startswith("["):
        table = s
        if s == "[patch.crates-io]":
            sys.exit("build-device-binary: SRC_DIR's Cargo.toml already has [patch.crates-io]; merge by hand")
    elif table == "[package.metadata.rotbench]" and re.match(r'libtorch\s*=', s):
        line, pinned = f'libtorch = "{version}"', True
    out.append(line)
if not pinned:
    sys.exit("build-device-binary: no libtorch = \"...\" under [package.metadata.rotbench] in Cargo.toml")
out += ["", "# Added by scripts/build-device-binary.sh: torch-sys with wrappers for ops",
        f"# missing from libtorch {version} stubbed out.", "[patch.crates-io]",
        f'torch-sys = {{ path = "{ts}" }}', ""]
new = "\n".join(out)
if not dst.exists() or dst.read_text() != new:
    dst.write_text(new)
PY

# ------------------------------------------------------------ step 2: torch-sys
if [ -f "$TS/.complete" ]; then
  log "step 2: patched torch-sys $TORCH_SYS_VERSION already at $TS"
else
  reg=$(ls -d "$HOME"/.cargo/registry/src/*/torch-sys-"$TORCH_SYS_VERSION" 2>/dev/null | head -n1 || true)
  if [ -z "$reg" ]; then
    log "step 2: torch-sys $TORCH_SYS_VERSION not in the cargo registry; cargo fetch"
    (cd "$SCRATCH" && cargo fetch --quiet) || true
    reg=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/torch-sys-"$TORCH_SYS_VERSION" 2>/dev/null | head -n1 || true)
  fi
  [ -n "$reg" ] || die "cannot find torch-sys-$TORCH_SYS_VERSION under ~/.cargo/registry/src"
  log "step 2: patching a copy of $reg"
  rm -rf "$TS.tmp"
  cp -a "$reg" "$TS.tmp"
  chmod -R u+w "$TS.tmp"
  python3 - "$TS.tmp/libtch/torch_api_generated.cpp" "$TORCH_VERSION" "${STUB_OPS[@]}" > "$TS.tmp/STUBBED-FOR-LIBTORCH-$TORCH_VERSION.txt" <<'PY'
import pathlib, re, sys
path, version, ops = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
text = path.read_text()
call = re.compile(r"\b(?:torch|at)::(" + "|".join(map(re.escape, ops)) + r")\(")
# Every wrapper is a top-level definition ending at the first "\n}\n".
fn = re.compile(r"^[A-Za-z][^\n;{}]*?\b(atg_\w+)\([^)]*\) \{\n(.*?)\n\}\n", re.M | re.S)
out, pos, seen, stubbed = [], 0, set(), []
for m in fn.finditer(text):
    body = m.group(2)
    hit = call.search(body)
    if not hit:
        continue
    if body.count("PROTECT(") != 1:
        sys.exit(f"unexpected body in {m.group(1)}")
    a = body.index("PROTECT(") + len("PROTECT(")
    b = body.rindex("\n  )")
    msg = f"{m.group(1)}: aten::{hit.group(1)} is not in libtorch {version} (rotbench device build)"
    new_body = body[:a] + f'\n    throw std::runtime_error("{msg}");' + body[b:]
    out.append(text[pos:m.start(2)] + new_body)
    pos = m.end(2)
    seen.add(hit.group(1))
    stubbed.append(f"{m.group(1)}\taten::{hit.group(1)}")
out.append(text[pos:])
new = "".join(out)
missing = set(ops) - seen
if missing:
    sys.exit(f"no wrapper calls {sorted(missing)}; is this torch-sys 0.26.0?")
new = new.replace('#include "torch_api_generated.h"\n', '#include "torch_api_generated.h"\n#include <stdexcept>\n', 1)
path.write_text(new)
print("\n".join(stubbed))
PY
  log "step 2: stubbed $(wc -l < "$TS.tmp/STUBBED-FOR-LIBTORCH-$TORCH_VERSION.txt") wrappers:"
  sed 's/^/    /' "$TS.tmp/STUBBED-FOR-LIBTORCH-$TORCH_VERSION.txt" >&2
  log "step 2: syntax check of torch-sys's C++ against the $TORCH_VERSION headers"
  for f in torch_api_generated.cpp torch_api.cpp; do
    g++ -fsyntax-only -std=c++17 -D_GLIBCXX_USE_CXX11_ABI=1 -DGLOG_USE_GLOG_EXPORT \
      -w -I"$LT/include" -I"$LT/include/torch/csrc/api/include" "$TS.tmp/libtch/$f" \
      || die "libtch/$f does not compile against libtorch $TORCH_VERSION; extend STUB_OPS from the errors above"
  done
  touch "$TS.tmp/.complete"
  rm -rf "$TS"
  mv "$TS.tmp" "$TS"
fi

# ------------------------------------------------------------ step 3b: build
log "step 3: cargo build --release -p rotbench --bin rotbench (target dir $CARGO_TARGET_DIR)"
(
  cd "$SCRATCH"
  unset LIBTORCH_INCLUDE LIBTORCH_LIB LIBTORCH_USE_PYTORCH LIBTORCH_STATIC
  LIBTORCH=$LT LIBTORCH_BYPASS_VERSION_CHECK=1 LIBTORCH_CXX11_ABI=1 \
  RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" \
    cargo build --release -p rotbench --bin rotbench -j "${JOBS:-$(nproc)}"
) || die "cargo build failed (sources in $SCRATCH, libtorch $LT)"

# ------------------------------------------------------------ step 4: strip
BIN=$CARGO_TARGET_DIR/release/rotbench
mkdir -p "$(dirname "$OUT")"
rm -f "$OUT"
strip -o "$OUT" "$BIN"
log "step 4: $OUT ($(du -h "$BIN" | cut -f1) -> $(du -h "$OUT" | cut -f1)), dynamic section:"
readelf -d "$OUT" | grep -E 'NEEDED|RUNPATH|RPATH' >&2
log "done in $((SECONDS - START)) s; run it with LD_LIBRARY_PATH=<site-packages>/torch/lib"
