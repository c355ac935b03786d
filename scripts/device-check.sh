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
# 4. (only when asked) --batch-size 512, 2048 and 8192 on CUDA, wall times.
# DEVICE_CHECK_SECTIONS="1 4" runs only those sections (default "1 2 3").
# Prints a report; OUTDIR gets summaries and the comparison.
#
# Run on an NVIDIA H200 on 2026-11-30: docs/gpu-check.md has the results and the
# commands. That machine's Python torch is 2.11.0+cu130, not 2.13, and its
# libtorch_cuda.so is far larger than what can be carried there, so the binary is
# built here against torch 2.11's own libtorch with scripts/build-device-binary.sh,
# wrapped in a wheel (scripts/wheel/build.py --libtorch 2.11.0) and installed there
# with pip; BINARY is then the installed `rotbench` command.
set -uo pipefail
bin=$(readlink -f "$1"); out=$2
mkdir -p "$out"
tl=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$tl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi -L
python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.cuda.is_available())'
"$bin" --version
models=(--model models/mnist-cnn.pt --model models/mnist-cnn-aug.pt --model models/mnist-p4cnn.pt)
work=$(mktemp -d)
export XDG_CACHE_HOME="$work/cache"
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
# DEVICE_CHECK_SECTIONS picks sections (default "1 2 3").
sections=" ${DEVICE_CHECK_SECTIONS:-1 2 3} "
if [[ $sections == *" 1 "* ]]; then
echo "== 1. CPU against CUDA, 10,000 images, 0:360:15, three models"
run cpu-host    --no-cache --angles 0:360:15 --device cpu  --rotate-on host
run cuda-device --no-cache --angles 0:360:15 --device cuda --rotate-on device
run cuda-host   --no-cache --angles 0:360:15 --device cuda --rotate-on host
fi
if [[ $sections == *" 2 "* ]]; then
echo "== 2. device against host rotation on CUDA, 2,000 images, 0:360:15"
for cfg in "bilinear 0" "nearest 0" "bicubic 0.5" "bilinear edge" "bicubic reflect" "nearest 1 --mask-circle"; do
  set -- $cfg; tag="$1-$2${3:+-mask}"
  run "dev-$tag"  --no-cache --limit 2000 --angles 0:360:15 --device cuda --rotate-on device --interpolation $1 --fill $2 ${3:-}
  run "host-$tag" --no-cache --limit 2000 --angles 0:360:15 --device cuda --rotate-on host --interpolation $1 --fill $2 ${3:-}
done
fi
if [[ $sections == *" 3 "* ]]; then
echo "== 3. auto, exact, cache"
run cpu-cached  --angles 0,90 --limit 1000 --device cpu
run cuda-cached --angles 0,90 --limit 1000 --device cuda
run auto        --no-cache --angles 0,90 --limit 1000 --device auto
run cuda-exact  --no-cache --angles 0:360:15 --device cuda --exact
fi
if [[ $sections == *" 4 "* ]]; then
echo "== 4. batch size on CUDA (auto tries 64..512)"
for b in 512 2048 8192; do run "cuda-b$b" --no-cache --angles 0:360:15 --device cuda --batch-size $b; done
for b in 512 2048 8192; do
  python3 -c "import json,sys; t=json.load(open(sys.argv[1])); print('batch', sys.argv[2], 'wall_seconds', round(t['wall_seconds'],3))" "$work/cuda-b$b/timing.json" $b
done
fi
python3 scripts/device_compare.py "$work" | tee "$out/compare.txt"
for d in cpu-host cuda-device cuda-host; do [ -f "$work/$d/summary.json" ] && cp "$work/$d/summary.json" "$out/summary-$d.json"; done
[ -f "$work/cuda-device/timing.json" ] && cp "$work/cuda-device/timing.json" "$out/timing-cuda-device.json"
rm -rf "$work"
