"""Before/after in one sitting: the sweep of each `make bench` workload with two
rotbench binaries and the allocator-matched optimised floor (a2m), interleaved
round by round (A, B, floor, A, B, floor, ...), medians of --repeat rounds.

    python bench/ab.py --before /tmp/rotbench-before [--after target/release/rotbench] \
        [--only bundled,examples,rgb32] [--repeat 5]

Prints, per workload, each median and its ratio to the floor (b/a2m), and after/before.
Copy the earlier build aside first (cp target/release/rotbench /tmp/rotbench-before),
then build the change.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from run import TUNED, timed  # bench/run.py: the same timing and allocator settings as make bench

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable


def wall(cmd, env=None):
    """Wall seconds and stdout of cmd (exits on failure)."""
    seconds, _, out = timed(cmd, env)
    return seconds, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=str(ROOT / "target/release/rotbench"))
    ap.add_argument("--only", default="bundled,examples,rgb32")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--flags", default="", help="extra sweep flags for both builds, e.g. '--threads 1'")
    a = ap.parse_args()
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "rotbench/bench"
    rgb = cache / "rgb10k/test_batch.bin"
    examples = cache / "examples-cnn/mnist-examples-cnn.pt"
    if not rgb.exists():
        subprocess.run([PY, str(ROOT / "bench/make_rgb_data.py"), str(rgb)], check=True)
    if not examples.exists():
        subprocess.run([PY, str(ROOT / "bench/make_examples_cnn.py"), str(examples)], check=True, capture_output=True)
    mnist = ROOT / "datasets/mnist"
    work = {
        "bundled": (ROOT / "models/mnist-cnn.pt", mnist, "1,28,28", []),
        "examples": (examples, mnist, "1,28,28", []),
        "rgb32": (ROOT / "tests/fixtures/shapes/shapes-cnn.pt", rgb, "3,32,32", ["--resize", "32x32"]),
    }
    tmp = tempfile.mkdtemp(prefix="rotbench-ab-")
    tuned = dict(os.environ, GLIBC_TUNABLES=TUNED)
    for name in a.only.split(","):
        model, data, shape, extra = work[name]
        sweep = ["sweep", "--quiet", "--no-cache", "--no-report", "--model", str(model), "--data", str(data),
                 "--angles", "0:360:30", "--out", f"{tmp}/o"] + extra + a.flags.split()
        floor = [PY, str(ROOT / "bench/floor.py"), "--model", str(model), "--shape", shape, "--images", "120000", "--optimized"]
        got = {"before": [], "after": [], "floor": []}
        for _ in range(a.repeat):
            got["before"].append(wall([a.before] + sweep)[0])
            got["after"].append(wall([a.after] + sweep)[0])
            _, out = wall(floor, tuned)
            got["floor"].append(json.loads(out.strip().splitlines()[-1])["forward_seconds"])
        m = {k: statistics.median(v) for k, v in got.items()}
        print(f"{name}: before {m['before']:.2f} s ({m['before'] / m['floor']:.2f} of the floor), "
              f"after {m['after']:.2f} s ({m['after'] / m['floor']:.2f}), floor (a2m) {m['floor']:.2f} s, "
              f"after/before {m['after'] / m['before']:.3f}  [rounds: before {got['before']}, after {got['after']}, floor {[round(f, 2) for f in got['floor']]}]",
              flush=True)


if __name__ == "__main__":
    main()
