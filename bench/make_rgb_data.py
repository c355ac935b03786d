"""10,000 generated RGB 32x32 images of coloured shapes (circle, square, triangle)
in CIFAR-10 binary format, for `make bench`. Deterministic (seed 0). Not committed:
written to the path given (default ~/.cache/rotbench/bench/rgb10k/test_batch.bin).
"""
import pathlib
import random
import sys

from PIL import Image, ImageDraw

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path.home() / ".cache/rotbench/bench/rgb10k/test_batch.bin")
out.parent.mkdir(parents=True, exist_ok=True)
rng = random.Random(0)
records = bytearray()
for i in range(10_000):
    label = i % 3
    bg = tuple(rng.randint(0, 70) for _ in range(3))
    fg = tuple(rng.randint(150, 255) for _ in range(3))
    img = Image.new("RGB", (32, 32), bg)
    d = ImageDraw.Draw(img)
    r = rng.randint(7, 12)
    cx, cy = rng.randint(11, 21), rng.randint(11, 21)
    if label == 0:
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fg)
    elif label == 1:
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fg)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fg)
    records.append(label)
    for c in range(3):
        records.extend(img.getchannel(c).tobytes())
out.write_bytes(bytes(records))
print(out)
