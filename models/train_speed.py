#!/usr/bin/env python3
"""Training-step throughput of a train_mnist.py model on random data (img/s).

    python models/train_speed.py THREADS cnn STAGES:HIDDEN:HEAD MODE [BATCH]
    python models/train_speed.py THREADS p4cnn STAGES:HEAD:HEAD_KERNEL MODE [BATCH]

MODE: fp32, bf16 (autocast), cl (channels-last) or cl+bf16.  Five warm-up steps, then
30 timed steps of forward, loss, backward and an AdamW update.  Example, the old
131k CNN in float32 against bf16 + channels-last on one thread:

    python models/train_speed.py 1 cnn 32/64/64:128:flat3 fp32 128
    python models/train_speed.py 1 cnn 32/64/64:128:flat3 cl+bf16 256
"""
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_mnist as T  # noqa: E402


def main():
    if len(sys.argv) not in (5, 6) or sys.argv[2] not in ("cnn", "p4cnn"):
        sys.exit(__doc__)
    threads, arch, spec, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    bs = int(sys.argv[5]) if len(sys.argv) == 6 else 256
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    a, b, c = spec.split(":")
    m = T.CNN(a, int(b), c) if arch == "cnn" else T.P4CNN(a, int(b), "space-rot", int(c))
    cl, bf16 = "cl" in mode, "bf16" in mode
    if cl and arch == "cnn":
        m = m.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(m.parameters(), 1e-3)
    x = torch.randn(bs, 1, 28, 28)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (bs,))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = m(x).float()
        loss = F.cross_entropy(out, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    n = 30
    t = time.perf_counter()
    for _ in range(n):
        step()
    rate = n * bs / (time.perf_counter() - t)
    print(f"{arch} {spec} {mode} batch {bs} threads {threads}: {rate:.0f} img/s, "
          f"{T.count_params(m)} parameters")


if __name__ == "__main__":
    main()
