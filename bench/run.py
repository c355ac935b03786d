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
# ROTBENCH_BIN: another build (an earlier commit's, copied aside) for a before/after in one sitting.
ROT = os.environ.get("ROTBENCH_BIN", str(ROOT / "target/release/rotbench"))
ANGLES = "0:360:30"
# rotbench's allocator settings (src/malloc.rs), for the allocator-matched floor.
TUNED = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"


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


def predictions_by_angle(path):
    """rotbench's predictions.csv as {angle: [pred in index order]}."""
    import csv

    by = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            by.setdefault(float(r["angle"]), []).append((int(r["index"]), int(r["pred"])))
    return {a: [p for _, p in sorted(v)] for a, v in by.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="all", help="comma list of: mnist, rgb32, r224, spatial, backends, busy, rest (default all)")
    ap.add_argument("--spatial-limit", type=int, default=10_000, help="MNIST digits for the spatial grid (default all 10,000)")
    args = ap.parse_args()
    reps = args.repeat
    only = set(args.only.split(",")) if args.only != "all" else {"mnist", "rgb32", "r224", "spatial", "backends", "busy", "rest"}
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "rotbench"
    rgb = cache / "bench/rgb10k/test_batch.bin"
    if "rgb32" in only and not rgb.exists():
        subprocess.run([PY, str(ROOT / "bench/make_rgb_data.py"), str(rgb)], check=True)
    examples = cache / "bench/examples-cnn/mnist-examples-cnn.pt"
    if "mnist" in only and not examples.exists():
        subprocess.run([PY, str(ROOT / "bench/make_examples_cnn.py"), str(examples)], check=True, capture_output=True)
    resnet = cache / "bench/resnet18/resnet18.pt"
    if "r224" in only and not resnet.exists():
        print("training the 224x224 workload's ResNet-18 once (a few minutes; cached)", flush=True)
        subprocess.run([PY, str(ROOT / "bench/make_resnet.py"), str(resnet)], check=True)
    mnist_raw = pathlib.Path(subprocess.run(["bash", str(ROOT / "scripts/fetch-mnist.sh")], capture_output=True, text=True, check=True).stdout.strip())
    jpegs = ROOT / "tests/fixtures/jpeg224"
    # name, model, peer data, rotbench data, floor shape, extra flags, images per angle, angles, floor batch
    work = [
        ("mnist", "MNIST bundled", ROOT / "models/mnist-cnn.pt", ROOT / "datasets/mnist/t10k-images.idx3-ubyte.gz", ROOT / "datasets/mnist", "1,28,28", [], 10_000, ANGLES, 256),
        ("mnist", "MNIST examples", examples, ROOT / "datasets/mnist/t10k-images.idx3-ubyte.gz", ROOT / "datasets/mnist", "1,28,28", [], 10_000, ANGLES, 256),
        ("rgb32", "RGB 32x32 CNN", ROOT / "tests/fixtures/shapes/shapes-cnn.pt", rgb, rgb, "3,32,32", ["--resize", "32x32"], 10_000, ANGLES, 256),
        ("r224", "ResNet-18 224", resnet, jpegs, jpegs, "3,224,224", [], 300, "0:360:90", 64),
    ]
    rows = []
    tmp = tempfile.mkdtemp(prefix="rotbench-bench-")
    tuned_env = dict(os.environ, GLIBC_TUNABLES=TUNED)
    agreement = None
    for key, name, model, peer_data, rot_data, shape, extra, n, angles, fbatch in work:
        if key not in only:
            continue
        images = n * len(range(*[int(v) for v in angles.split(":")]))
        rot = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--model", str(model), "--data", str(rot_data), "--angles", angles, "--out", f"{tmp}/out-{key}"] + extra
        floor = [PY, str(ROOT / "bench/floor.py"), "--model", str(model), "--shape", shape, "--images", str(images), "--batch", str(fbatch)]
        cmds = {
            "a": (floor, "forward_seconds", None),
            "a2": (floor + ["--optimized"], "forward_seconds", None),
            "a2m": (floor + ["--optimized"], "forward_seconds", tuned_env),
            "b": (rot, None, None),
            "c": ([PY, str(ROOT / "bench/peer.py"), "--model", str(model), "--data", str(peer_data), "--angles", angles], None, None),
        }
        # Interleaved rounds (a, a2, a2m, b, c, a, ...) so that a slow spell on a shared
        # machine hits every measurement alike instead of one of them.
        got = {k: ([], []) for k in cmds}
        peer_out = None
        for _ in range(reps):
            for k, (cmd, field, env) in cmds.items():
                w, m, out = timed(cmd, env)
                if field:
                    w = json.loads(out.strip().splitlines()[-1])[field]
                if k == "c":
                    peer_out = json.loads(out.strip().splitlines()[-1])
                got[k][0].append(w)
                got[k][1].append(m)
        med = {k: (statistics.median(got[k][0]), max(got[k][1])) for k in cmds}
        rows.append((name, n, angles, med))
        if "predictions" in (peer_out or {}):
            mine = predictions_by_angle(f"{tmp}/out-{key}/predictions.csv")
            diff = sum(x != y for a, ps in peer_out["predictions"].items() for x, y in zip(mine[float(a)], ps))
            total = sum(len(ps) for ps in peer_out["predictions"].values())
            agreement = (name, diff, total)
    if rows:
        print(f"\nmedian of {reps} runs, {os.cpu_count()} cores")
        print(f"{'workload':<15} {'images x angles':>16} {'(a) floor':>10} {'(a2) opt':>9} {'(a2m) opt+malloc':>17} {'(b) rotbench':>13} {'(c) peer':>10} {'c/b':>6} {'b/a2m':>6} {'b/a2':>6}   peak RSS MB a/a2/a2m/b/c")
        for name, n, angles, m in rows:
            (a, ar), (a2, a2r), (a2m, a2mr), (b, br), (c, cr) = (m[k] for k in ("a", "a2", "a2m", "b", "c"))
            shape = f"{n:,} x {angles}"
            print(f"{name:<15} {shape:>16} {a:>9.2f}s {a2:>8.2f}s {a2m:>16.2f}s {b:>12.2f}s {c:>9.2f}s {c / b:>6.2f} {b / a2m:>6.2f} {b / a2:>6.2f}   {ar:.0f}/{a2r:.0f}/{a2mr:.0f}/{br:.0f}/{cr:.0f}")
        print("(a), (a2) and (a2m) time only the forward passes; (b) and (c) are whole processes (start-up, decoding, rotation, metrics, outputs).")
    if agreement:
        name, diff, total = agreement
        print(f"{name}: rotbench and the peer differ on {diff} of {total} predictions")
    if "r224" in only:
        # Peak RSS against the number of JPEGs: 200 and 2,000 (generated into the cache).
        many = cache / "bench/jpeg224-2000"
        if not many.exists():
            subprocess.run([PY, str(ROOT / "tests/fixtures/make_jpeg224.py"), str(many), "--count", "2000"], check=True, capture_output=True)
        base = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--model", str(resnet), "--data", str(many), "--angles", "0,90", "--out", f"{tmp}/rss"]
        w200, rss200, _ = timed(base + ["--limit", "200"])
        w2000, rss2000, _ = timed(base)
        print(f"peak RSS, ResNet-18 224, 2 angles: 200 JPEGs {rss200:.0f} MB ({w200:.1f} s), 2,000 JPEGs {rss2000:.0f} MB ({w2000:.1f} s)")
    if "spatial" in only:
        spatial(reps, tmp, args.spatial_limit)
    if "backends" in only:
        backends(reps, tmp)
    if "busy" in only:
        busy(reps, tmp)
    if "rest" not in only:
        return

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


def busy(reps, tmp):
    """Issue 36: a busy machine. The bundled MNIST CNN, 3,000 digits x 12 angles,
    first idle, then with one `sh -c 'while :; do :; done'` per core running (started
    and stopped here): rotbench's default threads against --threads 1 and --threads 2,
    and the peer under the same load. Interleaved rounds, medians of reps."""
    base = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--bootstrap", "0", "--model", str(ROOT / "models/mnist-cnn.pt"),
            "--data", str(ROOT / "datasets/mnist"), "--limit", "3000", "--angles", ANGLES, "--out", f"{tmp}/busy"]
    peer = [PY, str(ROOT / "bench/peer.py"), "--model", str(ROOT / "models/mnist-cnn.pt"),
            "--data", str(ROOT / "datasets/mnist/t10k-images.idx3-ubyte.gz"), "--angles", ANGLES, "--limit", "3000"]
    cmds = {"default": base, "threads 1": base + ["--threads", "1"], "threads 2": base + ["--threads", "2"], "peer": peer}
    result = {}
    for state in ("idle", "busy"):
        load = []
        if state == "busy":
            load = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 1)]
        try:
            got = {k: [] for k in cmds}
            for _ in range(reps):
                for k, cmd in cmds.items():
                    got[k].append(timed(cmd)[0])
            result[state] = {k: statistics.median(v) for k, v in got.items()}
        finally:
            for p in load:
                p.kill()
                p.wait()
    print(f"\nbusy machine (MNIST CNN, 3,000 x {ANGLES}; busy = {os.cpu_count()} spinning shells), median of {reps}:")
    print(f"{'state':<6} {'default':>9} {'threads 1':>10} {'threads 2':>10} {'peer':>8} {'default / best of 1, 2':>24}")
    for state, r in result.items():
        best = min(r["threads 1"], r["threads 2"])
        print(f"{state:<6} {r['default']:>8.2f}s {r['threads 1']:>9.2f}s {r['threads 2']:>9.2f}s {r['peer']:>7.2f}s {r['default'] / best:>24.2f}")


def spatial(reps, tmp, limit):
    """Issue 34: Engstrom et al.'s 775-point grid (±30° in 2° steps x ±3 px in 1.5 px
    steps on both axes) with the bundled CNN, with and without --grid-early-stop,
    each against the optimised, allocator-matched floor (a2m) for the evaluations it
    makes (the early-stopped run's count is read from its summary.json)."""
    model = str(ROOT / "models/mnist-cnn.pt")
    grid = ["--angles=-30:31:2", "--translate=-3:4:1.5px", "--limit", str(limit)]
    base = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--no-predictions", "--bootstrap", "0",
            "--model", model, "--data", str(ROOT / "datasets/mnist")] + grid
    tuned_env = dict(os.environ, GLIBC_TUNABLES=TUNED)
    full, _, _ = median_of(reps, base + ["--out", f"{tmp}/sp-full"])
    stop, _, _ = median_of(reps, base + ["--grid-early-stop", "--out", f"{tmp}/sp-stop"])
    with open(f"{tmp}/sp-stop/summary.json") as f:
        e = json.load(f)["models"][0]["sweep"]["early_stop"]
    with open(f"{tmp}/sp-full/summary.json") as f:
        grid_full = json.load(f)["models"][0]["sweep"]["grid_accuracy"]
    n_full, n_stop = e["evaluations_without_stop"], e["evaluations"]
    floor = [PY, str(ROOT / "bench/floor.py"), "--model", model, "--shape", "1,28,28", "--optimized", "--images"]
    f_full, _, _ = median_of(reps, floor + [str(n_full)], tuned_env, "forward_seconds")
    f_stop, _, _ = median_of(reps, floor + [str(n_stop)], tuned_env, "forward_seconds")
    print(f"\nspatial grid, 775 points x {limit} MNIST digits, bundled CNN (median of {reps}):")
    print(f"  full grid:  rotbench {full:.2f} s, floor (a2m) {f_full:.2f} s for {n_full:,} evaluations: {full / f_full:.2f}x the floor")
    print(f"  early stop: rotbench {stop:.2f} s, floor (a2m) {f_stop:.2f} s for {n_stop:,} evaluations: {stop / f_stop:.2f}x the floor; "
          f"{100 * (1 - n_stop / n_full):.1f}% of the evaluations saved, {full / stop:.2f}x faster than the full grid")
    print(f"  grid accuracy {grid_full:.4f} (the same with early stop)")


def backends(reps, tmp):
    """The same three bundled models through each backend rotbench reads: optimised
    TorchScript (.pt), AOTInductor (.pt2) and ONNX Runtime (.onnx), 10k MNIST digits x
    12 angles, whole sweeps in interleaved rounds; ratios against TorchScript, and
    against each runtime's own forward-pass floor (issue 36: bench/floor.py, the sum
    over the three models of InferenceSession.run, aoti_load_package's runner, or the
    optimised TorchScript module with rotbench's allocator settings; batch 256)."""
    fmts = [("torchscript (.pt)", "pt"), ("aotinductor (.pt2)", "pt2"), ("onnxruntime (.onnx)", "onnx")]
    models = ("mnist-cnn", "mnist-cnn-aug", "mnist-p4cnn")
    tuned_env = dict(os.environ, GLIBC_TUNABLES=TUNED)
    cmds = {}
    floors = {}
    for name, ext in fmts:
        cmd = [ROT, "sweep", "--quiet", "--no-cache", "--no-report", "--data", str(ROOT / "datasets/mnist"), "--angles", ANGLES, "--out", f"{tmp}/be-{ext}"]
        for m in models:
            cmd += ["--model", str(ROOT / f"models/{m}.{ext}")]
        cmds[name] = cmd
        floors[name] = [[PY, str(ROOT / "bench/floor.py"), "--model", str(ROOT / f"models/{m}.{ext}"), "--shape", "1,28,28",
                         "--images", "120000", "--batch", "256"] + (["--optimized"] if ext == "pt" else []) for m in models]
    # ONNX Runtime is fetched on its first use: not inside a timed run.
    warm = [a if a != f"{tmp}/be-onnx" else f"{tmp}/be-warm" for a in cmds["onnxruntime (.onnx)"]]
    subprocess.run(warm + ["--limit", "1"], check=True, capture_output=True)
    got = {k: ([], []) for k in cmds}
    floor_got = {k: [] for k in cmds}
    for _ in range(reps):
        for k, cmd in cmds.items():
            w, m, _ = timed(cmd)
            got[k][0].append(w)
            got[k][1].append(m)
            total = 0.0
            for f in floors[k]:
                _, _, out = timed(f, tuned_env if k.startswith("torchscript") else None)
                total += json.loads(out.strip().splitlines()[-1])["forward_seconds"]
            floor_got[k].append(total)
    base = statistics.median(got["torchscript (.pt)"][0])
    print(f"\nbackends: the three bundled models, 10,000 x {ANGLES}, median of {reps} whole sweeps, {os.cpu_count()} cores")
    print(f"{'backend':<22} {'wall':>9} {'/ torchscript':>14} {'own floor':>10} {'/ own floor':>12} {'peak RSS MB':>12}")
    for k in cmds:
        w = statistics.median(got[k][0])
        fl = statistics.median(floor_got[k])
        print(f"{k:<22} {w:>8.2f}s {w / base:>14.2f} {fl:>9.2f}s {w / fl:>12.2f} {max(got[k][1]):>12.0f}")
    import csv

    def rows(ext):
        with open(f"{tmp}/be-{ext}/predictions.csv") as f:
            return {(r["model"], r["angle"], r["index"]): r["pred"] for r in csv.DictReader(f)}

    pt = rows("pt")
    for name, ext in fmts[1:]:
        other = rows(ext)
        diff = sum(pt[k] != other[k] for k in pt)
        print(f"{name}: {diff} of {len(pt)} predictions differ from TorchScript's")


if __name__ == "__main__":
    main()
