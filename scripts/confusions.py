#!/usr/bin/env python3
"""Count a model's errors at one angle by (unordered) class pair, from predictions.csv.

    python3 scripts/confusions.py reports/demo/predictions.csv mnist-p4cnn 0

Standard library only. Prints the number of samples, of errors, and the most common
confused pairs (e.g. 6<->9, which a rotation-invariant model can only separate by style).
"""
import collections
import csv
import sys


def main():
    path, model, angle = sys.argv[1], sys.argv[2], float(sys.argv[3] if len(sys.argv) > 3 else 0)
    rows = [r for r in csv.DictReader(open(path)) if r["model"] == model and float(r["angle"]) == angle]
    errors = [tuple(sorted((r["label"], r["pred"]))) for r in rows if r["label"] != r["pred"]]
    print(f"{model} at {angle:g} degrees: {len(rows)} samples, {len(errors)} errors")
    for (a, b), n in collections.Counter(errors).most_common(8):
        print(f"  {a}<->{b}: {n}")


if __name__ == "__main__":
    main()
