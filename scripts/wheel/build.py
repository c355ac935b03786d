#!/usr/bin/env python3
"""Build rotbench's wheel: the release binary, the launcher and the bundled demo.

    python3 scripts/wheel/build.py --binary target/release/rotbench --out dist

Standard library only. The wheel holds:
  rotbench/*.py                               the launcher and the Python API
                                              (scripts/wheel/rotbench/: sweep, load, export)
  rotbench/_build.json                        rotbench's version and the libtorch it needs
  rotbench/bin/rotbench                       the binary, stripped, RUNPATH $ORIGIN/../../torch/lib
  rotbench/share/models/, share/datasets/mnist/  the bundled models and MNIST test set
and declares `torch>=X.Y,<X.Y+1`, which a CPU-only torch of that version satisfies,
and the extra `pandas` (`pip install 'rotbench[pandas]'`) for the API's DataFrames.
The platform tag is manylinux_2_N_x86_64 with N the newest glibc symbol version the
binary uses. The zip is reproducible: sorted entries and fixed timestamps.
"""

import argparse
import base64
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).resolve().parent / "rotbench"
MODELS = ["mnist-cnn", "mnist-cnn-aug", "mnist-p4cnn"]
MNIST = ["t10k-images.idx3-ubyte.gz", "t10k-labels.idx1-ubyte.gz", "SOURCE.md"]
# Relative to rotbench/bin/: site-packages/torch/lib when torch sits beside rotbench.
RUNPATH = b"$ORIGIN/../../torch/lib"
DATE = (1980, 1, 1, 0, 0, 0)
# The Python API's DataFrames (rotbench.load, Results.per_angle, ...): the one optional
# dependency, `pip install 'rotbench[pandas]'`.
PANDAS = "2.0"


def fail(msg):
    sys.exit(f"build-wheel: {msg}")


def cargo_field(table, key):
    section = None
    for line in (ROOT / "Cargo.toml").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == table and re.match(rf"{key}\s*=", line):
            return line.split("=", 1)[1].strip().strip('"')
    fail(f"Cargo.toml has no {key} under {table}")


def readelf(args, binary):
    try:
        return subprocess.run(["readelf", *args, str(binary)], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        fail(f"readelf (binutils) is needed: {e}")


def set_runpath(binary: Path):
    """Rewrite DT_RUNPATH in place: the new string is no longer than the old one,
    so it fits in .dynstr where the old one was, padded with NULs."""
    m = re.search(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[(.*)\]", readelf(["-d"], binary))
    if not m:
        fail(f"{binary} has no RUNPATH (build.rs sets one); was it built by cargo?")
    old = m.group(1).encode()
    if len(RUNPATH) > len(old):
        fail(f"{binary}'s RUNPATH {old!r} is shorter than {RUNPATH!r}; build with libtorch at a longer path")
    data = bytearray(binary.read_bytes())
    needle = old + b"\0"
    if data.count(needle) != 1:
        fail(f"{binary}: the RUNPATH string occurs {data.count(needle)} times, expected once")
    at = data.index(needle)
    data[at:at + len(needle)] = RUNPATH + b"\0" * (len(needle) - len(RUNPATH))
    binary.write_bytes(bytes(data))
    if f"[{RUNPATH.decode()}]" not in readelf(["-d"], binary):
        fail("rewriting the RUNPATH did not take")


def glibc_tag(binary: Path) -> str:
    versions = [int(v) for v in re.findall(r"GLIBC_2\.(\d+)", readelf(["--dyn-syms", "-W"], binary))]
    return f"manylinux_2_{max(versions + [17])}_x86_64"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", type=Path, required=True, help="the release rotbench binary")
    ap.add_argument("--out", type=Path, required=True, help="folder for the .whl")
    ap.add_argument("--libtorch", help="the libtorch version the binary is built for (default: Cargo.toml's)")
    args = ap.parse_args()
    if not args.binary.is_file():
        fail(f"--binary {args.binary}: no such file; run `make build` first")
    version = cargo_field("[workspace.package]", "version")
    libtorch = args.libtorch or cargo_field("[package.metadata.rotbench]", "libtorch")
    major, minor = (int(x) for x in libtorch.split(".")[:2])

    with tempfile.TemporaryDirectory() as tmp:
        exe = Path(tmp) / "rotbench"
        shutil.copyfile(args.binary, exe)
        try:
            subprocess.run(["strip", "--strip-unneeded", str(exe)], check=True)
        except (OSError, subprocess.CalledProcessError) as e:
            fail(f"strip (binutils) is needed: {e}")
        set_runpath(exe)
        tag = glibc_tag(exe)
        binary = exe.read_bytes()

    files = {}  # archive name -> (bytes, executable)
    for py in sorted(LAUNCHER.glob("*.py")):
        files[f"rotbench/{py.name}"] = (py.read_bytes(), False)
    files["rotbench/_build.json"] = (json.dumps({"version": version, "libtorch": libtorch}, indent=1).encode() + b"\n", False)
    files["rotbench/bin/rotbench"] = (binary, True)
    for m in MODELS:
        for ext in (".pt", ".json"):
            p = ROOT / "models" / (m + ext)
            if not p.is_file():
                fail(f"{p} is missing; restore it with `git checkout -- models`")
            files[f"rotbench/share/models/{m}{ext}"] = (p.read_bytes(), False)
    for f in MNIST:
        p = ROOT / "datasets" / "mnist" / f
        if not p.is_file():
            fail(f"{p} is missing; restore it with `git checkout -- datasets`")
        files[f"rotbench/share/datasets/mnist/{f}"] = (p.read_bytes(), False)

    dist = f"rotbench-{version}.dist-info"
    readme = (
        "rotbench sweeps a labelled image test set across rotation angles and reports "
        "accuracy, precision/recall/F1, confusion matrices and invariance measures at "
        "every angle, with PNG plots, an HTML report and a CI gate.\n\n"
        f"It runs on the libtorch of the installed torch {major}.{minor} package "
        "(CPU-only or CUDA). `rotbench doctor` checks the install; `rotbench demo` "
        "runs the bundled MNIST demo.\n\n"
        "From Python (a notebook too): `rotbench.sweep(model, data, angles=..., out=...)` "
        "runs a sweep (a model file or a torch `nn.Module`) and returns its results; "
        "`rotbench.load(out)` reads a finished one. Their tables are pandas DataFrames: "
        "`pip install 'rotbench[pandas]'`.\n"
    )
    files[f"{dist}/METADATA"] = ((
        "Metadata-Version: 2.1\n"
        "Name: rotbench\n"
        f"Version: {version}\n"
        "Summary: Rotation-robustness evaluation harness for image classifiers\n"
        "License: MIT OR Apache-2.0\n"
        "Requires-Python: >=3.9\n"
        f"Requires-Dist: torch<{major}.{minor + 1},>={major}.{minor}\n"
        "Provides-Extra: pandas\n"
        f"Requires-Dist: pandas>={PANDAS}; extra == \"pandas\"\n"
        "Description-Content-Type: text/markdown\n\n" + readme).encode(), False)
    files[f"{dist}/WHEEL"] = ((
        "Wheel-Version: 1.0\n"
        "Generator: rotbench scripts/wheel/build.py\n"
        "Root-Is-Purelib: false\n"
        f"Tag: py3-none-{tag}\n").encode(), False)
    files[f"{dist}/entry_points.txt"] = (b"[console_scripts]\nrotbench = rotbench._launcher:main\n", False)
    record = "".join(f"{n},{record_hash(d)},{len(d)}\n" for n, (d, _) in sorted(files.items()))
    record += f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = (record.encode(), False)

    args.out.mkdir(parents=True, exist_ok=True)
    wheel = args.out / f"rotbench-{version}-py3-none-{tag}.whl"
    part = wheel.with_name(wheel.name + ".part")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        # dist-info last, RECORD at the very end, as the wheel spec recommends.
        for name in sorted(files, key=lambda n: (n.startswith(dist), n.endswith("/RECORD"), n)):
            data, executable = files[name]
            info = zipfile.ZipInfo(name, DATE)
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    part.write_bytes(buf.getvalue())
    part.replace(wheel)
    print(wheel)


if __name__ == "__main__":
    main()
