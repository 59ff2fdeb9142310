"""The derived combination table (explicit engine).

For every (current, requested) pair of a configuration, the table says what a
SET of ``device_state`` does: fail with EINVAL, do nothing, or walk a path of
arcs. It is computed from the model's arcs and path rule only, never from a
walk table the model may carry. The rule (vfio.h, "The remaining possible
transitions are interpreted as combinations of the above FSM arcs"):

1. A request is rejected when the requested state is not supported under the
   flags, is not requestable (ERROR), when the current state is the error
   state (left only by reset), or when the pair is declared blocked.
2. A request of the current state is a no-op.
3. Otherwise the path is a shortest path of arcs in the configuration's graph
   (unsupported states are not in it, hence skipped) whose interior has no
   state of a ``no_interior`` group -- unless the rule's ``within_group`` is set
   and the whole path lies in one such group.

Every shortest admissible path is collected, so ambiguities are reported
rather than resolved by an arbitrary pick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from . import deadline
from .graphs import arc_graph
from ..model.schema import Config, Model

__all__ = ["Entry", "derive_table", "table_json", "REJECTED", "NOOP", "PATH", "NO_PATH"]

REJECTED, NOOP, PATH, NO_PATH = "rejected", "noop", "path", "no-path"


@dataclass(frozen=True)
class Entry:
    """One cell of a combination table.

    Attributes:
        current, requested: the pair.
        outcome: ``rejected`` (EINVAL), ``noop``, ``path``, or ``no-path`` (an
            accepted request no admissible path reaches -- a model defect).
        path: for ``path``, the states entered after ``current``, ending with
            ``requested``; empty otherwise.
        reason: for ``rejected`` and ``no-path``, why.
        alternatives: every shortest admissible path (more than one means the
            rule is ambiguous for this pair).
    """

    current: str
    requested: str
    outcome: str
    path: tuple[str, ...] = ()
    reason: str = ""
    alternatives: tuple[tuple[str, ...], ...] = field(default=(), compare=False)

    @property
    def ambiguous(self) -> bool:
        """True when more than one shortest admissible path exists."""
        return len(self.alternatives) > 1

    @property
    def next(self) -> str:
        """The first state entered, ``current`` for a no-op, or ``"EINVAL"``."""
        if self.outcome == PATH:
            return self.path[0]
        return self.current if self.outcome == NOOP else "EINVAL"


def rejection_reason(model: Model, config: Config, current: str, requested: str) -> str | None:
    """Why a request is rejected under rule 1 of the module docstring, or None."""
    supported = model.supported(config.flags)
    if requested not in supported:
        return f"{requested} is not supported under flags {config.label}"
    state = model.state(requested)
    if model.encoding == "bits" and model.valid is not None:
        # A bit-encoded request is the value written; the validity predicate
        # decides it (as the driver's VFIO_DEVICE_STATE_VALID() does), and
        # the validity property checks the predicate against `requestable`.
        if not model.valid(state.value):
            return f"{requested} ({state.value:#x}) fails the validity predicate"
    elif not state.requestable:
        return f"{requested} cannot be requested"
    if current == model.error:
        return f"{current} is left only by reset"
    for b in model.blocked_in(config.flags):
        if (b.src, b.dst) == (current, requested):
            return f"{current} -> {requested} is blocked ({b.source or f'line {b.line}'})"
    return None


def admissible_shortest_paths(model: Model, graph: nx.DiGraph, current: str,
                              within_group: bool | None = None) -> dict[str, list[tuple[str, ...]]]:
    """Every shortest admissible path from ``current`` to every state it reaches.

    Returns:
        ``{requested: [path, ...]}``, each path the states entered after
        ``current`` (sorted); a state no admissible path reaches is absent.
        ``within_group`` overrides the model's rule when not None.

    One breadth-first search from ``current`` (:func:`networkx.predecessor`)
    in the graph whose ``no_interior`` states, ``current`` aside, have no
    out-arcs -- such a state can end a path but never be its interior -- and
    one inside each ``no_interior`` group that holds ``current`` when the
    rule's ``within_group`` is set.
    """
    rule = model.combination
    forbidden_groups = rule.no_interior if rule else ()
    within = rule.within_group if (rule and within_group is None) else bool(within_group)
    forbidden = {s for g in forbidden_groups for s in model.groups.get(g, ())}
    outer = nx.subgraph_view(graph, filter_edge=lambda u, v: u == current or u not in forbidden)
    found = _shortest_from(outer, current)
    if within:
        for g in forbidden_groups:
            members = set(model.groups.get(g, ()))
            if current in members:
                for requested, paths in _shortest_from(graph.subgraph(members & set(graph.nodes)), current).items():
                    found.setdefault(requested, []).extend(paths)
    out = {}
    for requested, paths in found.items():
        best = min(len(p) for p in paths)
        out[requested] = sorted({p for p in paths if len(p) == best})
    return out


def _shortest_from(graph, source: str) -> dict[str, list[tuple[str, ...]]]:
    """All shortest paths from ``source`` to every other node it reaches."""
    if source not in graph:
        return {}
    pred, dist = nx.predecessor(graph, source, return_seen=True)
    paths: dict[str, list[tuple[str, ...]]] = {source: [()]}
    for node in sorted(dist, key=dist.__getitem__):
        if node != source:
            paths[node] = [p + (node,) for z in pred[node] for p in paths[z]]
    del paths[source]
    return paths


def derive_table(model: Model, config: Config, *, within_group: bool | None = None
                 ) -> dict[tuple[str, str], Entry]:
    """Derive the combination table of ``config`` from the arcs and the rule.

    Returns:
        ``{(current, requested): Entry}`` for every supported current state
        (the error state included) and every state of the model as requested.
        Ambiguous pairs take the first path in sorted order and list all of
        them in ``alternatives``.

    Raises:
        fsmcheck.semantics.graphs.UndecidedError: for an ``all-requestable`` profile the
            explicit engine cannot enumerate.
    """
    graph = arc_graph(model, config)
    table = {}
    for current in model.supported(config.flags):
        deadline.check()
        reached = None
        for requested in model.state_names:
            reason = rejection_reason(model, config, current, requested)
            if reason is not None:
                table[(current, requested)] = Entry(current, requested, REJECTED, reason=reason)
            elif current == requested:
                table[(current, requested)] = Entry(current, requested, NOOP)
            else:
                if reached is None:
                    reached = admissible_shortest_paths(model, graph, current, within_group)
                paths = reached.get(requested)
                if not paths:
                    table[(current, requested)] = Entry(
                        current, requested, NO_PATH,
                        reason=f"no admissible path of arcs from {current} to {requested}")
                else:
                    table[(current, requested)] = Entry(
                        current, requested, PATH, path=paths[0], alternatives=tuple(paths))
    return table


def table_json(model: Model, config: Config, table: dict[tuple[str, str], Entry]) -> dict:
    """The fixed JSON shape of ``fsmcheck table --json`` for one flag set.

    ``{"flags": [...], "table": {CURRENT: {REQUESTED: {"next": STATE or
    "EINVAL", "path": [STATE, ...]}}}}``; a ``no-path`` cell is written as
    ``"EINVAL"`` (the request cannot be carried out).
    """
    out: dict[str, dict] = {}
    for (current, requested), entry in table.items():
        cell = {"next": entry.next, "path": list(entry.path)}
        if entry.ambiguous:
            cell["ambiguous"] = [list(p) for p in entry.alternatives]
        out.setdefault(current, {})[requested] = cell
    return {"flags": [f for f in model.flag_order if f in config.flags], "table": out}
