"""A third-party MNIST CNN for `make bench`: the network of PyTorch's own MNIST example
(github.com/pytorch/examples, mnist/main.py: two 3x3 convolutions of 32 and 64
channels, max-pool, dropout, 9216-128-10), random weights (seed 0), exported in eval
mode as TorchScript with its rotbench spec (MNIST's mean 0.1307 and std 0.3081, as the
example normalises). Not committed (4.8 MB): `make bench` writes it into its cache.
Its forward pass costs about 8x the bundled CNN's, which is why the issue measuring
whole-process overhead names it beside the bundled one.

    python bench/make_examples_cnn.py OUT.pt
"""
import json
import pathlib
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, 1)
        self.conv2 = nn.Conv2d(32, 64, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(9216, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


def main():
    out = pathlib.Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    m = Net().eval()
    torch.jit.trace(m, torch.rand(1, 1, 28, 28)).save(str(out))
    spec = {"input": [1, 28, 28], "mean": [0.1307], "std": [0.3081], "classes": [str(d) for d in range(10)]}
    out.with_suffix(".json").write_text(json.dumps(spec, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
