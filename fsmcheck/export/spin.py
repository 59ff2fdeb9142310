"""Cross-checking a model with SPIN: compile the Promela export, run the
verifier, and read its outcomes back as fsmcheck verdicts.

For each configuration :func:`check` runs SPIN's exhaustive verifier
(``spin -a``, ``cc pan.c``, ``./pan``) twice over the Promela model of
:mod:`fsmcheck.export.promela`:

* a safety run (``-DNOCLAIM``): any assertion violation means
  ``no-invalid-entry`` fails;
* one run per LTL claim (``spin -DFSMCHECK_NO_ASSERT -a``, ``./pan -a -N CLAIM``;
  the model's assertions compiled out):
  ``reachability`` holds iff every ``reach_S`` and every ``back_S`` claim is
  violated (a violation is a path to the state).

It needs the ``spin`` program and a C compiler (Debian: ``apt-get install
spin gcc``). Each program runs in a process group of its own, killed
whole on a timeout or an interruption; a SIGTERM while :func:`check` runs
ends the process as an interrupted run (exit 3) after the group is killed and
the work directory removed.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ..model.schema import Config, Model
from ..verifier.exit_codes import EXIT_INTERNAL
from .promela import claim_names, promela

__all__ = ["SpinMissingError", "SpinVerdicts", "check"]

_ERRORS = re.compile(r"errors:\s*(\d+)")


class SpinMissingError(RuntimeError):
    """Raised when ``spin`` or ``cc`` is not installed."""


@dataclass
class SpinVerdicts:
    """SPIN's outcome for one configuration.

    Attributes:
        config: the configuration label.
        no_invalid_entry: ``holds`` or ``fails``.
        reachability: ``holds`` or ``fails``.
        unreached: accepted states no path reaches from the state at open.
        stuck: states from which the state at open is not reachable.
        runs: number of ``pan`` runs.
    """

    config: str
    no_invalid_entry: str
    reachability: str
    unreached: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    runs: int = 0


def _run(cmd, cwd: Path, timeout: float) -> str:
    with subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except BaseException:  # a timeout, ^C, or SIGTERM (:func:`_sigterm_exits`): the whole group ends
            os.killpg(proc.pid, signal.SIGKILL)  # (reaped as the with block ends)
            raise
    if proc.returncode != 0 and not _ERRORS.search(stdout):
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {stdout[-500:]}{stderr[-500:]}")
    return stdout


@contextmanager
def _sigterm_exits():
    """SIGTERM raises ``SystemExit(3)`` (an interrupted run) meanwhile, so
    the cleanups run: :func:`_run`'s group kill, the directory's removal.
    Only the main thread can set a handler; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum, frame):
        raise SystemExit(EXIT_INTERNAL)

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _errors(output: str) -> int:
    match = _ERRORS.search(output)
    if match is None:
        raise RuntimeError(f"pan printed no error count: {output[-500:]}")
    return int(match.group(1))


def check(model: Model, config: Config, timeout: float = 120.0) -> SpinVerdicts:
    """Decide ``no-invalid-entry`` and ``reachability`` of ``config`` with SPIN.

    Args:
        model: a loaded model.
        config: one of ``model.configs()``.
        timeout: seconds allowed for each spin, cc or pan call.

    Raises:
        SpinMissingError: ``spin`` or ``cc`` is not on PATH.
        RuntimeError: spin, cc or pan failed or printed no error count.
        subprocess.TimeoutExpired: a call took longer than ``timeout``.
        SystemExit: code 3, on a SIGTERM while it runs (in the main thread).
    """
    for tool in ("spin", "cc"):
        if shutil.which(tool) is None:
            raise SpinMissingError(f"{tool!r} is not installed (Debian: apt-get install spin gcc)")
    with _sigterm_exits(), tempfile.TemporaryDirectory(prefix="fsmcheck-spin-") as tmp:
        work = Path(tmp)
        (work / "model.pml").write_text(promela(model, config))
        _run(["spin", "-a", "model.pml"], work, timeout)
        _run(["cc", "-O0", "-DNOCLAIM", "-o", "pan_safety", "pan.c"], work, timeout)
        _run(["spin", "-DFSMCHECK_NO_ASSERT", "-a", "model.pml"], work, timeout)
        _run(["cc", "-O0", "-o", "pan_ltl", "pan.c"], work, timeout)
        safety = _errors(_run(["./pan_safety", "-E"], work, timeout))
        unreached, stuck, runs = [], [], 1
        for claim, (kind, state) in claim_names(model, config).items():
            violated = _errors(_run(["./pan_ltl", "-a", "-N", claim], work, timeout)) > 0
            runs += 1
            if not violated:
                (unreached if kind == "reach" else stuck).append(state)
    return SpinVerdicts(config.label, "fails" if safety else "holds",
                        "fails" if unreached or stuck else "holds", unreached, stuck, runs)
