"""Accuracy of a bundled MNIST model under torchvision's `rotate`, with its default
interpolation (NEAREST) and with BILINEAR, fill 0: what a user who checks rotbench by hand
with `TF.rotate(x, angle)` gets (docs/definitions.md, "Checking against torchvision").

rotbench's default is bilinear with fill 0; compare its per_angle.csv with the BILINEAR
line, and with `--interpolation nearest` for the other one.

Usage (the fixtures venv has torch and torchvision):
    "$(bash scripts/setup-venv.sh)/bin/python" scripts/torchvision_rotate_check.py \
        [--model models/mnist-cnn.pt] [--angle 30]
"""
import argparse
import gzip
import json
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torchvision.transforms import InterpolationMode

ROOT = Path(__file__).resolve().parent.parent


def idx(path, offset):
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=str(ROOT / "models/mnist-cnn.pt"))
    ap.add_argument("--angle", type=float, default=30.0)
    args = ap.parse_args()
    spec = json.loads(Path(args.model).with_suffix(".json").read_text())
    images = idx(ROOT / "datasets/mnist/t10k-images.idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = torch.from_numpy(idx(ROOT / "datasets/mnist/t10k-labels.idx1-ubyte.gz", 8).astype(np.int64))
    x = torch.from_numpy(images.astype(np.float32) / 255.0)  # ToTensor's [0, 1] floats
    model = torch.jit.load(args.model).eval()
    mean, std = spec["mean"][0], spec["std"][0]
    for name, kwargs in [
        ("TF.rotate(x, angle)            (default: NEAREST)", {}),
        ("TF.rotate(x, angle, BILINEAR)  (rotbench's default)", {"interpolation": InterpolationMode.BILINEAR}),
    ]:
        correct = 0
        with torch.no_grad():
            for i in range(0, len(x), 500):
                r = TF.rotate(x[i:i + 500], args.angle, fill=0.0, **kwargs)
                correct += (model((r - mean) / std).argmax(1) == labels[i:i + 500]).sum().item()
        print(f"{Path(args.model).stem} at {args.angle:g}°: {name}: accuracy {correct / len(x):.4f}")


if __name__ == "__main__":
    main()
