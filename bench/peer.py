"""The hand-written PyTorch peer that rotbench is measured against.

What a competent engineer would write without rotbench.

- Small images (DATA is an MNIST IDX images file, raw or .gz, or a CIFAR-10 binary
  batch): load the test set into tensors, rotate whole batches with torchvision, run
  the TorchScript model at batch 256 under no_grad, scikit-learn metrics.
- A JPEG folder (DATA is a directory of class folders): a torchvision `ImageFolder`
  per angle whose transform is `Resize(256)`, then `rotate` and `CenterCrop(224)` in the
  order of the model's spec (`order`, default rotate-then-crop, as rotbench), a
  `DataLoader` with as many workers as cores, the TorchScript model at batch 64 under
  no_grad, scikit-learn metrics. The rotation runs on the float image (PILToTensor,
  then float), as rotbench rotates, so both see the same pixels.

    python bench/peer.py --model M.pt --data DATA --angles 0:360:30

Prints one JSON line with the accuracy per angle (and for a folder, the predictions
per angle in ImageFolder's order) and the wall time of the whole script.
"""
import argparse
import gzip
import json
import os
import pathlib
import time

T0 = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision.transforms.functional as TF  # noqa: E402
from sklearn.metrics import classification_report, confusion_matrix  # noqa: E402


def read_idx(images: pathlib.Path):
    opener = gzip.open if images.suffix == ".gz" else open
    with opener(images, "rb") as f:
        raw = f.read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    x = np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, h, w)
    lab_name = images.name.replace("images", "labels").replace("idx3", "idx1")
    lab = images.with_name(lab_name)
    opener = gzip.open if lab.suffix == ".gz" else open
    with opener(lab, "rb") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return x, y


def read_cifar(path: pathlib.Path):
    raw = np.fromfile(path, np.uint8).reshape(-1, 3073)
    return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0]


class Rotate:
    """rotate(angle) on a float CHW tensor, bilinear, fill 0 (picklable for workers)."""

    def __init__(self, angle):
        self.angle = angle

    def __call__(self, x):
        return TF.rotate(x, self.angle, interpolation=TF.InterpolationMode.BILINEAR, fill=0.0)


class Float255:
    """uint8 CHW to float32 on the 0..255 scale (rotbench rotates that scale)."""

    def __call__(self, x):
        return x.to(torch.float32)


class Unit:
    """0..255 to [0, 1]."""

    def __call__(self, x):
        return x * (1.0 / 255.0)


def folder_run(a, spec, model):
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms as T

    _, h, w = spec["input"]
    resize = spec.get("resize")
    workers = a.workers if a.workers else os.cpu_count()
    start, stop, step = (float(v) for v in a.angles.split(":"))
    labels = list(range(len(spec["classes"])))
    acc, predictions = {}, {}
    for angle in np.arange(start, stop, step):
        geo = [Rotate(float(angle)), T.CenterCrop((h, w))]
        if spec.get("order") == "crop-then-rotate":
            geo.reverse()
        tf = T.Compose([T.Resize(resize) if resize else T.Resize((h, w)), T.PILToTensor(), Float255()]
                       + geo + [Unit(), T.Normalize(spec["mean"], spec["std"])])
        ds = datasets.ImageFolder(a.data, transform=tf)
        dl = DataLoader(ds, batch_size=a.batch or 64, num_workers=workers, persistent_workers=False)
        preds, ys = [], []
        with torch.no_grad():
            for xb, yb in dl:
                preds.append(model(xb).argmax(1))
                ys.append(yb)
        p, y = torch.cat(preds).numpy(), torch.cat(ys).numpy()
        rep = classification_report(y, p, labels=labels, output_dict=True, zero_division=0)
        confusion_matrix(y, p, labels=labels)
        acc[str(angle)] = rep["accuracy"]
        predictions[str(angle)] = p.tolist()
    return acc, predictions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--angles", default="0:360:30")
    ap.add_argument("--batch", type=int, default=0, help="default 256 (tensors), 64 (JPEG folder)")
    ap.add_argument("--workers", type=int, default=0, help="DataLoader workers (default: cores)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="the first N images only (tensor data)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = json.loads(pathlib.Path(a.model).with_suffix(".json").read_text())
    data = pathlib.Path(a.data)
    if data.is_dir():
        model = torch.jit.load(a.model).eval()
        acc, predictions = folder_run(a, spec, model)
        print(json.dumps({"accuracy": acc, "predictions": predictions, "wall_seconds": time.perf_counter() - T0}))
        return
    a.batch = a.batch or 256
    x, y = read_cifar(data) if data.suffix == ".bin" else read_idx(data)
    if a.limit:
        x, y = x[: a.limit], y[: a.limit]
    x = torch.from_numpy(x.copy()).float().div_(255.0)
    mean = torch.tensor(spec["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(spec["std"]).view(1, -1, 1, 1)
    model = torch.jit.load(a.model).eval()
    start, stop, step = (float(v) for v in a.angles.split(":"))
    angles = list(np.arange(start, stop, step))
    labels = list(range(len(spec["classes"])))
    acc = {}
    with torch.no_grad():
        for angle in angles:
            preds = []
            for i in range(0, len(x), a.batch):
                xb = TF.rotate(x[i:i + a.batch], float(angle), interpolation=TF.InterpolationMode.BILINEAR, fill=0.0)
                preds.append(model((xb - mean) / std).argmax(1))
            p = torch.cat(preds).numpy()
            rep = classification_report(y, p, labels=labels, output_dict=True, zero_division=0)
            confusion_matrix(y, p, labels=labels)
            acc[str(angle)] = rep["accuracy"]
    print(json.dumps({"accuracy": acc, "wall_seconds": time.perf_counter() - T0}))


if __name__ == "__main__":
    main()
