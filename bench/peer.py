"""The hand-written PyTorch peer that rotbench is measured against.

What a competent engineer would write without rotbench: load the test set into
tensors, rotate whole batches with torchvision, run the TorchScript model at batch
256 under no_grad, and compute the metrics with scikit-learn.

    python bench/peer.py --model M.pt --data DATA --angles 0:360:30 [--resize-exact]

DATA is an MNIST IDX images file (raw or .gz) or a CIFAR-10 binary batch. Prints one
JSON line with the accuracy per angle and the wall time of the whole script.
"""
import argparse
import gzip
import json
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--angles", default="0:360:30")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    spec = json.loads(pathlib.Path(a.model).with_suffix(".json").read_text())
    data = pathlib.Path(a.data)
    x, y = read_cifar(data) if data.suffix == ".bin" else read_idx(data)
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
