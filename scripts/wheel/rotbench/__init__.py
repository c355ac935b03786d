"""rotbench: rotation-robustness evaluation for image classifiers.

This package holds the rotbench binary (``rotbench/bin/rotbench``), the bundled
demo models and MNIST test set (``rotbench/share``), a launcher that runs the
binary on the libtorch of the ``torch`` package installed in the same Python
environment (the ``rotbench`` command, ``python -m rotbench``), and a Python API:

    import rotbench
    res = rotbench.sweep("model.pt", "testset/", angles="0:360:15", out="out/run", limit=500)
    res.summary          # one row per model (pandas; pip install 'rotbench[pandas]')
    res.per_angle        # per_angle.csv as a DataFrame; also per_class, confusion, predictions
    res = rotbench.load("out/run")   # the same from a finished sweep's folder

sweep() runs the binary as a child process: the Python process goes on after it,
and a failed run raises RotbenchError (GateFailed for a failed gate). An nn.Module
is exported first (rotbench.export: TorchScript by torch.jit.trace).
"""

from ._api import export, sweep
from ._errors import GateFailed, RotbenchError
from ._launcher import main, share_dir
from ._results import Results, load

__all__ = ["sweep", "load", "export", "Results", "RotbenchError", "GateFailed", "main", "share_dir"]
