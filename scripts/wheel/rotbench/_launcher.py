"""Run the bundled rotbench binary on the installed torch package's libtorch.

The binary links libtorch_cpu.so (and opens libtorch_cuda.so itself when torch is
a CUDA build). Here the torch package is found without importing it (importing
torch takes seconds), its version is checked against the one the binary was built
for, and the binary is exec'd with torch/lib first on LD_LIBRARY_PATH and
ROTBENCH_SHARE pointing at the bundled demo files. Every failure is exit 2 with
the command that fixes it. prepare() is the same check for the Python API
(rotbench.sweep), which runs the binary as a child process instead of exec'ing.
"""

import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def share_dir() -> Path:
    """The bundled demo models and MNIST test set."""
    return HERE / "share"


def _fail(message: str) -> int:
    sys.stderr.write(f"rotbench: {message}\n")
    return 2


def _torch_version(torch_dir: Path):
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        for line in (torch_dir / "version.py").read_text().splitlines():
            if line.startswith("__version__"):
                return line.split("=", 1)[1].strip().strip("'\"")
    except OSError:
        pass
    return None


def _same_minor(found: str, want: str) -> bool:
    major_minor = lambda v: v.replace("+", ".").split(".")[:2]  # noqa: E731
    return major_minor(found) == major_minor(want)


class LaunchError(Exception):
    """Why the binary cannot run here, with the command that fixes it."""


def prepare():
    """The bundled binary and the environment to run it in: (exe, env).

    Raises LaunchError (its text is the message with the fix) when torch is missing,
    of the wrong version or broken, or when the wheel's binary is missing.
    """
    build = json.loads((HERE / "_build.json").read_text())
    want = build["libtorch"]
    minor = ".".join(want.split(".")[:2])
    pip = f"{sys.executable} -m pip install 'torch=={want}'"
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise LaunchError(
            f"no Python torch in this environment ({sys.executable}); rotbench "
            f"{build['version']} runs on the libtorch of torch {minor}.x. Install it: "
            f"{pip}  (a CPU-only build of torch {want} works as well)"
        )
    torch_dir = Path(spec.origin).resolve().parent
    version = _torch_version(torch_dir)
    if version is None or not _same_minor(version, want):
        raise LaunchError(
            f"torch {version or '(unknown version)'} is installed at {torch_dir}, but this "
            f"rotbench {build['version']} is built for torch {minor}.x. Install that "
            f"version: {pip}, or use a rotbench built for your torch"
        )
    lib = torch_dir / "lib"
    if not (lib / "libtorch_cpu.so").is_file():
        raise LaunchError(
            f"the torch package at {torch_dir} has no lib/libtorch_cpu.so (a broken "
            f"install?); reinstall it: {sys.executable} -m pip install --force-reinstall 'torch=={want}'"
        )
    exe = HERE / "bin" / "rotbench"
    if not exe.is_file():
        raise LaunchError(f"the rotbench binary is missing ({exe}); reinstall the rotbench wheel")
    if not os.access(exe, os.X_OK):
        try:
            exe.chmod(0o755)
        except OSError as e:
            raise LaunchError(f"{exe} is not executable ({e}); reinstall the rotbench wheel") from e
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        [str(lib)] + ([env["LD_LIBRARY_PATH"]] if env.get("LD_LIBRARY_PATH") else [])
    )
    env.setdefault("ROTBENCH_SHARE", str(share_dir()))
    # ONNX models run on an installed onnxruntime package's library when there is
    # one (rotbench fetches its own into the cache otherwise).
    try:
        ort = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        ort = None
    if ort is not None and ort.origin:
        libs = sorted((Path(ort.origin).parent / "capi").glob("libonnxruntime.so*"))
        if libs:
            env.setdefault("ROTBENCH_PY_ONNXRUNTIME", str(libs[-1]))
    return exe, env


def main(argv=None) -> int:
    """The console command: replaces this process with the binary (os.execve).

    For use from Python (a notebook, a script that goes on afterwards) call
    rotbench.sweep(), which runs the binary as a child process instead.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        exe, env = prepare()
    except LaunchError as e:
        return _fail(str(e))
    try:
        os.execve(str(exe), [str(exe), *argv], env)
    except OSError as e:
        return _fail(f"cannot run {exe}: {e}; reinstall the rotbench wheel")
    return 2  # not reached
