"""State diagrams of a model with graphviz, one per configuration.

:func:`diagram` builds a :class:`graphviz.Digraph` of one or more
configurations (flag sets or profiles) of a model, laid out side by side:

* states: the state at open has a double border and an ``open`` entry; the
  reset target has a ``reset`` entry (one entry when they coincide); the
  error state is a red octagon; a non-requestable value that is not the
  error state (v1's invalid bit patterns such as ``RESUMING|RUNNING``) is a
  grey dashed box marked *invalid*;
* each data-session group (v2's saving and resuming groups) is a cluster;
* arcs are styled by their data-session effect: green *starts*, blue
  *keeps*, red *ends*, black none;
* blocked requests (``[[blocked]]``, vfio.h) are dashed grey edges ending
  in a bar, labelled ``EINVAL``;
* an optional trace (a counterexample or a combination path) is overlaid:
  its arcs are drawn thick orange and numbered in order; a reset or failure
  step, which is not an arc, is added as an orange dotted edge;
* optional highlights (``fsmcheck diff``): an added or changed arc is drawn
  thick purple and labelled ``added``/``changed``; a removed arc is added as
  a purple dotted edge labelled ``removed``.

Node and edge order follow the model's declaration order, so the same model
gives the same DOT source, and graphviz the same layout, on every run.
:func:`render` writes the diagram as SVG, PNG, PDF or DOT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import graphviz

from ..outputs import write_file
from ..semantics.graphs import arc_graph
from ..model.schema import Config, Model
from ..verifier.trace import Step

__all__ = ["DotMissingError", "FORMATS", "SESSION_STYLE", "diagram", "render", "render_bytes"]

#: Output formats :func:`render` accepts (the file suffix chooses one).
FORMATS = ("svg", "png", "pdf", "dot")

#: Edge colour and label of each data-session effect.
SESSION_STYLE = {
    "starts": ("#1a7f37", "starts"),
    "keeps": ("#0969da", "keeps"),
    "ends": ("#cf222e", "ends"),
    "none": ("#24292f", ""),
}
_TRACE = "#e36209"
_HIGHLIGHT = "#8250df"
_FONT = "Helvetica"
_LEGEND = ("arcs: green starts a data session, blue keeps it, red ends it; dashed grey bar: "
           "blocked request (EINVAL); double border: state at open")


class DotMissingError(RuntimeError):
    """Raised by :func:`render` when graphviz's ``dot`` program is not installed."""


def _node_id(index: int, state: str, model: Model) -> str:
    return f"c{index}_s{model.state_names.index(state)}"


def _state_label(model: Model, state: str) -> str:
    value = model.state(state).value
    if model.encoding == "bits":
        return f"{state}\\n{value:0{max(model.mask.bit_length(), 1)}b}b"
    return f"{state}\\n= {value}"


def _add_states(g: graphviz.Digraph, model: Model, config: Config, index: int, trace_states: set) -> None:
    supported = model.supported(config.flags)
    grouped = {}
    for group in model.session_groups:
        members = [s for s in model.groups.get(group, ()) if s in supported]
        if members:
            grouped[group] = members
    placed = {s for members in grouped.values() for s in members}

    def node(sub: graphviz.Digraph, state: str) -> None:
        attrs = {"label": _state_label(model, state)}
        st = model.state(state)
        if state == model.error:
            attrs.update(shape="octagon", style="filled", fillcolor="#ffd7d5", color="#cf222e")
        elif not st.requestable:
            attrs.update(shape="box", style="dashed,filled", fillcolor="#f0f0f0", color="#8c959f",
                         fontcolor="#57606a", label=_state_label(model, state) + "\\n(invalid)")
        else:
            attrs.update(shape="ellipse", style="filled", fillcolor="#ffffff")
        if state == model.initial:
            attrs["peripheries"] = "2"
        if state in trace_states:
            attrs.update(style="filled,bold", fillcolor="#ffe8cc", color=_TRACE)
        sub.node(_node_id(index, state, model), **attrs)

    for state in supported:
        if state not in placed:
            node(g, state)
    for group, members in grouped.items():
        direction = model.session_directions.get(group, "")
        label = f"{group} group" + (f" (data session: {direction})" if direction else "")
        with g.subgraph(name=f"cluster_c{index}_{group}") as sub:
            sub.attr(label=label, style="rounded,filled", fillcolor="#f6f8fa", color="#8c959f",
                     fontname=_FONT, fontsize="10")
            for state in members:
                node(sub, state)
    # Entry points: the state at open and the reset target.
    entries = {}
    entries.setdefault(model.initial, []).append("open")
    if model.reset in supported:
        entries.setdefault(model.reset, []).append("reset")
    for k, (state, names) in enumerate(entries.items()):
        point = f"c{index}_entry{k}"
        g.node(point, shape="point", width="0.08")
        g.edge(point, _node_id(index, state, model), label=" / ".join(names), style="dashed",
               color="#57606a", fontcolor="#57606a")


def _trace_edges(trace: Sequence[Step]) -> dict:
    """(src, dst) -> [(step number, via)] for the steps after the first."""
    out: dict = {}
    for n, (a, b) in enumerate(zip(trace, trace[1:]), 1):
        out.setdefault((a.state, b.state), []).append((n, b.via))
    return out


def _add_config(g: graphviz.Digraph, model: Model, config: Config, index: int,
                trace: Sequence[Step] | None, highlight: dict | None = None) -> None:
    highlight = dict(highlight or {})
    trace = list(trace or ())
    _add_states(g, model, config, index, {s.state for s in trace})
    numbered = _trace_edges(trace)
    arcs = arc_graph(model, config)
    order = model.state_names
    for u, v, data in sorted(arcs.edges(data=True), key=lambda e: (order.index(e[0]), order.index(e[1]))):
        color, label = SESSION_STYLE.get(data.get("session", "none"), SESSION_STYLE["none"])
        attrs = {"color": color, "fontcolor": color, "label": label}
        hits = [n for n, via in numbered.pop((u, v), []) if via == "request"]
        if hits:
            number = ",".join(str(n) for n in hits)
            attrs.update(color=_TRACE, fontcolor=_TRACE, penwidth="3",
                         label=f"{number}" + (f" ({label})" if label else ""))
        mark = highlight.pop((u, v), None)
        if mark is not None:
            attrs.update(color=_HIGHLIGHT, fontcolor=_HIGHLIGHT, penwidth="3",
                         label=f"{mark}" + (f" ({label})" if label else ""))
        g.edge(_node_id(index, u, model), _node_id(index, v, model), **attrs)
    supported = set(model.supported(config.flags))
    for (u, v), mark in sorted(highlight.items(), key=lambda e: (order.index(e[0][0]) if e[0][0] in order else -1,
                                                                 order.index(e[0][1]) if e[0][1] in order else -1)):
        if u in supported and v in supported:  # an arc of the old model this configuration lacks
            g.edge(_node_id(index, u, model), _node_id(index, v, model), label=mark, style="dotted",
                   penwidth="2", color=_HIGHLIGHT, fontcolor=_HIGHLIGHT, constraint="false")
    for b in model.blocked_in(config.flags):
        if b.src in supported and b.dst in supported:
            g.edge(_node_id(index, b.src, model), _node_id(index, b.dst, model), label="EINVAL",
                   style="dashed", color="#8c959f", fontcolor="#8c959f", arrowhead="tee", constraint="false")
    for (u, v), hits in numbered.items():  # steps that are not arcs: reset, failure, or an undeclared arc
        for n, via in hits:
            g.edge(_node_id(index, u, model), _node_id(index, v, model), label=f"{n} ({via})",
                   style="dotted", penwidth="3", color=_TRACE, fontcolor=_TRACE, constraint="false")


def diagram(model: Model, configs: Sequence[Config] | None = None, trace: Sequence[Step] | None = None,
            trace_config: Config | None = None, highlight: dict | None = None) -> graphviz.Digraph:
    """The state diagram of ``model`` under each of ``configs``.

    Args:
        model: a loaded model.
        configs: the configurations to draw (default: every one of
            :meth:`Model.configs`); more than one are drawn side by side, each
            in a cluster labelled with its flag set or profile.
        trace: steps to overlay (:func:`fsmcheck.verifier.trace.steps`).
        trace_config: the configuration the trace belongs to (default: the
            first drawn).
        highlight: per configuration label, ``{(src, dst): "added" |
            "changed" | "removed"}`` arcs to highlight (``fsmcheck diff``).

    Returns:
        A :class:`graphviz.Digraph`; its ``source`` is identical on every run.

    Raises:
        ValueError: ``configs`` is empty or ``trace_config`` is not drawn.
    """
    configs = list(configs if configs is not None else model.configs())
    if not configs:
        raise ValueError("no configuration to draw")
    if trace is not None and trace_config is not None and trace_config not in configs:
        raise ValueError(f"the trace's configuration {trace_config.label} is not drawn")
    g = graphviz.Digraph(name=model.name, engine="dot")
    # One configuration: its flag set (or profile) is in the caption, so a
    # per-flag-set SVG says which set it shows; several: each cluster's label.
    shown = f"{model.name} [{configs[0].label}]" if len(configs) == 1 else model.name
    g.attr(rankdir="TB", fontname=_FONT, labelloc="b", label=f"{shown}: {model.title}\\n{_LEGEND}",
           fontsize="11", newrank="true", nodesep="0.35", ranksep="0.6")
    g.attr("node", fontname=_FONT, fontsize="11")
    g.attr("edge", fontname=_FONT, fontsize="9")
    target = trace_config or configs[0]
    for i, config in enumerate(configs):
        steps = trace if config == target else None
        marks = (highlight or {}).get(config.label)
        if len(configs) == 1:
            _add_config(g, model, config, i, steps, marks)
            continue
        with g.subgraph(name=f"cluster_config{i}") as sub:
            sub.attr(label=config.label, fontname=_FONT, fontsize="13", style="rounded", color="#d0d7de",
                     labelloc="t")
            _add_config(sub, model, config, i, steps, marks)
    return g


def render_bytes(graph: graphviz.Digraph, fmt: str) -> bytes:
    """``graph`` rendered by graphviz's ``dot`` as ``fmt`` (see :data:`FORMATS`).

    Raises:
        ValueError: ``fmt`` is not one of :data:`FORMATS`.
        DotMissingError: the ``dot`` program is not installed.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown diagram format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "dot":
        return graph.source.encode()
    try:
        return graph.pipe(format=fmt)
    except graphviz.ExecutableNotFound as exc:
        raise DotMissingError(
            "graphviz's 'dot' program is not installed; install it with "
            "'apt-get install graphviz' (Debian/Ubuntu), 'dnf install graphviz' (Fedora) "
            "or 'brew install graphviz' (macOS)") from exc


def render(graph: graphviz.Digraph, out: Path) -> Path:
    """Write ``graph`` to ``out``, the format taken from its suffix
    (``.svg``, ``.png``, ``.pdf``, ``.dot``), atomically.

    Raises:
        ValueError: an unknown suffix.
        DotMissingError: see :func:`render_bytes`.
    """
    out = Path(out)
    return write_file(out, render_bytes(graph, out.suffix.lstrip(".").lower()))
