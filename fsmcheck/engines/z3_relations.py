"""A configuration's relations, computed by z3's Fixedpoint engine (datalog).

The questions that range over every pair of states -- the least admissible
paths of the combination table, what is reachable, where the walk under
review goes from each (current, requested) pair, how many sessions each
derived path starts and ends -- are one datalog program per configuration,
evaluated bottom-up by z3's ``datalog`` engine (relations over finite
domains, stratified negation). Each question is then one query, whatever the
number of states, instead of one solver call per pair.

States are their index in ``model.state_names``, as bit-vectors wide enough
for every index and layer number. The facts (arcs, groups, the walk's next
table) are the model's; which request values are accepted is decided by z3
on the :class:`~.z3_encoding.Encoding` of each state's value. The program is
written as SMT-LIB text and parsed in one call (building it term by term
through the Python API costs more than evaluating it).

The rules, with ``k`` the layer (path length):

- ``L_k(c, r)``: the least admissible path from ``c`` to ``r`` has ``k``
  arcs when every interior state may be interior (``Ok``: in no
  ``no_interior`` group), i.e. breadth-first layers in which a forbidden
  state is entered but never left;
- ``PredO(c, r, z)``: ``z`` is the state before ``r`` on such a least path;
- ``WL_g_k``, ``PredW``: the same inside one ``no_interior`` group ``g``
  (the rule's ``within_group``);
- ``Rej(c, r)``: the request is rejected (rule 1 of
  :mod:`fsmcheck.semantics.combination`).

Source of the path rule: vfio.h ("The remaining possible transitions are
interpreted as combinations of the above FSM arcs"), SPEC.md section 2.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict

import z3

from ..semantics import deadline
from ..semantics.combination import NO_PATH, NOOP, PATH, REJECTED
from ..semantics.graphs import declared_effects
from .z3_encoding import Encoding, UnknownResult

__all__ = ["Relations", "MAX_ALTERNATIVES"]

#: Least paths listed per pair (more are not enumerated).
MAX_ALTERNATIVES = 8

# Tags of the rows of the relation Small(tag, g, x, y, z): the within-group
# predecessors PW(g, x, y, z), the rejected pairs (x, y in the 2nd and 3rd
# columns) and the outer predecessors PO(x, y, z) (in columns 2-4): one
# relation, so the table is one evaluation of the program and one query.
_PRED_W, _REJ, _PRED_O = range(3)


class Relations:
    """The datalog program of one configuration, and its answers.

    Args:
        enc: the z3 encoding of the model and configuration.
        timeout_ms: the per-query timeout (clamped to the run's deadline).

    The table (:meth:`table`) is derived on first use and kept; the walk and
    session relations are added to the program by the queries that need
    them.
    """

    def __init__(self, enc: Encoding, timeout_ms: int = 10000):
        self.enc, self.model, self.config = enc, enc.model, enc.config
        self.timeout_ms = timeout_ms
        names = self.model.state_names
        self.index = {n: i for i, n in enumerate(names)}
        self.names = names
        self.supported = list(enc.supported_names)
        self.layers = max(1, len(self.supported) - 1)
        # every state index, layer number, group index and session count fits
        self.width = max(len(names), self.layers + 2, len(self.model.groups) + 1, 8).bit_length()
        self._table = None
        self._geometric = None
        self._facts_text = None

    # -- program text ---------------------------------------------------------
    def v(self, value: int) -> str:
        """The SMT-LIB literal of a state index or layer number."""
        return f"(_ bv{value} {self.width})"

    def s(self, name: str) -> str:
        return self.v(self.index[name])

    def _groups(self):
        rule = self.model.combination
        no_interior = rule.no_interior if rule else ()
        within = bool(rule and rule.within_group)
        sup = set(self.supported)
        forbidden = {s for g in no_interior for s in self.model.groups.get(g, ())}
        members = [[s for s in self.model.groups.get(g, ()) if s in sup] for g in no_interior] if within else []
        return forbidden, members

    def _base(self) -> list[str]:
        """Facts and the table's rules."""
        return self._facts() + self._table_rules()

    def _facts(self) -> list[str]:
        """The sort, the relations every program shares, and their facts."""
        if self._facts_text is not None:
            return list(self._facts_text)
        enc, model = self.enc, self.model
        out = [f"(define-sort St () (_ BitVec {self.width}))"]
        rels = {"St": 1, "Sup": 1, "Ok": 1, "Acc": 1, "Err": 1, "Arc": 2, "Blocked": 2, "R0": 2, "Rej": 2,
                "Lt": 2, "DO": 3, "PO": 3, "DW": 4, "PW": 4, "Small": 5}
        for name, arity in rels.items():
            out.append(f"(declare-rel {name} ({' '.join(['St'] * arity)}))")
        for var in "xyzcrgkmse":
            out.append(f"(declare-var {var} St)")
        for var in ("k2", "s2", "e2", "ds", "de", "h"):
            out.append(f"(declare-var {var} St)")
        forbidden, groups = self._groups()
        facts = []
        for n in self.names:
            facts.append(f"(St {self.s(n)})")
        for n in self.supported:
            facts.append(f"(Sup {self.s(n)})")
            if n not in forbidden:
                facts.append(f"(Ok {self.s(n)})")
        # Which request values pass the value checks: z3 decides it on each
        # state's value (bit encodings: the validity predicate).
        for n in enc.accepted_names():
            facts.append(f"(Acc {self.s(n)})")
        if model.error is not None and model.error in self.index:
            facts.append(f"(Err {self.s(model.error)})")
        for u, v in enc.arc_pairs():
            facts.append(f"(Arc {self.s(u)} {self.s(v)})")
        for b in model.blocked_in(self.config.flags):
            facts.append(f"(Blocked {self.s(b.src)} {self.s(b.dst)})")
        out += [f"(rule {f})" for f in facts]
        self._facts_text = out
        return list(out)

    def _table_rules(self) -> list[str]:
        forbidden, groups = self._groups()
        z0 = self.v(0)
        out = [
            "(rule (=> (Sup x) (R0 x x)))",
            "(rule (=> (and (Sup x) (St y) (not (Acc y))) (Rej x y)))",
            "(rule (=> (and (Sup x) (Err x) (St y)) (Rej x y)))",
            "(rule (=> (and (Sup x) (Blocked x y)) (Rej x y)))",
            f"(rule (=> (Rej x y) (Small {self.v(_REJ)} x y {z0} {z0})))",
            f"(rule (=> (PW g x y z) (Small {self.v(_PRED_W)} g x y z)))",
            f"(rule (=> (PO x y z) (Small {self.v(_PRED_O)} x y z {z0})))",
        ]
        out += self._layers("", "(Arc z y)", "(Arc x y)", "(Ok z)", self.layers, "")
        for gi, members in enumerate(groups):
            rel = f"G{gi}"
            out.append(f"(declare-rel {rel} (St))")
            out += [f"(rule ({rel} {self.s(m)}))" for m in members]
            out += self._layers(f"W{gi}_", f"(and (Arc z y) ({rel} y))", f"(and (Arc x y) ({rel} x) ({rel} y))",
                                "true", max(1, len(members) - 1), self.v(gi))
        return out

    def _layers(self, prefix, step, first, interior, layers, group) -> list[str]:
        """Breadth-first layers ``{prefix}L_k`` (least distance k) and the
        rules that copy distances into ``DO``/``DW`` and predecessors into
        ``PO``/``PW`` (``group``: the group's literal for ``DW``/``PW``, or
        "" for the outer ``DO``/``PO``).

        A pair enters layer k when no earlier layer holds it: the rule of
        ``L_k`` negates ``R0`` and each ``L_j`` (j < k) rather than a
        cumulative "reached up to k" relation, whose copies would hold
        O(layers * pairs) tuples -- cubic in the number of states on a chain
        (issue 23: 1.9 GB at 500 states). Each pair is stored in one layer,
        so the relations hold O(pairs) tuples; the rules hold O(layers^2)
        atoms of text.
        """
        out = []
        dist, pred = ("DW", "PW") if group else ("DO", "PO")
        g = f"{group} " if group else ""
        for k in range(1, layers + 1):
            layer = f"{prefix}L{k}"
            out.append(f"(declare-rel {layer} (St St))")
            if k == 1:
                out.append(f"(rule (=> (and {first} (not (R0 x y))) ({layer} x y)))")
                out.append(f"(rule (=> ({layer} x y) ({pred} {g}x y x)))")
            else:
                prev = f"{prefix}L{k - 1}"
                unseen = " ".join(f"(not ({prefix}L{j} x y))" for j in range(1, k))
                out.append(f"(rule (=> (and ({prev} x z) {interior} {step} (not (R0 x y)) {unseen}) ({layer} x y)))")
                out.append(f"(rule (=> (and ({prev} x z) {interior} {step} ({layer} x y)) ({pred} {g}x y z)))")
            out.append(f"(rule (=> ({layer} x y) ({dist} {g}x y {self.v(k)})))")
        return out

    # -- evaluation --------------------------------------------------------------
    def _query(self, program: list[str], relation: str, arity: int) -> list[tuple[int, ...]]:
        """Evaluate ``program`` and return the tuples of ``relation``.

        Raises:
            UnknownResult: z3 answered unknown (a timeout).
            DeadlineExpired: the run's deadline passed.
        """
        deadline.check()
        # A context of its own: the datalog engine ignores the "timeout"
        # parameter but honours an interrupt, which must not reach any other
        # z3 work of the process.
        ctx = _datalog_context()
        fp = z3.Fixedpoint(ctx=ctx)
        fp.set(engine="datalog")
        # Inlining the layered rules into each other multiplies them out.
        fp.set("xform.inline_linear", False)
        fp.set("xform.inline_eager", False)
        text = "\n".join(program) + f"\n(query {relation})"
        queries = fp.parse_string(text)
        seconds = max(0.001, min(deadline.remaining_ms(self.timeout_ms), self.timeout_ms) / 1000)
        fired = []
        timer = threading.Timer(seconds, lambda: (fired.append(True), ctx.interrupt()))
        timer.daemon = True
        timer.start()
        try:
            result = fp.query(*queries)
        finally:
            timer.cancel()
            timer.join()
            if fired:  # an interrupted context is not reused
                _CONTEXT.clear()
        if result == z3.unknown:
            deadline.check()
            raise UnknownResult(f"datalog query {relation}: {fp.reason_unknown()} after {seconds:g} s")
        if result == z3.unsat:
            return []
        return _low_level_tuples(_low_level_text(ctx, fp.get_answer()), arity)

    def table(self):
        """The combination table: ``{(current, requested): (outcome,
        alternatives)}``, outcome one of ``rejected``, ``noop``, ``path``,
        ``no-path`` and alternatives the sorted least admissible paths (states
        after ``current``; at most :data:`MAX_ALTERNATIVES`).

        Raises:
            UnknownResult: z3 timed out.
        """
        if self._table is None:
            self._derive()
        return self._table

    def _derive(self) -> None:
        program = self._base()
        names = self.names
        pred_o, pred_w = defaultdict(list), defaultdict(lambda: defaultdict(list))
        rejected = set()
        for tag, g, x, y, z in self._query(program, "Small", 5):
            if tag == _PRED_W:
                pred_w[g][(x, y)].append(z)
            elif tag == _PRED_O:
                pred_o[(g, x)].append(y)  # Small(PRED_O, x, y, z, 0)
            else:
                rejected.add((g, x))  # Small(REJ, x, y, 0, 0): the pair is in the 2nd and 3rd columns
        paths_o, paths_w = _Paths(pred_o, names), {g: _Paths(p, names) for g, p in pred_w.items()}
        table, geometric = {}, {}
        for current in self.supported:
            ci = self.index[current]
            for requested in names:
                ri = self.index[requested]
                found = self._least(ci, ri, paths_o, paths_w)
                if ci != ri and found is not None:
                    geometric[(ci, ri)] = found
                if (ci, ri) in rejected:
                    table[(current, requested)] = (REJECTED, ())
                elif ci == ri:
                    table[(current, requested)] = (NOOP, ())
                elif found is None:
                    table[(current, requested)] = (NO_PATH, ())
                else:
                    # the path tuples are the memo's own (shared, not copied:
                    # on a chain their lengths sum to N^3 / 6)
                    table[(current, requested)] = (PATH, tuple(found[1][:MAX_ALTERNATIVES]))
        self._table, self._geometric = table, geometric

    def _least(self, ci, ri, paths_o, paths_w):
        """``(length, [paths as tuples of state names, sorted])`` of the least
        admissible paths from ``ci`` to ``ri`` (rejection aside), or None. All
        paths read from one predecessor relation have its least length."""
        options = [paths.of(ci, ri) for paths in [paths_o, *paths_w.values()] if (ci, ri) in paths.pred]
        if not options:
            return None
        best = min(len(found[0]) for found in options)
        return best, sorted({p for found in options if len(found[0]) == best for p in found})

    # -- reachability -------------------------------------------------------------
    def reachable(self) -> tuple[set[str], set[str]]:
        """``(forward, backward)``: the states reachable from the state at
        open by arcs, and the states from which the state at open is
        reachable by arcs, resets and failures (the system relation of
        :class:`~.z3_encoding.Encoding`)."""
        model = self.model
        out = self._facts() + [
            "(declare-rel Init (St)) (declare-rel Sys (St St)) (declare-rel Reach (St St))",
            "(declare-rel Fwd (St)) (declare-rel Back (St))",
            f"(rule (Init {self.s(model.initial)}))",
            "(rule (=> (Init x) (Fwd x))) (rule (=> (and (Fwd x) (Arc x y)) (Fwd y)))",
            "(rule (=> (Arc x y) (Sys x y)))",
            f"(rule (=> (Sup x) (Sys x {self.s(model.reset)})))",
        ]
        if model.error is not None and model.error in self.supported:
            out.append(f"(rule (=> (and (Sup x) (not (Err x))) (Sys x {self.s(model.error)})))")
        out += ["(rule (=> (Init x) (Back x))) (rule (=> (and (Sys x y) (Back y)) (Back x)))",
                f"(rule (=> (Fwd x) (Reach {self.v(0)} x))) (rule (=> (Back x) (Reach {self.v(1)} x)))"]
        rows = self._query(out, "Reach", 2)
        fwd = {self.names[x] for tag, x in rows if tag == 0}
        back = {self.names[x] for tag, x in rows if tag == 1}
        return fwd, back

    # -- sessions along the derived paths ------------------------------------------
    def unambiguous(self) -> bool:
        """No accepted pair of the table has more than one least path."""
        return all(len(alts) <= 1 for _, alts in self.table().values())

    def session_violations(self, effects: dict[tuple[str, str], str]) -> list[tuple[str, str]]:
        """Pairs whose derived path starts or ends a number of sessions other
        than its session groups say (seed 002; vfio.h, the saving group).

        ``effects`` is ``{(src, dst): effect}`` for every arc. The counts are
        taken along the predecessor chains of the least paths (so only for an
        :meth:`unambiguous` table, where each pair has one).

        Raises:
            ValueError: the table is ambiguous.
        """
        if not self.unambiguous():
            raise ValueError("session counts need an unambiguous table")
        model = self.model
        _, groups = self._groups()
        z0, one = self.v(0), self.v(1)
        out = self._base() + [
            "(declare-rel StepE (St St St St)) (declare-rel Sum (St St St)) (declare-rel CntO (St St St St))",
            "(declare-rel CntW (St St St St St)) (declare-rel GM (St St)) (declare-rel BetterW (St St))",
            "(declare-rel WorseW (St St St)) (declare-rel Count (St St St St)) (declare-rel PathPair (St St))",
            "(declare-rel SG (St St)) (declare-rel NoSG (St)) (declare-rel SameG (St St))",
            "(declare-rel Want (St St St St)) (declare-rel SessBad (St St))",
        ]
        for (u, v), effect in effects.items():
            out.append(f"(rule (StepE {self.s(u)} {self.s(v)} {self.v(int(effect == 'starts'))} "
                       f"{self.v(int(effect == 'ends'))}))")
        for a in range(self.layers + 2):  # layer order, for the least of two distances
            for b in range(a + 1, self.layers + 2):
                out.append(f"(rule (Lt {self.v(a)} {self.v(b)}))")
        for a in range(3):
            for b in range(2):
                out.append(f"(rule (Sum {self.v(a)} {self.v(b)} {self.v(min(a + b, 2))}))")
        for gi, members in enumerate(groups):
            out += [f"(rule (GM {self.v(gi)} {self.s(m)}))" for m in members]
        sgroups = model.session_groups
        for n in self.names:
            g = model.group_of(n, sgroups)
            out.append(f"(rule (SG {self.s(n)} {self.v(sgroups.index(g))}))" if g is not None
                       else f"(rule (NoSG {self.s(n)}))")
        out += [
            f"(rule (=> (Sup x) (CntO x x {z0} {z0})))",
            f"(rule (=> (and (PO x y z) (CntO x z s e) (StepE z y ds de) (Sum s ds s2) (Sum e de e2))"
            " (CntO x y s2 e2)))",
            f"(rule (=> (GM g x) (CntW g x x {z0} {z0})))",
            f"(rule (=> (and (PW g x y z) (CntW g x z s e) (StepE z y ds de) (Sum s ds s2) (Sum e de e2))"
            " (CntW g x y s2 e2)))",
            f"(rule (=> (and (DO x y k) (DW g x y k2) (Lt k2 k)) (BetterW x y)))",
            f"(rule (=> (and (DW g x y k) (DO x y k2) (Lt k2 k)) (WorseW g x y)))",
            f"(rule (=> (and (DW g x y k) (DW h x y k2) (Lt k2 k)) (WorseW g x y)))",
            f"(rule (=> (and (DO x y k) (not (BetterW x y)) (CntO x y s e)) (Count x y s e)))",
            f"(rule (=> (and (DW g x y k) (not (WorseW g x y)) (CntW g x y s e)) (Count x y s e)))",
            "(rule (=> (and (Count x y s e) (not (Rej x y))) (PathPair x y)))",
            "(rule (=> (and (SG x g) (SG y g)) (SameG x y)))",
            f"(rule (=> (and (SG x g) (SG y h) (not (SameG x y))) (Want x y {one} {one})))",
            f"(rule (=> (SameG x y) (Want x y {z0} {z0})))",
            f"(rule (=> (and (NoSG x) (SG y g)) (Want x y {one} {z0})))",
            f"(rule (=> (and (SG x g) (NoSG y)) (Want x y {z0} {one})))",
            f"(rule (=> (and (NoSG x) (NoSG y)) (Want x y {z0} {z0})))",
            "(rule (=> (and (PathPair x y) (Count x y s e) (not (Want x y s e))) (SessBad x y)))",
        ]
        return self._pairs(self._query(out, "SessBad", 2))

    # -- the walk under review -----------------------------------------------------
    def _walk(self) -> list[str]:
        """Facts and rules of the model's walk: ``WS(x, r, y)`` is the state
        one iteration of the walk's loop enters from ``x`` toward ``r`` (its
        skip loop followed), ``Term(x, r)`` that the loop ends from ``x``
        (reaches ``r`` or a reject state). Source: vfio_main.c
        ``vfio_mig_get_next_state()``, as :class:`fsmcheck.model.schema.Walk`
        states it."""
        model, walk = self.model, self.model.walk
        flags, all_flags = self.config.flags, frozenset(model.flag_bits)
        out = ["(declare-rel WT (St St St)) (declare-rel Stops (St)) (declare-rel NStops (St))",
               "(declare-rel WRej (St)) (declare-rel PreC (St)) (declare-rel PreR (St))",
               "(declare-rel Skip (St St St)) (declare-rel WS (St St St)) (declare-rel Term (St St))",
               "(declare-rel Eq (St St))"]
        for (cur, req), nxt in walk.next.items():
            out.append(f"(rule (WT {self.s(cur)} {self.s(req)} {self.s(nxt)}))")
        for n in self.names:
            sup = walk.supported(n, flags, all_flags)
            out.append(f"(rule (Stops {self.s(n)}))" if sup or n in walk.exits else f"(rule (NStops {self.s(n)}))")
            if n in walk.reject:
                out.append(f"(rule (WRej {self.s(n)}))")
            if sup or not walk.check_current:
                out.append(f"(rule (PreC {self.s(n)}))")
            if sup or not walk.check_requested:
                out.append(f"(rule (PreR {self.s(n)}))")
        out += [
            "(rule (=> (St x) (Eq x x)))",
            "(rule (=> (WT x r y) (Skip x r y)))",
            "(rule (=> (and (Skip x r y) (NStops y) (WT y r z)) (Skip x r z)))",
            "(rule (=> (and (Skip x r y) (Stops y)) (WS x r y)))",
            "(rule (=> (St x) (Term x x)))",
            "(rule (=> (and (WS x r y) (WRej y)) (Term x r)))",
            "(rule (=> (and (WS x r y) (Term y r)) (Term x r)))",
        ]
        return out

    def walk_loops(self) -> list[tuple[str, str]]:
        """The (current, requested) pairs, in model order, for which the walk
        passes its checks and then never ends (a skip loop or a step loop
        that cycles): SPEC 4, the skip-loop hang."""
        out = self._facts() + self._walk() + [
            "(declare-rel Loop (St St))",
            "(rule (=> (and (St c) (St r) (PreC c) (PreR r) (not (Term c r))) (Loop c r)))"]
        return self._pairs(self._query(out, "Loop", 2))

    def walk_checkable(self) -> bool:
        """Whether :meth:`walk_disagreements` decides walk-agrees: the table
        is unambiguous and its least paths, rejection aside, are each unique
        and closed under suffixes (the path from the second state on is the
        second state's own least path), so a memoryless walk agrees with the
        table exactly when each step agrees."""
        self.table()
        geo = self._geometric
        for (c, r), (_, paths) in geo.items():
            if len(paths) != 1:
                return False
            path = paths[0]
            if len(path) > 1:
                rest = geo.get((self.index[path[0]], r))
                if rest is None or len(rest[1]) != 1 or rest[1][0] != path[1:]:
                    return False
        return True

    def walk_disagreements(self) -> list[tuple[str, str]]:
        """Pairs, in model order, where the walk does not give what the table
        derives: EINVAL at once for rejected and no-path pairs, nothing for
        a no-op, exactly the derived path otherwise (vfio.h: "refer to
        vfio_mig_get_next_state()").

        Raises:
            ValueError: :meth:`walk_checkable` is false.
        """
        if not self.walk_checkable():
            raise ValueError("the table is ambiguous or not closed under suffixes")
        out = self._facts() + self._walk() + [
            "(declare-rel GNext (St St St)) (declare-rel TabRej (St St)) (declare-rel TabNoop (St))",
            "(declare-rel TabPath (St St)) (declare-rel Follows (St St)) (declare-rel BadPre (St St))",
            "(declare-rel FirstRej (St St)) (declare-rel Dis (St St))"]
        for (c, r), (_, paths) in self._geometric.items():
            out.append(f"(rule (GNext {self.v(c)} {self.v(r)} {self.s(paths[0][0])}))")
        for (cur, req), (outcome, _) in self.table().items():
            if outcome in (REJECTED, NO_PATH):
                out.append(f"(rule (TabRej {self.s(cur)} {self.s(req)}))")
            elif outcome == NOOP:
                out.append(f"(rule (TabNoop {self.s(cur)}))")
            else:
                out.append(f"(rule (TabPath {self.s(cur)} {self.s(req)}))")
        out += [
            "(rule (=> (St x) (Follows x x)))",
            "(rule (=> (and (GNext x r y) (WS x r y) (not (WRej y)) (Follows y r)) (Follows x r)))",
            "(rule (=> (and (St c) (St r) (not (PreC c))) (BadPre c r)))",
            "(rule (=> (and (St c) (St r) (not (PreR r))) (BadPre c r)))",
            "(rule (=> (BadPre c r) (FirstRej c r)))",
            "(rule (=> (and (WS c r y) (WRej y) (not (Eq c r))) (FirstRej c r)))",
            "(rule (=> (and (TabRej c r) (not (FirstRej c r))) (Dis c r)))",
            "(rule (=> (and (TabNoop c) (BadPre c c)) (Dis c c)))",
            "(rule (=> (and (TabPath c r) (BadPre c r)) (Dis c r)))",
            "(rule (=> (and (TabPath c r) (not (Follows c r))) (Dis c r)))",
        ]
        return self._pairs(self._query(out, "Dis", 2))

    def _pairs(self, rows) -> list[tuple[str, str]]:
        return [(self.names[a], self.names[b]) for a, b in sorted(rows)]


class _Paths:
    """Least paths read back from a predecessor relation over state indices,
    as tuples of state names (memoized per pair; at most
    :data:`MAX_ALTERNATIVES` + 1 per pair are kept, enough to tell an
    ambiguous pair)."""

    def __init__(self, pred, names):
        self.pred, self.names, self.memo = pred, names, {}

    def of(self, c: int, r: int) -> list[tuple[str, ...]]:
        key = (c, r)
        if key in self.memo:
            return self.memo[key]
        stack = [key]
        while stack:  # iterative: paths may be long
            pair = stack.pop()
            if pair in self.memo:
                continue
            missing = [(c, z) for z in self.pred.get(pair, ()) if z != c and (c, z) not in self.memo]
            if missing:
                stack.append(pair)
                stack.extend(missing)
                continue
            out = []
            for z in sorted(self.pred.get(pair, ())):
                prefixes = [()] if z == c else self.memo[(c, z)]
                out.extend(p + (self.names[pair[1]],) for p in prefixes)
                if len(out) > MAX_ALTERNATIVES:
                    break
            self.memo[pair] = out[:MAX_ALTERNATIVES + 1]
        return self.memo[key]


#: The z3 context of the datalog queries (creating one costs milliseconds),
#: dropped after an interrupt.
_CONTEXT: list = []


def _datalog_context() -> z3.Context:
    if not _CONTEXT:
        _CONTEXT.append(z3.Context())
    return _CONTEXT[0]


def _low_level_text(ctx: z3.Context, term) -> str:
    """``term`` in z3's low-level print mode: one ``#id := expr`` line per
    shared subterm, then the term itself. It prints a 125,000-tuple answer
    in 0.2 s where the SMT-LIB printer takes 26 s (issue 23). The print
    mode is a setting of ``ctx``, the datalog queries' own context."""
    z3.Z3_set_ast_print_mode(ctx.ref(), z3.Z3_PRINT_LOW_LEVEL)
    return z3.Z3_ast_to_string(ctx.ref(), term.as_ast())


_LL_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def _low_level_tuples(text: str, arity: int) -> list[tuple[int, ...]]:
    """The tuples of a datalog answer printed by :func:`_low_level_text`:
    a disjunction of conjunctions of ``(= (:var i bv[w]) bv[value:w])``,
    with ``(:var i)`` the argument ``arity - 1 - i``.

    Raises:
        ValueError: the answer is not a list of ground tuples.
    """
    defs: dict[str, object] = {}
    root = None
    for line in text.splitlines():
        if not line.strip():
            continue
        head, sep, body = line.partition(" := ")
        tree = _ll_parse(body if sep else line)
        if sep:
            defs[head.strip()] = tree
        else:
            root = tree
    memo: dict[str, object] = {}

    def value(node):
        # ('var', i) | ('bv', v) | ('eq', {i: v}) | ('rows', [{i: v}, ...])
        if isinstance(node, str):
            if node.startswith("#"):
                if node not in memo:
                    if node not in defs:
                        raise ValueError(f"datalog answer refers to an undefined term {node}")
                    memo[node] = value(defs[node])
                return memo[node]
            if node == "false":
                return ("rows", [])
            if node == "true":
                return ("rows", [{}])
            raise ValueError(f"datalog answer is not a list of ground tuples: {node[:80]}")
        op, *args = node
        if op == ":var":
            return ("var", int(args[0]))
        if isinstance(op, str) and op.startswith("bv[") and not args:
            return ("bv", int(op[3:].split(":")[0]))
        if op == "=" and len(args) == 2:
            a, b = value(args[0]), value(args[1])
            if a[0] != "var":
                a, b = b, a
            if a[0] == "var" and b[0] == "bv":
                return ("eq", {a[1]: b[1]})
        elif op == "and":
            row: dict[int, int] = {}
            for x in args:
                kind, item = value(x)
                if kind != "eq" or set(item) & set(row):
                    raise ValueError("datalog answer is not a list of ground tuples")
                row.update(item)
            return ("eq", row)
        elif op == "or":
            rows = []
            for x in args:
                kind, item = value(x)
                if kind != "eq":
                    raise ValueError("datalog answer is not a list of ground tuples")
                rows.append(item)
            return ("rows", rows)
        raise ValueError(f"datalog answer is not a list of ground tuples: ({op} ...)")

    if root is None:
        raise ValueError("empty datalog answer")
    kind, item = value(root)
    rows = item if kind == "rows" else [item] if kind == "eq" else None
    if rows is None:
        raise ValueError("datalog answer is not a list of ground tuples")
    tuples = []
    for row in rows:
        if sorted(row) != list(range(arity)):
            raise ValueError(f"datalog answer is not a list of ground tuples: {len(row)} of {arity} columns")
        tuples.append(tuple(row[arity - 1 - j] for j in range(arity)))
    return tuples


def _ll_parse(text: str):
    """One low-level expression as nested lists: ``bv[3:9]`` alone stays a
    string; ``(op a b)`` is ``[op, a, b]``; a bit-vector literal inside a
    list is ``["bv[3:9]"]`` so it is told from a ``#id`` reference."""
    stack: list[list] = [[]]
    for tok in _LL_TOKEN.findall(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) < 2:
                raise ValueError("unbalanced datalog answer")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append([tok] if tok.startswith("bv[") else tok)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError("malformed datalog answer")
    return stack[0][0]
