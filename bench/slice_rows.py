"""How many rows a batch slice should hold (src/engine/mod.rs, SLICE): the forward
passes alone of each `make bench` CNN, as the sweep runs them when it splits
batches (two processes side by side, one libtorch thread each, N rows a call)
against one process with two threads and batches of 256 (the floor's setting).
Each configuration does the same number of images; medians of --repeat rounds,
interleaved.

    python bench/slice_rows.py [--repeat 3] [--images 30000]
"""
import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TUNED = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=1073741824"


def child(model, shape, threads, rows, images):
    import torch

    torch.set_num_threads(threads)
    m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.load(model).eval()))
    x = torch.rand(rows, *shape)
    with torch.no_grad():
        for _ in range(3):
            m(x)
        t = time.perf_counter()
        for _ in range(max(1, images // rows)):
            m(x)
    print(time.perf_counter() - t)


def run(model, shape, threads, rows, images, procs):
    env = dict(os.environ, GLIBC_TUNABLES=TUNED)
    args = [sys.executable, __file__, "--child", model, ",".join(map(str, shape)), str(threads), str(rows), str(images // procs)]
    # Side by side: the slower process's forward time (each times its own loop,
    # after loading torch and the model, so start-up is not counted).
    ps = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    outs = [p.communicate()[0] for p in ps]
    if any(p.returncode != 0 for p in ps):
        sys.exit(f"failed: {' '.join(args)}")
    return max(float(o.strip()) for o in outs)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        model, shape, threads, rows, images = sys.argv[2:7]
        return child(model, [int(v) for v in shape.split(",")], int(threads), int(rows), int(images))
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--images", type=int, default=30_000)
    a = ap.parse_args()
    cache = pathlib.Path(os.environ.get("XDG_CACHE_HOME", pathlib.Path.home() / ".cache")) / "rotbench/bench"
    examples = cache / "examples-cnn/mnist-examples-cnn.pt"
    if not examples.exists():
        subprocess.run([sys.executable, str(ROOT / "bench/make_examples_cnn.py"), str(examples)], check=True, capture_output=True)
    models = [
        ("MNIST bundled", ROOT / "models/mnist-cnn.pt", (1, 28, 28)),
        ("MNIST examples", examples, (1, 28, 28)),
        ("RGB 32x32", ROOT / "tests/fixtures/shapes/shapes-cnn.pt", (3, 32, 32)),
    ]
    configs = [("2 threads, batch 256", 2, 256, 1)] + [(f"2 x 1 thread, {r} rows", 1, r, 2) for r in (16, 32, 64, 128)]
    print(f"forward passes of {a.images:,} images; median of {a.repeat}; ratio to '2 threads, batch 256'")
    for name, model, shape in models:
        got = {c[0]: [] for c in configs}
        for _ in range(a.repeat):
            for label, threads, rows, procs in configs:
                got[label].append(run(str(model), shape, threads, rows, a.images, procs))
        base = statistics.median(got[configs[0][0]])
        cells = [f"{label} {statistics.median(v):.2f} s ({statistics.median(v) / base:.2f})" for label, v in got.items()]
        print(f"{name}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
