"""rotbench.load() and Results: a sweep's output folder as pandas DataFrames.

Everything here reads the files a sweep wrote (summary.json and the CSVs beside it)
and runs nothing. pandas is optional (pip install 'rotbench[pandas]'): Results.raw,
Results.summary_rows() and the notebook display need only the standard library; the
DataFrame properties import pandas when first used and say how to install it.
"""

import base64
import hashlib
import html
import io
import json
import sys
from pathlib import Path

from ._errors import RotbenchError

# Column types of the CSVs (docs/outputs.md); a column not named here is read as
# pandas infers it (a number column: float64).
_TEXT = {"model", "class_name", "source", "top_k"}
_BOOL = {"reference", "in_sweep"}
_INT = {"n", "nonfinite", "class", "support", "true", "pred", "count", "index", "label"}
_FLOAT32 = {"confidence", "p_true", "brier"}  # predictions.csv: float32 in shortest form
# predictions.csv with --worst-of: empty on the grid's rows.
_NULLABLE = {"draw": "Int64", "worst": "boolean"}

# The summary table: (column, header in the notebook display, number format).
SUMMARY_COLUMNS = [
    ("model", "model", None),
    ("n", "samples", "{:d}"),
    ("accuracy_at_0", "accuracy at 0°", "{:.4f}"),
    ("mean_accuracy", "mean accuracy", "{:.4f}"),
    ("worst_angle", "worst angle", "{:g}°"),
    ("worst_accuracy", "worst accuracy", "{:.4f}"),
    ("worst_of_sweep", "worst-of-sweep", "{:.4f}"),
    ("relative_robustness", "mean ÷ 0°", "{:.4f}"),
    ("flip_probability", "flip probability", "{:.4f}"),
    ("ece_at_0", "ECE at 0°", "{:.4f}"),
    ("ece_at_worst_angle", "ECE at worst angle", "{:.4f}"),
    ("worst_ece", "worst ECE", "{:.4f}"),
    ("worst_ece_angle", "worst ECE angle", "{:g}°"),
]


def _pandas(what):
    try:
        import pandas
    except ImportError:
        raise ImportError(
            f"rotbench: {what} is a pandas DataFrame, and pandas is not installed in this "
            f"environment ({sys.executable}). Install it with: "
            f"{sys.executable} -m pip install 'rotbench[pandas]'  (or: pip install pandas)"
        ) from None
    return pandas


def load(out):
    """The results of a sweep from its output folder (``--out``): a Results.

    Reads summary.json now and each CSV when its DataFrame is first asked for; every
    file is checked against the sha256 summary.json records for it, so files of two
    different runs are never mixed.
    """
    out = Path(out)
    path = out / "summary.json"
    if not path.is_file():
        hint = (" (a --shard run writes a shard result: merge the shards with `rotbench merge` first)"
                if list(out.glob("shard*")) else "")
        raise RotbenchError(f"rotbench.load: {path} does not exist: {out} is not the output "
                            f"folder of a finished sweep{hint}", 2)
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RotbenchError(f"rotbench.load: cannot read {path}: {e}", 2) from e
    if not isinstance(raw, dict) or "models" not in raw:
        raise RotbenchError(f"rotbench.load: {path} is not a rotbench summary.json (no models)", 2)
    return Results(out, raw)


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ece_at(angles, angle):
    for a in angles:
        if a.get("angle") == angle:
            return a.get("ece")
    return None


class Results:
    """A sweep's results (rotbench.sweep() or rotbench.load()).

    out          the output folder
    raw          summary.json as a dict
    models       the model names, in the order of the sweep
    classes      {model: [class names in output order]} (the scored classes)
    summary      one row per model (DataFrame; summary_rows() without pandas)
    per_angle    per_angle.csv: one row per model x angle
    per_class    per_class.csv: one row per model x angle x class
    confusion    confusion.csv: long form, with true_name and pred_name
    predictions  predictions.csv: one row per model x angle x sample, with
                 label_name and pred_name
    command, stdout, stderr   the run's command line and output (sweep() only)
    """

    def __init__(self, out, raw):
        self.out = Path(out)
        self.raw = raw
        self.command = None
        self.stdout = ""
        self.stderr = ""
        self._frames = {}

    # ---------------------------------------------------------------- plain data

    @property
    def models(self):
        return [m["name"] for m in self.raw["models"]]

    @property
    def classes(self):
        return {m["name"]: list(m.get("spec", {}).get("classes") or []) for m in self.raw["models"]}

    def summary_rows(self):
        """The summary as a list of dicts, one per model (no pandas needed)."""
        rows = []
        for m in self.raw["models"]:
            sw = m.get("sweep", {})
            angles = m.get("angles", [])
            ref = next((a for a in angles if a.get("reference")), angles[0] if angles else {})
            rows.append({
                "model": m["name"],
                "n": ref.get("n", self.raw.get("dataset", {}).get("n")),
                "accuracy_at_0": sw.get("accuracy_at_reference", ref.get("accuracy")),
                "mean_accuracy": sw.get("mean_accuracy"),
                "worst_angle": sw.get("worst_angle"),
                "worst_accuracy": sw.get("worst_accuracy"),
                "worst_of_sweep": sw.get("worst_of_sweep_accuracy"),
                "relative_robustness": sw.get("relative_robustness"),
                "flip_probability": sw.get("flip_probability", m.get("flip_probability")),
                "ece_at_0": ref.get("ece"),
                "ece_at_worst_angle": _ece_at(angles, sw.get("worst_angle")),
                "worst_ece": sw.get("worst_ece"),
                "worst_ece_angle": sw.get("worst_ece_angle"),
            })
        return rows

    def plot(self, name="accuracy"):
        """The path of plots/NAME.png (accuracy, f1, consistency, ece, flip, polar, ...)."""
        p = self.out / "plots" / f"{name}.png"
        if not p.is_file():
            raise RotbenchError(f"rotbench: {p} does not exist (a sweep run with no_report=True "
                                f"draws no plots; `rotbench report {self.out}` draws them)", 2)
        return p

    @property
    def report(self):
        """The path of the HTML report, index.html (None with no_report=True)."""
        p = self.out / "index.html"
        return p if p.is_file() else None

    # ---------------------------------------------------------------- DataFrames

    def _csv(self, name, what):
        pd = _pandas(what)
        path = self.out / name
        if not path.is_file():
            why = " (the sweep ran with no_predictions=True)" if name == "predictions.csv" else ""
            raise RotbenchError(f"rotbench: {path} does not exist{why}", 2)
        want = self.raw.get("files", {}).get(name)
        if want is not None and _sha256(path) != want:
            raise RotbenchError(
                f"rotbench: {path} is not the file {self.out / 'summary.json'} was written with "
                f"(its sha256 differs from summary.json's files[{name!r}]): a file of another run", 2)
        header = path.open(encoding="utf-8").readline().strip().split(",")
        dtype = {}
        for col in header:
            if col in _NULLABLE:
                dtype[col] = _NULLABLE[col]
            elif col in _TEXT:
                dtype[col] = "category" if col != "top_k" else str
            elif col in _INT:
                dtype[col] = "int64"
            elif col in _FLOAT32 and name == "predictions.csv":
                dtype[col] = "float32"
            elif col not in _BOOL:
                dtype[col] = "float64"
        df = pd.read_csv(path, dtype=dtype, true_values=["true"], false_values=["false"],
                         keep_default_na=False, na_values=[""])
        for col in _BOOL & set(header):
            df[col] = df[col].astype(bool)
        if "model" in df:
            df["model"] = df["model"].cat.set_categories(self.models)
        return df

    def _names(self, df, col):
        """Class names for the class indices in df[col], as a categorical in class order
        (index -1, a prediction lost to NaN logits, gets no name)."""
        pd = _pandas("a class-name column")
        import numpy as np

        union, pos = [], {}
        for names in self.classes.values():
            for c in names:
                if c not in pos:
                    pos[c] = len(union)
                    union.append(c)
        codes = np.full(len(df), -1, dtype=np.int64)
        idx = df[col].to_numpy()
        model_codes = df["model"].cat.codes.to_numpy()
        for k, (model, names) in enumerate(self.classes.items()):
            mask = model_codes == self.models.index(model)
            lut = np.array([pos[c] for c in names] + [-1], dtype=np.int64)
            i = idx[mask]
            ok = (i >= 0) & (i < len(names))
            codes[mask] = np.where(ok, lut[np.where(ok, i, len(names))], -1)
        return pd.Categorical.from_codes(codes, categories=union)

    def _frame(self, key, build):
        if key not in self._frames:
            self._frames[key] = build()
        return self._frames[key]

    @property
    def per_angle(self):
        """per_angle.csv: model x angle; the columns of docs/outputs.md."""
        return self._frame("per_angle", lambda: self._csv("per_angle.csv", "Results.per_angle"))

    @property
    def per_class(self):
        """per_class.csv: model x angle x class (class, class_name, precision, recall, f1, support)."""
        def build():
            df = self._csv("per_class.csv", "Results.per_class")
            df["class_name"] = self._names(df, "class")
            return df
        return self._frame("per_class", build)

    @property
    def confusion(self):
        """confusion.csv: model, angle, true, true_name, pred, pred_name, count (non-zero cells)."""
        def build():
            df = self._csv("confusion.csv", "Results.confusion")
            df.insert(df.columns.get_loc("true") + 1, "true_name", self._names(df, "true"))
            df.insert(df.columns.get_loc("pred") + 1, "pred_name", self._names(df, "pred"))
            return df
        return self._frame("confusion", build)

    @property
    def predictions(self):
        """predictions.csv: model x angle x sample, with label_name and pred_name."""
        def build():
            df = self._csv("predictions.csv", "Results.predictions")
            if "label" in df.columns:  # absent for a sweep without labels
                df.insert(df.columns.get_loc("label") + 1, "label_name", self._names(df, "label"))
            df.insert(df.columns.get_loc("pred") + 1, "pred_name", self._names(df, "pred"))
            return df
        return self._frame("predictions", build)

    @property
    def summary(self):
        """One row per model: accuracy at 0°, mean accuracy, worst angle and its accuracy,
        worst-of-sweep, relative robustness, flip probability, ECE at 0°, at the worst
        angle, and the worst ECE with its angle."""
        def build():
            pd = _pandas("Results.summary")
            df = pd.DataFrame(self.summary_rows(), columns=[c for c, _, _ in SUMMARY_COLUMNS])
            df["model"] = pd.Categorical(df["model"], categories=self.models)
            df["n"] = df["n"].astype("int64")
            for c, _, _ in SUMMARY_COLUMNS[2:]:
                df[c] = df[c].astype("float64")
            return df
        return self._frame("summary", build)

    # ---------------------------------------------------------------- display

    def _chart_png(self):
        p = self.out / "plots" / "accuracy.png"
        if p.is_file():
            return p.read_bytes()
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        for m in self.raw["models"]:
            pts = sorted((a["angle"], a["accuracy"]) for a in m.get("angles", []) if a.get("in_sweep", True))
            ax.plot([a for a, _ in pts], [y for _, y in pts], marker="o", ms=3, label=m["name"])
        ax.set_xlabel("angle (degrees, counter-clockwise)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png")
        plt.close(fig)
        return buf.getvalue()

    def _header(self):
        ds = self.raw.get("dataset", {})
        st = self.raw.get("settings", {})
        angles = st.get("angles") or []
        span = f"{len(angles)} angles" + (f" ({angles[0]:g}°…{angles[-1]:g}°)" if angles else "")
        return (f"rotbench {self.raw.get('rotbench_version', '')}: {len(self.models)} model(s), "
                f"{ds.get('n', '?')} samples of {ds.get('path', '?')}, {span}, "
                f"{st.get('interpolation', '?')} interpolation, fill {st.get('fill', '?')}; "
                f"out: {self.out}")

    def _repr_html_(self):
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for _, h, _ in SUMMARY_COLUMNS)
        body = []
        for row in self.summary_rows():
            cells = []
            for c, _, fmt in SUMMARY_COLUMNS:
                v = row.get(c)
                text = "" if v is None else (str(v) if fmt is None else fmt.format(v))
                cells.append(f"<td>{esc(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts = [
            '<div class="rotbench-results">',
            f"<p>{esc(self._header())}</p>",
            '<table class="rotbench-summary">',
            f"<thead><tr>{head}</tr></thead>",
            f"<tbody>{''.join(body)}</tbody></table>",
        ]
        png = self._chart_png()
        if png:
            uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
            parts.append(f'<img class="rotbench-accuracy" alt="accuracy against angle" '
                         f'style="max-width:100%" src="{uri}"/>')
        else:
            parts.append(f"<p>No chart: the sweep ran with no_report=True and matplotlib is not "
                         f"installed; <code>rotbench report {esc(str(self.out))}</code> draws it.</p>")
        if self.report:
            parts.append(f"<p>Report: <code>{esc(str(self.report))}</code></p>")
        parts.append("</div>")
        return "\n".join(parts)

    @property
    def labelled(self):
        """False for a sweep of images without labels (summary.json dataset.labelled):
        it holds only the figures that need none (consistency, flip rate, top-5 distance)."""
        return self.raw.get("dataset", {}).get("labelled", True)

    def __repr__(self):
        lines = [self._header()]
        for row in self.summary_rows():
            def f(k, fmt="{:.4f}"):
                v = row.get(k)
                return "?" if v is None else fmt.format(v)
            if not self.labelled:
                lines.append(f"  {row['model']}: no labels, so no accuracy; flip probability "
                             f"{f('flip_probability')}")
                continue
            lines.append(
                f"  {row['model']}: accuracy at 0° {f('accuracy_at_0')}, mean accuracy {f('mean_accuracy')}, "
                f"worst {f('worst_accuracy')} at {f('worst_angle', '{:g}')}°, worst-of-sweep "
                f"{f('worst_of_sweep')}, flip probability {f('flip_probability')}, ECE at 0° "
                f"{f('ece_at_0')}")
        return "\n".join(lines)
