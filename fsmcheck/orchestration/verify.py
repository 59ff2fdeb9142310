"""Deciding an orchestration model's properties with both engines.

For each run of the model, with N devices (each with its flag set) and a
failure budget F, two properties:

* ``p2p-safety``: in every reachable global state (between callbacks), no
  device is in a state that may initiate P2P DMA while another device is in
  a state that cannot take it -- the device model's ``[p2p]`` rule, evaluated
  by :func:`fsmcheck.semantics.p2p.quiesce_violations` (vfio.h, the P2P
  quiescent states);
* ``progress``: every run ends, and at its end every device is in the run's
  target (after an abort: the abort target), or -- with failures allowed --
  reset (the device model's reset state), with no data session left open
  (no state of a session group, no data_fd still held by QEMU).

* ``stopped-vm``: once ``vm_state_notify(running=false)`` is done and until
  ``vm_start()``, no device runs (the ``[p2p]`` rule's initiating states).

All are decided by the explicit engine (:mod:`.explicit`: the counted
product with partial-order reduction; engine name ``networkx``) and by z3
(:mod:`.symbolic`) and combined as for device models
(:func:`fsmcheck.verifier.verify.combine`): the two must agree on the
verdict and, when it fails, on the length of the shortest counterexample;
otherwise the result is ``disagree`` (exit 3). An explicit search that hits
its time or state bound is ``unknown`` for that engine, and the z3 verdict
stands alone (said in the note).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Callable

from ..semantics.p2p import lacks_p2p, quiesce_violations
from ..model.properties import Property
from ..semantics.verdict import FAILS, HOLDS, UNKNOWN, Counterexample, Verdict
from ..verifier.verify import ERROR, Result, combine
from .explicit import DEFAULT_MAX_STATES, explore
from .schema import Orchestration
from .semantics import System
from .symbolic import prove
from .trace import trace_lines

__all__ = ["PROPERTIES", "verify_orchestration", "configuration_label", "device_flags", "Checked"]

def _p2p_statement(orch: Orchestration) -> str:
    device, rule = orch.device, orch.device.p2p
    initiating = ", ".join(device.groups[rule.initiating])
    blocked = ", ".join(s for s in device.state_names if s not in device.groups[rule.accepting])
    return (f"in every global state between callbacks, no device that may initiate P2P DMA ({initiating}) "
            f"while another cannot take it ({blocked})")


PROPERTIES = {
    "p2p-safety": Property(
        "p2p-safety", "config", "an orchestration model", lambda m: True,
        lambda m, c: _p2p_statement(m),
        "vfio.h: the P2P quiescent states (RUNNING_P2P, PRE_COPY_P2P); QEMU 10 hw/vfio/migration.c"),
    "stopped-vm": Property(
        "stopped-vm", "config", "an orchestration model", lambda m: True,
        lambda m, c: ("once vm_state_notify(running=false) is done and until vm_start(), no device is in a "
                      f"state that runs ({', '.join(m.device.groups[m.device.p2p.initiating])}): "
                      "the devices of a stopped VM do not run"),
        "QEMU 10 system/runstate.c (do_vm_stop, vm_start); hw/vfio/migration.c vfio_vmstate_change()"),
    "progress": Property(
        "progress", "config", "an orchestration model", lambda m: True,
        lambda m, c: ("every run ends; at its end every device is in the run's target (or, with failures, "
                      "reset) and no data session is left open"),
        "QEMU 10 hw/vfio/migration.c (vfio_migration_set_state, vfio_save_cleanup); seed 002 (data_fd)"),
}


@dataclass
class Checked:
    """What :func:`verify_orchestration` keeps besides the results: per
    configuration label, the system and each engine's trace (for ITF files
    and the report), and per run the explicit product's size."""

    systems: dict
    traces: dict
    states: dict


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


def configuration_label(orch: Orchestration, run_name: str, flags, failures: int) -> str:
    """``migrate-source N=2 F=1 [STOP_COPY,P2P,PRE_COPY x2]``."""
    order = orch.device.flag_order
    groups: dict = {}
    for f in flags:
        groups[f] = groups.get(f, 0) + 1
    sets = "; ".join(f"{','.join(x for x in order if x in f)} x{k}" for f, k in groups.items())
    return f"{run_name} N={len(flags)} F={failures} [{sets}]"


def _summary(system: System, prop: str, trace, problem: str | None) -> str:
    last_step, last = trace[-1]
    if prop == "p2p-safety":
        v = quiesce_violations(system.device, system.states_of(last))[0]
        after = f" after {last_step.text.split(':', 1)[0]}" if last_step is not None else " at open"
        return f"P2P quiesce broken{after}: {v}"
    if prop == "stopped-vm":
        initiating = system.device.groups[system.device.p2p.initiating]
        running = [f"dev{i} is {d.state}" for i, d in enumerate(last.devices) if d.state in initiating]
        return f"a device runs while the VM is stopped ({system.run.runstate}): {', '.join(running)}"
    return f"progress: {problem}"


def _cex(system: System, prop: str, trace, problem, orch: Orchestration) -> Counterexample:
    step = next((s for s, _ in reversed(trace) if s is not None), None)
    line = orch.phases[step.phase].line if step is not None else system.run.line
    data = {"run": system.run.name, "length": len(trace) - 1, "devices": [sorted(f) for f in system.flags],
            "steps": [{"phase": s.phase if s else "open", "device": s.device if s else None,
                       "event": s.text if s else "open", "states": [d.state for d in g.devices]}
                      for s, g in trace]}
    return Counterexample(_summary(system, prop, trace, problem), trace_lines(system, trace), line, data)


def verify_orchestration(orch: Orchestration, *, devices: int = 2, failures: int = 0,
                         flags: list[frozenset[str]] | None = None, runs: list[str] | None = None,
                         timeout_ms: int = 60000, explicit_seconds: float = 60.0,
                         max_states: int = DEFAULT_MAX_STATES, engines=("networkx", "z3"),
                         progress: Callable[[str], None] | None = None) -> tuple[list[Result], Checked]:
    """Decide every listed property of every run on both engines.

    Args:
        orch: a loaded orchestration model.
        devices: N >= 1; ``flags`` one flag set per device (see :func:`device_flags`).
        failures: the failure budget F >= 0 (request failures per run).
        runs: run names to check (default: all).
        timeout_ms: z3's timeout per query (ms); ``explicit_seconds`` and
            ``max_states`` bound the explicit search (then ``unknown``).
        engines: the engines to run (the benchmark runs them apart).
        progress: called with a short description before each run.

    Returns:
        ``(results, checked)``: one :class:`~fsmcheck.verifier.verify.Result`
        per run and property, and the traces behind them.

    Raises:
        ValueError: bad ``devices``/``flags``/``failures`` or an unknown run.
    """
    if failures < 0:
        raise ValueError("--failures must be >= 0")
    per_device = device_flags(orch, devices, flags)
    chosen = list(orch.runs) if not runs else [orch.run(r) for r in runs]
    results, checked = [], Checked({}, {}, {})
    lacking = lacks_p2p(orch.device, {f"dev{i}": f for i, f in enumerate(per_device)})
    for run in chosen:
        system = System(orch, run, per_device, failures)
        label = configuration_label(orch, run.name, per_device, failures)
        checked.systems[label] = system
        if progress:
            progress(f"{orch.name}: {label}")
        exploration, explicit_error = None, ""
        if "networkx" in engines:
            start = time.perf_counter()
            try:
                exploration = explore(system, time_limit=explicit_seconds, max_states=max_states)
            except Exception as exc:  # an engine bug is an internal error, not a crash
                explicit_error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            explicit_time = time.perf_counter() - start
            if exploration is not None:
                checked.states[label] = (exploration.states, exploration.complete, exploration.stopped)
        for name in orch.properties:
            prop = PROPERTIES[name]
            verdicts = {}
            if "networkx" in engines:
                verdicts["networkx"] = _explicit_verdict(system, orch, name, exploration, explicit_error,
                                                         explicit_time, checked, label)
            if "z3" in engines:
                verdicts["z3"] = _z3_verdict(system, orch, name, timeout_ms, checked, label)
            status, detail = combine(verdicts)
            if lacking and name == "p2p-safety":
                detail = (detail + "; " if detail else "") + (
                    f"devices without P2P (no prepare callback, cannot be quiesced): {', '.join(lacking)}")
            results.append(Result(prop, label, prop.statement(orch, None), status, verdicts, detail))
    return results, checked


def _explicit_verdict(system, orch, name, exploration, error, seconds, checked, label) -> Verdict:
    if exploration is None:
        return Verdict(ERROR, seconds, note=f"internal error: {error}")
    if name == "p2p-safety":
        bad, problem = exploration.p2p_bad, None
    elif name == "stopped-vm":
        bad, problem = exploration.vm_bad, None
    else:
        bad, problem = exploration.progress_bad or (None, None)
    if bad is not None:
        trace = exploration.trace(bad)
        checked.traces[(label, name, "networkx")] = trace
        return Verdict(FAILS, seconds, _cex(system, name, trace, problem, orch),
                       note=f"{exploration.states} counted states; shortest in {exploration.length(bad)} batches "
                            f"({len(trace) - 1} callbacks and phase moves)",
                       evidence={"status": FAILS, "length": exploration.length(bad)})
    if not exploration.complete:
        return Verdict(UNKNOWN, seconds, note=f"explicit product not finished: {exploration.stopped} "
                                              f"after {exploration.states} global states")
    return Verdict(HOLDS, seconds, note=f"{exploration.states} global states", evidence={"status": HOLDS})


def _z3_verdict(system, orch, name, timeout_ms, checked, label) -> Verdict:
    start = time.perf_counter()
    try:
        proof = prove(system, name, timeout_ms=timeout_ms)
    except Exception as exc:  # an engine bug is an internal error, not a crash
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return Verdict(ERROR, time.perf_counter() - start, note=f"internal error: {detail}")
    seconds = time.perf_counter() - start
    if proof.status == FAILS:
        checked.traces[(label, name, "z3")] = proof.trace
        problem = system.progress_problem(proof.trace[-1][1]) if name == "progress" else None
        return Verdict(FAILS, seconds, _cex(system, name, proof.trace, problem, orch), note=proof.note,
                       evidence={"status": FAILS, "length": proof.k})
    if proof.status == HOLDS:
        return Verdict(HOLDS, seconds, note=proof.note, evidence={"status": HOLDS})
    return Verdict(UNKNOWN, seconds, note=proof.note)
