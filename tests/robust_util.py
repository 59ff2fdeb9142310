"""Helpers of the robustness regression tests (issue 23): run fsmcheck in a
child process with a wall-clock bound and read its exit code, output and peak
resident set size."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

#: Runs ``argv`` as a child of a small Python parent, which reports the
#: child's exit code and peak RSS (resource.getrusage(RUSAGE_CHILDREN) of the
#: parent: only that one child was waited for) as JSON on its last line.
_PARENT = r"""
import json, resource, subprocess, sys
argv = json.loads(sys.argv[1])
proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=float(sys.argv[2]))
sys.stdout.write(json.dumps({"rc": proc.returncode, "out": proc.stdout.decode("utf-8", "replace"),
                             "err": proc.stderr.decode("utf-8", "replace"),
                             "maxrss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


@dataclass
class Run:
    rc: int
    out: str
    err: str
    maxrss_kb: int

    @property
    def text(self) -> str:
        return self.out + self.err


def fsmcheck(*args: str, timeout: float = 60.0, cwd=None) -> Run:
    """Run ``fsmcheck ARGS`` (``python -m fsmcheck.cli``) in a child process.

    Returns:
        the exit code, stdout, stderr and the child's peak RSS in KiB.

    Raises:
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds.
    """
    argv = [sys.executable, "-m", "fsmcheck.cli", *map(str, args)]
    done = subprocess.run([sys.executable, "-c", _PARENT, json.dumps(argv), str(timeout)],
                          capture_output=True, text=True, timeout=timeout + 30, cwd=cwd)
    return Run(**json.loads(done.stdout.splitlines()[-1]))


def assert_clean(run: Run, *codes: int) -> None:
    """The run exited with one of ``codes`` (default 0, 1 or 2) and printed no traceback."""
    assert run.rc in (codes or (0, 1, 2)), (run.rc, run.text[-2000:])
    assert "Traceback" not in run.text, run.text[-2000:]
    assert "INTERNALERROR" not in run.text, run.text[-2000:]
