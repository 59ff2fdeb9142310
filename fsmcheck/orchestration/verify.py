"""Deciding an orchestration model's properties with both engines.

For each run of the model, with N devices (each with its flag set) and a
failure budget F, the listed properties of the registry's
:data:`~fsmcheck.model.properties.ORCHESTRATION` tuple (statements and
sources there): ``p2p-safety`` (the device model's ``[p2p]`` rule between
callbacks, :func:`fsmcheck.semantics.p2p.quiesce_violations`), ``progress``
(every run ends in its target, or reset with failures, no data session or
data_fd left open) and ``stopped-vm`` (no device runs in a stopped VM).

Both engines, :class:`.explicit.Explicit` (the counted product with
partial-order reduction; ``networkx``) and :class:`.symbolic.Symbolic` (z3),
decide them in the device models' verdict loop
(:func:`fsmcheck.verifier.verify.decide`): the two must agree on the verdict
and, when it fails, on the length of the shortest counterexample; otherwise
the result is ``disagree`` (exit 3). An explicit search that hits its time or
state bound is ``unknown`` for that engine, and the z3 verdict stands alone.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from ..model.properties import ORCHESTRATION, applicable
from ..semantics import deadline as _deadline
from ..semantics.p2p import lacks_p2p
from ..verifier.verify import Result, decide
from .explicit import DEFAULT_MAX_STATES, Explicit
from .schema import Orchestration
from .semantics import Configuration, system_of
from .symbolic import Symbolic

__all__ = ["verify_orchestration", "device_flags"]


def device_flags(orch: Orchestration, devices: int, flags: list[frozenset[str]] | None) -> tuple[frozenset[str], ...]:
    """One flag set per device: ``flags`` in order, the last repeated up to
    ``devices``; the model's default set when ``flags`` is empty.

    Raises:
        ValueError: ``devices`` < 1, or more flag sets than devices.
    """
    if devices < 1:
        raise ValueError("--devices must be at least 1")
    flags = list(flags or [orch.default_flags])
    if len(flags) > devices:
        raise ValueError(f"{len(flags)} flag sets given for {devices} device(s)")
    return tuple(flags + [flags[-1]] * (devices - len(flags)))


def verify_orchestration(orch: Orchestration, *, devices: int = 2, failures: int = 0,
                         flags: list[frozenset[str]] | None = None, runs: list[str] | None = None,
                         timeout_ms: int = 60000, explicit_seconds: float = 60.0,
                         max_states: int = DEFAULT_MAX_STATES, progress: Callable[[str], None] | None = None,
                         deadline: float | None = None) -> list[Result]:
    """Decide every listed property of every run on both engines.

    Args:
        orch: a loaded orchestration model.
        devices: N >= 1; ``flags`` one flag set per device (see :func:`device_flags`).
        failures: the failure budget F >= 0 (request failures per run).
        runs: run names to check (default: all).
        timeout_ms: z3's timeout per query (ms); ``explicit_seconds`` and
            ``max_states`` bound the explicit search (then ``unknown``).
        progress: called with a short description before each run.
        deadline: seconds (> 0) the call may take, or None (as
            :func:`~fsmcheck.verifier.verify.verify_model`).

    Returns:
        One :class:`~fsmcheck.verifier.verify.Result` per run and property,
        by run; failing ones carry each engine's counterexample, whose
        ``data`` the ITF export and the report's sequence charts read.

    Raises:
        ValueError: bad ``devices``/``flags``/``failures``.
        KeyError: an unknown run.
    """
    if failures < 0:
        raise ValueError("--failures must be >= 0")
    per_device = device_flags(orch, devices, flags)
    configs = [Configuration.of(orch, run, per_device, failures) for run in runs or [r.name for r in orch.runs]]
    for config in configs:
        system_of(orch, config)  # bad input (a run, a flag set) raises here, not inside an engine
    props = applicable(orch, ORCHESTRATION)

    def instances():
        for config in configs:
            if progress:
                progress(f"{orch.name}: {config.label}")
            for prop in props:
                yield prop, config, config.label

    with _deadline.deadline(deadline):
        results = decide(orch, instances(), (Explicit(explicit_seconds, max_states), Symbolic(timeout_ms)))
    lacking = lacks_p2p(orch.device, {f"dev{i}": f for i, f in enumerate(per_device)})
    if lacking:
        note = f"devices without P2P (no prepare callback, cannot be quiesced): {', '.join(lacking)}"
        results = [dataclasses.replace(r, detail=(r.detail + "; " if r.detail else "") + note)
                   if r.prop.name == "p2p-safety" else r for r in results]
    return results
