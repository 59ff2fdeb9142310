"""Running a model's walk (the implementation under review), explicitly.

A walk is the kernel's way of carrying out combination transitions
(``vfio_mig_get_next_state()`` in ``drivers/vfio/vfio_main.c``): a next-step
table over all states and a loop that skips states the device does not
support. See :class:`fsmcheck.model.schema.Walk` for the exact semantics.
:func:`run_walk` executes it for one request and reports how it ended,
including a non-terminating skip loop or step loop with the cycle it is
stuck in, found with :func:`networkx.find_cycle`.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from ..model.schema import Config, Model

__all__ = ["WalkResult", "run_walk", "OK", "EINVAL", "SKIP_LOOP", "STEP_LOOP"]

OK, EINVAL, SKIP_LOOP, STEP_LOOP = "ok", "EINVAL", "skip-loop", "step-loop"


@dataclass(frozen=True)
class WalkResult:
    """How a walk carried out one request.

    Attributes:
        outcome: ``ok`` (reached the requested state), ``EINVAL`` (rejected,
            possibly after some steps), ``skip-loop`` (the skip loop never
            exits) or ``step-loop`` (the steps cycle without reaching the
            requested state).
        path: states entered, in order.
        cycle: for the two loop outcomes, the states of the cycle.
    """

    outcome: str
    path: tuple[str, ...] = ()
    cycle: tuple[str, ...] = ()


def _skip_graph(model: Model, config: Config, requested: str) -> nx.DiGraph:
    walk, all_flags = model.walk, frozenset(model.flag_bits)
    graph = nx.DiGraph()
    for state in model.state_names:
        if state in walk.exits or walk.supported(state, config.flags, all_flags):
            continue
        graph.add_edge(state, walk.next[(state, requested)])
    return graph


def _skip(model: Model, config: Config, start: str, requested: str):
    """Follow the skip loop from ``start``; return (state, None) or (None, cycle)."""
    walk, all_flags = model.walk, frozenset(model.flag_bits)
    state, seen = start, set()
    while not (state in walk.exits or walk.supported(state, config.flags, all_flags)):
        if state in seen:
            cycle = nx.find_cycle(_skip_graph(model, config, requested), source=start)
            return None, tuple(u for u, _ in cycle)
        seen.add(state)
        state = walk.next[(state, requested)]
    return state, None


def run_walk(model: Model, config: Config, current: str, requested: str) -> WalkResult:
    """Carry out the request ``current -> requested`` with the model's walk.

    Raises:
        ValueError: the model has no walk.
    """
    walk = model.walk
    if walk is None:
        raise ValueError(f"model {model.name} carries no walk")
    all_flags = frozenset(model.flag_bits)
    if walk.check_current and not walk.supported(current, config.flags, all_flags):
        return WalkResult(EINVAL)
    if walk.check_requested and not walk.supported(requested, config.flags, all_flags):
        return WalkResult(EINVAL)
    path: list[str] = []
    state, visited, seen = current, [current], {current}
    while state != requested:
        step, cycle = _skip(model, config, walk.next[(state, requested)], requested)
        if cycle is not None:
            return WalkResult(SKIP_LOOP, tuple(path), cycle)
        if step in walk.reject:
            return WalkResult(EINVAL, tuple(path))
        if step in seen:
            start = visited.index(step)
            return WalkResult(STEP_LOOP, tuple(path + [step]), tuple(visited[start:]))
        path.append(step)
        visited.append(step)
        seen.add(step)
        state = step
    return WalkResult(OK, tuple(path))
