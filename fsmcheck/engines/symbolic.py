"""The symbolic engine: properties decided by z3.

Safety questions are single satisfiability queries over the whole state space
(for bit encodings, all ``2**width`` values of ``device_state``). The
questions over every state or pair of states -- reachability, the
combination table, sessions along the derived paths, the walk's termination
and agreement -- are one datalog program per configuration evaluated by z3's
Fixedpoint engine (:mod:`.z3_relations`), one query each, whatever the number
of states (issue 14). Counterexample traces use bounded model checking with
the number of states as the bound, which is complete for a finite graph
(:mod:`.z3_paths`). A table with an ambiguous pair, or whose paths are not
closed under suffixes, is checked the general way: the derived paths become
z3 functions ``P_j(current, requested)`` and each path property is one query
with current and requested left free.

A z3 ``unknown`` (timeout) becomes an ``unknown`` verdict, never ``holds``.
"""

from __future__ import annotations

import functools

import z3

from ..semantics.combination import NO_PATH, PATH, REJECTED
from ..model.schema import Config, Model
from ..semantics.graphs import declared_effects
from ..semantics.verdict import ERROR, FAILS, HOLDS, UNKNOWN, Counterexample, Verdict, fail as _fail
from ..semantics.verdict import looping_pairs as _all_pairs
from ..semantics.sessions import expected_effect
from .protocol import implementations
from .z3_encoding import Encoding, UnknownResult, fresh_names as _fresh, new_solver, solve
from .z3_paths import shortest_trace
from .z3_relations import Relations

__all__ = ["Symbolic", "check", "DEFAULT_TIMEOUT_MS"]

#: Per-query z3 timeout in milliseconds.
DEFAULT_TIMEOUT_MS = 10000


def check(name: str, model: Model, config: Config, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Verdict:
    """Decide property ``name`` for ``config`` with z3.

    Returns ``unknown`` with z3's reason when a query times out, and
    ``error`` when the constraints a property is checked under contradict each
    other (a vacuous proof is never ``holds``).

    Raises:
        fsmcheck.semantics.deadline.DeadlineExpired: the run's deadline passed.
    """
    try:
        return _CHECKS[name](_encoding(model, config), timeout_ms)
    except UnknownResult as exc:
        return Verdict(UNKNOWN, note=f"z3: {exc}")
    except VacuousError as exc:
        return Verdict(ERROR, note=f"z3: {exc}")


@functools.lru_cache(maxsize=32)
def _encoding(model: Model, config: Config) -> Encoding:
    """One :class:`Encoding` per model and configuration, shared by its
    properties (its formulas are built once)."""
    return Encoding(model, config)


class VacuousError(Exception):
    """The premises of a property query are unsatisfiable: any claim would
    "hold" vacuously."""


def _premises(solver: z3.Solver, what: str) -> None:
    """Raise :class:`VacuousError` unless ``solver``'s constraints (the
    encoding of ``what``) are satisfiable on their own."""
    if solve(solver) is None:
        raise VacuousError(f"the encoding of {what} is unsatisfiable; the property would hold vacuously")


def _solver(timeout_ms: int) -> z3.Solver:
    return new_solver(timeout_ms)


def _trace(enc: Encoding, target, timeout_ms: int) -> list[str]:
    found = shortest_trace(enc, target, timeout_ms=timeout_ms)
    if found is None:
        return []
    m, xs = found
    out, prev = [], None
    for x in xs:
        text = enc.describe(m, x)
        if prev is not None and not z3.is_true(m.eval(enc.arc(prev, x), model_completion=True)):
            text += " [reset]" if z3.is_true(m.eval(enc.reset(prev, x), model_completion=True)) else " [failure]"
        out.append(text)
        prev = x
    return out


@functools.lru_cache(maxsize=32)
def _relations_of(model: Model, config: Config, timeout_ms: int) -> Relations:
    return Relations(_encoding(model, config), timeout_ms)


def _relations(enc: Encoding, timeout_ms: int) -> Relations:
    """The datalog program of ``enc``'s model and configuration, built once."""
    return _relations_of(enc.model, enc.config, timeout_ms)


def _table(enc: Encoding, timeout_ms: int):
    return _relations(enc, timeout_ms).table()


# -- properties ------------------------------------------------------------
def _validity(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    s = z3.BitVec("device_state", model.width)
    requestable = [st.value for st in model.states if st.requestable]
    rule = z3.Or([(s & model.mask) == v for v in requestable])
    solver = _solver(timeout_ms)
    solver.add(model.valid.to_z3(s) != rule)
    m = solve(solver)
    if m is None:
        return Verdict(HOLDS, note=f"proved for all 2^{model.width} values")
    value = m.eval(s, model_completion=True).as_long()
    name = model.name_of_value(value)
    verb = "accepts" if not model.state(name).requestable else "rejects"
    return _fail(f"VALID {verb} device_state={value:#010x} ({model.describe(name)})",
                 (model.describe(name),), model.line_of("encoding", "valid"), value=value)


def _no_invalid_entry(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    bad = [st.name for st in model.states if not st.requestable]
    if model.error:
        bad.append(model.error)
    x, y = enc.var("x"), enc.var("y")
    leaves = enc.is_state(x, model.error) if model.error else z3.BoolVal(False)
    offending = z3.And(enc.arc(x, y), z3.Or(enc.is_any(y, bad), leaves))
    # Least trace to the source of an offending arc, then the arc.
    solver = _solver(timeout_ms)
    solver.add(offending)
    if solve(solver) is None:
        return Verdict(HOLDS)

    def source(v):
        return z3.Exists([y], z3.And(enc.arc(v, y), z3.Or(enc.is_any(y, bad), leaves)))

    found = shortest_trace(enc, source, timeout_ms=timeout_ms)
    m0 = solve(solver)
    if found is not None:
        m, xs = found
        solver.add(x == m.eval(xs[-1], model_completion=True))
        m0 = solve(solver) or m0
    src, dst = enc.name_of(m0, x), enc.name_of(m0, y)
    trace = _trace(enc, lambda v: enc.is_state(v, src), timeout_ms) or [model.describe(src)]
    verb = "leaves the error state" if src == model.error else "reaches"
    line = next((a.line for a in model.arcs if (a.src, a.dst) == (src, dst)), model.line_of("profiles"))
    return _fail(f"a successful request {verb}: {enc.describe(m0, x)} -> {enc.describe(m0, y)}",
                 trace + [enc.describe(m0, y)], line, arc=[src, dst])


def _reset(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    x, y = enc.var("x"), enc.var("y")
    solver = _solver(timeout_ms)
    solver.add(enc.reset(x, y), z3.Not(enc.initial(y)))
    m = solve(solver)
    if m is None:
        return Verdict(HOLDS)
    return _fail(f"reset from {enc.describe(m, x)} gives {enc.describe(m, y)}, not the state at open "
                 f"{model.describe(model.initial)}", (enc.describe(m, x), enc.describe(m, y) + " [reset]"),
                 model.line_of("device", "reset"), state=enc.name_of(m, x), reset=[enc.name_of(m, y)])


def _reachability(enc: Encoding, timeout_ms: int) -> Verdict:
    """One datalog query gives both sets (:meth:`Relations.reachable`);
    a failure's trace is the least one, by BMC."""
    model = enc.model
    forward, backward = _relations(enc, timeout_ms).reachable()
    for name in enc.supported_names:
        if name in forward:
            continue
        # Is some request value naming the state accepted? (For bit
        # encodings a value with reserved bits set may be, when the
        # state's own value is not.)
        probe = _solver(timeout_ms)
        x = enc.var("x")
        probe.add(enc.accepted(x), enc.is_state(x, name))
        if solve(probe) is None:
            continue
        return _fail(f"{model.describe(name)} is accepted but no path of arcs reaches it from "
                     f"{model.describe(model.initial)}", (model.describe(model.initial),),
                     model.state(name).line, unreachable=name)
    for name in enc.supported_names:
        if name not in backward:
            return _fail(f"{model.describe(model.initial)} cannot be reached from {model.describe(name)}",
                         tuple(_trace(enc, lambda v, n=name: enc.is_state(v, n), timeout_ms)),
                         model.state(name).line, stuck=name)
    return Verdict(HOLDS)


def _error_exit(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    if model.error not in enc.supported_names:
        return Verdict(HOLDS, note="the error state is not in this configuration")
    x, y = enc.var("x"), enc.var("y")
    solver = _solver(timeout_ms)
    solver.add(enc.is_state(x, model.error), enc.arc(x, y))
    m = solve(solver)
    if m is None:
        return Verdict(HOLDS)
    dst = enc.name_of(m, y)
    trace = _trace(enc, lambda v: enc.is_state(v, model.error), timeout_ms)
    line = next((a.line for a in model.arcs if (a.src, a.dst) == (model.error, dst)), 0)
    return _fail(f"an arc leaves the error state: {model.describe(model.error)} -> {model.describe(dst)}",
                 trace + [model.describe(dst)], line, arc=[model.error, dst])


def _rejections(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    if model.error and model.state(model.error).requestable:
        return _fail(f"the error state {model.error} is requestable", (model.error,),
                     model.state(model.error).line, state=model.error)
    # Over every 32-bit request value: a value naming no supported state is never accepted.
    r = z3.BitVec("request", model.width)
    values = [model.state(n).value for n in enc.supported_names]
    if not enc.bits:
        solver = _solver(timeout_ms)
        solver.add(z3.And([r != v for v in values]))
        # enum sorts: enc.accepted(value(n)) holds exactly for the accepted
        # names (one term per state; building accepted() per state was
        # quadratic in the states: 20 s at 250, issue 23)
        accepted_any = z3.Or([r == model.state(n).value for n in enc.accepted_names()] or [z3.BoolVal(False)])
        solver.add(accepted_any)
        m = solve(solver)
        if m is not None:
            v = m.eval(r, model_completion=True).as_long()
            return _fail(f"request value {v} names no supported state but is accepted", (), 0, value=v)
    table = _table(enc, timeout_ms)
    blocked = {(b.src, b.dst) for b in model.blocked_in(enc.config.flags)}
    for (cur, req), (outcome, _) in table.items():
        must = (req not in enc.supported_names or not model.state(req).requestable
                or cur == model.error or (cur, req) in blocked)
        if must != (outcome == REJECTED):
            verb = "is not rejected" if must else "is rejected"
            return _fail(f"request {cur} -> {req} {verb}", (cur,), model.line_of("blocked"), pair=[cur, req])
    return Verdict(HOLDS, evidence=sorted(k for k, v in table.items() if v[0] == REJECTED))


def _combination_table(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    table = _table(enc, timeout_ms)
    order = model.state_names
    x, y = enc.var("x"), enc.var("y")
    steps = {}
    rank = {n: i for i, n in enumerate(order)}
    for (cur, req), (outcome, alternatives) in sorted(table.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])):
        if outcome == NO_PATH:
            return _fail(f"accepted request {cur} -> {req} has no admissible path", (cur,),
                         model.state(req).line, evidence=table, pair=[cur, req])
        if outcome != PATH:
            continue
        if len(alternatives) > 1:
            alts = " | ".join(" -> ".join((cur,) + p) for p in alternatives)
            return Verdict(FAILS, evidence=table, counterexample=Counterexample(
                f"ambiguous combination transition {cur} -> {req}: {alts}",
                (cur,) + alternatives[0], model.combination.line,
                {"pair": [cur, req], "paths": [list(p) for p in alternatives]}))
        path = alternatives[0]
        if model.error in path:
            return _fail(f"derived path {cur} -> {req} passes the error state", (cur,) + path,
                         model.combination.line, evidence=table, pair=[cur, req])
        for u, v in zip((cur,) + path, path):
            steps.setdefault((u, v), (cur, req, path))
    # Every step of every derived path is an arc: one query over all steps.
    if steps:
        s = _solver(timeout_ms)
        s.add(z3.Or([z3.And(x == enc.value(u), y == enc.value(v)) for u, v in steps]), z3.Not(enc.arc(x, y)))
        m = solve(s)
        if m is not None:
            u, v = enc.name_of(m, x), enc.name_of(m, y)
            cur, req, path = steps[(u, v)]
            return _fail(f"derived path {cur} -> {req} uses {u} -> {v}, not an arc",
                         (cur,) + path, model.combination.line, evidence=table)
    return Verdict(HOLDS, evidence=table)


class _PathFunctions:
    """The derived table as z3 functions of (current, requested).

    ``step[j](c, r)`` is the state after j steps, padded with the requested
    state once reached (rejected pairs stay at ``c``); ``has_path(c, r)`` is
    true for ``path`` cells; ``rejected(c, r)`` for rejected or no-path cells.
    """

    def __init__(self, enc: Encoding, table, bound: int, solver: z3.Solver):
        S, B = enc.sort, z3.BoolSort()
        self.step = [z3.Function(f"P{j}", S, S, S) for j in range(bound + 1)]
        self.has_path = z3.Function("has_path", S, S, B)
        self.rejected = z3.Function("rejected", S, S, B)
        cells = []
        for (cur, req), (outcome, alternatives) in table.items():
            path = alternatives[0] if outcome == PATH else ()
            cv, rv = enc.value(cur), enc.value(req)
            cells.append((cv, rv))
            seq = [cur] + list(path)
            last = seq[-1]
            for j in range(bound + 1):
                solver.add(self.step[j](cv, rv) == enc.value(seq[j] if j < len(seq) else last))
            solver.add(self.has_path(cv, rv) == (outcome == PATH))
            solver.add(self.rejected(cv, rv) == (outcome in (REJECTED, NO_PATH)))
        # A formula, not a quantified function: no ForAll for z3 to instantiate.
        self.domain = lambda c, r: z3.Or([z3.And(c == cv, r == rv) for cv, rv in cells])


def _sessions(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    effects = ["starts", "keeps", "ends", "none", "ends+starts"]
    Eff, eff_consts = z3.EnumSort(f"effect_{next(_fresh)}", effects)
    E = dict(zip(effects, eff_consts))
    declared = z3.Function("declared_effect", enc.sort, enc.sort, Eff)
    groups = model.session_groups
    gid = z3.Function("session_group", enc.sort, z3.IntSort())
    solver = _solver(timeout_ms)
    # Both functions are pinned at the states' values and read through
    # enc.canon, so values with reserved bits set are the state they name.
    for name in model.state_names:
        g = model.group_of(name, groups)
        solver.add(gid(enc.value(name)) == (groups.index(g) if g is not None else -1))
    # The same effects as fsmcheck.semantics.graphs.arc_effects: declared
    # arcs' own; under all-requestable every other pair is "none" (pinned
    # for every pair of supported states; enc.arc picks the accepted ones).
    effects_of = declared_effects(model, enc.config)
    if model.profile(enc.config.profile).arcs == "all-requestable":
        sup = enc.supported_names
        effects_of = {(u, v): effects_of.get((u, v), "none") for u in sup for v in sup if u != v}
    for (u, v), effect in effects_of.items():
        solver.add(declared(enc.value(u), enc.value(v)) == E[effect])
    arcs = [a for a in model.arcs if (a.src, a.dst) in effects_of]
    _premises(solver, "the session groups and arc effects")

    def expected(u, v):
        u, v = enc.canon(u), enc.canon(v)
        gu, gv = gid(u), gid(v)
        return z3.If(z3.And(gu == -1, gv == -1), E["none"],
               z3.If(gu == gv, E["keeps"],
               z3.If(gu == -1, E["starts"],
               z3.If(gv == -1, E["ends"], E["ends+starts"]))))

    x, y = enc.var("x"), enc.var("y")
    solver.push()
    solver.add(enc.arc(x, y), declared(enc.canon(x), enc.canon(y)) != expected(x, y))
    m = solve(solver)
    if m is not None:
        u, v = enc.name_of(m, x), enc.name_of(m, y)
        line = next((a.line for a in arcs if (a.src, a.dst) == (u, v)), model.line_of("profiles"))
        effect = str(m.eval(declared(enc.canon(x), enc.canon(y)), model_completion=True))
        return _fail(f"arc {u} -> {v} declares session effect {effect!r}; its groups say "
                     f"{expected_effect(model, u, v)!r}", (u, v), line, arc=[u, v])
    solver.pop()
    if model.combination is None:
        return Verdict(HOLDS)
    table = _table(enc, timeout_ms)
    relations = _relations(enc, timeout_ms)
    if relations.unambiguous():
        # One datalog query counts the sessions along every derived path.
        bad = relations.session_violations(effects_of)
        if not bad:
            return Verdict(HOLDS)
        cur, req = bad[0]
        path = table[(cur, req)][1][0]
        counts = [effects_of.get(step) for step in zip((cur,) + path, path)]
        g_cur, g_req = model.group_of(cur, groups), model.group_of(req, groups)
        want_s = 1 if g_req is not None and g_req != g_cur else 0
        want_e = 1 if g_cur is not None and g_cur != g_req else 0
        return _fail(f"path {cur} -> {req} starts {counts.count('starts')} and ends {counts.count('ends')} "
                     f"sessions; expected {want_s} and {want_e}", (cur,) + path,
                     model.combination.line, pair=[cur, req])
    bound = len(model.states)
    fns = _PathFunctions(enc, table, bound, solver)
    _premises(solver, "the derived paths and arc effects")
    c, r = enc.var("c"), enc.var("r")
    count = {}
    for kind in ("starts", "ends"):
        count[kind] = z3.Sum([z3.If(z3.And(fns.step[j](c, r) != fns.step[j + 1](c, r),
                                           declared(fns.step[j](c, r), fns.step[j + 1](c, r)) == E[kind]), 1, 0)
                              for j in range(bound)])
    g_c, g_r = gid(c), gid(r)
    want_starts = z3.If(z3.And(g_r != -1, g_r != g_c), 1, 0)
    want_ends = z3.If(z3.And(g_c != -1, g_c != g_r), 1, 0)
    solver.add(fns.domain(c, r), fns.has_path(c, r),
               z3.Or(count["starts"] != want_starts, count["ends"] != want_ends))
    m = solve(solver)
    if m is None:
        return Verdict(HOLDS)
    cur, req = enc.name_of(m, c), enc.name_of(m, r)
    path = table[(cur, req)][1][0]
    return _fail(f"path {cur} -> {req} starts {m.eval(count['starts'])} and ends {m.eval(count['ends'])} "
                 f"sessions; expected {m.eval(want_starts)} and {m.eval(want_ends)}", (cur,) + path,
                 model.combination.line, pair=[cur, req])


# Walk status codes in the z3 unrolling.
_RUN, _DONE, _REJ, _SKIPLOOP = 0, 1, 2, 3


class _WalkUnrolling:
    """The walk under review, unrolled: ``bound`` steps, each with a skip
    loop of ``bound`` iterations (complete: a deterministic loop over
    ``bound`` states that has not stopped after ``bound`` iterations cycles).
    """

    def __init__(self, enc: Encoding, solver: z3.Solver, c, r):
        model, walk = enc.model, enc.model.walk
        all_flags = frozenset(model.flag_bits)
        S = enc.sort
        T = z3.Function("walk_next", S, S, S)
        for (cur, req), nxt in walk.next.items():
            solver.add(T(enc.value(cur), enc.value(req)) == enc.value(nxt))
        sup_names = [s for s in model.state_names if walk.supported(s, enc.config.flags, all_flags)]

        def sup(x):
            return enc.is_any(x, sup_names)

        def stops(x):
            return z3.Or(sup(x), enc.is_any(x, sorted(walk.exits)))

        bound = len(model.states)
        self.bound = bound
        # The pair is a pair of states: reserved bits clear, or every
        # reserved-bit variant of one pair would be another model to list.
        solver.add(enc.canonical(c), enc.canonical(r))
        checks = ([sup(c)] if walk.check_current else []) + ([sup(r)] if walk.check_requested else [])
        status = z3.If(z3.And(checks), z3.If(c == r, _DONE, _RUN), _REJ)
        cur = c
        self.cur, self.status, self.skips = [cur], [status], []
        tag = next(_fresh)

        def named(term, label):
            # One constant per unrolled value keeps the formula a DAG of
            # small definitions, not one deeply nested term (far faster in z3).
            v = z3.Const(f"w{tag}_{label}", S)
            solver.add(v == term)
            return v

        for j in range(bound):
            x = named(T(cur, r), f"{j}_0")
            chain = [x]
            for i in range(bound):
                x = named(z3.If(stops(x), x, T(x, r)), f"{j}_{i + 1}")
                chain.append(x)
            self.skips.append(chain)
            running = status == _RUN
            new_status = z3.If(running,
                               z3.If(z3.Not(stops(x)), _SKIPLOOP,
                               z3.If(enc.is_any(x, sorted(walk.reject)), _REJ,
                               z3.If(x == r, _DONE, _RUN))), status)
            stepped = z3.And(running, stops(x), z3.Not(enc.is_any(x, sorted(walk.reject))))
            cur = named(z3.If(stepped, x, cur), f"{j}_cur")
            status = new_status
            self.cur.append(cur)
            self.status.append(status)
        self.final = status


def _walk_terminates(enc: Encoding, timeout_ms: int) -> Verdict:
    """The looping pairs are one datalog query (the walk's least fixpoint of
    pairs that end, :meth:`Relations.walk_loops`); the first one's cycle is
    shown from the walk unrolled for that pair alone."""
    model = enc.model
    looping = _relations(enc, timeout_ms).walk_loops()
    if not looping:
        return Verdict(HOLDS, note="proved for every (current, requested) pair (least fixpoint, complete)")
    c, r = enc.var("c"), enc.var("r")
    cur, req = looping[0]
    solver = _solver(timeout_ms)
    w = _WalkUnrolling(enc, solver, c, r)
    solver.add(c == enc.value(cur), r == enc.value(req))
    m = solve(solver)
    pairs = [list(p) for p in looping]
    statuses = [m.eval(s, model_completion=True).as_long() for s in w.status]
    path = []
    for j in range(w.bound):
        if statuses[j] != _RUN:
            break
        if statuses[j + 1] == _SKIPLOOP:
            chain = [enc.name_of(m, x) for x in w.skips[j]]
            cycle = _cycle_of(chain)
            return _fail(f"the walk does not terminate for {cur} -> {req}: its skip loop cycles "
                         f"{' -> '.join(cycle + cycle[:1])}{_all_pairs(pairs)}", (cur,) + tuple(path) + tuple(cycle),
                         model.walk.line, pair=[cur, req], cycle=cycle, loop="skip-loop", pairs=pairs)
        path.append(enc.name_of(m, w.cur[j + 1]))
    cycle = _cycle_of([cur] + path)
    return _fail(f"the walk does not terminate for {cur} -> {req}: its step loop cycles "
                 f"{' -> '.join(cycle + cycle[:1])}{_all_pairs(pairs)}", (cur,) + tuple(path), model.walk.line,
                 pair=[cur, req], cycle=cycle, loop="step-loop", pairs=pairs)


def _cycle_of(seq: list[str]) -> list[str]:
    """The cycle a deterministic sequence ends in (the states from the first repeat)."""
    seen = {}
    for i, s in enumerate(seq):
        if s in seen:
            return seq[seen[s]:i]
        seen[s] = i
    return seq[-1:]


def _walk_agrees(enc: Encoding, timeout_ms: int) -> Verdict:
    """One datalog query (:meth:`Relations.walk_disagreements`) when the
    table allows it; otherwise, and to show a disagreement, the walk
    unrolled against the derived paths as z3 functions."""
    model = enc.model
    table = _table(enc, timeout_ms)
    relations = _relations(enc, timeout_ms)
    if relations.walk_checkable():
        bad = relations.walk_disagreements()
        if not bad:
            return Verdict(HOLDS, note="proved for every (current, requested) pair")
        table = {bad[0]: table[bad[0]]}
    solver = _solver(timeout_ms)
    c, r = enc.var("c"), enc.var("r")
    w = _WalkUnrolling(enc, solver, c, r)
    fns = _PathFunctions(enc, table, w.bound, solver)
    _premises(solver, "the walk and the derived paths")
    same = z3.And(
        (w.final == _REJ) == fns.rejected(c, r),
        z3.And([w.cur[j] == fns.step[j](c, r) for j in range(w.bound + 1)]),
    )
    solver.add(fns.domain(c, r), z3.Not(same))
    m = solve(solver)
    if m is None:
        return Verdict(HOLDS, note="proved for every (current, requested) pair")
    cur, req = enc.name_of(m, c), enc.name_of(m, r)
    final = m.eval(w.final, model_completion=True).as_long()
    walked = []
    for x in w.cur[1:]:
        name = enc.name_of(m, x)
        if name != (walked[-1] if walked else cur):
            walked.append(name)
    outcome, alternatives = table[(cur, req)]
    derived = "EINVAL" if outcome in (REJECTED, NO_PATH) else " -> ".join((cur,) + (alternatives[0] if alternatives else ()))
    got = {_REJ: "EINVAL", _RUN: "no end (step-loop)", _SKIPLOOP: "no end (skip-loop)"}.get(
        final, " -> ".join([cur] + walked))
    if final == _REJ and walked:
        got = " -> ".join([cur] + walked) + " then EINVAL"
    return _fail(f"for {cur} -> {req} the walk gives {got}; the derived table gives {derived}",
                 (cur,) + tuple(walked), model.line_of("walk", "next", cur, req), pair=[cur, req])


def _correspondence(enc: Encoding, timeout_ms: int) -> Verdict:
    model = enc.model
    corr = model.correspondence
    other = corr.model
    other_config = next(c for c in other.configs() if c.profile == corr.profile)
    other_enc = Encoding(other, other_config)
    line = model.line_of("correspondence", "map")
    solver = _solver(timeout_ms)
    M = z3.Function("encode", enc.sort, other_enc.sort)
    mapped = [n for n in model.state_names if n in corr.mapping]
    for n in mapped:
        solver.add(M(enc.value(n)) == other_enc.value(corr.mapping[n]))
    _premises(solver, "the correspondence map")
    for key in ("initial", "reset"):
        mine, theirs = getattr(model, key), getattr(other, key)
        if mine not in corr.mapping:
            return _fail(f"{key} state {mine} has no {other.name} encoding", (mine,), line, key=key)
        solver.push()
        solver.add(M(enc.value(mine)) != other_enc.value(theirs))
        differs = solve(solver) is not None
        solver.pop()
        if differs:
            return _fail(f"{key} state {mine} maps to {corr.mapping[mine]!r}, but {other.name}'s is {theirs!r}",
                         (mine,), line, key=key)
    x, y = enc.var("x"), enc.var("y")
    solver.add(enc.arc(x, y), enc.is_any(x, mapped), enc.is_any(y, mapped),
               z3.Not(other_enc.arc(M(enc.canon(x)), M(enc.canon(y)))))
    m = solve(solver)
    if m is None:
        return Verdict(HOLDS)
    u, v = enc.name_of(m, x), enc.name_of(m, y)
    a, b = corr.mapping[u], corr.mapping[v]
    arc_line = next((arc.line for arc in model.arcs if (arc.src, arc.dst) == (u, v)), line)
    return _fail(f"arc {u} -> {v} is {other.describe(a)} -> {other.describe(b)}, not a "
                 f"{other.name}/{corr.profile} transition", (u, v), arc_line, arc=[u, v], image=[a, b])


def _p2p_quiesce(enc: Encoding, timeout_ms: int) -> Verdict:
    """The P2P quiesce rule on one device, as one query: a supported state of
    each device (here one) such that one initiates P2P DMA while *another*
    cannot take it.
    With one device there is no pair of distinct devices, the disjunction is
    empty, and the query is unsat: the rule holds vacuously."""
    model = enc.model
    rule = model.p2p
    devices = ["device"]
    xs = {d: enc.var(f"p2p_{d}") for d in devices}
    solver = _solver(timeout_ms)
    for d in devices:
        solver.add(enc.supported(xs[d]))
    pairs = [z3.And(enc.is_any(xs[a], model.groups[rule.initiating]),
                    z3.Not(enc.is_any(xs[b], model.groups[rule.accepting])))
             for a in devices for b in devices if a != b]
    solver.add(z3.Or(pairs) if pairs else z3.BoolVal(False))
    if solve(solver) is None:
        return Verdict(HOLDS, note="vacuous on one device (no pair of distinct devices)")
    return _fail("the P2P quiesce rule is broken on one device", (), model.line_of("p2p"))


_CHECKS = implementations(globals(), "_")


class Symbolic:
    """The symbolic engine as an :class:`~fsmcheck.engines.protocol.Engine`,
    with z3's per-query timeout ``timeout_ms`` (> 0)."""

    name = "z3"

    def __init__(self, timeout_ms: int = DEFAULT_TIMEOUT_MS):
        self.timeout_ms = timeout_ms

    def check(self, prop: str, model: Model, config: Config) -> Verdict:
        return check(prop, model, config, timeout_ms=self.timeout_ms)

    def implements(self, prop: str) -> bool:
        return prop in _CHECKS
