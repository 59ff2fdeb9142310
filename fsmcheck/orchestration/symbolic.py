"""The z3 engine: bounded model checking and k-induction over N devices.

Symmetry reduction (a counter abstraction). Devices with the same flag set
are interchangeable: a callback reads and writes only its own device's
state, the failure budget is shared, and both properties (P2P safety,
progress) are invariant under any permutation of such devices. So the
global state is encoded, exactly, as the phase, the error flag, the failures
used and, per flag set ("class") and per local state (device state, called
in this phase, QEMU holds a data_fd), the *number* of devices in it. This is
sound and complete for these properties (the counted system is bisimilar to
the product up to permutations within a class); devices with different flag
sets are never merged. The number of z3 variables per step no longer
depends on N, which is why z3 scales where the explicit product cannot.

Steps are batches: a call move takes k >= 1 devices of one class and local
state to the same outcome at once (k = 1 for an outcome that uses a failure
or reports an error that aborts at once). Every intermediate state of a
batch is reachable with smaller batches, so the reachable states -- and the
verdicts -- are those of one callback per step, while BMC's depth no longer
grows with N (N = 16, F = 1: 6 steps, not 35). Counterexample lengths are
counted in such steps by both engines
(:meth:`fsmcheck.orchestration.explicit.Exploration.length`); the trace is
decoded into one line per callback. Counts that the lemma below fixes at 0
in every phase are not variables at all.

Transition relation: one disjunct per (phase, class, local state, outcome)
and per phase move, each tagged with a ``choice`` value so a model decodes
into the step taken; the outcomes come from
:func:`~fsmcheck.orchestration.semantics.callback_outcomes`, i.e. from the
device model.

Proof: interleaved BMC and k-induction. For k = 1, 2, ...: BMC at depth
k-1 (a path from the state at open to a bad state of length k-1; sat gives
the shortest counterexample), then the induction step for k (k good states
on a simple path followed by a bad one; unsat proves the property for all
depths). The invariant proved is the property strengthened by a lemma (when
``strengthen``): per class, only the local states a single device of that
class can reach in each phase, computed by exploring one device with the
others abstracted (they may report errors whenever errors are possible at
all) -- an over-approximation of the projection of every reachable global
state, so the lemma holds on every reachable state and is itself checked
by the base case. Every run ends within a bound D (each step either calls
a device not yet called in the phase or moves to a later phase), so BMC to
depth D is complete too: the loop always ends with holds, fails, or a z3
timeout (``unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from ..model.properties import ORCHESTRATION_NAMES as PROPERTIES
from ..semantics import deadline
from ..semantics.verdict import FAILS, HOLDS, Verdict
from .schema import Orchestration
from .semantics import Configuration, System, system_of
from .trace import counterexample

__all__ = ["Proof", "prove", "PROPERTIES", "Symbolic"]


@dataclass
class Proof:
    """The answer of :func:`prove`.

    Attributes:
        status: ``holds``, ``fails`` or ``unknown``.
        k: for ``holds``: the k at which the induction closed (or, with
            ``by_bmc``, the depth BMC exhausted); for ``fails``: the length of
            the counterexample; for ``unknown``: the last k tried.
        by_bmc: the proof came from exhausting every path (depth D), not from
            the induction step.
        trace: for ``fails``: ``(step, global state)`` pairs from the state at
            open (the first step None), decoded to concrete devices.
        note: how it was decided, for the report.
    """

    status: str
    k: int
    by_bmc: bool = False
    trace: list | None = None
    note: str = ""


class _Encoding:
    def __init__(self, system: System, strengthen: bool):
        self.system = system
        model = system.device
        order = model.flag_order
        self.classes: list[frozenset[str]] = sorted(
            set(system.flags), key=lambda fl: tuple(f not in fl for f in order))
        self.members = {c: [i for i, f in enumerate(system.flags) if f == c] for c in self.classes}
        self.keys = {c: [(s, called, fd) for s in model.supported(c) for called in (False, True)
                         for fd in (False, True)] for c in self.classes}
        self.pcs = list(range(system.end_abort + 1))
        self.reach = self._local_reach() if strengthen else None
        if self.reach is not None:
            # a count the lemma fixes at 0 in every phase is no variable at all
            for c in self.classes:
                used = {k for _, k in self.reach[c]}
                self.keys[c] = [k for k in self.keys[c] if k in used]
        p2p = model.p2p
        self.initiating = frozenset(model.groups[p2p.initiating])
        self.accepting = frozenset(model.groups[p2p.accepting])
        self.moves = self._moves()
        # templates over two generic states, instantiated per step by z3.substitute
        self._a, self._b = self.state("a"), self.state("b")
        self._templates = {}

    def _inst(self, name, build, *vs):
        if name not in self._templates:
            self._templates[name] = build(*([self._a, self._b][:len(vs)]))
        pairs = [(self._a[k], vs[0][k]) for k in vs[0]]
        if len(vs) > 1:
            pairs += [(self._b[k], vs[1][k]) for k in vs[1]]
        return z3.substitute(self._templates[name], *pairs)

    def T(self, v, w):
        """The transition relation between steps ``v`` and ``w``."""
        return self._inst("trans", self.trans, v, w)

    def L(self, v):
        """The lemma at step ``v``."""
        return self._inst("lemma", self.lemma, v)

    def B(self, v, prop):
        """The bad states of ``prop`` at step ``v``."""
        return self._inst("bad:" + prop, lambda a: self.bad(a, prop), v)

    # -- the per-device lemma ---------------------------------------------
    def _local_reach(self) -> dict:
        sysm = self.system
        budget = sysm.budget

        def explore(err_possible: bool):
            reach, saw_error = {}, False
            for c in self.classes:
                init = sysm.initial().devices[self.members[c][0]]
                start = (0, init.state, init.called, init.fd, 0)
                seen, todo = {start}, [start]
                while todo:
                    pc, s, called, fd, lf = todo.pop()
                    nxt = []
                    if pc < sysm.end_ok:
                        phase = sysm.phases[pc]
                        abort_now = phase.on_error == "abort-now" and not sysm.in_abort[pc]
                        if not called:
                            for o in sysm.outcomes(pc, c, s, fd, budget - lf):
                                saw_error |= o.error and o.failures == 0
                                fd2 = fd or o.opens_fd
                                if o.error and abort_now:
                                    dest = sysm.abort_start[pc]
                                    nxt.append(self._enter(dest, c, o.state, fd2, phase.closes_data_fd, lf + o.failures))
                                else:
                                    nxt.append((pc, o.state, True, fd2, lf + o.failures))
                        if err_possible and abort_now:
                            nxt.append(self._enter(sysm.abort_start[pc], c, s, fd, phase.closes_data_fd, lf))
                        if called:
                            dests = {sysm.next_ok[pc]} | ({sysm.next_err[pc]} if err_possible else set())
                            for dest in dests:
                                nxt.append(self._enter(dest, c, s, fd, phase.closes_data_fd, lf))
                    for n in nxt:
                        if n not in seen:
                            seen.add(n)
                            todo.append(n)
                for pc, s, called, fd, _ in seen:
                    reach.setdefault(c, set()).add((pc, (s, called, fd)))
            return reach, saw_error

        reach, saw_error = explore(True)
        self.errors_possible = budget > 0 or saw_error
        if not self.errors_possible:
            reach, _ = explore(False)   # no error can ever be reported
        return reach

    def _enter(self, dest, c, s, fd, close, lf):
        called = self.system.rule(dest, c, s) is None
        return (dest, s, called, fd and not close, lf)

    def allowed(self, c, pc, key) -> bool:
        return self.reach is None or (pc, key) in self.reach[c]

    # -- moves ----------------------------------------------------------------
    def _moves(self) -> list[tuple]:
        """Every disjunct: ("call", pc, class, key, outcome, dest) or ("phase", pc, with_error, dest)."""
        sysm = self.system
        moves = []
        for pc in range(sysm.end_ok):
            phase = sysm.phases[pc]
            abort_now = phase.on_error == "abort-now" and not sysm.in_abort[pc]
            for c in self.classes:
                for (s, called, fd) in self.keys[c]:
                    if called or not self.allowed(c, pc, (s, called, fd)):
                        continue
                    seen = set()
                    for o in sysm.outcomes(pc, c, s, fd, sysm.budget):
                        effect = (o.state, o.failures, o.error, o.opens_fd)
                        if effect in seen:
                            continue
                        seen.add(effect)
                        dest = sysm.abort_start[pc] if (o.error and abort_now) else pc
                        moves.append(("call", pc, c, (s, False, fd), o, dest))
            if sysm.next_err[pc] != sysm.next_ok[pc]:
                moves.append(("phase", pc, True, sysm.next_err[pc]))
                moves.append(("phase", pc, False, sysm.next_ok[pc]))
            else:
                moves.append(("phase", pc, None, sysm.next_ok[pc]))
        return moves

    # -- variables and formulas ----------------------------------------------------
    def state(self, t: int) -> dict:
        v = {"pc": z3.Int(f"pc_{t}"), "err": z3.Bool(f"err_{t}"), "f": z3.Int(f"f_{t}"),
             "ch": z3.Int(f"ch_{t}"), "k": z3.Int(f"k_{t}")}
        for ci, c in enumerate(self.classes):
            for key in self.keys[c]:
                v[(ci, key)] = z3.Int(f"x_{t}_{ci}_{key[0]}_{int(key[1])}_{int(key[2])}")
        return v

    def counts(self, v, pred):
        terms = [v[(ci, k)] for ci, c in enumerate(self.classes) for k in self.keys[c] if pred(c, k)]
        return z3.Sum(terms) if terms else z3.IntVal(0)

    def init(self, v):
        g = self.system.initial()
        cs = [v["pc"] == 0, z3.Not(v["err"]), v["f"] == 0]
        for ci, c in enumerate(self.classes):
            first = g.devices[self.members[c][0]]
            for k in self.keys[c]:
                cs.append(v[(ci, k)] == (len(self.members[c]) if k == (first.state, first.called, first.fd) else 0))
        return z3.And(cs)

    def trans(self, v, w):
        """The transition relation: ``ch`` picks a move; its guard and effect on
        the phase, error and failures are implications, and each count is an
        if-then-else over the moves that change it (every other move leaves it)."""
        sysm = self.system
        cs = [v["ch"] >= 0, v["ch"] < len(self.moves)]
        updates = {(ci, k): [] for ci, c in enumerate(self.classes) for k in self.keys[c]}
        for idx, mv in enumerate(self.moves):
            if mv[0] == "call":
                _, pc, c, src, o, dest = mv
                ci = self.classes.index(c)
                dst = (o.state, True, src[2] or o.opens_fd)
                guard = [v["pc"] == pc, v["k"] >= 1, v[(ci, src)] >= v["k"], w["pc"] == dest,
                         w["f"] == v["f"] + o.failures, w["err"] == z3.Or(v["err"], z3.BoolVal(o.error))]
                if o.failures or (o.error and dest != pc):
                    guard.append(v["k"] == 1)  # a failure, or an error that aborts: one device
                if o.failures:
                    guard.append(v["f"] + o.failures <= sysm.budget)
                delta = {(ci, src): -v["k"], (ci, dst): v["k"]}
                remap = dest != pc
                close = sysm.phases[pc].closes_data_fd
            else:
                _, pc, with_error, dest = mv
                guard = [v["pc"] == pc, v["k"] == 1, w["pc"] == dest, w["f"] == v["f"], w["err"] == v["err"]]
                if with_error is not None:
                    guard.append(v["err"] if with_error else z3.Not(v["err"]))
                guard += [v[(ci, k)] == 0 for ci, c in enumerate(self.classes) for k in self.keys[c] if not k[1]]
                delta, remap, close = {}, True, sysm.phases[pc].closes_data_fd
            cs.append(z3.Implies(v["ch"] == idx, z3.And(guard)))
            if remap:
                for ci, c in enumerate(self.classes):
                    sums: dict = {k: [] for k in self.keys[c]}
                    for k in self.keys[c]:
                        term = v[(ci, k)] + delta[(ci, k)] if (ci, k) in delta else v[(ci, k)]
                        target = self._enter(dest, c, k[0], k[2], close, 0)[1:4]
                        if target in sums:  # else: a count the lemma fixes at 0 before this move
                            sums[target].append(term)
                    for k in self.keys[c]:
                        updates[(ci, k)].append((idx, z3.Sum(sums[k]) if sums[k] else z3.IntVal(0)))
            else:
                for key, d in delta.items():
                    updates[key].append((idx, v[key] + d))
        for key, options in updates.items():
            expr = v[key]
            for idx, value in reversed(options):
                expr = z3.If(v["ch"] == idx, value, expr)
            cs.append(w[key] == expr)
        return z3.And(cs)

    def lemma(self, v):
        sysm = self.system
        cs = [v["pc"] >= 0, v["pc"] <= sysm.end_abort, v["f"] >= 0, v["f"] <= sysm.budget]
        if self.reach is not None and not self.errors_possible:
            cs.append(z3.Not(v["err"]))
        if self.reach is not None:
            live = [pc for pc in self.pcs if all(any(p == pc for p, _ in self.reach[c]) for c in self.classes)]
            cs.append(z3.Or([v["pc"] == pc for pc in live]))
        for ci, c in enumerate(self.classes):
            cs += [v[(ci, k)] >= 0 for k in self.keys[c]]
            cs.append(z3.Sum([v[(ci, k)] for k in self.keys[c]]) == len(self.members[c]))
            if self.reach is not None:
                for pc in self.pcs:
                    banned = [v[(ci, k)] == 0 for k in self.keys[c] if (pc, k) not in self.reach[c]]
                    if banned:
                        cs.append(z3.Implies(v["pc"] == pc, z3.And(banned)))
        return z3.And(cs)

    def bad(self, v, prop: str):
        sysm = self.system
        if prop == "p2p-safety":
            i = self.counts(v, lambda c, k: k[0] in self.initiating)
            b = self.counts(v, lambda c, k: k[0] not in self.accepting)
            ib = self.counts(v, lambda c, k: k[0] in self.initiating and k[0] not in self.accepting)
            checked = [v["pc"] == pc for pc in self.pcs if sysm.p2p_checked(pc)]
            return z3.And(z3.Or(checked), i >= 1, b >= 1, z3.Not(z3.And(i == 1, b == 1, ib == 1)))
        if prop == "stopped-vm":
            running = self.counts(v, lambda c, k: k[0] in self.initiating)
            stopped = [v["pc"] == pc for pc in self.pcs if sysm.vm_stopped(pc)]
            return z3.And(z3.Or(stopped), running >= 1) if stopped else z3.BoolVal(False)
        sessions = sysm.session_states()
        out = []
        for end in (sysm.end_ok, sysm.end_abort):
            allowed = sysm.allowed_end(end)
            if allowed is None:
                continue
            wrong = self.counts(v, lambda c, k: k[0] not in allowed or k[2] or k[0] in sessions)
            out.append(z3.And(v["pc"] == end, wrong >= 1))
        return z3.Or(out) if out else z3.BoolVal(False)

    def distinct(self, v, w):
        names = [k for k in v if k not in ("ch", "k")]
        return z3.Or([v[k] != w[k] for k in names])

    def bound(self) -> int:
        """A bound D on the length of every run (steps)."""
        sysm = self.system
        return (len(sysm.phases) + 1) * (sysm.n + 1)

    # -- decoding -----------------------------------------------------------------
    def decode(self, m: z3.ModelRef, vs: list) -> list:
        moves = []
        for v in vs[:-1]:
            mv = self.moves[m.eval(v["ch"], model_completion=True).as_long()]
            k = m.eval(v["k"], model_completion=True).as_long()
            moves.append((self.members[mv[2]], mv[3], mv[4], k) if mv[0] == "call" else None)
        return self.system.replay(moves)


#: The largest k for which the induction step is tried; deeper, BMC alone goes on to the bound D.
INDUCTION_K = 6



def prove(system: System, prop: str, *, timeout_ms: int = 60000, max_k: int | None = None,
          strengthen: bool = True, induction_k: int = INDUCTION_K) -> Proof:
    """Decide ``prop`` (``p2p-safety`` or ``progress``) for ``system`` with z3.

    Args:
        system: the composed system.
        prop: one of :data:`PROPERTIES`.
        timeout_ms: z3's timeout per query (> 0); a timeout gives ``unknown``.
        max_k: the largest k tried (default: the run-length bound D, which
            makes the search complete).
        strengthen: conjoin the per-device local-reachability lemma (see the
            module docstring); without it plain k-induction rarely closes.
        induction_k: the induction step is tried for k <= this (>= 1); past
            it only BMC goes on (the step queries get costly while a failing
            property's counterexample is near).

    Returns:
        A :class:`Proof`. ``fails`` carries the shortest counterexample.

    Raises:
        ValueError: an unknown property.
        RuntimeError: the lemma failed on a reachable state (an engine bug).
    """
    if prop not in PROPERTIES:
        raise ValueError(f"unknown orchestration property {prop!r}")
    enc = _Encoding(system, strengthen)
    bound = enc.bound()
    max_k = bound + 1 if max_k is None else max_k
    base, step = z3.Solver(), z3.Solver()
    base.set("timeout", timeout_ms)
    step.set("timeout", timeout_ms)  # a step that times out does not end the proof: BMC goes on alone
    step_gave_up = ""
    bvars = [enc.state(0)]
    base.add(enc.init(bvars[0]))
    svars = [enc.state(0)]
    lemma_note = "with the per-device local-reachability lemma" if strengthen else "plain (no lemma)"
    for k in range(1, max_k + 1):
        # base case: depth k-1
        v = bvars[-1]
        base.push()
        base.add(z3.Or(enc.B(v, prop), z3.Not(enc.L(v))))
        r = base.check()
        if r == z3.unknown:
            return Proof("unknown", k, note=f"z3: {base.reason_unknown()} (BMC depth {k - 1})")
        if r == z3.sat:
            m = base.model()
            if not z3.is_true(m.eval(enc.B(v, prop), model_completion=True)):
                raise RuntimeError("the local-reachability lemma fails on a reachable state")
            return Proof("fails", k - 1, trace=enc.decode(m, bvars),
                         note=f"BMC: shortest counterexample at depth {k - 1}")
        base.pop()
        base.add(z3.Not(enc.B(v, prop)), enc.L(v))
        if k - 1 >= bound:
            return Proof("holds", k - 1, by_bmc=True,
                         note=f"BMC exhausted every run (depth bound {bound}); k-induction did not close up to "
                              f"k={min(k, induction_k)} ({lemma_note}){step_gave_up}")
        w = enc.state(len(bvars))
        base.add(enc.T(v, w))
        bvars.append(w)
        if k > induction_k or step_gave_up:
            continue
        # induction step for k
        u = svars[-1]
        step.add(z3.Not(enc.B(u, prop)), enc.L(u))
        x = enc.state(100000 + len(svars))
        step.add(enc.T(u, x))
        for old in svars:
            step.add(enc.distinct(old, x))
        svars.append(x)
        step.push()
        step.add(z3.Or(enc.B(x, prop), z3.Not(enc.L(x))))
        r = step.check()
        step.pop()
        if r == z3.unsat:
            return Proof("holds", k,
                         note=f"k-induction closed at k={k} ({lemma_note}; symmetry: counter abstraction "
                              f"over {len(enc.classes)} flag-set class(es))")
        if r == z3.unknown:  # the induction step gives up; BMC goes on to the bound
            step_gave_up = f"; the induction step k={k} gave up ({step.reason_unknown()})"
    return Proof("unknown", max_k,
                 note=f"k-induction did not close up to k={min(max_k, induction_k)} ({lemma_note}) and BMC "
                      f"found no counterexample to depth {max_k - 1}{step_gave_up}")


class Symbolic:
    """The z3 :class:`~fsmcheck.engines.protocol.Engine` of orchestration models
    (:func:`prove`; each query's ``timeout_ms`` clamped to the deadline in force)."""

    name = "z3"

    def __init__(self, timeout_ms: int = 60000):
        self.timeout_ms = timeout_ms

    def implements(self, prop: str) -> bool:
        return prop in PROPERTIES

    def check(self, prop: str, orch: Orchestration, config: Configuration) -> Verdict:
        """Decide ``prop`` with :func:`prove`; ``fails`` carries its shortest counterexample."""
        system = system_of(orch, config)
        proof = prove(system, prop, timeout_ms=deadline.remaining_ms(self.timeout_ms))
        if proof.status == FAILS:
            return Verdict(FAILS, counterexample=counterexample(system, prop, proof.trace), note=proof.note,
                           evidence={"status": FAILS, "length": proof.k})
        return Verdict(proof.status, note=proof.note, evidence={"status": HOLDS} if proof.status == HOLDS else None)
