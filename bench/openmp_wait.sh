#!/usr/bin/env bash
# Issue 36: how libgomp's wait settings change a sweep idle and on a busy machine
# (two spinning shells, one per core of the 2-core machine). Three interleaved
# rounds of one run per setting; prints "state setting seconds" lines. rotbench sets
# GOMP_SPINCOUNT=10000 itself unless the environment sets it (src/openmp_wait.rs):
# "libgomp" is libgomp's own default, 300000.
# TorchScript on small images runs no OpenMP threads at all since issue 36 (its
# batches are split over slice threads), so the settings matter for .pt2 packages,
# large images and mixed runs: MODEL=models/mnist-cnn.pt2 measures a .pt2.
# Usage: [MODEL=path] bash bench/openmp_wait.sh   (from the repository root, after a release build)
set -u
cmd="target/release/rotbench sweep --model ${MODEL:-models/mnist-cnn.pt} --data datasets/mnist --limit 3000 --angles 0:360:30 --no-cache --no-report --quiet --bootstrap 0 --out ${TMPDIR:-/tmp}/openmp-wait"
run() {
  local label=$1; shift
  local t0 t1
  t0=$(date +%s.%N)
  env "$@" $cmd
  t1=$(date +%s.%N)
  echo "$state $label $(echo "$t1 - $t0" | bc)"
}
for state in idle busy; do
  pids=()
  if [ "$state" = busy ]; then
    for _ in 1 2; do sh -c 'while :; do :; done' & pids+=($!); done
  fi
  for _ in 1 2 3; do
    run default X=1
    run libgomp GOMP_SPINCOUNT=300000
    run spin10k GOMP_SPINCOUNT=10000
    run spin1k GOMP_SPINCOUNT=1000
    run passive OMP_WAIT_POLICY=PASSIVE
    cmd="$cmd --threads 1" run threads1 X=1
  done
  if [ ${#pids[@]} -gt 0 ]; then kill "${pids[@]}"; fi
done
