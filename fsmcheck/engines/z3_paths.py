"""Bounded model checking with z3: shortest traces (counterexamples).

:func:`shortest_trace` unrolls a transition relation from the state at open
until a target predicate holds (bound: the number of states, which is
complete for reachability in a finite graph). The sets and tables over every
pair of states are :mod:`.z3_relations`' (datalog); BMC gives the least
trace to show when a property fails.
"""

from __future__ import annotations

import z3

from .z3_encoding import Encoding, new_solver, solve

__all__ = ["shortest_trace"]


def shortest_trace(enc: Encoding, target, *, relation=None, start=None, bound=None,
                   timeout_ms: int = 10000):
    """Least-length trace from the state at open (or ``start``) to ``target``.

    Args:
        enc: the encoding.
        target: ``target(x) -> BoolRef``, the predicate on the last state.
        relation: ``relation(x, y) -> BoolRef``; default ``enc.system``.
        start: ``start(x) -> BoolRef``; default ``enc.initial``.
        bound: the largest trace length tried; default the number of states.

    Returns:
        ``(z3 model, [state terms])`` or None when no trace within ``bound``.

    Raises:
        UnknownResult: z3 timed out.
    """
    relation = relation or enc.system
    start = start or enc.initial
    bound = len(enc.model.states) if bound is None else bound
    solver = new_solver(timeout_ms)
    xs = [enc.var("t0")]
    solver.add(start(xs[0]))
    for k in range(bound + 1):
        if k:
            xs.append(enc.var(f"t{k}"))
            solver.add(relation(xs[k - 1], xs[k]))
        m = solve(solver, target(xs[k]))
        if m is not None:
            return m, xs
    return None
