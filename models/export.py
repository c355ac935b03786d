#!/usr/bin/env python3
"""Export the bundled MNIST models (models/NAME.pt, TorchScript) as ONNX and as
torch.export / AOTInductor packages, and check both against the TorchScript file.

    "$(bash scripts/setup-venv.sh)/bin/python" models/export.py [NAME ...]

For each NAME in mnist-cnn, mnist-cnn-aug, mnist-p4cnn (all three by default):

1. Rebuild the exported nn.Sequential from train_mnist.py's classes (CNN / P4CNN and their
   export() methods, with the bundled architectures' arguments), load the weights of
   models/NAME.pt (torch.jit.load(...).state_dict(), strict), eval mode, and require its
   logits to equal the TorchScript module's on the first 1,000 MNIST test digits
   (max |diff| <= 1e-5, else exit 1). The spec embedded in NAME.pt (extra file
   rotbench.json) must equal models/NAME.json byte for byte.
2. models/NAME.onnx: torch.onnx.export (dynamo exporter, onnxscript), opset 18, input
   "input" float32 [batch, 1, 28, 28] (dim_param "batch"), output "logits" float32
   [batch, 10], weights inside the file, models/NAME.json's text in metadata_props under
   key "rotbench.json". Checked with onnx.checker (full_check) and onnxruntime
   (CPUExecutionProvider) on all 10,000 test digits, upright.
3. models/NAME.pt2: torch.export.export with batch = Dim("batch", min=1, max=4096), then
   torch._inductor.aoti_compile_and_package for the CPU with an AVX2 baseline:
   cpp.simdlen=256 picks the AVX2 vector ISA for the kernels (CPU_CAPABILITY_AVX2,
   -mavx2 -mfma -mf16c) and cpp.march="x86-64-v3" replaces inductor's default
   -march=native (with simdlen=256 alone, gcc still put zmm registers and EVEX-only
   instructions into the .so on this AVX-512 machine). The spec goes in
   aot_inductor.metadata = {"rotbench.json": text}, which lands in the package's
   *_metadata.json files and in the loader's get_metadata(). Checked: the kernel source
   defines CPU_CAPABILITY_AVX2 and not AVX512; every compiler command run for the package
   (recorded while compiling, and also kept as "// g++ ..." comments in the packaged .cpp
   files) has -march=x86-64-v3 and no -mavx512* / native; AOTI_CPU_ISA is "AVX2"; objdump
   of the .so shows no AVX-512 register (zmm*, k0-7 masks, xmm/ymm16-31) and no EVEX-only
   instruction. Then torch._inductor.aoti_load_package on all 10,000 test digits, and
   get_metadata()["rotbench.json"] == models/NAME.json. The package is byte-identical from
   run to run on one machine and toolchain (a fresh inductor cache at a fixed path).

Inputs are the normalised images as the sidecar says: (pixel / 255 - mean) / std.
MNIST test set: datasets/mnist/t10k-{images.idx3,labels.idx1}-ubyte.gz (gzip IDX).
Prints agreement numbers and file sizes; run on one thread (`torch.set_num_threads(1)`,
onnxruntime intra_op_num_threads=1).

Layout of a .pt2 (zip; entries of models/mnist-cnn.pt2, names only; the other two differ
only in the names mnist-cnn-aug/mnist_cnn_aug and mnist-p4cnn/mnist_p4cnn). The top folder is
the file's stem; "model" is the AOTI model name (AOTIModelPackageLoader(path, "model"));
the .so holds the code and the weights; both *_metadata.json files are the same flat JSON
object of strings: "rotbench.json" (the spec, as text), "AOTI_DEVICE_KEY" ("cpu"),
"AOTI_PLATFORM" ("linux"), "AOTI_MACHINE" ("x86_64"), "AOTI_CPU_ISA" ("AVX2": the ISA hint),
"AOTI_COMPUTE_CAPABILITY" (""). archive_format holds "pt2", archive_version "0".
Printed by this script's --list:
PT2_LAYOUT_BEGIN
    mnist-cnn/data/aotinductor/model/mnist_cnn.wrapper.cpp
    mnist-cnn/data/aotinductor/model/mnist_cnn.kernel.cpp
    mnist-cnn/data/aotinductor/model/mnist_cnn.wrapper_metadata.json
    mnist-cnn/data/aotinductor/model/mnist_cnn.kernel_metadata.json
    mnist-cnn/data/aotinductor/model/mnist_cnn.wrapper.so
    mnist-cnn/archive_format
    mnist-cnn/archive_version
    mnist-cnn/.data/version
    mnist-cnn/byteorder
    mnist-cnn/.data/serialization_id
PT2_LAYOUT_END
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = ROOT / "models"
MNIST_DIR = ROOT / "datasets" / "mnist"
sys.path.insert(0, str(MODELS_DIR))
import train_mnist as tm  # noqa: E402  (class definitions only; its main() does not run)

OPSET = 18
MAX_BATCH = 4096
TOL = 1e-5
# Architectures of the bundled files (models/README.md, the NAME.train.log commands).
ARCHS = {
    "mnist-cnn": lambda: tm.CNN("32/64/64", 128, "flat3"),
    "mnist-cnn-aug": lambda: tm.CNN("32/64/64", 128, "flat3"),
    "mnist-p4cnn": lambda: tm.P4CNN("8/16,16/32,32", 64, "space-rot", head_kernel=3),
}
INDUCTOR_CACHE = Path(tempfile.gettempdir()) / "rotbench-export-inductor"
INDUCTOR_CONFIGS = {
    "cpp.simdlen": 256,          # AVX2 vector ISA (256-bit) for the generated kernels
    "cpp.march": "x86-64-v3",    # instead of -march=native: AVX2/FMA/BMI2/F16C, no AVX-512
}


# ----------------------------------------------------------------------------- data

def read_idx_gz(path):
    data = gzip.decompress(Path(path).read_bytes())
    zero, dtype_code, ndim = data[0] << 8 | data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file (magic {data[:4].hex()})")
    dims = [int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {int(np.prod(dims))} bytes, found {body.size}")
    return body.reshape(dims)


def mnist_test():
    """uint8 images [10000, 1, 28, 28], int64 labels [10000]."""
    x = read_idx_gz(MNIST_DIR / "t10k-images.idx3-ubyte.gz")
    y = read_idx_gz(MNIST_DIR / "t10k-labels.idx1-ubyte.gz")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,), (x.shape, y.shape)
    return torch.from_numpy(x.copy()).unsqueeze(1), torch.from_numpy(y.astype(np.int64))


def normalised(x_u8, spec):
    """The model input the sidecar describes: (pixel / 255 - mean) / std, float32."""
    assert spec["input"] == [1, 28, 28], spec["input"]
    return (x_u8.float() / 255.0 - spec["mean"][0]) / spec["std"][0]


def batched(fn, x, batch=1000):
    return torch.cat([fn(x[i:i + batch]) for i in range(0, x.shape[0], batch)])


# ----------------------------------------------------------------------------- models

def load_torchscript(name):
    extra = {"rotbench.json": ""}
    ts = torch.jit.load(str(MODELS_DIR / f"{name}.pt"), map_location="cpu", _extra_files=extra)
    ts.eval()
    spec_text = (MODELS_DIR / f"{name}.json").read_text()
    embedded = extra["rotbench.json"]
    if (embedded.decode() if isinstance(embedded, bytes) else embedded) != spec_text:
        sys.exit(f"{name}: rotbench.json inside {name}.pt differs from models/{name}.json")
    return ts, spec_text


def rebuild(name, ts):
    """The nn.Sequential that train_mnist.py scripted, with the TorchScript file's weights."""
    torch.manual_seed(0)  # the throwaway initial weights; all are replaced below
    seq = ARCHS[name]().eval().export()
    seq.load_state_dict(ts.state_dict(), strict=True)
    for i, mod in enumerate(seq):
        if isinstance(mod, tm.RotSpacePool):  # attributes, not in the state dict
            got = (getattr(ts, str(i)).channels, getattr(ts, str(i)).mode)
            if got != (mod.channels, mod.mode):
                sys.exit(f"{name}: RotSpacePool (channels, mode) {got} in the file, "
                         f"{(mod.channels, mod.mode)} rebuilt")
    return seq.eval()


# ----------------------------------------------------------------------------- ONNX

def export_onnx(name, seq, spec_text, path, dynamic=True):
    """Write `path`; returns the ModelProto. dynamic=False fixes the batch at 1."""
    import onnx

    x = torch.zeros(2 if dynamic else 1, 1, 28, 28)
    shapes = {"input": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}} if dynamic else None
    prog = torch.onnx.export(seq, (x,), None, input_names=["input"], output_names=["logits"],
                             opset_version=OPSET, dynamo=True, dynamic_shapes=shapes,
                             external_data=False, optimize=True, verbose=False)
    proto = prog.model_proto
    del proto.metadata_props[:]
    if spec_text is not None:
        entry = proto.metadata_props.add()
        entry.key, entry.value = "rotbench.json", spec_text
    proto.doc_string = f"rotbench {name}: exported by models/export.py from models/{name}.pt"
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
    want_b = "batch" if dynamic else 1
    assert (inp.name, dims(inp)) == ("input", [want_b, 1, 28, 28]), (inp.name, dims(inp))
    assert (out.name, dims(out)) == ("logits", [want_b, 10]), (out.name, dims(out))
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    opsets = {o.domain: o.version for o in proto.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == OPSET, opsets
    onnx.save(proto, str(path))
    return proto


def ort_session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])


def check_onnx(path, spec_text, x, ref):
    sess = ort_session(path)
    meta = sess.get_modelmeta().custom_metadata_map
    assert meta.get("rotbench.json") == spec_text, sorted(meta)
    (i,), (o,) = sess.get_inputs(), sess.get_outputs()
    print(f"  onnxruntime: input {i.name} {i.type} {i.shape}, output {o.name} {o.type} {o.shape}, "
          f"metadata keys {sorted(meta)}")
    got = batched(lambda b: torch.from_numpy(sess.run(["logits"], {"input": b.numpy()})[0]), x)
    return got


# ----------------------------------------------------------------------------- .pt2

def export_pt2(name, seq, spec_text, path):
    x = torch.zeros(2, 1, 28, 28)
    ep = torch.export.export(
        seq, (x,), dynamic_shapes={"input": {0: torch.export.Dim("batch", min=1, max=MAX_BATCH)}})
    configs = dict(INDUCTOR_CONFIGS)
    configs["aot_inductor.metadata"] = {"rotbench.json": spec_text}
    configs["aot_inductor.model_name_for_generated_files"] = name.replace("-", "_")
    # A fresh inductor cache at a fixed path for each model: everything is compiled (so the
    # commands below are seen), and the paths that end up in the package (comments in the
    # .cpp files, debug info in the .so) are the same from run to run.
    shutil.rmtree(INDUCTOR_CACHE, ignore_errors=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(INDUCTOR_CACHE)
    if path.exists():
        path.unlink()
    # Record the compiler command lines (the package keeps no compile flags).
    from torch._inductor import cpp_builder
    commands, run = [], cpp_builder._run_compile_cmd

    def recording(cmd_line, cwd):
        commands.append(cmd_line)
        return run(cmd_line, cwd)

    cpp_builder._run_compile_cmd = recording
    try:
        out = torch._inductor.aoti_compile_and_package(ep, package_path=str(path),
                                                      inductor_configs=configs)
    finally:
        cpp_builder._run_compile_cmd = run
    assert Path(out) == path, (out, path)
    return commands


AVX512_REG = re.compile(r"%(zmm\d+|[xy]mm(1[6-9]|2\d|3[01])|k[0-7])\b")
# Instructions that only exist with EVEX encoding (AVX-512F/VL/BW/DQ), even on xmm/ymm.
AVX512_INSN = re.compile(
    r"^\s*[0-9a-f]+:\s+(vpternlog[dq]|vperm[it]2\w+|vrndscale\w+|vrange\w+|vfixupimm\w+|"
    r"vgetexp\w+|vgetmant\w+|vscalef\w+|vpmov(?:[dqw][bwd]|us\w+|s[dqw]\w+|m2\w+|\w+2m)|"
    r"vcompress\w+|vexpand\w+|vpconflict\w+|vplzcnt\w+|vpro[lr]v?[dq]|valign[dq]|"
    r"v(?:p)?blendm\w+|v(?:extract|insert)[fi](?:32x4|64x2|32x8|64x4)|"
    r"vbroadcast[fi](?:32x[248]|64x[24])|vcvt\w*2u[dq]q?\w*|vcvtu[dq]q?2\w+|vrcp14\w+|"
    r"vrsqrt14\w+|vpsravw|vpsraq|vpabsq|vpmaxsq|vpminsq|vpmaxuq|vpminuq|vpmullq|kmov\w+)\b",
    re.M)


def check_isa(path, commands):
    """Require the AVX2 baseline in the package: kernel macros, compile flags, .so code."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        texts = {n: z.read(n).decode("utf-8", "replace") for n in names
                 if n.endswith((".cpp", ".h", ".json"))}
        sos = [n for n in names if n.endswith(".so")]
        so_bytes = {n: z.read(n) for n in sos}
    src = "\n".join(t for n, t in texts.items() if n.endswith(".cpp"))
    problems = []
    # Inductor first compiles a probe per vector ISA the CPU might have (cpu_vec_isa.py,
    # VecISA.check_build: loaded into Python, so linked with -ltorch_python) to pick the
    # ISA; those are not in the package.
    probes = [c for c in commands if "-ltorch_python" in c]
    commands = [c for c in commands if "-ltorch_python" not in c]
    flags = "\n".join(commands)
    assert commands, "no compiler command recorded (cached compile?)"
    # The package's .cpp files also end with the commands that compiled them, as comments.
    packaged = re.findall(r"^// (g\+\+ .*)$", src, re.M)
    if not packaged:
        problems.append("no compile command in the packaged .cpp files")
    flags += "\n" + "\n".join(packaged)
    macros = sorted(set(re.findall(r"CPU_CAPABILITY_[A-Z0-9_]+", src + flags)))
    isa_meta = sorted(set(re.findall(r'"AOTI_CPU_ISA": "([^"]*)"', "\n".join(texts.values()))))
    if isa_meta != ["AVX2"]:
        problems.append(f"AOTI_CPU_ISA {isa_meta}")
    if "CPU_CAPABILITY_AVX2" not in macros or any("AVX512" in m for m in macros):
        problems.append(f"ISA macros {macros}")
    if "x86-64-v3" not in flags or "native" in flags or "avx512" in flags:
        problems.append(f"compile flags {flags.strip()!r}")
    for n, b in so_bytes.items():
        with tempfile.NamedTemporaryFile(suffix=".so") as f:
            f.write(b)
            f.flush()
            asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f.name],
                                 check=True, capture_output=True, text=True).stdout
        regs = sorted(set(m.group(1) for m in AVX512_REG.finditer(asm)))
        insns = sorted(set(m.group(1) for m in AVX512_INSN.finditer(asm)))
        ymm = sum(1 for line in asm.splitlines() if "%ymm" in line)
        if regs or insns:
            problems.append(f"{n} uses AVX-512 registers {regs}, instructions {insns}")
        print(f"  ISA: {n}: {ymm} instructions on ymm registers; AVX-512 registers: "
              f"{regs or 'none'}; EVEX-only instructions: {insns or 'none'}")
    march = sorted(set(re.findall(r"march=[^\"\s,]+", flags)))
    mflags = sorted(set(re.findall(r"\bm(?:avx|fma|f16c)[a-z0-9]*", flags)))
    print(f"  ISA: {len(commands)} compiler commands run for the package ({len(packaged)} recorded "
          f"in its .cpp files; and {len(probes)} ISA probes); CPU_CAPABILITY macros in kernel source and "
          f"commands {macros}; {march}; {mflags}; AOTI_CPU_ISA in *_metadata.json {isa_meta}")
    if problems:
        sys.exit(f"{path.name}: not an AVX2 baseline: " + "; ".join(problems))
    return names


def check_pt2(path, spec_text, x):
    runner = torch._inductor.aoti_load_package(str(path))
    meta = runner.get_metadata()
    print(f"  aoti_load_package(...).get_metadata(): keys {sorted(meta)}")
    for k in sorted(meta):
        if k != "rotbench.json":
            print(f"    {k} = {meta[k]!r}")
    assert meta.get("rotbench.json") == spec_text, "rotbench.json missing from get_metadata()"
    with torch.no_grad():
        got = batched(lambda b: runner(b), x)
    return got


def agreement(kind, got, ref, y):
    diff_argmax = int((got.argmax(1) != ref.argmax(1)).sum())
    max_diff = float((got - ref).abs().max())
    acc = float((got.argmax(1) == y).float().mean())
    print(f"  {kind} vs TorchScript on {ref.shape[0]} upright test digits: "
          f"argmax differs on {diff_argmax}, max |logit diff| {max_diff:.3g}, accuracy {acc:.4f}")
    return diff_argmax, max_diff


def size(path):
    return f"{path.name} {path.stat().st_size:,} bytes"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(ARCHS)} (default: all)")
    ap.add_argument("--skip-pt2", action="store_true", help="only the ONNX files")
    ap.add_argument("--list", action="store_true",
                    help="print the entry names of models/mnist-cnn.pt2 and exit")
    args = ap.parse_args()
    args.names = args.names or list(ARCHS)
    if set(args.names) - set(ARCHS):
        ap.error(f"unknown model {sorted(set(args.names) - set(ARCHS))}; choose from {list(ARCHS)}")
    if args.list:
        with zipfile.ZipFile(MODELS_DIR / "mnist-cnn.pt2") as z:
            print("\n".join(z.namelist()))
        return

    torch.set_num_threads(1)
    print(f"torch {torch.__version__}", end="")
    import onnx
    import onnxruntime
    import onnxscript
    print(f", onnx {onnx.__version__}, onnxscript {onnxscript.__version__}, "
          f"onnxruntime {onnxruntime.__version__}")
    x_u8, y = mnist_test()
    failed = []
    for name in args.names:
        print(f"== {name}")
        ts, spec_text = load_torchscript(name)
        spec = json.loads(spec_text)
        x = normalised(x_u8, spec)
        seq = rebuild(name, ts)
        with torch.no_grad():
            ref = batched(ts, x)
            d = float((seq(x[:1000]) - ref[:1000]).abs().max())
        print(f"  rebuilt nn.Module vs TorchScript, first 1,000 test digits: max |logit diff| {d:.3g}")
        if not d <= TOL:
            sys.exit(f"{name}: rebuilt module differs from {name}.pt by {d:.3g} > {TOL}")

        onnx_path = MODELS_DIR / f"{name}.onnx"
        export_onnx(name, seq, spec_text, onnx_path)
        n, _ = agreement("onnxruntime", check_onnx(onnx_path, spec_text, x, ref), ref, y)
        failed += [f"{name}.onnx"] if n else []
        print(f"  wrote {size(onnx_path)} (sha256 "
              f"{hashlib.sha256(onnx_path.read_bytes()).hexdigest()[:16]}…)")

        if not args.skip_pt2:
            pt2_path = MODELS_DIR / f"{name}.pt2"
            check_isa(pt2_path, export_pt2(name, seq, spec_text, pt2_path))
            n, _ = agreement("AOTInductor .pt2", check_pt2(pt2_path, spec_text, x), ref, y)
            failed += [f"{name}.pt2"] if n else []
            print(f"  wrote {size(pt2_path)} (sha256 "
                  f"{hashlib.sha256(pt2_path.read_bytes()).hexdigest()[:16]}…)")
    print("sizes: " + ", ".join(size(MODELS_DIR / f"{n}{ext}") for n in args.names
                                for ext in (".pt", ".onnx", ".pt2")
                                if (MODELS_DIR / f"{n}{ext}").exists()))
    if failed:
        sys.exit(f"argmax differs from TorchScript: {failed}")


if __name__ == "__main__":
    main()
