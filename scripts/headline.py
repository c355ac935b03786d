#!/usr/bin/env python3
"""Print the README's headline table (markdown) from a sweep's summary.json.

    python3 scripts/headline.py reports/demo/summary.json

Standard library only. Columns: accuracy at 0 degrees, mean accuracy over the swept
angles (named as --angles would give them, e.g. 0:360:5), the worst angle and its
accuracy, worst-of-sweep accuracy (samples right at every angle), consistency (same
prediction as at 0 degrees) at 45 and 90 degrees, the flip probability (mean share of
samples whose prediction changes from one angle to the next) and the expected calibration
error at 0 and 45 degrees. tests/readme_headline.rs checks that
the table under "## The demo" in README.md is this output for reports/demo/summary.json
(the README may add a description in parentheses after a model's name).
"""
import json
import sys


def at(model, angle, key):
    for a in model["angles"]:
        if a["angle"] == angle:
            return f"{a[key]:.4f}"
    return "n/a"


def angle_spec(angles):
    """The swept angles as `start:stop:step` when evenly spaced, else their count."""
    if len(angles) == 1:
        return f"{angles[0]:g}"
    step = angles[1] - angles[0]
    if step > 0 and all(abs(b - a - step) < 1e-9 for a, b in zip(angles, angles[1:])):
        return f"{angles[0]:g}:{angles[-1] + step:g}:{step:g}"
    return f"{len(angles)} angles"


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "reports/demo/summary.json"
    with open(path) as f:
        s = json.load(f)
    spec = angle_spec(s["settings"]["angles"])
    print(f"| model | accuracy at 0° | mean accuracy ({spec}) | worst angle (accuracy) | worst-of-sweep | consistency at 45° | consistency at 90° | flip probability | ECE at 0° | ECE at 45° |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in s["models"]:
        w = m["sweep"]
        print(f"| {m['name']} | {w['accuracy_at_reference']:.4f} | {w['mean_accuracy']:.4f} | "
              f"{w['worst_angle']:g}° ({w['worst_accuracy']:.4f}) | {w['worst_of_sweep_accuracy']:.4f} | "
              f"{at(m, 45.0, 'consistency')} | {at(m, 90.0, 'consistency')} | "
              f"{w['flip_probability']:.4f} | {at(m, 0.0, 'ece')} | {at(m, 45.0, 'ece')} |")


if __name__ == "__main__":
    main()
