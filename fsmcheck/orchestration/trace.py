"""Counterexamples of orchestration models: QEMU callbacks with per-device columns.

A trace is a list of ``(step, global state)`` pairs from the state at open
(the first step None), as both engines produce it
(:meth:`fsmcheck.orchestration.explicit.Exploration.trace`,
:func:`fsmcheck.orchestration.symbolic.prove`). This module writes it

* as text lines, one per step: the callback, the device, what the request
  did, then every device's state (:func:`trace_lines`);
* as a sequence chart: a table with one column per device
  (:func:`chart_rows`, used by the text output and the HTML report);
* as an ITF trace (:func:`itf_from_counterexample`): variables ``phase``
  (the phase of the step), ``event`` (the step's text, ``open`` first) and
  one variable per device (``dev0``..., its ``device_state`` name).
"""

from __future__ import annotations

from .. import __version__
from ..inputs.positions import file_of
from .semantics import System

__all__ = ["trace_lines", "chart_rows", "itf_from_counterexample", "ITF_DESCRIPTION"]

ITF_DESCRIPTION = ("https://apalache-mc.org/docs/adr/015adr-trace.html (fsmcheck orchestration variant: "
                   "vars phase, event, dev0..devN-1)")


def _states(system: System, g) -> str:
    return " ".join(f"dev{i}={d.state}" for i, d in enumerate(g.devices))


def trace_lines(system: System, trace) -> tuple[str, ...]:
    """One line per step: ``open: dev0=RUNNING dev1=RUNNING``, then
    ``vfio_vmstate_change(dev1) (stop-main): STOP: ok | dev0=RUNNING dev1=STOP``."""
    out = []
    for step, g in trace:
        head = "open" if step is None else step.text
        out.append(f"{head} | {_states(system, g)}")
    return tuple(out)


def chart_rows(system: System, trace) -> list[list[str]]:
    """A sequence chart: header ``["#", "phase", "event", "dev0", ...]``, then
    one row per step; a device's cell is its state, marked ``*`` on the
    device the step called."""
    rows = [["#", "phase", "event"] + [f"dev{i}" for i in range(system.n)]]
    for n, (step, g) in enumerate(trace):
        cells = []
        for i, d in enumerate(g.devices):
            cells.append(d.state + (" *" if step is not None and step.device == i else ""))
        event = "open" if step is None else step.text.split(": ", 1)[-1] if step.device is not None else step.text
        callback = "" if step is None or step.device is None else step.text.split(" (", 1)[0] + ": "
        rows.append([str(n), system.phase_name(g.pc) if step is None else step.phase, callback + event] + cells)
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
