"""Bounded model checking with z3: shortest traces and the derived table.

:func:`shortest_trace` unrolls a transition relation from the state at open
until a target predicate holds (bound: the number of states, which is
complete for reachability in a finite graph). :func:`derive_table` computes the
combination table the way :mod:`fsmcheck.verifier.combination` does, but by asking z3
for paths of each length k = 1, 2, ... under the admissibility constraint and
enumerating every model of the least k (so ambiguities are found, not
resolved).
"""

from __future__ import annotations

import z3

from ..verifier.combination import NO_PATH, NOOP, PATH, REJECTED
from .z3_encoding import Encoding, new_solver, solve

__all__ = ["derive_table", "shortest_trace", "MAX_ALTERNATIVES"]

#: Paths of the least length enumerated per pair before giving up counting.
MAX_ALTERNATIVES = 8


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


def _admissible(enc: Encoding, xs, within: bool):
    model = enc.model
    rule = model.combination
    groups = rule.no_interior if rule else ()
    forbidden = [s for g in groups for s in model.groups.get(g, ())]
    interior = xs[1:-1]
    options = [z3.And([z3.Not(enc.is_any(x, forbidden)) for x in interior])]
    if within:
        for g in groups:
            members = list(model.groups.get(g, ()))
            options.append(z3.And([enc.is_any(x, members) for x in xs]))
    return z3.Or(options)


def rejected(enc: Encoding, current: str, requested: str, timeout_ms: int = 10000) -> bool:
    """Whether the request is rejected, decided by z3 on the request's value.

    The request is accepted iff the value names a supported requestable state
    (:meth:`Encoding.accepted`), the current state is not the error state,
    and the pair is not blocked.
    """
    model = enc.model
    req = enc.var("req")
    cur = enc.var("cur")
    solver = new_solver(timeout_ms)
    applying = model.blocked_in(enc.config.flags)
    blocked = z3.Or([z3.And(enc.is_state(cur, b.src), enc.is_state(req, b.dst)) for b in applying]) \
        if applying else z3.BoolVal(False)
    error = enc.is_state(cur, model.error) if model.error else z3.BoolVal(False)
    solver.add(req == enc.value(requested), cur == enc.value(current))
    solver.add(enc.accepted(req), z3.Not(error), z3.Not(blocked))
    return solve(solver) is None


def derive_table(enc: Encoding, *, within_group: bool | None = None, timeout_ms: int = 10000):
    """The combination table of ``enc.config``, by bounded model checking.

    Returns:
        ``{(current, requested): (outcome, alternatives)}`` with outcome one
        of ``rejected``, ``noop``, ``path``, ``no-path`` and alternatives the
        sorted tuple of every least-length admissible path (states after
        ``current``), capped at :data:`MAX_ALTERNATIVES`.

    Raises:
        UnknownResult: z3 timed out.
    """
    model = enc.model
    rule = model.combination
    within = (rule.within_group if rule else False) if within_group is None else within_group
    n = len(enc.supported_names)
    solvers = []
    for k in range(1, n):
        xs = [enc.var(f"p{k}_{i}") for i in range(k + 1)]
        s = new_solver(timeout_ms)
        # Path states are states, not values: reserved bits clear, so paths
        # that differ only in reserved bits are one path, not several.
        s.add([enc.canonical(x) for x in xs])
        for i in range(k):
            s.add(enc.arc(xs[i], xs[i + 1]))
        s.add(_admissible(enc, xs, within))
        solvers.append((s, xs))
    table = {}
    for current in enc.supported_names:
        for requested in model.state_names:
            if requested not in enc.supported_names or rejected(enc, current, requested, timeout_ms):
                table[(current, requested)] = (REJECTED, ())
            elif current == requested:
                table[(current, requested)] = (NOOP, ())
            else:
                table[(current, requested)] = _least_paths(enc, solvers, current, requested)
    return table


def _least_paths(enc: Encoding, solvers, current: str, requested: str):
    for solver, xs in solvers:
        ends = [xs[0] == enc.value(current), xs[-1] == enc.value(requested)]
        m = solve(solver, *ends)
        if m is None:
            continue
        found = []
        solver.push()
        try:
            while m is not None and len(found) < MAX_ALTERNATIVES:
                path = tuple(enc.name_of(m, x) for x in xs[1:])
                found.append(path)
                solver.add(z3.Or([x != enc.value(p) for x, p in zip(xs[1:], path)]))
                m = solve(solver, *ends)
        finally:
            solver.pop()
        return PATH, tuple(sorted(found))
    return NO_PATH, ()
