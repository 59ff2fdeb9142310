"""Counterexample traces as structured steps, and the ITF-like JSON form.

A :class:`~fsmcheck.semantics.verdict.Counterexample` carries its trace as described
states, one string per state (``STOP_COPY``, ``RESUMING (010b)``,
``RUNNING (001b) [reset]``, ``STOP [device_state=0x00000010]``).
:func:`steps` reads them back into :class:`Step` objects against the model,
so diagrams can highlight them and CI tools can read them.

:func:`itf_trace` writes one trace in a JSON format modelled on the Informal
Trace Format (ITF) that Apalache and Quint emit:

.. code-block:: json

    {
      "#meta": {"format": "ITF", "format-description": "...", "source": "models/vfio_v1.toml",
                "fsmcheck": "0.1.0", "model": "vfio_v1", "property": "no-invalid-entry",
                "configuration": "lenient", "engine": "networkx", "summary": "...", "line": 73,
                "file": "models/vfio_v1.toml"},
      "params": ["flags", "profile"],
      "vars": ["device_state", "state", "via"],
      "states": [
        {"#meta": {"index": 0}, "device_state": {"#bigint": "1"}, "state": "RUNNING", "via": "open"},
        {"#meta": {"index": 1}, "device_state": {"#bigint": "5"}, "state": "RESUMING|RUNNING", "via": "request"}
      ]
    }

Each state gives every variable: ``device_state`` (the 32-bit value, as ITF's
``{"#bigint": "N"}``), ``state`` (the model's state name) and ``via`` (how the
step was taken: ``open`` for the first state, then ``request``, ``reset`` or
``failure``). Bit-encoded models add one boolean variable per named bit
of the model's ``[encoding] bits`` (v1: ``RUNNING``, ``SAVING``,
``RESUMING``). ITF keeps parameters in ``params``; fsmcheck lists the
configuration's flags and profile there and repeats them in ``#meta``.
``#meta.line`` is where the counterexample's state, arc or rule is declared,
in ``#meta.file`` (the base's file, for what a variant inherits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import __version__
from ..inputs.positions import file_of
from ..model.schema import Model

__all__ = ["Step", "steps", "itf_trace", "ITF_DESCRIPTION"]

ITF_DESCRIPTION = ("https://apalache-mc.org/docs/adr/015adr-trace.html (fsmcheck variant: "
                   "vars device_state, state, via; bit models add one boolean per bit)")

_DESCRIBED = re.compile(r"^(?P<name>\S+)(?: \((?P<bits>[01]+)b\))?"
                        r"(?: \[device_state=(?P<raw>0x[0-9a-fA-F]+)\])?(?: \[(?P<via>reset|failure)\])?$")


@dataclass(frozen=True)
class Step:
    """One state of a trace.

    Attributes:
        state: the model's state name.
        value: the ``device_state`` value (0..2**width-1), reserved bits included.
        via: ``open`` (the first step), ``request``, ``reset`` or ``failure``.
    """

    state: str
    value: int
    via: str


def steps(model: Model, trace) -> list[Step]:
    """Read a counterexample trace (described states) back into steps.

    Args:
        model: the model the trace belongs to.
        trace: the counterexample's ``trace`` (a sequence of strings).

    Returns:
        One :class:`Step` per string, in order.

    Raises:
        ValueError: a string names no state of ``model``.
    """
    out = []
    for i, text in enumerate(trace):
        match = _DESCRIBED.match(text.strip())
        if match is None or match["name"] not in model.state_names:
            raise ValueError(f"trace step {i} {text!r} names no state of {model.name}")
        value = int(match["raw"], 16) if match["raw"] else model.state(match["name"]).value
        via = "open" if i == 0 else (match["via"] or "request")
        out.append(Step(match["name"], value, via))
    return out


def itf_trace(model: Model, result, engine: str | None = None) -> dict:
    """The counterexample of ``result`` (a :class:`~fsmcheck.verifier.verify.Result`)
    as an ITF-like trace (see the module docstring).

    Args:
        model: the verified model.
        result: a result whose ``counterexample`` is not None.
        engine: whose counterexample to take (default: the first engine
            that has one, as :attr:`Result.counterexample`).

    Raises:
        ValueError: the result has no counterexample, or its trace names no
            state of the model.
    """
    if engine is None:
        cex = result.counterexample
        engine = next((n for n, v in result.verdicts.items() if v.counterexample is cex), "")
    else:
        cex = result.verdicts[engine].counterexample
    if cex is None:
        raise ValueError(f"{result.prop.name} [{result.config}] has no counterexample")
    bits = sorted(model.bit_names.items(), key=lambda kv: kv[1]) if model.encoding == "bits" else []
    states = []
    for i, step in enumerate(steps(model, cex.trace)):
        state = {"#meta": {"index": i}, "device_state": {"#bigint": str(step.value)},
                 "state": step.state, "via": step.via}
        for name, bit in bits:
            state[name] = bool(step.value >> bit & 1)
        states.append(state)
    config = model.config(result.config)
    return {
        "#meta": {
            "format": "ITF",
            "format-description": ITF_DESCRIPTION,
            "source": str(model.path),
            "fsmcheck": __version__,
            "model": model.name,
            "property": result.prop.name,
            "configuration": result.config,
            "flags": [f for f in model.flag_order if config is not None and f in config.flags],
            "profile": config.profile if config is not None else None,
            "engine": engine,
            "summary": cex.summary,
            "line": cex.line,
            "file": file_of(cex.line, model.path),
            "data": cex.data,
        },
        "params": ["flags", "profile"],
        "vars": ["device_state", "state", "via"] + [name for name, _ in bits],
        "states": states,
    }
