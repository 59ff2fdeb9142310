"""The JSON graph export: a model and its derived graphs, for other tools.

Schema ``fsmcheck-graph``, version :data:`SCHEMA_VERSION` (a new version is
issued for any change that is not a pure addition of keys)::

    {
      "schema": "fsmcheck-graph", "version": 1, "fsmcheck": "0.1.0",
      "model": {"name": str, "title": str, "path": str, "sha256": str,
                "encoding": "enum" | "bits", "width": int, "mask": int,
                "bits": {NAME: bit, ...}, "validity": str | null},
      "initial": STATE, "reset": STATE, "error": STATE | null,
      "flags": {"bits": {FLAG: bit, ...}, "sets": [[FLAG, ...], ...]},
      "groups": {GROUP: [STATE, ...]},
      "sessions": {"groups": [GROUP, ...], "directions": {GROUP: "read" | "write"}},
      "states": [{"name": str, "value": int, "needs": [FLAG], "requestable": bool,
                  "doc": str, "line": int}],
      "arcs": [{"from": STATE, "to": STATE, "needs": [FLAG], "unless": [FLAG],
                "session": "starts" | "keeps" | "ends" | "none", "tag": str,
                "source": str, "line": int}],
      "blocked": [{"from": STATE, "to": STATE, "source": str, "line": int}],
      "configurations": [{"label": str, "flags": [FLAG], "profile": str,
                          "states": [STATE], "accepted": [STATE],
                          "arcs": [{"from": STATE, "to": STATE, "session": str, "line": int}]}]
    }

``arcs`` are the declared arcs; each configuration's ``arcs`` are the arcs it
has (:func:`fsmcheck.semantics.graphs.arc_graph`), ``states`` its supported states and
``accepted`` the states a request may name. Lists keep declaration order and
lines are 1-based lines of the model file (0 when not declared there).
"""

from __future__ import annotations

from .. import __version__
from ..semantics.graphs import accepted_values, arc_graph
from ..model.schema import Model

__all__ = ["SCHEMA", "SCHEMA_VERSION", "graph_json"]

SCHEMA, SCHEMA_VERSION = "fsmcheck-graph", 1


def graph_json(model: Model) -> dict:
    """``model`` in the ``fsmcheck-graph`` schema (see the module docstring).

    Returns:
        A JSON-ready dict, equal for equal model files.
    """
    order = model.state_names

    def flags(fs) -> list[str]:
        return [f for f in model.flag_order if f in fs]

    configurations = []
    for config in model.configs():
        graph = arc_graph(model, config)
        edges = sorted(graph.edges(data=True), key=lambda e: (order.index(e[0]), order.index(e[1])))
        configurations.append({
            "label": config.label, "flags": flags(config.flags), "profile": config.profile,
            "states": list(model.supported(config.flags)),
            "accepted": sorted(accepted_values(model, config), key=order.index),
            "arcs": [{"from": u, "to": v, "session": d.get("session", "none"), "line": d.get("line", 0)}
                     for u, v, d in edges],
        })
    return {
        "schema": SCHEMA, "version": SCHEMA_VERSION, "fsmcheck": __version__,
        "model": {"name": model.name, "title": model.title, "path": str(model.path), "sha256": model.digest,
                  "encoding": model.encoding, "width": model.width, "mask": model.mask,
                  "bits": dict(sorted(model.bit_names.items(), key=lambda kv: kv[1])),
                  "validity": model.valid.text if model.valid is not None else None},
        "initial": model.initial, "reset": model.reset, "error": model.error,
        "flags": {"bits": dict(sorted(model.flag_bits.items(), key=lambda kv: kv[1])),
                  "sets": [flags(s) for s in model.flag_sets]},
        "groups": {g: list(m) for g, m in model.groups.items()},
        "sessions": {"groups": list(model.session_groups), "directions": dict(model.session_directions)},
        "states": [{"name": s.name, "value": s.value, "needs": flags(s.needs), "requestable": s.requestable,
                    "doc": s.doc, "line": s.line} for s in model.states],
        "arcs": [{"from": a.src, "to": a.dst, "needs": flags(a.needs), "unless": flags(a.unless),
                  "session": a.session, "tag": a.tag, "source": a.source, "line": a.line} for a in model.arcs],
        "blocked": [{"from": b.src, "to": b.dst, "source": b.source, "line": b.line} for b in model.blocked],
        "configurations": configurations,
    }
