#!/usr/bin/env python3
"""Unpack a libtorch folder from PyPI wheels: torch/include/ and the named libraries.

    python3 scripts/unpack-libtorch.py WHEELS_DIR STAGE LIB [LIB ...]

Every wheel in WHEELS_DIR is read; torch/include/** goes to STAGE/include/ and each
file named LIB found in a lib/ folder goes to STAGE/lib/ (executable). A LIB that
no wheel holds is an error. Used by setup-libtorch.sh (the slim CPU libtorch that
make build links) and build-device-binary.sh (a libtorch of another torch version).
"""
import pathlib
import sys
import zipfile


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    wheels, stage = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    want, found = set(sys.argv[3:]), set()
    for whl in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(whl) as z:
            for info in z.infolist():
                name = info.filename
                if name.endswith("/"):
                    continue
                base = name.rsplit("/", 1)[-1]
                if name.startswith("torch/include/"):
                    out = stage / "include" / name[len("torch/include/"):]
                elif base in want and "/lib/" in "/" + name:
                    out = stage / "lib" / base
                    found.add(base)
                else:
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(out, "wb") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
                if ".so" in out.name:
                    out.chmod(0o755)
    missing = want - found
    if missing:
        sys.exit(f"unpack-libtorch: the wheels in {wheels} lack {sorted(missing)}")


if __name__ == "__main__":
    main()
