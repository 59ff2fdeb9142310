"""``fsmcheck verify`` on an orchestration model: options to arguments, and back.

:func:`verify_file` is what the ``verify`` command calls for a file with an
``[orchestration]`` table, once loaded: it turns ``--devices``, ``--failures`` and
``--flags`` into per-device flag sets, and runs both engines.
"""

from __future__ import annotations

import time

import click
from rich.console import Console

from ..model.options import parse_flags
from .schema import Orchestration
from .trace import itf_from_counterexample
from .verify import verify_orchestration

__all__ = ["verify_file", "itf_documents"]


def verify_file(orch: Orchestration, err: Console, *, devices: int, failures: int, flags: tuple[str, ...],
                timeout_ms: int, explicit_seconds: float = 60.0, progress=None):
    """Verify the orchestration model ``orch`` (loaded by :func:`.loader.load`).

    Returns:
        ``(orchestration, results, seconds)``, or None after printing why the
        options are bad (unknown flag set, more flag sets than devices, N < 1
        or F < 0): the caller exits 2.
    """
    try:
        sets = [parse_flags(orch.device, text) for text in flags]
    except click.BadParameter as exc:
        err.print(f"error: {exc.format_message()}", markup=False)
        return None
    start = time.perf_counter()
    try:
        results, _ = verify_orchestration(orch, devices=devices, failures=failures, flags=sets,
                                          timeout_ms=timeout_ms, explicit_seconds=explicit_seconds,
                                          progress=progress)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        return None
    return orch, results, time.perf_counter() - start


def itf_documents(orch: Orchestration, results) -> list[tuple[str, dict]]:
    """``(file stem, ITF document)`` for every engine's counterexample."""
    import re

    out = []
    for r in results:
        for engine, v in r.verdicts.items():
            if v.counterexample is None:
                continue
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{orch.name}.{r.prop.name}.{r.config}.{engine}")
            out.append((stem, itf_from_counterexample(orch, r, engine)))
    return out
