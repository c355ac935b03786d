"""The floor: forward passes only, over as many images as the sweep evaluates,
built in advance as tensors (no decoding, no rotation, no metrics).

    python bench/floor.py --model M.pt --shape 1,28,28 --images 120000 [--optimized]

--optimized applies torch.jit.freeze + torch.jit.optimize_for_inference first, the
path rotbench runs by default. Prints one JSON line with the forward time.
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--shape", required=True)
    ap.add_argument("--images", type=int, required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--optimized", action="store_true")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    m = torch.jit.load(a.model).eval()
    if a.optimized:
        m = torch.jit.optimize_for_inference(torch.jit.freeze(m))
    c, h, w = (int(v) for v in a.shape.split(","))
    g = torch.Generator().manual_seed(0)
    batches = [torch.rand(a.batch, c, h, w, generator=g) for _ in range(8)]
    with torch.no_grad():
        for b in batches[:2]:  # warm-up (profiling executor, oneDNN primitives)
            m(b)
        t0 = time.perf_counter()
        done = 0
        k = 0
        while done < a.images:
            n = min(a.batch, a.images - done)
            m(batches[k % len(batches)][:n])
            done += n
            k += 1
        dt = time.perf_counter() - t0
    print(json.dumps({"forward_seconds": dt, "images": a.images}))


if __name__ == "__main__":
    main()
