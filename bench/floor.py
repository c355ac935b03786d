"""The floor: forward passes only, over as many images as the sweep evaluates,
built in advance as tensors (no decoding, no rotation, no metrics).

    python bench/floor.py --model M.pt --shape 1,28,28 --images 120000 [--optimized]

--optimized applies torch.jit.freeze + torch.jit.optimize_for_inference first, the
path rotbench runs by default. Each runtime's own floor (issue 36) for the other
formats: a .onnx model runs in ONNX Runtime's InferenceSession.run (intra-op threads
--threads or the cores, inter-op 1, --ort-level all|extended|basic|disabled), a .pt2
package in torch._inductor.aoti_load_package's runner. Prints one JSON line with the
forward time.
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
    ap.add_argument("--ort-level", default="all", choices=["all", "extended", "basic", "disabled"])
    a = ap.parse_args()
    if a.model.endswith(".onnx"):
        return onnx_floor(a)
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.model.endswith(".pt2"):
        runner = torch._inductor.aoti_load_package(a.model)
        m = lambda x: runner(x)  # noqa: E731
    else:
        m = torch.jit.load(a.model).eval()
        if a.optimized:
            m = torch.jit.optimize_for_inference(torch.jit.freeze(m))
    with torch.no_grad():
        dt = timed(lambda b: m(b), batches(a, torch.from_numpy), a)
    print(json.dumps({"forward_seconds": dt, "images": a.images}))


def batches(a, convert):
    import numpy as np

    c, h, w = (int(v) for v in a.shape.split(","))
    rng = np.random.default_rng(0)
    return [convert(rng.random((a.batch, c, h, w), dtype=np.float32)) for _ in range(8)]


def timed(forward, bs, a):
    for b in bs[:2]:  # warm-up (profiling executor, oneDNN primitives, ORT's arena)
        forward(b)
    t0 = time.perf_counter()
    done = 0
    k = 0
    while done < a.images:
        n = min(a.batch, a.images - done)
        forward(bs[k % len(bs)][:n])
        done += n
        k += 1
    return time.perf_counter() - t0


def onnx_floor(a):
    import os

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads or os.cpu_count()
    so.inter_op_num_threads = 1
    so.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[a.ort_level]
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    dt = timed(lambda b: sess.run(None, {name: b}), batches(a, lambda x: x), a)
    print(json.dumps({"forward_seconds": dt, "images": a.images, "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
