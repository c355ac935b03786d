"""`make bench`: rotbench against the hand-written PyTorch peer and the forward-pass
floor, on the same machine in one go.

Workloads: the bundled MNIST CNN on the MNIST test set, and the RGB 32x32 shapes CNN
(tests/fixtures/shapes) on 10k generated RGB images; 12 angles (0:360:30) each.
Every measurement runs --repeat times (default 3), in interleaved rounds; the table
shows medians and peak RSS. Ratios: c/b = speed-up over the peer, b/a' = overhead above the optimised floor.
Also: peak RSS for 10k vs 60k images, start-up time, a cached re-run, and the cost of the
default bootstrap (--bootstrap 1000) against the demo sweep's wall time.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PY = sys.executable
ROT = str(ROOT / "target/release/rotbench")
ANGLES = "0:360:30"


def timed(cmd, env=None):
    """Run cmd under /usr/bin/time; return (wall seconds, peak RSS MB, stdout)."""
    with tempfile.NamedTemporaryFile("r") as tf:
        r = subprocess.run(["/usr/bin/time", "-f", "%e %M", "-o", tf.name] + cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr}")
        wall, rss = tf.read().split()[-2:]
    return float(wall), int(rss) / 1024, r.stdout


def median_of(n, cmd, env=None, field=None):
    walls, rss, out = [], [], ""
    for _ in range(n):
        w, m, out = timed(cmd, env)
        if field:
            w = json.loads(out.strip().splitlines()[-1])[field]
        walls.append(w)
        rss.append(m)
    return statistics.median(walls), max(rss), out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    reps = args.repeat
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "rotbench"
    rgb = cache / "bench/rgb10k/test_batch.bin"
    if not rgb.exists():
        subprocess.run([PY, str(ROOT / "bench/make_rgb_data.py"), str(rgb)], check=True)
    mnist_raw = pathlib.Path(subprocess.run(["bash", str(ROOT / "scripts/fetch-mnist.sh")], capture_output=True, text=True, check=True).stdout.strip())
    work = [
        ("MNIST CNN", ROOT / "models/mnist-cnn.pt", ROOT / "datasets/mnist/t10k-images.idx3-ubyte.gz", ROOT / "datasets/mnist", "1,28,28", []),
        ("RGB 32x32 CNN", ROOT / "tests/fixtures/shapes/shapes-cnn.pt", rgb, rgb, "3,32,32", ["--resize", "32x32"]),
    ]
    rows = []
    tmp = tempfile.mkdtemp(prefix="rotbench-bench-")
    for name, model, peer_data, rot_data, shape, extra in work:
        images = 10_000 * 12
        rot = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--model", str(model), "--data", str(rot_data), "--angles", ANGLES, "--out", f"{tmp}/out"] + extra
        cmds = {
            "a": ([PY, str(ROOT / "bench/floor.py"), "--model", str(model), "--shape", shape, "--images", str(images)], "forward_seconds"),
            "a2": ([PY, str(ROOT / "bench/floor.py"), "--model", str(model), "--shape", shape, "--images", str(images), "--optimized"], "forward_seconds"),
            "b": (rot, None),
            "c": ([PY, str(ROOT / "bench/peer.py"), "--model", str(model), "--data", str(peer_data), "--angles", ANGLES], None),
        }
        # Interleaved rounds (a, a2, b, c, a, a2, ...) so that a slow spell on a shared
        # machine hits every measurement alike instead of one of them.
        got = {k: ([], []) for k in cmds}
        for _ in range(reps):
            for k, (cmd, field) in cmds.items():
                w, m, out = timed(cmd)
                if field:
                    w = json.loads(out.strip().splitlines()[-1])[field]
                got[k][0].append(w)
                got[k][1].append(m)
        (a, a_rss), (a2, a2_rss), (b, b_rss), (c, c_rss) = (
            (statistics.median(got[k][0]), max(got[k][1])) for k in ("a", "a2", "b", "c"))
        rows.append((name, a, a_rss, a2, a2_rss, b, b_rss, c, c_rss))
    print(f"\n10,000 images x 12 angles ({ANGLES}), median of {reps} runs, {os.cpu_count()} cores")
    print(f"{'workload':<15} {'(a) floor':>10} {'(a2) opt floor':>15} {'(b) rotbench':>13} {'(c) peer':>10} {'c/b':>6} {'b/a2':>6}   peak RSS MB a/a2/b/c")
    for name, a, ar, a2, a2r, b, br, c, cr in rows:
        print(f"{name:<15} {a:>9.2f}s {a2:>14.2f}s {b:>12.2f}s {c:>9.2f}s {c / b:>6.2f} {b / a2:>6.2f}   {ar:.0f}/{a2r:.0f}/{br:.0f}/{cr:.0f}")
    print("(a) and (a2) time only the forward passes; (b) and (c) are whole processes (start-up, decoding, rotation, metrics, outputs).")

    # Memory against dataset size, start-up, cached re-run.
    base = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--no-predictions", "--model", str(ROOT / "models/mnist-cnn.pt"), "--angles", "0,90", "--out", f"{tmp}/m"]
    _, rss10, _ = timed(base + ["--data", str(ROOT / "datasets/mnist")])
    _, rss60, _ = timed(base + ["--data", str(mnist_raw / "train-images.idx3-ubyte")])
    print(f"peak RSS, MNIST CNN, 2 angles, no predictions.csv: 10k images {rss10:.0f} MB, 60k images {rss60:.0f} MB")
    start, _, _ = median_of(reps, [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--model", str(ROOT / "models/mnist-cnn.pt"), "--data", str(ROOT / "datasets/mnist"), "--angles", "0", "--limit", "1", "--out", f"{tmp}/s"])
    print(f"start-up (sweep of 1 image at 1 angle, whole process): {start:.2f} s")
    env = dict(os.environ, XDG_CACHE_HOME=f"{tmp}/cache")
    cold = [ROT, "sweep", "--quiet", "--no-report", "--model", str(ROOT / "models/mnist-cnn.pt"), "--data", str(ROOT / "datasets/mnist"), "--angles", ANGLES, "--out", f"{tmp}/c"]
    t_cold, _, _ = timed(cold, env)
    t_warm, _, _ = timed(cold, env)
    print(f"prediction cache: first run {t_cold:.2f} s, unchanged re-run {t_warm:.2f} s ({t_cold / t_warm:.0f}x)")

    # The bootstrap's cost (issue 18: the default must add at most 10% to the demo
    # sweep). The demo sweep from scratch without intervals, once; then cached re-runs
    # with --bootstrap 1000 and 0 (the same work but the intervals), median of reps.
    demo = [ROT, "sweep", "--quiet", "--no-report", "--data", str(ROOT / "datasets/mnist"), "--angles", "0:360:5", "--out", f"{tmp}/d"]
    for m in ("mnist-cnn", "mnist-cnn-aug", "mnist-p4cnn"):
        demo += ["--model", str(ROOT / f"models/{m}.pt")]
    denv = dict(os.environ, XDG_CACHE_HOME=f"{tmp}/democache")
    t_demo, _, _ = timed(demo + ["--bootstrap", "0"], denv)
    with_b, _, _ = median_of(reps, demo + ["--bootstrap", "1000"], denv)
    without_b, _, _ = median_of(reps, demo + ["--bootstrap", "0"], denv)
    cost = with_b - without_b
    print(f"bootstrap 1000 on the demo (3 models x 72 angles x 10k): {cost:.2f} s "
          f"(cached re-runs {with_b:.2f} s with, {without_b:.2f} s without) = "
          f"{100 * cost / t_demo:.1f}% of the demo sweep from scratch ({t_demo:.2f} s)")


if __name__ == "__main__":
    main()
