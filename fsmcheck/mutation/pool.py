"""Where the pack runs execute: the standard library's process pool.

Inside :func:`running` every run is a process of a
:class:`~concurrent.futures.ProcessPoolExecutor` on the ``forkserver`` start
method with ``max_tasks_per_child=1``: each run is its own process, forked
from the same pristine server, which has already imported pytest, hypothesis,
networkx and the pack's modules (:mod:`.preload`, through
``set_forkserver_preload``). A run then costs its collection and its tests,
not an interpreter start and a hundred modules compiled. Outside it, where
the platform has no ``forkserver``, or once the pool broke, a run is a fresh
``python -m pytest``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

__all__ = ["PRELOAD", "pytest", "running"]

#: The modules the fork server imports before it forks a run.
PRELOAD = ["fsmcheck.mutation.preload"]

_active: ProcessPoolExecutor | None = None


@contextlib.contextmanager
def running(jobs: int, fork: bool = True):
    """Run :func:`pytest` calls in a pool of ``jobs`` (>= 1) processes until
    the block ends (then the pool is shut down and its processes waited for).
    ``fork=False`` keeps fresh ``python -m pytest`` processes."""
    global _active
    if not fork or "forkserver" not in multiprocessing.get_all_start_methods():
        yield
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1)
    _active = executor
    try:
        yield
    finally:
        _active = None
        executor.shutdown(wait=True, cancel_futures=True)
        # The fork server outlives its pools until the interpreter exits; end
        # it with the score (nothing left behind; the next pool starts one).
        stop = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_stop", None)
        if stop is not None:
            stop()


def pytest(args: list[str], log: Path) -> tuple[int, str]:
    """``(exit code, output)`` of ``pytest args``; in the pool when one is
    running (the output is kept in the file ``log``)."""
    global _active
    executor = _active
    if executor is not None:
        try:
            code = executor.submit(_main, [*args, "-W", "ignore::pytest.PytestAssertRewriteWarning"], str(log)).result()
            return code, log.read_text(errors="replace") if log.is_file() else ""
        except BrokenProcessPool:
            _active = None  # the pool broke: fresh processes from now on
    proc = subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    return proc.returncode, proc.stdout + proc.stderr


def _main(args: list[str], log: str) -> int:
    """One pytest run in a pool process: stdin on /dev/null, stdout and stderr
    in ``log``; its exit code (3 for an exception, whose traceback is logged)."""
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    os.close(null)
    os.close(out)
    try:
        import pytest

        return int(pytest.main(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 3
    except BaseException:  # noqa: BLE001 -- reported in the log, exit 3
        import traceback

        traceback.print_exc()
        return 3
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
