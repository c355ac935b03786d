#!/usr/bin/env python3
"""Compare the runs of scripts/device-check.sh (standard library only).

    python3 scripts/device_compare.py WORKDIR

For each pair: predictions that differ (of all model x angle x sample rows), the
largest |confidence difference|, and the accuracy at 0 and 90 degrees per model.
"""
import csv
import json
import os
import sys


def rows(path):
    with open(path, newline="") as f:
        return {(r["model"], r["angle"], r["index"]): (r["pred"], r["confidence"], r["label"], r["top_k"])
                for r in csv.DictReader(f)}


def compare(work, a, b):
    pa, pb = os.path.join(work, a, "predictions.csv"), os.path.join(work, b, "predictions.csv")
    if not (os.path.exists(pa) and os.path.exists(pb)):
        print(f"{a} vs {b}: missing predictions (a run failed)")
        return
    ra, rb = rows(pa), rows(pb)
    if ra.keys() != rb.keys():
        print(f"{a} vs {b}: different rows ({len(ra)} vs {len(rb)})")
        return
    differ = [k for k in ra if ra[k][0] != rb[k][0]]
    conf = max(abs(float(ra[k][1] or "nan") - float(rb[k][1] or "nan")) for k in ra)
    print(f"{a} vs {b}: {len(differ)} of {len(ra)} predictions differ, max |conf diff| {conf:.3g}")
    if a == "cpu-host":
        # Each difference: the label, then each side's prediction, its confidence and
        # its top-5 ranking; a near-tie shows as two confidences close to each other.
        for k in sorted(differ, key=lambda k: (k[0], float(k[1]), int(k[2])))[:60]:
            (pa_, ca, label, ta), (pb_, cb, _, tb) = ra[k], rb[k]
            print(f"  {k[0]} angle {k[1]} index {k[2]} label {label}: {a} {pa_} ({float(ca):.4f}, top {ta})"
                  f"  {b} {pb_} ({float(cb):.4f}, top {tb})")


def summary(work, name):
    p = os.path.join(work, name, "summary.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def main():
    work = sys.argv[1]
    for a, b in [("cpu-host", "cuda-device"), ("cpu-host", "cuda-host"), ("cuda-host", "cuda-device"),
                 ("cuda-device", "cuda-exact")]:
        compare(work, a, b)
    for name in sorted(os.listdir(work)):
        if name.startswith("dev-") and os.path.isdir(os.path.join(work, name)):
            compare(work, name, "host-" + name[4:])
    for name in ["cpu-host", "cuda-device"]:
        s = summary(work, name)
        if s:
            st = s["settings"]
            print(f"{name}: device {st['device']}, rotate_on {st['rotate_on']}, backend {st['backend']}, libtorch {s['libtorch_version']}")
            for m in s["models"]:
                acc = {a["angle"]: a["accuracy"] for a in m["angles"]}
                print(f"  {m['name']}: acc@0 {acc[0.0]:.4f}  acc@90 {acc[90.0]:.4f}  mean {m['sweep']['mean_accuracy']:.4f}")
    for name in ["auto"]:
        s = summary(work, name)
        if s:
            print(f"--device auto ran on {s['settings']['device']}, rotate_on {s['settings']['rotate_on']}")
    for name in ["cuda-cached"]:
        p = os.path.join(work, name, "timing.json")
        if os.path.exists(p):
            with open(p) as f:
                t = json.load(f)
            print(f"CUDA run after a CPU run with the same cache: {t['cached_pairs']} cached pairs (0 expected)")
    t = {}
    for name in ["cpu-host", "cuda-device", "cuda-host"]:
        p = os.path.join(work, name, "timing.json")
        if os.path.exists(p):
            with open(p) as f:
                t[name] = json.load(f)["wall_seconds"]
    if "cpu-host" in t:
        for name in ["cuda-device", "cuda-host"]:
            if name in t:
                print(f"wall time {name} / cpu-host (16 cores): {t[name] / t['cpu-host']:.3f} "
                      f"({t[name]:.1f} s / {t['cpu-host']:.1f} s, timing.json)")


if __name__ == "__main__":
    main()
