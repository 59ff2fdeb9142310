"""The explicit engine: the product of the N devices as a networkx graph.

Breadth-first construction of every reachable :class:`~.semantics.Global`
state of a :class:`~.semantics.System` (no symmetry reduction: this is the
cross-check of the z3 engine), as a :class:`networkx.DiGraph` (edges without attributes, to save memory:
the :class:`~.semantics.Step` of an edge is recomputed when a trace is
written). Counterexamples are
:func:`networkx.shortest_path` from the state at open, so they are minimal
in length. The search is bounded by wall time and by a number of states; a
search that hits either bound answers ``unknown`` and says where it stopped.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import networkx as nx

from ..semantics.p2p import quiesce_violations
from .semantics import Global, Step, System

__all__ = ["Exploration", "explore", "DEFAULT_MAX_STATES"]

#: Default bound on the number of global states explored (about 1 GB of
#: networkx graph at N = 16; the search stops there and answers ``unknown``).
DEFAULT_MAX_STATES = 250_000


@dataclass
class Exploration:
    """The result of :func:`explore`.

    Attributes:
        graph: the product graph explored (nodes :class:`~.semantics.Global`);
            complete when ``complete``.
        initial: the state at open.
        complete: every reachable state was explored.
        stopped: why the search stopped early (time or state bound), else "".
        seconds: wall time spent.
        p2p_bad: the first state (in BFS order) that breaks P2P safety, or None.
        progress_bad: the first end state that breaks progress (or a state
            from which no end is reachable), with the reason, or None.
    """

    graph: nx.DiGraph
    initial: Global
    system: System
    complete: bool
    stopped: str
    seconds: float
    p2p_bad: Global | None = None
    progress_bad: tuple[Global, str] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def states(self) -> int:
        """Number of global states explored."""
        return self.graph.number_of_nodes()

    def trace(self, target: Global) -> list[tuple[Step | None, Global]]:
        """The shortest path from the state at open to ``target``: ``(step, state)``
        pairs, the first with step None."""
        path = nx.shortest_path(self.graph, self.initial, target)
        out = [(None, path[0])]
        for u, v in zip(path, path[1:]):
            out.append((next(step for step, nxt in self.system.successors(u) if nxt == v), v))
        return out


def explore(system: System, *, time_limit: float = 60.0, max_states: int = DEFAULT_MAX_STATES,
            stop_at_first: bool = False) -> Exploration:
    """Build the reachable product of ``system`` breadth-first.

    Args:
        system: the composed system.
        time_limit: seconds (> 0) after which the search stops (``complete`` False).
        max_states: states after which the search stops.
        stop_at_first: stop at the first P2P violation (a faster fail).

    Returns:
        An :class:`Exploration`; P2P violations and progress problems found
        while exploring are recorded at the first (shortest) occurrence.
    """
    start = time.perf_counter()
    deadline = start + time_limit
    model = system.device
    graph = nx.DiGraph()
    init = system.initial()
    graph.add_node(init)
    queue = deque([init])
    result = Exploration(graph, init, system, False, "", 0.0)
    ends = []
    while queue:
        if graph.number_of_nodes() > max_states:
            result.stopped = f"state bound {max_states} reached"
            break
        if time.perf_counter() > deadline:
            result.stopped = f"time bound {time_limit:g} s reached"
            break
        g = queue.popleft()
        if result.p2p_bad is None and system.p2p_checked(g.pc) and quiesce_violations(model, system.states_of(g)):
            result.p2p_bad = g
            if stop_at_first:
                result.stopped = "stopped at the first P2P violation"
                break
        if g.pc >= system.end_ok:
            ends.append(g)
            if result.progress_bad is None:
                problem = system.progress_problem(g)
                if problem:
                    result.progress_bad = (g, problem)
            continue
        succ = system.successors(g)
        if not succ and result.progress_bad is None:
            result.progress_bad = (g, f"no step possible in phase {system.phase_name(g.pc)}")
        for step, nxt in succ:
            if nxt not in graph:
                graph.add_node(nxt)
                queue.append(nxt)
            graph.add_edge(g, nxt)  # steps are recomputed for traces only, to save memory
    else:
        result.complete = True
    if result.complete and result.progress_bad is None:
        # every state must be able to reach an end (the run ends)
        reverse = graph.reverse(copy=False)
        reaches = set(ends)
        frontier = list(ends)
        while frontier:
            node = frontier.pop()
            for prev in reverse.successors(node):
                if prev not in reaches:
                    reaches.add(prev)
                    frontier.append(prev)
        stuck = [g for g in graph.nodes if g not in reaches]
        if stuck:
            result.progress_bad = (stuck[0], "no end of the run is reachable from here")
    result.seconds = time.perf_counter() - start
    return result
