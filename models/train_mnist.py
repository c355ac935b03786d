#!/usr/bin/env python3
"""Train the MNIST classifiers bundled with rotbench and export them as TorchScript.

Models (see models/README.md):
  mnist-cnn      --arch cnn   --augment none    plain CNN, upright training
  mnist-cnn-aug  --arch cnn   --augment rot360  same CNN, random rotations in [0, 360)
  mnist-p4cnn    --arch p4cnn --augment none    P4 group-equivariant CNN (Cohen & Welling 2016)

Outputs for --out models/NAME:
  NAME.pt         TorchScript module (eval mode, BatchNorm folded into the convolutions),
                  with the sidecar embedded in the zip as extra file "rotbench.json"
  NAME.json       the sidecar (input shape, normalisation, class names)
  NAME.train.log  the training log

Contract: input float32 [N, 1, 28, 28], pixels in [0, 1] normalised with
(x - 0.1307) / 0.3081; output raw logits [N, 10].

Data: raw MNIST IDX files from scripts/fetch-mnist.sh (override with --data DIR).
Only CPU is used.
"""

import argparse
import json
import math
import os
import platform
import shlex
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = 0.1307
STD = 0.3081
CLASSES = [str(i) for i in range(10)]


# ----------------------------------------------------------------------------- data

def read_idx(path):
    """Parse an uncompressed big-endian IDX file into a numpy array."""
    with open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    dims = np.frombuffer(data, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} bytes of data, found {body.size}")
    return body.reshape(tuple(int(d) for d in dims))


def default_data_dir():
    cache = os.environ.get("ROTBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "rotbench")
    return os.path.join(cache, "mnist-raw")


def load_mnist(data_dir):
    """Return (train_x, train_y, test_x, test_y); x float32 [N,1,28,28] in [0,1]."""
    def images(name):
        a = read_idx(os.path.join(data_dir, name))
        return torch.from_numpy(a.astype(np.float32) / 255.0).unsqueeze(1)

    def labels(name):
        return torch.from_numpy(read_idx(os.path.join(data_dir, name)).astype(np.int64))

    tx, ty = images("train-images.idx3-ubyte"), labels("train-labels.idx1-ubyte")
    vx, vy = images("t10k-images.idx3-ubyte"), labels("t10k-labels.idx1-ubyte")
    assert tx.shape == (60000, 1, 28, 28) and ty.shape == (60000,), (tx.shape, ty.shape)
    assert vx.shape == (10000, 1, 28, 28) and vy.shape == (10000,), (vx.shape, vy.shape)
    return tx, ty, vx, vy


def normalise(x):
    return (x - MEAN) / STD


def rotate(x, angles_deg, scale=1.0):
    """Rotate [N,C,H,W] images counter-clockwise about the centre by per-sample angles
    (degrees), bilinear, zero fill, same output size.  Equivalent to
    torchvision.transforms.functional.rotate(img, angle, interpolation=BILINEAR, fill=0)
    applied to each image (same inverse-affine grid, align_corners=False)."""
    n = x.shape[0]
    a = torch.as_tensor(angles_deg, dtype=torch.float64).reshape(-1).expand(n) * (math.pi / 180.0)
    c, s = torch.cos(a), torch.sin(a)
    h, w = x.shape[-2], x.shape[-1]
    # Output pixel (normalised coords, y down) -> input pixel: inverse of a CCW rotation
    # on screen.  Scale factors handle non-square images; here h == w.
    # scale > 1 enlarges the content (the grid samples a smaller input region).
    inv = 1.0 / torch.as_tensor(scale, dtype=torch.float64).reshape(-1).expand(n)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = c * inv
    theta[:, 0, 1] = -s * h / w * inv
    theta[:, 1, 0] = s * w / h * inv
    theta[:, 1, 1] = c * inv
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def random_shift(x, max_shift, gen):
    """Random integer translations in [-max_shift, max_shift] px (zero padding)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    p = max_shift
    xp = F.pad(x, (p, p, p, p))
    dy = torch.randint(0, 2 * p + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * p + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h))[:, :, None]  # [n,h,1]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]  # [n,1,w]
    idx = torch.arange(n)[:, None, None]
    return xp[idx, 0, rows, cols].unsqueeze(1)


# ----------------------------------------------------------------------------- models

CNN_STAGES_DEFAULT = "32/64/64"
CNN_HIDDEN_DEFAULT = 128
CNN_HEADS = ("flat3", "gap")


class CNN(nn.Module):
    """Plain CNN.  `stages` gives the channel counts of the 3x3 layers at resolutions
    28 / 14 / 7, e.g. "32/64/64" (one layer each) or "16,32/32,32/64,64" (two each); every
    layer is conv3x3-BN-ReLU, with 2x2 max-pooling between stages (28->14->7).  Head:
      "flat3": 2x2 max-pool (7->3), flatten(c*3*3), linear(->hidden)-ReLU, linear(->10);
      "gap":   mean over the 7x7 map, linear(c->hidden)-ReLU, linear(->10)."""

    def __init__(self, stages=CNN_STAGES_DEFAULT, hidden=CNN_HIDDEN_DEFAULT, head="flat3"):
        super().__init__()
        plan = [[int(c) for c in st.split(",")] for st in stages.split("/")]
        assert len(plan) == 3 and all(plan), "need three stages (28/14/7), each with >= 1 layer"
        assert head in CNN_HEADS, head
        self.convs, self.bns, self.pool_after = nn.ModuleList(), nn.ModuleList(), []
        cin = 1
        for si, stage in enumerate(plan):
            for li, c in enumerate(stage):
                self.convs.append(nn.Conv2d(cin, c, 3, padding=1, bias=False))
                self.bns.append(nn.BatchNorm2d(c))
                self.pool_after.append(si < 2 and li == len(stage) - 1)
                cin = c
        self.head_kind = head
        self.fc1 = nn.Linear(cin * (9 if head == "flat3" else 1), hidden)
        self.fc = nn.Linear(hidden, 10)

    def forward(self, x):
        for conv, bn, pool in zip(self.convs, self.bns, self.pool_after):
            x = F.relu(bn(conv(x)))
            if pool:
                x = F.max_pool2d(x, 2)
        x = torch.flatten(F.max_pool2d(x, 2), 1) if self.head_kind == "flat3" else x.mean(dim=(2, 3))
        return self.fc(F.relu(self.fc1(x)))

    def export(self):
        """Plain, BN-folded nn.Sequential with identical outputs (eval mode)."""
        layers = []
        for conv, bn, pool in zip(self.convs, self.bns, self.pool_after):
            layers += [fold_bn(conv, bn), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(2))
        layers += ([nn.MaxPool2d(2), nn.Flatten(1)] if self.head_kind == "flat3"
                   else [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)])
        layers += [clone_linear(self.fc1), nn.ReLU(), clone_linear(self.fc)]
        return nn.Sequential(*layers).eval()


def fold_bn(conv, bn, scale_repeat=1):
    """Return a Conv2d equal to bn(conv(x)) in eval mode.  With scale_repeat=k the
    conv has k output channels per BN channel (channel index c*k + r), as in the
    expanded P4 convolutions where one BN channel is shared by 4 rotations."""
    w = conv.weight.detach()
    b = conv.bias.detach() if conv.bias is not None else torch.zeros(w.shape[0])
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias.detach() - bn.running_mean * scale
    scale = scale.repeat_interleave(scale_repeat)
    shift = shift.repeat_interleave(scale_repeat)
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size,
                    stride=conv.stride, padding=conv.padding, bias=True)
    with torch.no_grad():
        out.weight.copy_(w * scale[:, None, None, None])
        out.bias.copy_(b * scale + shift)
    return out


def clone_linear(fc):
    out = nn.Linear(fc.in_features, fc.out_features)
    with torch.no_grad():
        out.weight.copy_(fc.weight)
        out.bias.copy_(fc.bias)
    return out


class P4Lift(nn.Module):
    """Lifting convolution Z^2 -> P4.  Output [N, C, 4, H, W]; slice r is the
    correlation with the filter rotated by r*90 degrees (torch.rot90, CCW)."""

    def __init__(self, cin, cout, k=3):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.cin, self.cout, self.k = cin, cout, k
        self.pad = k // 2

    def expanded_weight(self):
        w = torch.stack([torch.rot90(self.weight, r, dims=(2, 3)) for r in range(4)], dim=1)
        return w.reshape(self.cout * 4, self.cin, self.k, self.k)

    def forward_flat(self, x):
        """[N, cin, H, W] -> [N, cout*4, H, W] (channel c*4 + r)."""
        return F.conv2d(x, self.expanded_weight(), padding=self.k // 2)

    def forward(self, x):
        y = self.forward_flat(x)
        return y.view(x.shape[0], self.cout, 4, y.shape[-2], y.shape[-1])


class P4Conv(nn.Module):
    """Group convolution P4 -> P4.  Input/output [N, C, 4, H, W].  The filter for output
    rotation r is the base filter rotated spatially by r*90 degrees and cyclically shifted
    by r along the input-rotation axis:  W_r[o, c, s] = rot90(W[o, c, (s - r) mod 4], r)."""

    def __init__(self, cin, cout, k=3, pad=None):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 4, k, k))
        nn.init.kaiming_uniform_(self.weight.view(cout, cin * 4, k, k), a=math.sqrt(5))
        self.cin, self.cout, self.k = cin, cout, k
        self.pad = k // 2 if pad is None else pad

    def expanded_weight(self):
        w = torch.stack([torch.rot90(torch.roll(self.weight, r, dims=2), r, dims=(3, 4))
                         for r in range(4)], dim=1)  # [cout, 4(r), cin, 4(s), k, k]
        return w.reshape(self.cout * 4, self.cin * 4, self.k, self.k)

    def forward_flat(self, x):
        """[N, cin*4, H, W] -> [N, cout*4, H', W'] (channel c*4 + r)."""
        return F.conv2d(x, self.expanded_weight(), padding=self.pad)

    def forward(self, x):
        n, _, _, h, w = x.shape
        return self.forward_flat(x.reshape(n, self.cin * 4, h, w)).view(n, self.cout, 4, h, w)


def shared_bn(bn, x):
    """BatchNorm3d `bn` over [N, C*4, H, W] with one set of statistics and affine
    parameters per channel c, shared by its 4 rotations (channels c*4 .. c*4+3)."""
    n, c4, h, w = x.shape
    if x.is_contiguous():
        return bn(x.view(n, c4 // 4, 4, h, w)).view(n, c4, h, w)
    # channels-last: memory is [N, H, W, C, 4]; as [N*H*W, C, 4] it is a 3-D batch for
    # batch_norm (statistics over dims 0 and 2), with no copy.
    y = x.permute(0, 2, 3, 1).reshape(n * h * w, c4 // 4, 4)
    if bn.training and bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(1)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                     bn.training, bn.momentum, bn.eps)
    return y.reshape(n, h, w, c4).permute(0, 3, 1, 2)


def p4_maxpool(x):
    n, c, r, h, w = x.shape
    return F.max_pool2d(x.reshape(n, c * r, h, w), 2).view(n, c, r, h // 2, w // 2)


P4_POOL_MODES = ("rot-space", "space-rot", "space2-rot")


class RotSpacePool(nn.Module):
    """[N, C*4, H, W] -> [N, C] (or [N, 2C]) rotation- and translation-invariant pooling.
    mode 0 "rot-space": max over the 4 rotations at each position, then mean over space.
    mode 1 "space-rot": mean over space for each rotation channel, then max over the 4
      rotations (the orientation stays consistent across the parts of the digit).
    mode 2 "space2-rot": like 1, but with both the spatial mean and the spatial max
      (each followed by the max over rotations), concatenated -> 2C features."""

    def __init__(self, channels: int, mode: int):
        super().__init__()
        self.channels = channels
        self.mode = mode

    def forward(self, x):
        n = x.shape[0]
        x = x.reshape(n, self.channels, 4, x.shape[-2] * x.shape[-1])
        if self.mode == 0:
            return x.amax(dim=2).mean(dim=2)
        if self.mode == 1:
            return x.mean(dim=3).amax(dim=2)
        return torch.cat([x.mean(dim=3).amax(dim=2), x.amax(dim=3).amax(dim=2)], dim=1)


P4_STAGES_DEFAULT = "8/16,16/32,32"
P4_HEAD_DEFAULT = 96
P4_POOL_DEFAULT = "space-rot"


class P4CNN(nn.Module):
    """P4 group-equivariant CNN.  `stages` gives the channel counts (per rotation) of the
    3x3 layers at resolutions 28 / 14 / 7, e.g. "4/12,12/16,16": the first layer is the
    lifting convolution, every other layer a P4 group convolution, each followed by
    BatchNorm3d (statistics shared by the 4 rotations of a channel) and ReLU; 2x2 max-pooling
    between stages (28->14->7).  Then a 1x1 P4 convolution to `head` channels (BN, ReLU),
    invariant pooling over rotations and space (see RotSpacePool), and a linear layer to 10."""

    def __init__(self, stages=P4_STAGES_DEFAULT, head=P4_HEAD_DEFAULT, pool=P4_POOL_DEFAULT,
                 head_kernel=1):
        super().__init__()
        plan = [[int(c) for c in st.split(",")] for st in stages.split("/")]
        assert len(plan) == 3 and all(plan), "need three stages (28/14/7), each with >= 1 layer"
        assert head_kernel in (1, 3), head_kernel
        self.plan = plan
        self.convs, self.bns, self.pool_after = nn.ModuleList(), nn.ModuleList(), []
        cin = None
        for si, stage in enumerate(plan):
            for li, c in enumerate(stage):
                self.convs.append(P4Lift(1, c) if cin is None else P4Conv(cin, c))
                self.bns.append(nn.BatchNorm3d(c))
                self.pool_after.append((2, 2) if si < 2 and li == len(stage) - 1 else None)
                cin = c
        if head_kernel == 3:
            # 7x7 -> 3x3 by a 3x3 max-pool with stride 2 (windows 0-2, 2-4, 4-6: symmetric
            # under 90-degree rotations), then a 3x3 group convolution without padding that
            # covers the whole map (as the last layer of Cohen & Welling's P4CNN covers its
            # 4x4 map), so the head sees where the parts of the digit are, in each frame.
            self.pool_after[-1] = (3, 2)
            self.convs.append(P4Conv(cin, head, k=3, pad=0))
        else:
            self.convs.append(P4Conv(cin, head, k=1))
        self.bns.append(nn.BatchNorm3d(head))
        self.pool_after.append(None)
        self.pool = RotSpacePool(head, P4_POOL_MODES.index(pool))
        self.fc = nn.Linear(head * (2 if pool == "space2-rot" else 1), 10)
        self.head = head

    def forward(self, x):
        # Feature maps are kept as [N, C*4, H, W] (channel c*4 + r), in whatever memory
        # format the input has: channels-last makes the convolutions faster on CPU.
        for conv, bn, pool in zip(self.convs, self.bns, self.pool_after):
            x = F.relu(shared_bn(bn, conv.forward_flat(x)))
            if pool:
                x = F.max_pool2d(x, pool[0], pool[1])
        return self.fc(self.pool(x.contiguous()))

    def export(self):
        """Plain nn.Sequential of ordinary Conv2d layers holding the expanded (rotated and
        shifted) filters with BN folded in; channels are laid out as c*4 + r."""
        layers = []
        for conv, bn, pool in zip(self.convs, self.bns, self.pool_after):
            c = nn.Conv2d(conv.cin * (1 if isinstance(conv, P4Lift) else 4), conv.cout * 4,
                          conv.k, padding=conv.pad, bias=False)
            with torch.no_grad():
                c.weight.copy_(conv.expanded_weight())
            layers += [fold_bn(c, bn, scale_repeat=4), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool2d(pool[0], pool[1]))
        layers += [RotSpacePool(self.head, self.pool.mode), clone_linear(self.fc)]
        return nn.Sequential(*layers).eval()


def build(arch, p4_stages=P4_STAGES_DEFAULT, p4_head=P4_HEAD_DEFAULT, p4_pool=P4_POOL_DEFAULT,
          p4_head_kernel=1,
          cnn_stages=CNN_STAGES_DEFAULT, cnn_hidden=CNN_HIDDEN_DEFAULT, cnn_head="flat3"):
    if arch == "cnn":
        return CNN(cnn_stages, cnn_hidden, cnn_head)
    if arch == "p4cnn":
        return P4CNN(p4_stages, p4_head, p4_pool, p4_head_kernel)
    raise ValueError(arch)


def count_params(m):
    return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------- eval

@torch.no_grad()
def predict(model, x, batch=1000):
    out = []
    for i in range(0, x.shape[0], batch):
        out.append(model(normalise(x[i:i + batch])))
    return torch.cat(out)


@torch.no_grad()
def accuracy(model, x, y, angle=0.0):
    xs = x if angle % 360 == 0 else rotate(x, angle)
    return (predict(model, xs).argmax(1) == y).float().mean().item()


@torch.no_grad()
def throughput(model, batch=256, n_batches=40, repeats=3):
    x = normalise(torch.rand(batch, 1, 28, 28))
    for _ in range(5):
        model(x)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n_batches):
            model(x)
        best = max(best, batch * n_batches / (time.perf_counter() - t))
    return best


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["cnn", "p4cnn"], required=True)
    ap.add_argument("--augment", choices=["none", "rot360"], default="none")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="output prefix, e.g. models/mnist-cnn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3, help="OneCycle peak learning rate (AdamW)")
    ap.add_argument("--wd", type=float, default=1e-4, help="AdamW weight decay")
    ap.add_argument("--shift", type=int, default=2, help="max random translation in px (0 = off)")
    ap.add_argument("--data", default=None, help="folder with the raw MNIST IDX files")
    ap.add_argument("--angle-step", type=float, default=5.0,
                    help="step of the rotated-test-set sweep over [0, 360) in the log (0 = skip)")
    ap.add_argument("--p4-stages", default=P4_STAGES_DEFAULT,
                    help="p4cnn only: channels of the 3x3 layers per stage 28/14/7")
    ap.add_argument("--p4-head", type=int, default=P4_HEAD_DEFAULT,
                    help="p4cnn only: channels of the final 1x1 P4 convolution")
    ap.add_argument("--p4-head-kernel", type=int, choices=[1, 3], default=1,
                    help="p4cnn only: 1 = 1x1 group convolution on the 7x7 map; 3 = 3x3 max-pool "
                         "(stride 2) to 3x3, then a 3x3 group convolution without padding")
    ap.add_argument("--p4-pool", choices=list(P4_POOL_MODES), default=P4_POOL_DEFAULT,
                    help="p4cnn only: order of the invariant pooling (see RotSpacePool)")
    ap.add_argument("--cnn-stages", default=CNN_STAGES_DEFAULT,
                    help="cnn only: channels of the 3x3 layers per stage 28/14/7")
    ap.add_argument("--cnn-hidden", type=int, default=CNN_HIDDEN_DEFAULT,
                    help="cnn only: width of the hidden linear layer")
    ap.add_argument("--cnn-head", choices=list(CNN_HEADS), default="flat3",
                    help="cnn only: flatten a 3x3 max-pooled map, or average over space")
    ap.add_argument("--bf16", action="store_true",
                    help="train under bfloat16 autocast (weights, evaluation and export stay float32)")
    ap.add_argument("--channels-last", action="store_true",
                    help="channels-last memory format while training (faster convolutions on CPU)")
    ap.add_argument("--scale", type=float, default=0.0,
                    help="random isotropic scaling in [1-S, 1+S] (no rotation; 0 = off)")
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--name", default=None)
    ap.add_argument("--description", default=None)
    args = ap.parse_args()

    channels_last = args.channels_last
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)
    gen = torch.Generator().manual_seed(args.seed)

    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    name = args.name or os.path.basename(args.out)
    log_f = open(args.out + ".train.log", "w")

    def log(msg=""):
        print(msg, flush=True)
        log_f.write(msg + "\n")
        log_f.flush()

    t_start = time.time()
    log(f"# {name}")
    log("command: " + " ".join(shlex.quote(a) for a in [sys.executable.split('/')[-1]] + sys.argv))
    log(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    log(f"torch {torch.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
        f"{platform.machine()}, threads {torch.get_num_threads()} (cpu only)")
    log(f"arch {args.arch}, augment {args.augment}, epochs {args.epochs}, seed {args.seed}, "
        f"batch {args.batch}, AdamW lr(OneCycle peak) {args.lr}, wd {args.wd}, shift +-{args.shift}px, "
        f"scale +-{args.scale}, label smoothing {args.label_smoothing}, "
        f"bf16 autocast {args.bf16}, channels-last {channels_last}")

    data_dir = args.data or default_data_dir()
    tx, ty, vx, vy = load_mnist(data_dir)
    log(f"data: {data_dir} (train {tx.shape[0]}, test {vx.shape[0]})")

    model = build(args.arch, args.p4_stages, args.p4_head, args.p4_pool, args.p4_head_kernel,
                  args.cnn_stages, args.cnn_hidden, args.cnn_head)
    if channels_last and args.arch == "cnn":
        model = model.to(memory_format=torch.channels_last)
    n_params = count_params(model)
    log(f"parameters (trainable, incl. BN affine): {n_params}")
    log(str(model))

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.wd)
    steps_per_epoch = math.ceil(tx.shape[0] / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)

    for epoch in range(1, args.epochs + 1):
        model.train()
        t0 = time.time()
        perm = torch.randperm(tx.shape[0], generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(0, tx.shape[0], args.batch):
            idx = perm[i:i + args.batch]
            xb, yb = tx[idx], ty[idx]
            # One resampling for rotation and scale together (no double blur).
            ang = (torch.rand(xb.shape[0], generator=gen, dtype=torch.float64) * 360.0
                   if args.augment == "rot360" else 0.0)
            scl = (1.0 + (torch.rand(xb.shape[0], generator=gen, dtype=torch.float64) * 2 - 1) * args.scale
                   if args.scale > 0 else 1.0)
            if args.augment == "rot360" or args.scale > 0:
                xb = rotate(xb, ang, scale=scl)
            xb = random_shift(xb, args.shift, gen)
            xb = normalise(xb)
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                logits = model(xb).float()
            loss = F.cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * xb.shape[0]
            correct += (logits.argmax(1) == yb).sum().item()
            seen += xb.shape[0]
        model.eval()
        msg = (f"epoch {epoch:2d}/{args.epochs}  loss {loss_sum / seen:.4f}  "
               f"train_acc(augmented, running) {correct / seen:.4f}  "
               f"test_acc@0 {accuracy(model, vx, vy):.4f}")
        if args.augment == "rot360":
            msg += f"  test_acc@90 {accuracy(model, vx, vy, 90):.4f}"
        log(msg + f"  ({time.time() - t0:.0f}s)")
    train_time = time.time() - t_start
    log(f"training wall time: {train_time:.0f}s")

    # -------------------------------------------------------------- export
    model.eval()
    # Keep the trained weights if export or scripting fails (scripting reads this file's
    # source again: do not edit it while a run is in progress).
    try:
        exported = model.export()
        scripted = torch.jit.script(exported)
    except Exception:
        torch.save(model.state_dict(), args.out + ".state_dict.pt")
        log(f"export failed; trained weights saved to {args.out}.state_dict.pt")
        raise
    with torch.no_grad():
        ref = predict(model, vx)
        got = predict(exported, vx)
    diff = (ref - got).abs().max().item()
    log(f"export check (BN folded / expanded filters vs training module): max |logit diff| {diff:.3g}")
    assert diff < 1e-3, diff

    sidecar = {
        "input": [1, 28, 28],
        "mean": [MEAN],
        "std": [STD],
        "classes": CLASSES,
        "name": name,
        "description": args.description or default_description(args),
    }
    sidecar_text = json.dumps(sidecar, indent=2) + "\n"
    torch.jit.save(scripted, args.out + ".pt", _extra_files={"rotbench.json": sidecar_text})
    with open(args.out + ".json", "w") as f:
        f.write(sidecar_text)

    # -------------------------------------------------------------- evaluate the saved file
    extra = {"rotbench.json": ""}
    m = torch.jit.load(args.out + ".pt", _extra_files=extra)
    assert json.loads(extra["rotbench.json"]) == sidecar
    m.eval()
    with torch.no_grad():
        out = m(normalise(vx[:4]))
    assert out.shape == (4, 10) and out.dtype == torch.float32

    log(f"saved {args.out}.pt ({os.path.getsize(args.out + '.pt')} bytes), {args.out}.json")
    log(f"exported TorchScript parameters: {count_params(m)}")
    train_acc = accuracy(m, tx, ty)
    log(f"final train accuracy (60k, upright, no augmentation): {train_acc:.4f}")
    acc0 = accuracy(m, vx, vy)
    log(f"final test accuracy @0deg (10k): {acc0:.4f}")
    log(f"final test accuracy @90deg (10k): {accuracy(m, vx, vy, 90):.4f}")
    if args.angle_step > 0:
        angles = np.arange(0.0, 360.0, args.angle_step)
        accs = [accuracy(m, vx, vy, float(a)) for a in angles]
        log(f"test accuracy over angles 0:{360 - args.angle_step:g}:{args.angle_step:g} "
            f"(bilinear, fill 0): mean {np.mean(accs):.4f}  min {np.min(accs):.4f} "
            f"@{angles[int(np.argmin(accs))]:g}deg")
        log("  " + " ".join(f"{a:g}:{v:.4f}" for a, v in zip(angles, accs)))

    if args.arch == "p4cnn":
        with torch.no_grad():
            base = predict(m, vx)
            pred = base.argmax(1)
            for k in (1, 2, 3):
                r = predict(m, torch.rot90(vx, k, dims=(2, 3)))
                log(f"rot90 invariance k={k}: differing argmax predictions {(r.argmax(1) != pred).sum().item()}"
                    f"/{vx.shape[0]}, max |logit diff| {(r - base).abs().max().item():.3g}")

    ips = throughput(m)
    log(f"TorchScript forward throughput (batch 256, {torch.get_num_threads()} threads, "
        f"no_grad, best of 3x40 batches): {ips:.0f} img/s")
    log(f"total wall time: {time.time() - t_start:.0f}s")
    log_f.close()


def default_description(args):
    if args.arch == "cnn" and args.augment == "none":
        return "Small CNN trained on upright MNIST (no rotation augmentation)."
    if args.arch == "cnn":
        return "Same CNN as mnist-cnn, trained with uniform random rotations in [0, 360) degrees."
    return ("P4 group-equivariant CNN (Cohen & Welling 2016), trained upright; "
            "exactly invariant to 90-degree rotations of the input.")


if __name__ == "__main__":
    main()
