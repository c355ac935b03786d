#!/usr/bin/env python3
"""The wheel's Python API (issue 33, part 1), run by scripts/test-wheel.sh in a venv that
holds torch and the installed rotbench wheel:

    python scripts/wheel/tests/test_python_api.py --phase no-pandas   # before pandas is installed
    python scripts/wheel/tests/test_python_api.py --phase pandas      # with pandas (and numpy)
    python scripts/wheel/tests/test_python_api.py --phase notebook    # docs/notebooks/quickstart.ipynb
                                                                      # (nbclient, nbformat, ipykernel)
    python scripts/wheel/tests/test_python_api.py --phase no-torch    # in a venv without torch

Each test is a function named as a sentence; they run in order in one process (a failed
run must leave the process going, and the later tests are the proof). Standard library
only besides rotbench, torch and, in the pandas phase, pandas. The first failure stops it
with exit 1. Sweeps use the bundled models and MNIST test set on a few hundred samples.
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import rotbench

ROOT = Path(__file__).resolve().parents[3]
SHARE = rotbench.share_dir()
CNN = SHARE / "models" / "mnist-cnn.pt"
AUG = SHARE / "models" / "mnist-cnn-aug.pt"
MNIST = SHARE / "datasets" / "mnist"
WORK = Path(tempfile.mkdtemp(prefix="rotbench-api-test-"))
ANGLES = "0:360:30"
LIMIT = 300
state = {}


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {exc.__name__}")


def two_model_sweep():
    """The bundled upright and augmented CNNs, shared by the tests of one phase."""
    if "two" not in state:
        state["two"] = rotbench.sweep([CNN, AUG], MNIST, angles=ANGLES, out=WORK / "two", limit=LIMIT)
    return state["two"]


# ----------------------------------------------------------------------------- both phases

def sweep_runs_the_binary_as_a_child_and_returns_the_results_of_its_out_folder():
    res = two_model_sweep()
    check(isinstance(res, rotbench.Results), type(res))
    check(res.out == WORK / "two", res.out)
    check(res.models == ["mnist-cnn", "mnist-cnn-aug"], res.models)
    check(res.raw == json.loads((WORK / "two" / "summary.json").read_text()), "raw is not summary.json")
    check(res.raw["settings"]["limit"] == LIMIT and len(res.raw["settings"]["angles"]) == 12,
          res.raw["settings"])
    check(res.command[:2] == ["rotbench", "sweep"] and "--quiet" in res.command, res.command)
    check(res.classes["mnist-cnn"] == [str(i) for i in range(10)], res.classes)


def summary_rows_are_the_sweep_figures_of_summary_json_one_per_model():
    res = two_model_sweep()
    rows = res.summary_rows()
    check([r["model"] for r in rows] == res.models, rows)
    for row, m in zip(rows, res.raw["models"]):
        sw = m["sweep"]
        ref = [a for a in m["angles"] if a["reference"]][0]
        worst = [a for a in m["angles"] if a["angle"] == sw["worst_angle"]][0]
        want = {"n": LIMIT, "accuracy_at_0": sw["accuracy_at_reference"], "mean_accuracy": sw["mean_accuracy"],
                "worst_angle": sw["worst_angle"], "worst_accuracy": sw["worst_accuracy"],
                "worst_of_sweep": sw["worst_of_sweep_accuracy"], "flip_probability": sw["flip_probability"],
                "ece_at_0": ref["ece"], "ece_at_worst_angle": worst["ece"], "worst_ece": sw["worst_ece"],
                "worst_ece_angle": sw["worst_ece_angle"], "relative_robustness": sw["relative_robustness"]}
        for k, v in want.items():
            check(row[k] == v, f"{row['model']} {k}: {row[k]} != {v}")
    check(rows[0]["worst_accuracy"] < 0.5 < rows[1]["worst_accuracy"], rows)


def the_notebook_display_holds_the_summary_table_and_the_accuracy_chart():
    res = two_model_sweep()
    page = res._repr_html_()
    check('<table class="rotbench-summary">' in page, page[:500])
    check(page.count("<tr>") == 3 and "mnist-cnn-aug" in page and "accuracy at 0°" in page, page[:2000])
    check('src="data:image/png;base64,iVBOR' in page, "no PNG chart in the display")
    check("mean accuracy" in repr(res), repr(res))


def a_failed_run_raises_rotbench_error_with_the_message_and_exit_code_and_the_process_goes_on():
    e = raises(rotbench.RotbenchError, rotbench.sweep, WORK / "missing.pt", MNIST, angles="0,90",
               out=WORK / "failed", limit=10)
    check(e.returncode == 2, e.returncode)
    check("cannot read the model file" in e.message and "missing.pt" in e.message, e.message)
    check(str(e).endswith("(exit 2)") and e.command[:2] == ["rotbench", "sweep"], str(e))
    e = raises(rotbench.RotbenchError, rotbench.sweep, CNN, MNIST, angles="0", out=WORK / "failed",
               not_a_flag=3)
    check(e.returncode == 2 and "--not-a-flag" in e.message, e.message)
    check(not isinstance(e, rotbench.GateFailed), type(e))
    # Still here, and rotbench still runs.
    res = rotbench.sweep(CNN, MNIST, angles=[0, 90], out=WORK / "after-failure", limit=50, no_report=True)
    check(res.summary_rows()[0]["n"] == 50, res.summary_rows())


def a_protocol_keeps_its_own_angles_unless_angles_are_given():
    res = rotbench.sweep(CNN, MNIST, out=WORK / "protocol", protocol="imagenet-p-rotate", limit=20,
                         no_report=True)
    st = res.raw["settings"]
    check(len(st["angles"]) == 31 and st["angles"][0] == 15.0, st["angles"])
    check(st["protocol"]["overrides"] == [], st["protocol"])
    check(res.summary_rows()[0]["flip_probability"] is not None, res.summary_rows())
    res = rotbench.sweep(CNN, MNIST, angles="0,1", out=WORK / "protocol2", protocol="imagenet-p-rotate",
                         limit=20, no_report=True)
    st = res.raw["settings"]
    check(st["angles"] == [0.0, 1.0], st["angles"])
    check([o["flag"] for o in st["protocol"]["overrides"]] == ["--angles"], st["protocol"])


def load_of_a_folder_that_is_no_sweep_raises_naming_it():
    (WORK / "empty").mkdir(exist_ok=True)
    e = raises(rotbench.RotbenchError, rotbench.load, WORK / "empty")
    check("summary.json" in str(e) and str(WORK / "empty") in str(e), str(e))


def the_console_command_still_runs_and_exits_with_the_code_of_rotbench():
    # main() execs (it is the console script); run it in a child as a user's shell would.
    p = subprocess.run([sys.executable, "-c", "import rotbench, sys; sys.exit(rotbench.main(['--version']))"],
                       capture_output=True, text=True)
    check(p.returncode == 0 and p.stdout.startswith("rotbench "), (p.returncode, p.stdout, p.stderr))


# ----------------------------------------------------------------------------- without pandas

def without_pandas_a_dataframe_raises_import_error_naming_the_pip_command():
    try:
        import pandas  # noqa: F401
        raise AssertionError("pandas is installed; the no-pandas phase needs a venv without it")
    except ImportError:
        pass
    res = two_model_sweep()
    for attr in ("per_angle", "per_class", "confusion", "predictions", "summary"):
        e = raises(ImportError, getattr, res, attr)
        check("pip install 'rotbench[pandas]'" in str(e) and f"Results.{attr}" in str(e), str(e))


# ----------------------------------------------------------------------------- with pandas

def keyword_flags_become_cli_flags_and_lists_repeat():
    from rotbench._api import _angles_arg, _flag_args

    got = _flag_args({"limit": 500, "no_report": True, "exact": False, "seed": None,
                      "class_subset": Path("s.txt"), "fill": 0.5, "x": ["a", "b"]})
    want = ["--limit", "500", "--no-report", "--class-subset", "s.txt", "--fill", "0.5", "--x", "a", "--x", "b"]
    check(got == want, got)
    check(_angles_arg([0, 90, 22.5]) == "0,90,22.5" and _angles_arg(range(0, 360, 45)) == "0:360:45", "angles")
    res = rotbench.sweep(CNN, MNIST, angles=range(0, 360, 90), out=WORK / "flags", limit=40,
                         no_report=True, bootstrap=0, interpolation="nearest", no_predictions=True)
    st = res.raw["settings"]
    check((st["limit"], st["bootstrap"], st["interpolation"]) == (40, 0, "nearest"), st)
    check(st["angles"] == [0.0, 90.0, 180.0, 270.0], st["angles"])
    check(res.report is None and not (WORK / "flags" / "predictions.csv").exists(), "--no-report/--no-predictions")
    e = raises(rotbench.RotbenchError, getattr, res, "predictions")
    check("no_predictions=True" in str(e), str(e))
    # The display without a chart says why (matplotlib is not installed in the test venv).
    check("<table" in res._repr_html_(), "no table")


def dataframes_have_typed_columns_and_the_values_of_the_csv_files():
    import pandas as pd

    res = two_model_sweep()
    pa = res.per_angle
    check(len(pa) == 24, len(pa))
    types = pa.dtypes.astype(str).to_dict()
    check(types["model"] == "category" and types["angle"] == "float64" and types["n"] == "int64", types)
    check(types["reference"] == "bool" and types["in_sweep"] == "bool" and types["accuracy"] == "float64", types)
    check(not any(pd.api.types.is_object_dtype(t) for t in pa.dtypes), types)
    with open(WORK / "two" / "per_angle.csv") as f:
        rows = list(csv.DictReader(f))
    for row, (_, got) in zip(rows, pa.iterrows()):
        check(float(row["accuracy"]) == got["accuracy"] and float(row["angle"]) == got["angle"], row)
        check((row["reference"] == "true") == got["reference"] and int(row["n"]) == got["n"], row)
    pred = res.predictions
    check(len(pred) == 2 * 12 * LIMIT, len(pred))
    t = pred.dtypes.astype(str).to_dict()
    check(t["index"] == t["label"] == t["pred"] == "int64" and t["confidence"] == "float32", t)
    check(t["label_name"] == t["pred_name"] == "category", t)
    check(list(pred.columns[:9]) == ["model", "angle", "dx", "dy", "index", "label", "label_name", "pred",
                                      "pred_name"], list(pred.columns))
    check(t["dx"] == "float64" and t["draw"] == "Int64" and t["worst"] == "boolean", t)
    check(pred["draw"].isna().all() and (pred["dx"] == 0).all(), "a rotation sweep has no draws or shifts")
    classes = res.classes["mnist-cnn"]
    check((pred["label_name"].astype(str) == [classes[i] for i in pred["label"]]).all(), "label_name")
    check((pred["pred_name"].astype(str) == [classes[i] for i in pred["pred"]]).all(), "pred_name")
    check(list(pred["label_name"].cat.categories) == classes, "categories in class order")
    pc = res.per_class
    check(pc["class"].dtype == "int64" and pc["support"].dtype == "int64" and pc["f1"].dtype == "float64",
          pc.dtypes)
    cm = res.confusion
    check(list(cm.columns) == ["model", "angle", "dx", "dy", "true", "true_name", "pred", "pred_name", "count"],
          cm.columns)
    check(int(cm[(cm.model == "mnist-cnn") & (cm.angle == 0)]["count"].sum()) == LIMIT, "confusion counts")
    # Worst-of-sweep recomputed from the predictions frame equals summary.json's.
    ok = (pred["label"] == pred["pred"]).groupby([pred["model"], pred["index"]], observed=True).all()
    wos = ok.groupby(level=0, observed=True).mean()
    for m in res.raw["models"]:
        check(abs(wos[m["name"]] - m["sweep"]["worst_of_sweep_accuracy"]) < 1e-12, (wos, m["sweep"]))


def summary_is_one_typed_row_per_model():
    res = two_model_sweep()
    s = res.summary
    check(list(s["model"].astype(str)) == res.models, s)
    check(s["n"].dtype == "int64" and all(s[c].dtype == "float64" for c in s.columns[2:]), s.dtypes)
    for row, frame_row in zip(res.summary_rows(), s.to_dict("records")):
        check({k: v for k, v in frame_row.items() if k != "model"} ==
              {k: v for k, v in row.items() if k != "model"}, (row, frame_row))
    pa = res.per_angle
    ref = pa[pa.reference].set_index(pa[pa.reference]["model"].astype(str))
    for _, row in s.iterrows():
        check(row["ece_at_0"] == ref.loc[str(row["model"]), "ece"], row)
        check(row["accuracy_at_0"] == ref.loc[str(row["model"]), "accuracy"], row)


def a_sweep_without_labels_loads_with_only_its_label_free_columns():
    frames = WORK / "frames"
    frames.mkdir()
    src = ROOT / "tests" / "fixtures" / "protocols" / "imagenet_p"
    for f in sorted(src.glob("*/*.jpg")):
        shutil.copy(f, frames / f"{f.parent.name}-{f.name}")
    model = ROOT / "tests" / "fixtures" / "protocols" / "resnet18_mini.pt"
    res = rotbench.sweep(model, frames, out=WORK / "nolabels", protocol="imagenet-p-rotate",
                         no_report=True, bootstrap=0)
    check(res.labelled is False and res.raw["dataset"]["labelled"] is False, res.raw["dataset"])
    cols = list(res.predictions.columns)
    check("label" not in cols and "label_name" not in cols and "pred_name" in cols, cols)
    check(len(res.predictions) == 20 * 31, len(res.predictions))
    check("no labels" in repr(res), repr(res))
    check(res.summary_rows()[0]["flip_probability"] is not None, res.summary_rows())
    check(two_model_sweep().labelled is True, "a labelled sweep")


def load_reads_what_sweep_returned():
    import pandas as pd

    res = two_model_sweep()
    again = rotbench.load(WORK / "two")
    check(again.raw == res.raw, "raw")
    for attr in ("summary", "per_angle", "per_class", "confusion", "predictions"):
        pd.testing.assert_frame_equal(getattr(again, attr), getattr(res, attr))


def a_csv_of_another_run_is_refused():
    shutil.copytree(WORK / "two", WORK / "mixed")
    shutil.copyfile(WORK / "flags" / "per_angle.csv", WORK / "mixed" / "per_angle.csv")
    e = raises(rotbench.RotbenchError, getattr, rotbench.load(WORK / "mixed"), "per_angle")
    check("another run" in str(e), str(e))


def spec_keywords_become_flags_for_a_model_file_and_name_the_classes():
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    res = rotbench.sweep(CNN, MNIST, angles=[0, 180], out=WORK / "named", limit=60, no_report=True,
                         input_size=(1, 28, 28), mean=0.1307, std=[0.3081], classes=names)
    spec = res.raw["models"][0]
    check(spec["spec"]["classes"] == names, spec["spec"])
    check(all("flag" in spec["spec_sources"][k] or "--" in spec["spec_sources"][k]
              for k in ("classes", "input-size", "mean", "std")), spec["spec_sources"])
    pred = res.predictions
    check(set(pred["label_name"].astype(str)) <= set(names) and pred["label_name"].notna().all(), "names")


def a_module_without_its_spec_is_refused_naming_every_missing_field():
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    e = raises(TypeError, rotbench.sweep, net, MNIST, out=WORK / "nospec")
    check(all(k in str(e) for k in ("input_size", "mean", "std")), str(e))
    check(not (WORK / "nospec").exists(), "nothing is written for a refused module")
    # A one-channel input is told to give one value, not "1 value or 1" (issue 33).
    e = raises(ValueError, rotbench.sweep, net, MNIST, out=WORK / "nospec", input_size=(1, 28, 28),
               mean=[0.1, 0.2], std=0.3, classes=[str(d) for d in range(10)])
    check("give 1 value" in str(e) and "or 1" not in str(e), str(e))


def a_module_sweeps_exactly_like_the_same_model_exported_by_hand():
    """The bundled mnist-cnn rebuilt as an nn.Module (models/train_mnist.py's CNN, BN-folded
    by its export(), as models/export.py rebuilds it) with the weights of models/mnist-cnn.pt:
    rotbench.sweep(module) must predict exactly as a sweep of the file."""
    import pandas as pd
    import torch

    sys.path.insert(0, str(ROOT / "models"))
    import train_mnist as tm

    ts = torch.jit.load(str(ROOT / "models" / "mnist-cnn.pt"))
    torch.manual_seed(0)
    net = tm.CNN("32/64/64", 128, "flat3").eval().export()
    net.load_state_dict(ts.state_dict(), strict=True)
    net.train()  # the export must trace it in eval mode and put training mode back
    spec = json.loads((ROOT / "models" / "mnist-cnn.json").read_text())
    kw = dict(angles="0:360:30", limit=500, no_report=True, bootstrap=100)
    by_api = rotbench.sweep(net, ROOT / "datasets" / "mnist", out=WORK / "module", name="rebuilt",
                            input_size=spec["input"], mean=spec["mean"], std=spec["std"],
                            classes=spec["classes"], **kw)
    check(all(m.training for m in net.modules()), "training mode was not put back")
    by_hand = rotbench.sweep(ROOT / "models" / "mnist-cnn.pt", ROOT / "datasets" / "mnist",
                             out=WORK / "file", **kw)
    sidecar = json.loads((WORK / "module" / "models" / "rebuilt.json").read_text())
    check({k: sidecar[k] for k in ("input", "mean", "std", "classes")} ==
          {k: spec[k] for k in ("input", "mean", "std", "classes")}, sidecar)
    check(by_api.raw["models"][0]["spec_sources"]["mean"].startswith("sidecar"),
          by_api.raw["models"][0]["spec_sources"])
    a, b = by_api.predictions.drop(columns="model"), by_hand.predictions.drop(columns="model")
    pd.testing.assert_frame_equal(a, b)
    pa, pb = by_api.per_angle.drop(columns="model"), by_hand.per_angle.drop(columns="model")
    pd.testing.assert_frame_equal(pa, pb)
    check(by_api.models == ["rebuilt"], by_api.models)


def a_module_whose_trace_fixes_the_batch_is_refused_with_the_fix():
    import torch

    class FixedBatch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(784, 10)

        def forward(self, x):
            return self.fc(x.reshape(int(x.shape[0]), 784))  # int(): a constant in a trace

    e = raises(rotbench.RotbenchError, rotbench.export, FixedBatch(), WORK / "fixed.pt",
               input_size="1x28x28", mean=0.5, std=0.5)
    check("batch" in str(e) and "torch.jit.script" in str(e), str(e))


def a_failed_gate_raises_gate_failed_holding_the_results():
    cfg = WORK / "gate.toml"
    cfg.write_text("[gate]\nmin_accuracy = 0.5\n")
    e = raises(rotbench.GateFailed, rotbench.sweep, CNN, MNIST, angles=[0, 90], out=WORK / "gated",
               limit=100, no_report=True, gate_config=cfg)
    check(isinstance(e, rotbench.RotbenchError) and e.returncode == 1, e.returncode)
    check("FAIL" in str(e) and "min-accuracy" in str(e), str(e))
    check(e.results.summary["accuracy_at_0"].iloc[0] > 0.9, e.results.summary)
    passed = rotbench.sweep(AUG, MNIST, angles=[0, 90], out=WORK / "gated-aug", limit=100,
                            no_report=True, gate_config=cfg)
    check("gate" in passed.stdout and "FAIL" not in passed.stdout, passed.stdout)


# ----------------------------------------------------------------------------- no torch

def without_torch_sweep_raises_rotbench_error_naming_the_pip_command():
    e = raises(rotbench.RotbenchError, rotbench.sweep, "model.pt", "data", angles="0", out=WORK / "x")
    check(e.returncode == 2 and "pip install 'torch==" in str(e), str(e))


# ----------------------------------------------------------------------------- the notebook

NOTEBOOK = ROOT / "docs" / "notebooks" / "quickstart.ipynb"


def the_docs_notebook_runs_headless_and_its_output_holds_the_summary_table():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(NOTEBOOK), as_version=4)
    run_dir = WORK / "notebook"
    run_dir.mkdir()
    # IPC transport (Unix sockets in the run folder): the kernel opens no TCP port.
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name="python3", transport="ipc", ip=str(run_dir / "kernel"))
    try:
        NotebookClient(nb, km=km, timeout=600, resources={"metadata": {"path": str(run_dir)}}).execute()
    finally:
        if km.has_kernel:
            km.shutdown_kernel(now=False)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    check(not errors, errors)
    pages = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    tables = [h for h in pages if '<table class="rotbench-summary">' in h]
    check(len(tables) == 2, f"{len(tables)} rotbench summary tables in the notebook's output")
    check("mnist-cnn-aug" in tables[0] and "accuracy at 0°" in tables[0] and "data:image/png" in tables[0],
          tables[0][:1000])
    check(any("accuracy_at_0" in h and "worst_of_sweep" in h for h in pages), "no res.summary DataFrame")
    check("the module predicts as mnist-cnn.pt: True" in text, text)
    check("exit 2: error: --model no-such-model.pt: cannot read the model file" in text, text)
    check((run_dir / "quickstart-out" / "summary.json").is_file(), "the notebook's sweep wrote nothing")
    keep = os.environ.get("ROTBENCH_EXECUTED_NOTEBOOK")
    if keep:  # the executed notebook, to look at
        nbformat.write(nb, keep)


PHASES = {
    "no-torch": [without_torch_sweep_raises_rotbench_error_naming_the_pip_command],
    "notebook": [the_docs_notebook_runs_headless_and_its_output_holds_the_summary_table],
    "no-pandas": [
        sweep_runs_the_binary_as_a_child_and_returns_the_results_of_its_out_folder,
        summary_rows_are_the_sweep_figures_of_summary_json_one_per_model,
        the_notebook_display_holds_the_summary_table_and_the_accuracy_chart,
        without_pandas_a_dataframe_raises_import_error_naming_the_pip_command,
        a_failed_run_raises_rotbench_error_with_the_message_and_exit_code_and_the_process_goes_on,
        load_of_a_folder_that_is_no_sweep_raises_naming_it,
        a_protocol_keeps_its_own_angles_unless_angles_are_given,
        the_console_command_still_runs_and_exits_with_the_code_of_rotbench,
    ],
    "pandas": [
        sweep_runs_the_binary_as_a_child_and_returns_the_results_of_its_out_folder,
        keyword_flags_become_cli_flags_and_lists_repeat,
        dataframes_have_typed_columns_and_the_values_of_the_csv_files,
        summary_is_one_typed_row_per_model,
        load_reads_what_sweep_returned,
        a_sweep_without_labels_loads_with_only_its_label_free_columns,
        a_csv_of_another_run_is_refused,
        spec_keywords_become_flags_for_a_model_file_and_name_the_classes,
        a_module_without_its_spec_is_refused_naming_every_missing_field,
        a_module_sweeps_exactly_like_the_same_model_exported_by_hand,
        a_module_whose_trace_fixes_the_batch_is_refused_with_the_fix,
        a_failed_gate_raises_gate_failed_holding_the_results,
        a_failed_run_raises_rotbench_error_with_the_message_and_exit_code_and_the_process_goes_on,
    ],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phase", choices=sorted(PHASES), required=True)
    args = ap.parse_args()
    try:
        for test in PHASES[args.phase]:
            t0 = time.time()
            try:
                test()
            except Exception:
                traceback.print_exc()
                print(f"FAIL  python API ({args.phase}): {test.__name__.replace('_', ' ')}", file=sys.stderr)
                sys.exit(1)
            print(f"ok    python API ({args.phase}): {test.__name__.replace('_', ' ')} ({time.time() - t0:.1f} s)")
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
