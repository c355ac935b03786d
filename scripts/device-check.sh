#!/usr/bin/env bash
# CUDA check of a rotbench binary on a machine with an NVIDIA GPU and a Python
# torch whose libtorch the binary was built against:
#
#   scripts/device-check.sh BINARY OUTDIR
#
# 1. The three bundled models over MNIST (10k) at 0:360:15 on the CPU (host
#    rotation), on CUDA with device rotation (the CUDA default) and on CUDA with
#    host rotation: predictions compared sample by sample, and wall times.
# 2. Device against host rotation, both on CUDA, for every interpolation, a
#    nonzero fill, edge and reflect fills and --mask-circle (2,000 images): the
#    rotation is the only difference, so the predictions must agree.
# 3. --device auto, --exact on CUDA, and the cache: a CUDA run is not answered
#    from a CPU run's cache entries.
# Prints a report; OUTDIR gets summaries and the comparison.
#
# Not yet run on a GPU. The lent GPU machine's image has Python torch 2.11.0+cu130,
# not 2.13, and libtorch_cuda.so is far larger than what can be carried there, so
# the binary must be built here against torch 2.11's own libtorch. That build was
# done this way (tch 0.26's generated bindings name 15 ops that 2.11 lacks):
#   pip download --no-deps --only-binary :all: --python-version 3.12 \
#     --platform manylinux_2_28_x86_64 torch==2.11.0   # 531 MB, the cu130 build
#   unzip it (torch/include, torch/lib), echo 2.11.0 > torch/build-version
#   copy ~/.cargo/registry/src/*/torch-sys-0.26.0, make each missing op's wrapper in
#   libtch/torch_api_generated.cpp throw, and point [patch.crates-io] torch-sys at it
#   in a scratch checkout whose build.rs expects 2.11.0
#   LIBTORCH=<torch> LIBTORCH_BYPASS_VERSION_CHECK=1 \
#     RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" cargo build --release
#   strip the binary (95 MB -> 5.5 MB) and carry it to the GPU machine.
set -uo pipefail
bin=$(readlink -f "$1"); out=$2
mkdir -p "$out"
tl=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$tl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export XDG_CACHE_HOME="$out/cache"
nvidia-smi -L
python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.cuda.is_available())'
"$bin" --version
models=(--model models/mnist-cnn.pt --model models/mnist-cnn-aug.pt --model models/mnist-p4cnn.pt)
work=$(mktemp -d)
run() { # name, then sweep flags
  local name=$1; shift
  local t0=$(date +%s.%N)
  "$bin" sweep --quiet --no-report "${models[@]}" --data datasets/mnist --out "$work/$name" "$@" \
    > "$work/$name.log" 2>&1
  local rc=$?
  local t1=$(date +%s.%N)
  printf '%-28s exit %d  %6.1f s\n' "$name" "$rc" "$(awk "BEGIN { print $t1 - $t0 }")"
  [ $rc = 0 ] || tail -5 "$work/$name.log"
}
echo "== 1. CPU against CUDA, 10,000 images, 0:360:15, three models"
run cpu-host    --no-cache --angles 0:360:15 --device cpu  --rotate-on host
run cuda-device --no-cache --angles 0:360:15 --device cuda --rotate-on device
run cuda-host   --no-cache --angles 0:360:15 --device cuda --rotate-on host
echo "== 2. device against host rotation on CUDA, 2,000 images, 0:360:15"
for cfg in "bilinear 0" "nearest 0" "bicubic 0.5" "bilinear edge" "bicubic reflect" "nearest 1 --mask-circle"; do
  set -- $cfg; tag="$1-$2${3:+-mask}"
  run "dev-$tag"  --no-cache --limit 2000 --angles 0:360:15 --device cuda --rotate-on device --interpolation $1 --fill $2 ${3:-}
  run "host-$tag" --no-cache --limit 2000 --angles 0:360:15 --device cuda --rotate-on host --interpolation $1 --fill $2 ${3:-}
done
echo "== 3. auto, exact, cache"
run cpu-cached  --angles 0,90 --limit 1000 --device cpu
run cuda-cached --angles 0,90 --limit 1000 --device cuda
run auto        --no-cache --angles 0,90 --limit 1000 --device auto
run cuda-exact  --no-cache --angles 0:360:15 --device cuda --exact
python3 scripts/device_compare.py "$work" | tee "$out/compare.txt"
for d in cpu-host cuda-device cuda-host; do cp "$work/$d/summary.json" "$out/summary-$d.json"; done
cp "$work/cuda-device/timing.json" "$out/timing-cuda-device.json"
rm -rf "$work"
