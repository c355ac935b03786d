#!/usr/bin/env bash
# Run every cargo-fuzz target for SECONDS each (default 600).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs cargo-fuzz (`cargo install cargo-fuzz`), not libtorch: the targets fuzz
# rotbench-core's parsers. The toolchain here is stable, so RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz use the -Z flags it needs. Crashes land in fuzz/artifacts/<target>/;
# add each as a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-600}"; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(angles sidecar idx cifar manifest folder decode rotate_plan)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  if [ "$t" = cifar ] && [ ! -e fuzz/corpus/cifar/seed-two-records ]; then
    # Random bytes almost never make whole 3073-byte CIFAR records, so without a
    # seed the target stays in the length check; two all-zero records are valid.
    head -c 6146 /dev/zero > fuzz/corpus/cifar/seed-two-records
  fi
  if [ "$t" = decode ]; then
    # Start from real files of every kind (JPEG 4:2:0/4:4:4/progressive/CMYK, PNG modes, ...).
    find tests/fixtures/pipeline -type f \( -name '*.jpg' -o -name '*.png' -o -name '*.bmp' -o -name '*.webp' -o -name '*.tif*' -o -name '*.p?m' -o -name '*.gif' \) \
      -size -16k -exec cp -n {} fuzz/corpus/decode/ \;
  fi
  echo "== $t for ${secs}s"
  cargo fuzz run --sanitizer none -O "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -max_len=16384 -rss_limit_mb=4096 2>&1 | tail -n 3
done
