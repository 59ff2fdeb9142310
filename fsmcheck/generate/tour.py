"""The arc tour: every arc exercised with the fewest steps.

A directed Chinese-postman tour (Edmonds & Johnson): the arcs of a flag set
must each be traversed once; where the arc graph is unbalanced, the cheapest
extra traversals are found as a minimum-cost flow (networkx
``min_cost_flow``) over the arcs and the *reset* edges (any state -> the
reset target, one step each); the tour is then an Eulerian circuit
(``networkx.eulerian_circuit``) from the state at open. Its length is optimal
by construction; :attr:`Tour.optimum` is the cost computed independently,
as the number of arcs plus the minimum flow cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..semantics.graphs import arc_graph
from ..model.schema import Config, Model

__all__ = ["Tour", "arc_tour"]


@dataclass(frozen=True)
class Tour:
    """Steps ``(kind, src, dst)`` with kind ``arc`` or ``reset``; the number of
    arcs covered; the optimum length (arcs + minimum flow cost); and a lower
    bound (arcs + total imbalance) that any tour needs."""

    steps: tuple[tuple[str, str, str], ...]
    arcs: int
    optimum: int
    lower_bound: int

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def resets(self) -> int:
        return sum(1 for s in self.steps if s[0] == "reset")


def arc_tour(model: Model, config: Config) -> Tour:
    """The optimal arc tour of ``config``, starting and ending at the state at open.

    Arcs touching the error state are left out (it is entered only by a
    failure). Raises ValueError if some arc's source is unreachable from the
    state at open.
    """
    graph = arc_graph(model, config)
    graph.remove_nodes_from([model.error] if model.error in graph else [])
    order = {name: i for i, name in enumerate(model.state_names)}
    required = sorted(graph.edges, key=lambda e: (order[e[0]], order[e[1]]))
    start = model.initial
    unreachable = set(graph.nodes) - nx.descendants(graph, start) - {start}
    if unreachable:
        raise ValueError(f"states unreachable from {start}: {sorted(unreachable)}")
    moves = nx.DiGraph()
    moves.add_nodes_from(sorted(graph.nodes, key=order.get))
    for u, v in required:
        moves.add_edge(u, v, weight=1, capacity=len(required) + 1, kind="arc")
    for u in sorted(graph.nodes, key=order.get):
        if u != model.reset and not moves.has_edge(u, model.reset):
            moves.add_edge(u, model.reset, weight=1, capacity=len(required) + 1, kind="reset")
    for node in moves.nodes:
        # demand > 0: the node needs extra incoming traversals
        moves.nodes[node]["demand"] = graph.out_degree(node) - graph.in_degree(node)
    flow = nx.min_cost_flow(moves)
    cost = nx.cost_of_flow(moves, flow)
    multi = nx.MultiDiGraph()
    multi.add_nodes_from(moves.nodes)
    for u, v in required:
        multi.add_edge(u, v, kind="arc")
    for u in moves.nodes:
        for v, units in sorted(flow[u].items(), key=lambda kv: order[kv[0]]):
            for _ in range(units):
                multi.add_edge(u, v, kind=moves.edges[u, v]["kind"])
    steps = tuple((multi.edges[u, v, k]["kind"], u, v) for u, v, k in nx.eulerian_circuit(multi, source=start, keys=True))
    # Every unit of imbalance needs at least one extra step: a bound that does
    # not depend on the flow, so a tour meeting it is optimal on its face.
    bound = len(required) + sum(max(0, graph.in_degree(n) - graph.out_degree(n)) for n in graph.nodes)
    return Tour(steps, len(required), len(required) + cost, bound)
