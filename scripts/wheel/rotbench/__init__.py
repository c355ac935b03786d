"""rotbench: rotation-robustness evaluation for image classifiers.

This package holds the rotbench binary (``rotbench/bin/rotbench``), the bundled
demo models and MNIST test set (``rotbench/share``) and a launcher that runs the
binary on the libtorch of the ``torch`` package installed in the same Python
environment. Use it from the shell (``rotbench --help``) or as
``python -m rotbench``.
"""

from ._launcher import main, share_dir

__all__ = ["main", "share_dir"]
