"""rotbench.sweep() and rotbench.export(): the Python API's way to run a sweep.

The binary runs as a child process (never exec'd: the Python process, a notebook's
kernel included, goes on after it), on the same torch libtorch as the console command
(_launcher.prepare). An nn.Module is exported first, as TorchScript by torch.jit.trace
in eval mode, with its spec in a sidecar MODEL.json beside the .pt (and embedded in it).
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from ._errors import GateFailed, RotbenchError
from ._launcher import LaunchError, prepare

# The arguments of sweep() that are the model's spec rather than flags of the run.
SPEC_KEYS = ("input_size", "mean", "std", "classes")


def _is_module(obj):
    """An nn.Module (a ScriptModule too); a path never imports torch to find out."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _input_size(value):
    """[C, H, W] from (C, H, W) or "CxHxW"."""
    if isinstance(value, str):
        parts = re.split(r"[x×,]", value.strip())
    else:
        parts = list(value)
    try:
        dims = [int(p) for p in parts]
    except (TypeError, ValueError):
        dims = []
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"input_size={value!r}: give (C, H, W) or 'CxHxW', e.g. (1, 28, 28)")
    return dims


def _floats(name, value):
    values = [value] if isinstance(value, (int, float)) else list(value)
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r}: give one number or one per channel") from None


def _class_names(value):
    """Class names from a list, a count (names "0".."C-1") or a file of one name a line."""
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(i) for i in range(value)]
    if isinstance(value, (str, os.PathLike)):
        return [ln.strip() for ln in Path(value).read_text().splitlines() if ln.strip()]
    return [str(c) for c in value]


def _flag_args(flags):
    """CLI arguments from keyword arguments: limit=500 -> --limit 500, no_report=True
    -> --no-report (False or None: left out), a list or tuple repeats the flag."""
    out = []
    for key, value in flags.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
            continue
        for v in value if isinstance(value, (list, tuple)) else [value]:
            out += [flag, str(v)]
    return out


def _angles_arg(angles):
    """--angles from "0:360:15", a range, or a list of numbers."""
    if isinstance(angles, str):
        return angles
    if isinstance(angles, (int, float)):
        return _num(angles)
    if isinstance(angles, range):
        return f"{angles.start}:{angles.stop}:{angles.step}" if angles.step > 0 else ",".join(map(str, angles))
    values = list(angles)
    if not values:
        raise ValueError("angles: give at least one angle")
    return ",".join(_num(a) for a in values)


def _num(x):
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


def _module_name(module, taken):
    base = re.sub(r"[^A-Za-z0-9_.-]+", "-", type(module).__name__).strip("-").lower() or "model"
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}-{k}"
    return name


def export(module, path, *, input_size, mean, std, classes=None, name=None, description=None):
    """Export an nn.Module for rotbench: TorchScript by torch.jit.trace, in eval mode.

    Writes ``path`` (a .pt) and its sidecar ``path`` with .json beside it (the spec:
    input, mean, std, classes, name), and embeds the same spec in the .pt (extra file
    rotbench.json). ``classes`` is a list of names, a count, or a file of one name a
    line; left out, the classes are "0".."C-1" for the C outputs of a forward pass.

    The module is traced with a batch of two random inputs of shape ``input_size`` on
    the device of its first parameter, in eval mode (each submodule's training flag is
    put back afterwards), and the trace is checked against the module on a batch of
    three: a module whose forward branches on its input or fixes the batch size cannot
    be traced, and that check raises RotbenchError saying so. A ScriptModule
    (torch.jit.script) is saved as it is. Returns the path of the .pt.
    """
    import torch

    path = Path(path)
    dims = _input_size(input_size)
    spec = {"input": dims, "mean": _floats("mean", mean), "std": _floats("std", std)}
    for key in ("mean", "std"):
        if len(spec[key]) not in (1, dims[0]):
            if dims[0] == 1:
                raise ValueError(f"{key}={spec[key]}: give 1 value (input_size {dims} has 1 channel)")
            raise ValueError(f"{key}={spec[key]}: give 1 value or {dims[0]} (one per channel of input_size {dims})")
    params = list(module.parameters()) + list(module.buffers())
    device = params[0].device if params else torch.device("cpu")
    dtype = params[0].dtype if params and params[0].is_floating_point() else torch.float32
    gen = torch.Generator().manual_seed(0)
    x2 = torch.rand(2, *dims, generator=gen).to(device=device, dtype=dtype)
    x3 = torch.rand(3, *dims, generator=gen).to(device=device, dtype=dtype)
    modes = [(m, m.training) for m in module.modules()]
    try:
        module.eval()
        with torch.no_grad():
            if isinstance(module, torch.jit.ScriptModule):
                saved, method = module, "torch.jit.script (saved as given)"
            else:
                try:
                    saved = torch.jit.trace(module, x2, check_trace=False)
                except Exception as e:
                    raise RotbenchError(
                        f"rotbench.export: torch.jit.trace failed on {type(module).__name__} with an "
                        f"input of shape {[2, *dims]}: {e}. Check input_size, or pass "
                        "torch.jit.script(module) instead") from e
                method = "torch.jit.trace"
            try:
                want = module(x3)
            except Exception as e:
                raise RotbenchError(
                    f"rotbench.export: {type(module).__name__} fails on a batch of 3 inputs of "
                    f"shape {dims} ({e}); rotbench runs it on batches of any size") from e
            try:
                got = saved(x3)
            except Exception as e:
                raise RotbenchError(
                    f"rotbench.export: the traced {type(module).__name__} fails on a batch of 3 "
                    f"({str(e).strip().splitlines()[-1] if str(e).strip() else e}): its forward "
                    "fixes the batch size of the trace (batch 2); use x.flatten(1) rather than "
                    "x.view(2, -1), or pass torch.jit.script(module)") from e
    finally:
        for m, training in modes:
            m.training = training
    logits = lambda out: out[0] if isinstance(out, (tuple, list)) else out  # noqa: E731
    if isinstance(want, torch.Tensor) and isinstance(got, torch.Tensor):
        if want.shape != got.shape or not torch.allclose(want, got, rtol=1e-4, atol=1e-5):
            raise RotbenchError(
                f"rotbench.export: the traced {type(module).__name__} gives other outputs than "
                "the module on a new input (its forward branches on the input's values, or on "
                "Python state): trace cannot capture it; pass torch.jit.script(module)")
    out = logits(want)
    if classes is None:
        if not (isinstance(out, torch.Tensor) and out.dim() == 2):
            raise ValueError("classes=: the module's output is not [N, C]; name its classes")
        classes = out.shape[1]
    spec["classes"] = _class_names(classes)
    spec["name"] = name or path.stem
    spec["description"] = description or (
        f"{type(module).__module__}.{type(module).__qualname__}, exported by rotbench.export ({method})")
    text = json.dumps(spec, indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(saved, str(path), _extra_files={"rotbench.json": text})
    path.with_suffix(".json").write_text(text)
    return path


def _run(exe, env, args, quiet):
    """Run the binary; returns (returncode, stdout, stderr). stderr is echoed to
    sys.stderr line by line (warnings and notes; not the error, which the exception
    carries), stdout to sys.stdout unless quiet.
    Ctrl-C (a notebook's interrupt) is passed on to the child, waited for, re-raised."""
    proc = subprocess.Popen([str(exe), *args], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, encoding="utf-8", errors="replace", bufsize=1)
    err_lines = []

    def drain_stderr():
        echo = True
        for line in proc.stderr:
            err_lines.append(line)
            # From rotbench's first `error:` line on, the text goes into the exception
            # (RotbenchError.message) rather than twice onto the screen.
            echo = echo and not line.startswith("error:")
            if echo:
                sys.stderr.write(line)

    t = threading.Thread(target=drain_stderr, daemon=True)
    t.start()
    out_lines = []
    try:
        for line in proc.stdout:
            out_lines.append(line)
            if not quiet:
                sys.stdout.write(line)
        proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    t.join()
    return proc.returncode, "".join(out_lines), "".join(err_lines)


def _error_text(stderr, stdout, returncode):
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    errors = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    if errors:
        return "\n".join(lines[errors[0]:]).strip()
    if lines:
        return "\n".join(lines[-20:])
    return (stdout.strip().splitlines() or [f"rotbench exited {returncode}"])[-1]


def sweep(model, data, angles=None, out=None, *, input_size=None, mean=None, std=None,
          classes=None, name=None, quiet=True, **flags):
    """Sweep models over a dataset at many rotation angles; returns a Results.

    model: a model file (.pt, .pt2, .onnx), an nn.Module, or a list of them. A module
        is exported into OUT/models/NAME.pt with its sidecar NAME.json (see export();
        NAME from ``name``, a string or a list for several modules, else the class
        name), from the spec given as ``input_size`` (C, H, W), ``mean``, ``std`` and
        ``classes``. For model files these four become --input-size, --mean, --std and
        --classes (a list of names is written to a file for it); when the list holds a
        module they are the modules' spec only.
    data: the dataset (an MNIST IDX folder, a CIFAR batch, a CSV manifest or an image
        folder), as --data.
    angles: "0:360:15", "0,90,180", a range or a list of numbers. None (the default):
        "0:360:15", or the protocol's own angles with protocol="imagenet-p-rotate" and
        the like (angles given beside a protocol override it, as the flag does).
    out: the output folder; None: a new temporary folder (kept; Results.out says where).
    quiet: True passes --quiet; False shows rotbench's table on stdout.
    **flags: any other flag of `rotbench sweep`: limit=500 -> --limit 500,
        no_report=True -> --no-report, a list repeats the flag.

    Raises RotbenchError (rotbench's error message and exit code 2) when the run
    fails, and GateFailed (exit 1, with the written results in .results) when a
    gate_config= gate fails. The Python process goes on in either case.
    """
    models = list(model) if isinstance(model, (list, tuple)) else [model]
    if not models:
        raise ValueError("model: give at least one model")
    out = Path(tempfile.mkdtemp(prefix="rotbench-")) if out is None else Path(out)
    modules = [m for m in models if _is_module(m)]
    spec = {"input_size": input_size, "mean": mean, "std": std, "classes": classes}
    args = ["sweep"]
    if name is not None and not modules:
        raise ValueError("name= names exported nn.Modules; a model file is named by its file stem")
    if modules:
        missing = [k for k in ("input_size", "mean", "std") if spec[k] is None]
        if missing:
            raise TypeError(
                f"rotbench.sweep: an nn.Module needs its spec: {', '.join(missing)} "
                "(input_size=(C, H, W), mean= and std= on the [0, 1] pixel scale, one value "
                "or one per channel; classes= a list of names, else \"0\"..\"C-1\")")
        names = [name] if isinstance(name, str) else list(name or [])
        if len(names) > len(modules):
            raise ValueError(f"name: {len(names)} names for {len(modules)} module(s)")
        taken = {Path(str(m)).stem for m in models if not _is_module(m)}
        exported = {}
        for i, m in enumerate(modules):
            n = names[i] if i < len(names) else _module_name(m, taken)
            if n in taken:
                raise ValueError(f"name: two models named {n!r}; give each module its own name")
            taken.add(n)
            exported[id(m)] = export(m, out / "models" / f"{n}.pt", name=n, **spec)
        for m in models:
            args += ["--model", str(exported[id(m)] if _is_module(m) else m)]
    else:
        for m in models:
            args += ["--model", os.fspath(m)]
        if input_size is not None:
            args += ["--input-size", "x".join(map(str, _input_size(input_size)))]
        if mean is not None:
            args += ["--mean", ",".join(_num(v) for v in _floats("mean", mean))]
        if std is not None:
            args += ["--std", ",".join(_num(v) for v in _floats("std", std))]
        if classes is not None:
            if isinstance(classes, (str, os.PathLike)):
                args += ["--classes", os.fspath(classes)]
            else:
                out.mkdir(parents=True, exist_ok=True)
                f = out / "models" / "classes.txt"
                f.parent.mkdir(exist_ok=True)
                f.write_text("".join(c + "\n" for c in _class_names(classes)))
                args += ["--classes", str(f)]
    if angles is None and flags.get("protocol") is None:
        angles = "0:360:15"
    args += ["--data", os.fspath(data)]
    if angles is not None:
        args += ["--angles", _angles_arg(angles)]
    args += ["--out", str(out)]
    if quiet:
        args.append("--quiet")
    args += _flag_args(flags)
    return _execute(args, out, quiet)


def _execute(args, out, quiet):
    from ._results import load

    try:
        exe, env = prepare()
    except LaunchError as e:
        raise RotbenchError(f"rotbench: {e}", 2, command=["rotbench", *args]) from None
    rc, stdout, stderr = _run(exe, env, args, quiet)
    command = ["rotbench", *args]
    if rc == 0:
        res = load(out)
        res.command, res.stdout, res.stderr = command, stdout, stderr
        return res
    if rc == 1 and (Path(out) / "summary.json").is_file():
        res = load(out)
        res.command, res.stdout, res.stderr = command, stdout, stderr
        failed = [ln for ln in (stdout + stderr).splitlines() if "FAIL" in ln]
        raise GateFailed("rotbench sweep: the gate failed" + (":\n" + "\n".join(failed) if failed else
                         "; the results are in .results"), res, stderr, stdout, command)
    raise RotbenchError(_error_text(stderr, stdout, rc), rc, stderr, stdout, command)
