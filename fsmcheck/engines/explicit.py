"""The explicit engine: properties decided on networkx graphs.

Each ``_check_*`` function takes a model and a configuration and returns a
:class:`~fsmcheck.semantics.verdict.Verdict`. Counterexample traces are shortest paths
(:func:`networkx.shortest_path`) from the state at open in the configuration's
system graph (arcs, reset and failure edges).
"""

from __future__ import annotations

import functools

import networkx as nx

from ..semantics import deadline
from ..semantics.combination import NO_PATH, PATH, REJECTED, derive_table
from ..semantics.graphs import UndecidedError, accepted_values, arc_graph, system_graph
from ..model.schema import Config, Model
from ..semantics.verdict import FAILS, HOLDS, UNKNOWN, Counterexample, Verdict, fail as _fail
from ..semantics.walk import EINVAL, OK, SKIP_LOOP, STEP_LOOP, run_walk
from ..semantics.verdict import looping_pairs as _all_pairs
from ..semantics.sessions import expected_effect
from .protocol import implementations

__all__ = ["Explicit", "check", "trace_to"]


def check(name: str, model: Model, config: Config) -> Verdict:
    """Decide property ``name`` for ``config``; ``unknown`` if undecidable here."""
    try:
        return _CHECKS[name](model, config)
    except UndecidedError as exc:
        return Verdict(UNKNOWN, note=str(exc))


def trace_to(model: Model, config: Config, target: str) -> list[str]:
    """Shortest trace from the state at open to ``target`` (described states).

    Steps that are not arcs carry their kind: ``STOP [reset]``. Empty when
    ``target`` is unreachable.
    """
    graph = system_graph(model, config)
    if model.initial not in graph or target not in graph:
        return []
    simple = nx.DiGraph()
    for u, v, kind in graph.edges(keys=True):
        if not simple.has_edge(u, v) or kind not in ("reset", "failure"):
            simple.add_edge(u, v, kind=kind if kind in ("reset", "failure") else "arc")
    simple.add_node(model.initial)
    try:
        path = nx.shortest_path(simple, model.initial, target)
    except nx.NetworkXNoPath:
        return []
    out = [model.describe(path[0])]
    for u, v in zip(path, path[1:]):
        kind = simple.edges[u, v]["kind"]
        out.append(model.describe(v) + ("" if kind == "arc" else f" [{kind}]"))
    return out


@functools.lru_cache(maxsize=32)
def _table(model: Model, config: Config):
    """The derived table, computed once per model and configuration
    (rejections, combination-table, sessions and walk-agrees all read it)."""
    return derive_table(model, config)


def _check_validity(model: Model, config: Config) -> Verdict:
    pred = model.valid
    if pred.support & ~model.mask:
        raise UndecidedError(
            f"the predicate reads bits {pred.support & ~model.mask:#x} outside the mask; "
            "the explicit engine would enumerate 2^32 values")
    # The predicate depends only on the masked bits, so the masked values decide it.
    for state in model.states:
        if pred(state.value) != state.requestable:
            verb = "accepts" if pred(state.value) else "rejects"
            kind = "non-requestable" if not state.requestable else "requestable"
            return _fail(f"VALID {verb} {kind} value {model.describe(state.name)}",
                         (model.describe(state.name),), model.line_of("encoding", "valid"),
                         value=state.value)
    return Verdict(HOLDS, note=f"the predicate reads only bits {pred.support:#x}; all masked values checked")


def _check_no_invalid_entry(model: Model, config: Config) -> Verdict:
    graph = arc_graph(model, config)
    bad = {s.name for s in model.states if not s.requestable} | ({model.error} if model.error else set())
    offending = sorted(
        ((u, v) for u, v in graph.edges if v in bad or u == model.error),
        key=lambda e: (len(trace_to(model, config, e[0])) or 99, e),
    )
    if not offending:
        return Verdict(HOLDS)
    u, v = offending[0]
    verb = "leaves the error state" if u == model.error else "reaches"
    trace = trace_to(model, config, u) or [model.describe(u)]
    return _fail(f"a successful request {verb}: {model.describe(u)} -> {model.describe(v)}",
                 trace + [model.describe(v)], graph.edges[u, v]["line"], arc=[u, v])


def _check_reset(model: Model, config: Config) -> Verdict:
    graph = system_graph(model, config)
    for state in model.supported(config.flags):
        targets = {v for _, v, k in graph.out_edges(state, keys=True) if k == "reset"}
        if targets != {model.initial}:
            got = ", ".join(model.describe(t) for t in sorted(targets)) or "nothing"
            return _fail(f"reset from {model.describe(state)} gives {got}, not the state at open "
                         f"{model.describe(model.initial)}",
                         (model.describe(state), f"{got} [reset]"), model.line_of("device", "reset"),
                         state=state, reset=sorted(targets))
    return Verdict(HOLDS)


def _check_reachability(model: Model, config: Config) -> Verdict:
    arcs = arc_graph(model, config)
    system = system_graph(model, config)
    accepted = accepted_values(model, config)
    reached = nx.descendants(arcs, model.initial) | {model.initial}
    for state in model.supported(config.flags):
        if state in accepted and state not in reached:
            return _fail(f"{model.describe(state)} is accepted but no path of arcs reaches it from "
                         f"{model.describe(model.initial)}", (model.describe(model.initial),),
                         model.state(state).line, unreachable=state)
    back = nx.ancestors(system, model.initial) | {model.initial}
    for state in model.supported(config.flags):
        if state not in back:
            return _fail(f"{model.describe(model.initial)} cannot be reached from {model.describe(state)}",
                         tuple(trace_to(model, config, state)), model.state(state).line, stuck=state)
    return Verdict(HOLDS)


def _check_error_exit(model: Model, config: Config) -> Verdict:
    graph = arc_graph(model, config)
    if model.error not in graph:
        return Verdict(HOLDS, note="the error state is not in this configuration")
    out = sorted(graph.successors(model.error))
    if out:
        trace = trace_to(model, config, model.error)
        return _fail(f"an arc leaves the error state: {model.describe(model.error)} -> {model.describe(out[0])}",
                     trace + [model.describe(out[0])], graph.edges[model.error, out[0]]["line"],
                     arc=[model.error, out[0]])
    return Verdict(HOLDS)


def _check_rejections(model: Model, config: Config) -> Verdict:
    if model.error and model.state(model.error).requestable:
        return _fail(f"the error state {model.error} is requestable", (model.error,),
                     model.state(model.error).line, state=model.error)
    table = _table(model, config)
    supported = set(model.supported(config.flags))
    blocked = {(b.src, b.dst): b for b in model.blocked_in(config.flags)}
    for (cur, req), entry in table.items():
        must = (req not in supported or not model.state(req).requestable or cur == model.error
                or (cur, req) in blocked)
        if must and entry.outcome != REJECTED:
            return _fail(f"request {cur} -> {req} is not rejected", (cur,), model.line_of("blocked"),
                         pair=[cur, req])
        if not must and entry.outcome == REJECTED:
            return _fail(f"request {cur} -> {req} is rejected: {entry.reason}", (cur,), 0, pair=[cur, req])
    # Values naming no state are rejected: only declared values map to states.
    return Verdict(HOLDS, evidence=sorted(k for k, e in table.items() if e.outcome == REJECTED))


def _check_combination_table(model: Model, config: Config) -> Verdict:
    table = _table(model, config)
    graph = arc_graph(model, config)
    evidence = {k: (e.outcome, e.alternatives) for k, e in table.items()}
    for (cur, req), entry in sorted(table.items(), key=lambda kv: _pair_key(model, kv[0])):
        if entry.outcome == NO_PATH:
            return _fail(f"accepted request {cur} -> {req} has no admissible path", (cur,),
                         model.state(req).line, evidence=evidence, pair=[cur, req])
        if entry.outcome != PATH:
            continue
        if entry.ambiguous:
            alts = " | ".join(" -> ".join((cur,) + p) for p in entry.alternatives)
            return Verdict(FAILS, evidence=evidence, counterexample=Counterexample(
                f"ambiguous combination transition {cur} -> {req}: {alts}",
                (cur,) + entry.alternatives[0], model.combination.line,
                {"pair": [cur, req], "paths": [list(p) for p in entry.alternatives]}))
        if model.error in entry.path:
            return _fail(f"derived path {cur} -> {req} passes the error state", (cur,) + entry.path,
                         model.combination.line, evidence=evidence, pair=[cur, req])
        steps = list(zip((cur,) + entry.path, entry.path))
        for u, v in steps:
            if not graph.has_edge(u, v):
                return _fail(f"derived path {cur} -> {req} uses {u} -> {v}, not an arc of {config.label}",
                             (cur,) + entry.path, model.combination.line, evidence=evidence)
    return Verdict(HOLDS, evidence=evidence)


def _pair_key(model: Model, pair):
    order = model.state_names
    return order.index(pair[0]), order.index(pair[1])


def _check_sessions(model: Model, config: Config) -> Verdict:
    graph = arc_graph(model, config)
    for u, v, data in sorted(graph.edges(data=True), key=lambda e: _pair_key(model, e[:2])):
        want = expected_effect(model, u, v)
        if data["session"] != want:
            return _fail(f"arc {u} -> {v} declares session effect {data['session']!r}; "
                         f"its groups say {want!r}", (u, v), data["line"], arc=[u, v])
    if model.combination is None:
        return Verdict(HOLDS)
    table = _table(model, config)
    for (cur, req), entry in sorted(table.items(), key=lambda kv: _pair_key(model, kv[0])):
        if entry.outcome != PATH:
            continue
        effects = [graph.edges[u, v]["session"] for u, v in zip((cur,) + entry.path, entry.path)]
        g_cur = model.group_of(cur, model.session_groups)
        g_req = model.group_of(req, model.session_groups)
        starts = 1 if g_req is not None and g_req != g_cur else 0
        ends = 1 if g_cur is not None and g_cur != g_req else 0
        if effects.count("starts") != starts or effects.count("ends") != ends:
            return _fail(f"path {cur} -> {req} starts {effects.count('starts')} and ends "
                         f"{effects.count('ends')} sessions; expected {starts} and {ends}",
                         (cur,) + entry.path, model.combination.line, pair=[cur, req], effects=effects)
    return Verdict(HOLDS)


def _check_walk_terminates(model: Model, config: Config) -> Verdict:
    bound = len(model.states)
    looping, first = [], None
    for cur in model.state_names:
        deadline.check()
        for req in model.state_names:
            result = run_walk(model, config, cur, req)
            if result.outcome in (SKIP_LOOP, STEP_LOOP):
                looping.append([cur, req])
                first = first or (cur, req, result)
            elif len(result.path) > bound:
                return _fail(f"the walk takes {len(result.path)} > {bound} steps for {cur} -> {req}",
                             (cur,) + result.path, model.walk.line, pair=[cur, req])
    if first is None:
        return Verdict(HOLDS)
    cur, req, result = first
    where = "skip loop" if result.outcome == SKIP_LOOP else "step loop"
    cycle = " -> ".join(result.cycle + result.cycle[:1])
    return _fail(f"the walk does not terminate for {cur} -> {req}: its {where} cycles {cycle}"
                 f"{_all_pairs(looping)}",
                 (cur,) + result.path + result.cycle, model.walk.line,
                 pair=[cur, req], cycle=list(result.cycle), loop=result.outcome, pairs=looping)


def _check_walk_agrees(model: Model, config: Config) -> Verdict:
    table = _table(model, config)
    for (cur, req), entry in sorted(table.items(), key=lambda kv: _pair_key(model, kv[0])):
        result = run_walk(model, config, cur, req)
        want = (EINVAL, ()) if entry.outcome in (REJECTED, NO_PATH) else (OK, entry.path)
        if (result.outcome, result.path) != want:
            got = "EINVAL" if result.outcome == EINVAL else " -> ".join((cur,) + result.path)
            if result.outcome in (SKIP_LOOP, STEP_LOOP):
                got = f"no end ({result.outcome})"
            derived = "EINVAL" if want[0] == EINVAL else " -> ".join((cur,) + entry.path)
            return _fail(f"for {cur} -> {req} the walk gives {got}; the derived table gives {derived}",
                         (cur,) + result.path, model.line_of("walk", "next", cur, req),
                         pair=[cur, req], walk=list(result.path), derived=list(entry.path),
                         walk_outcome=result.outcome, derived_outcome=entry.outcome)
    return Verdict(HOLDS)


def _check_correspondence(model: Model, config: Config) -> Verdict:
    corr = model.correspondence
    other = corr.model
    other_config = next(c for c in other.configs() if c.profile == corr.profile)
    other_graph = arc_graph(other, other_config)
    line = model.line_of("correspondence", "map")
    for key in ("initial", "reset"):
        mine, theirs = getattr(model, key), getattr(other, key)
        if corr.mapping.get(mine) != theirs:
            return _fail(f"{key} state {mine} maps to {corr.mapping.get(mine)!r}, but {other.name}'s is {theirs!r}",
                         (mine,), line, key=key)
    graph = arc_graph(model, config)
    for u, v in sorted(graph.edges, key=lambda e: _pair_key(model, e)):
        if u in corr.mapping and v in corr.mapping:
            a, b = corr.mapping[u], corr.mapping[v]
            if not other_graph.has_edge(a, b):
                return _fail(f"arc {u} -> {v} is {other.describe(a)} -> {other.describe(b)}, not a "
                             f"{other.name}/{corr.profile} transition", (u, v), graph.edges[u, v]["line"],
                             arc=[u, v], image=[a, b])
    return Verdict(HOLDS)


def _check_p2p_quiesce(model: Model, config: Config) -> Verdict:
    """The P2P quiesce rule on one device (vacuous: it relates two devices).

    Every state reachable from the state at open (arcs, reset, failures) is
    put to :func:`fsmcheck.semantics.p2p.quiesce_violations` as the only
    device of its user context."""
    from ..semantics.p2p import quiesce_violations

    graph = system_graph(model, config)
    reached = nx.descendants(graph, model.initial) | {model.initial}
    for state in sorted(reached):
        found = quiesce_violations(model, {"device": state})
        if found:
            return _fail(str(found[0]), tuple(trace_to(model, config, state)), model.line_of("p2p"))
    return Verdict(HOLDS, note=f"vacuous on one device ({len(reached)} reachable states)")


_CHECKS = implementations(globals(), "_check_")


class Explicit:
    """The explicit engine as an :class:`~fsmcheck.engines.protocol.Engine`."""

    name = "networkx"

    def check(self, prop: str, model: Model, config: Config) -> Verdict:
        return check(prop, model, config)

    def implements(self, prop: str) -> bool:
        return prop in _CHECKS
