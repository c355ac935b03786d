"""A torchvision ResNet-18 (nothing downloaded) trained here for a minute and exported
as TorchScript for the 224x224 workload of `make bench`, with its rotbench spec:
ImageNet mean/std, `resize 256` (shorter side), input 224, the ten classes of
tests/fixtures/make_jpeg224.py in ImageFolder's sorted order.

    python bench/make_resnet.py OUT.pt

Not committed (45 MB): `make bench` writes it into its cache. Random weights would
predict one class for every image, which makes comparing rotbench's predictions with
the peer's meaningless, so the network is trained briefly (seed 0, 2,000 generated
images of other seeds at 112x112, two epochs, Adam): its predictions then vary with
the image and the angle. The workload measures speed; the accuracy is beside the point.
"""
import json
import os
import pathlib
import sys

import torch
import torchvision

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures"))
from make_jpeg224 import CLASSES  # noqa: E402


def train(m, classes, n=2000, epochs=2, side=112):
    """Train on generated images (Resize(128), CenterCrop(112)) so the predictions vary."""
    import random

    from torchvision import transforms as T

    from make_jpeg224 import image

    rng = random.Random(12345)
    tf = T.Compose([T.Resize(side * 8 // 7), T.CenterCrop(side), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    xs, ys = [], []
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        xs.append(tf(image(rng, label)))
        ys.append(classes.index(label))
    x, y = torch.stack(xs), torch.tensor(ys)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    m.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, 32):
            b = order[i:i + 32]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(m(x[b]), y[b])
            loss.backward()
            opt.step()
    print(f"trained: last batch loss {loss.item():.3f}", file=sys.stderr)


def main():
    out = pathlib.Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    classes = sorted(CLASSES)
    m = torchvision.models.resnet18(weights=None, num_classes=len(classes))
    train(m, classes)
    m.eval()
    ts = torch.jit.trace(m, torch.rand(1, 3, 224, 224))
    ts.save(str(out))
    spec = {
        "input": [3, 224, 224],
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "resize": 256,
        "classes": classes,
    }
    out.with_suffix(".json").write_text(json.dumps(spec, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
