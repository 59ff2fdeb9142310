"""Counterexamples of orchestration models: QEMU callbacks with per-device columns.

A trace is a list of ``(step, global state)`` pairs from the state at open
(the first step None), as both engines produce it
(:meth:`~.semantics.System.replay`); :func:`counterexample` makes it the
:class:`~fsmcheck.semantics.verdict.Counterexample` of either engine: text
lines (the callback, the device, what the request did, every device's
state) and the steps as data, from which :func:`chart_rows` (the report's
sequence chart) and :func:`itf_from_counterexample` (an ITF trace: ``phase``,
``event``, and ``dev0``... with their ``device_state`` names) are written.
"""

from __future__ import annotations

from .. import __version__
from ..inputs.positions import file_of
from ..semantics.p2p import quiesce_violations
from ..semantics.verdict import Counterexample
from .semantics import System

__all__ = ["counterexample", "chart_rows", "itf_from_counterexample", "ITF_DESCRIPTION"]

ITF_DESCRIPTION = ("https://apalache-mc.org/docs/adr/015adr-trace.html (fsmcheck orchestration variant: "
                   "vars phase, event, dev0..devN-1)")


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
    return f"progress: {problem or system.progress_problem(last)}"


def counterexample(system: System, prop: str, trace, problem: str | None = None) -> Counterexample:
    """The counterexample of ``prop`` along ``trace`` (whose last state breaks
    it; ``problem``: why, for ``progress``, if not the end state's
    :meth:`~.semantics.System.progress_problem`): one line per step, the line of
    the last callback's phase, and the run, length, flag sets and steps as data."""
    step = next((s for s, _ in reversed(trace) if s is not None), None)
    line = system.orch.phases[step.phase].line if step is not None else system.run.line
    lines = tuple(f"{'open' if s is None else s.text} | "
                  + " ".join(f"dev{i}={d.state}" for i, d in enumerate(g.devices)) for s, g in trace)
    data = {"run": system.run.name, "length": len(trace) - 1, "devices": [sorted(f) for f in system.flags],
            "steps": [{"phase": s.phase if s else "open", "device": s.device if s else None,
                       "event": s.text if s else "open", "states": [d.state for d in g.devices]}
                      for s, g in trace]}
    return Counterexample(_summary(system, prop, trace, problem), lines, line, data)


def chart_rows(orch, cex: Counterexample) -> list[list[str]]:
    """A sequence chart of ``cex`` (a counterexample of ``orch``): header
    ``["#", "phase", "event", "dev0", ...]``, then one row per step; a
    device's cell is its state, marked ``*`` on the device the step called."""
    steps = cex.data["steps"]
    rows = [["#", "phase", "event"] + [f"dev{i}" for i in range(len(cex.data["devices"]))]]
    for n, step in enumerate(steps):
        device, text = step["device"], step["event"]
        cells = [state + (" *" if n and device == i else "") for i, state in enumerate(step["states"])]
        callback = "" if device is None else text.split(" (", 1)[0] + ": "
        phase, event = step["phase"], callback + (text if device is None else text.split(": ", 1)[-1])
        if not n:  # the state at open, in the run's first phase
            flags = tuple(frozenset(f) for f in cex.data["devices"])
            phase, event = System(orch, orch.run(cex.data["run"]), flags, 0).phase_name(0), "open"
        rows.append([str(n), phase, event] + cells)
    return rows


def itf_from_counterexample(orch, result, engine: str) -> dict:
    """The ITF document of ``result``'s counterexample from ``engine`` (a
    :class:`~fsmcheck.verifier.verify.Result` of an orchestration model), read
    from the counterexample's ``data`` (its steps and per-device states).

    Raises:
        ValueError: that engine has no counterexample.
    """
    cex = result.verdicts[engine].counterexample
    if cex is None:
        raise ValueError(f"{result.prop.name} [{result.config}] has no {engine} counterexample")
    steps = cex.data["steps"]
    n = len(cex.data["devices"])
    states = []
    for i, s in enumerate(steps):
        state = {"#meta": {"index": i}, "phase": s["phase"], "event": s["event"]}
        for d, name in enumerate(s["states"]):
            state[f"dev{d}"] = name
        states.append(state)
    return {
        "#meta": {"format": "ITF", "format-description": ITF_DESCRIPTION, "source": str(orch.path),
                  "fsmcheck": __version__, "model": orch.name, "run": cex.data["run"],
                  "property": result.prop.name, "configuration": result.config, "engine": engine,
                  "summary": cex.summary, "line": cex.line, "file": file_of(cex.line, orch.path),
                  "flags": cex.data["devices"]},
        "params": ["flags"],
        "vars": ["phase", "event"] + [f"dev{i}" for i in range(n)],
        "states": states,
    }
