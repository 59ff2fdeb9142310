"""Promela export: each configuration's FSM for the SPIN model checker.

:func:`promela` writes one Promela model per configuration (flag set or
profile). The device is one process over a global ``state``; its first step
picks a start state (``start``), nondeterministically among the supported
states; then it loops over

* one guarded option per arc of the configuration (:func:`fsmcheck.semantics.graphs.arc_graph`),
  each asserting the ``no-invalid-entry`` property before it moves: the
  target is requestable and the source is not the error state (the
  assertions are compiled out with ``spin -DFSMCHECK_NO_ASSERT``, since SPIN
  checks a never claim through assertions too);
* ``reset``: any state to the reset target (vfio.h ``VFIO_DEVICE_RESET``);
* ``failure``: any state but the error state to the error state
  (vfio.h "any -> ERROR").

The ``reachability`` property becomes LTL claims over ``start``:

* ``reach_S``: ``[] !(start == INITIAL && state == S)`` -- *violated* iff
  ``S`` is reachable from the state at open (one claim per accepted state);
* ``back_S``: ``[] !(start == S && state == INITIAL)`` -- *violated* iff the
  state at open is reachable from ``S`` (one claim per supported state;
  reset steps allowed, as fsmcheck's property allows them).

Forward reachability may use the reset and failure steps in SPIN but not in
fsmcheck's property; the two agree, because reset only re-enters the state
at open and failure only the error state, which is never accepted.

:func:`fsmcheck.export.spin.check` compiles and runs these with SPIN and
turns the outcomes back into verdicts.
"""

from __future__ import annotations

import re

from .. import __version__
from ..semantics.graphs import accepted_values, arc_graph
from ..model.schema import Config, Model

__all__ = ["promela", "promela_all", "claim_names", "ident"]

_START_UNSET = 255


def ident(name: str) -> str:
    """A Promela identifier for state ``name`` (``SAVING|RUNNING`` -> ``S_SAVING_RUNNING``)."""
    return "S_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


def claim_names(model: Model, config: Config) -> dict[str, tuple[str, str]]:
    """``{claim: (kind, state)}`` of the LTL claims :func:`promela` writes
    for ``config``; kind is ``reach`` or ``back``."""
    order = model.state_names
    accepted = sorted(accepted_values(model, config), key=order.index)
    out = {f"reach_{ident(s)[2:]}": ("reach", s) for s in accepted}
    out.update({f"back_{ident(s)[2:]}": ("back", s) for s in model.supported(config.flags)})
    return out


def promela(model: Model, config: Config) -> str:
    """The Promela model of ``model`` under ``config`` (see the module docstring).

    Returns:
        Promela source text, identical on every run for the same model.

    Raises:
        ValueError: a state's value does not fit Promela's ``byte`` (0..254).
    """
    supported = model.supported(config.flags)
    for s in model.states:
        if not 0 <= s.value < _START_UNSET:
            raise ValueError(f"state {s.name} = {s.value} does not fit a Promela byte")
    order = model.state_names
    bad = [s.name for s in model.states if not s.requestable] + ([model.error] if model.error else [])
    lines = [
        f"/* fsmcheck {__version__}: Promela export of {model.name} ({model.path}),",
        f"   sha256 {model.digest}, configuration {config.label}.",
        "   Assertions: no-invalid-entry. LTL claims reach_S / back_S: reachability",
        "   (a claim is violated iff the state is reachable; see fsmcheck.export.promela). */",
        "",
    ]
    for s in model.states:
        lines.append(f"#define {ident(s.name)} {s.value}")
    requestable = " || ".join(f"s == {ident(s.name)}" for s in model.states
                              if s.name not in bad) or "false"
    lines += [
        f"#define REQUESTABLE(s) ({requestable})",
        "#ifdef FSMCHECK_NO_ASSERT  /* claim runs: the LTL claims alone */",
        "#define CHECK(x) skip",
        "#else",
        "#define CHECK(x) assert(x)",
        "#endif",
        f"#define INITIAL {ident(model.initial)}",
        f"#define RESET_TARGET {ident(model.reset)}",
        f"#define ERROR_STATE {ident(model.error) if model.error else _START_UNSET}",
        "",
        "byte state;",
        f"byte start = {_START_UNSET};",
        "",
        "active proctype device() {",
        "    atomic {",
        "        if",
    ]
    for s in supported:
        lines.append(f"        :: start = {ident(s)}")
    lines += ["        fi;", "        state = start", "    };", "    do"]
    arcs = arc_graph(model, config)
    for u, v, data in sorted(arcs.edges(data=True), key=lambda e: (order.index(e[0]), order.index(e[1]))):
        lines.append(f"    :: state == {ident(u)} ->  /* arc {u} -> {v}, {model.path}:{data.get('line', 0)} */")
        lines.append(f"        CHECK(REQUESTABLE({ident(v)}) && {ident(u)} != ERROR_STATE);")
        lines.append(f"        state = {ident(v)}")
    if model.reset in supported:
        lines.append("    :: state = RESET_TARGET  /* reset */")
    if model.error in supported:
        lines.append("    :: state != ERROR_STATE -> state = ERROR_STATE  /* failure: any -> ERROR */")
    lines += ["    od", "}", ""]
    for claim, (kind, state) in claim_names(model, config).items():
        if kind == "reach":
            lines.append(f"ltl {claim} {{ [] !(start == INITIAL && state == {ident(state)}) }}")
        else:
            lines.append(f"ltl {claim} {{ [] !(start == {ident(state)} && state == INITIAL) }}")
    return "\n".join(lines) + "\n"


def promela_all(model: Model) -> dict[str, str]:
    """``{file name: Promela text}``, one file per configuration
    (``vfio_v2.STOP_COPY_P2P.pml``)."""
    return {f"{model.name}.{re.sub(r'[^A-Za-z0-9]+', '_', c.label).strip('_')}.pml": promela(model, c)
            for c in model.configs()}
