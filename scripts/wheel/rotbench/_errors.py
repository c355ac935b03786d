"""The exceptions of the Python API."""


class RotbenchError(Exception):
    """rotbench could not run, or a run failed.

    ``returncode`` is rotbench's exit code (2: an error; 1: a failed gate, see
    GateFailed), ``message`` the ``error:`` text rotbench printed, ``stderr`` and
    ``stdout`` all it printed, and ``args_`` the command line.
    """

    def __init__(self, message, returncode=2, stderr="", stdout="", command=None):
        super().__init__(message)
        self.message = message
        self.returncode = returncode
        self.stderr = stderr
        self.stdout = stdout
        self.command = list(command) if command else []

    def __str__(self):
        return f"{self.message} (exit {self.returncode})"


class GateFailed(RotbenchError):
    """The sweep ran and wrote its results, but its gate (``gate_config=``) failed:
    exit 1. The results are in ``results`` (a Results), the gate's report in
    ``stdout``."""

    def __init__(self, message, results, stderr="", stdout="", command=None):
        super().__init__(message, 1, stderr, stdout, command)
        self.results = results
