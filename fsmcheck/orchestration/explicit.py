"""The explicit engine: the symmetric (counting) product, with partial-order reduction.

**Symmetry (counting).** Devices with the same flag set are interchangeable:
a callback reads and writes only its own device's local state (device
state, called in this phase, QEMU holds a data_fd), the shared part (phase,
error reported, failures used) is touched the same way whichever device is
called, and both properties (P2P safety, progress) are invariant under any
permutation of such devices. So a global state is stored as
:class:`Counted`: the shared part and, per flag-set class and local state,
the *number* of devices in it -- the orbit of the concrete states under
permutations within a class. The counted system is bisimilar to the
concrete product (every concrete step maps to one counted step and back),
so verdicts and shortest-counterexample lengths are the concrete ones; the
z3 engine (:mod:`.symbolic`) uses the same abstraction. Per state the work
no longer depends on N.

**Partial-order reduction (ample sets).** Within one phase the callbacks of
different devices commute: each writes its own device, the error flag by
OR and the failures by addition. From a state where some pending device's
callback is *safe* -- every outcome uses no failure (no contention for the
budget), reports no error in an ``abort-now`` phase (which would skip the
other devices), and leaves the device's P2P category (may initiate P2P /
can take P2P) unchanged, so no atomic proposition of P2P safety changes
(invisible) -- while no other pending device can abort the phase, only that
device's outcomes are expanded (the ample set). The state graph is acyclic
(each step calls one more device or moves to a later phase), so the cycle
proviso holds; the reduced graph keeps every terminal state (progress) and
is stuttering-equivalent for the P2P invariant (Clarke, Grumberg, Peled,
*Model Checking*, ch. 10, conditions C0-C3). A failing property is then
searched again breadth-first without the reduction, which gives the
shortest counterexample (the reduction keeps reachability, not lengths).

Counterexamples are concrete: the counted path is replayed on
:meth:`~.semantics.System.successors` of the concrete product. The search is
bounded by wall time and by a number of states; a search that hits either
bound answers ``unknown`` and says where it stopped.

:class:`Explicit` is the engine (:class:`fsmcheck.engines.protocol.Engine`,
name ``networkx``): it explores a configuration once and answers each
property from that exploration.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import NamedTuple

from ..model.properties import ORCHESTRATION_NAMES
from ..semantics.verdict import FAILS, HOLDS, UNKNOWN, Verdict
from .schema import Orchestration
from .semantics import Configuration, Global, Local, Step, System, system_of
from .trace import counterexample

__all__ = ["Counted", "Exploration", "explore", "DEFAULT_MAX_STATES", "CountedSystem", "Explicit"]

#: Default bound on the number of counted states explored.
DEFAULT_MAX_STATES = 250_000


class Counted(NamedTuple):
    """A counted global state: phase index ``pc``, ``error`` reported,
    ``failures`` used, and ``counts``: sorted ``((class, state, called, fd), n)``
    pairs with n >= 1 (class: the index of a flag set in
    :attr:`CountedSystem.classes`)."""

    pc: int
    error: bool
    failures: int
    counts: tuple


class CountedSystem:
    """The counted view of a :class:`~.semantics.System` (same phases, outcomes, properties).

    Attributes:
        classes: the distinct flag sets, in first-device order.
        members: per class, the device indices with that flag set.
    """

    def __init__(self, system: System):
        self.system = system
        self.classes: list[frozenset[str]] = list(dict.fromkeys(system.flags))
        self.members = [[i for i, f in enumerate(system.flags) if f == c] for c in self.classes]
        self._class_of = {c: k for k, c in enumerate(self.classes)}
        model = system.device
        self.initiating = frozenset(model.groups[model.p2p.initiating])
        self.accepting = frozenset(model.groups[model.p2p.accepting])

    # -- concrete <-> counted ----------------------------------------------
    def count(self, g: Global) -> Counted:
        """The counted state (orbit) of concrete state ``g``."""
        tally = Counter((self._class_of[f], d.state, d.called, d.fd) for d, f in zip(g.devices, self.system.flags))
        return Counted(g.pc, g.error, g.failures, tuple(sorted(tally.items())))

    def representative(self, c: Counted) -> Global:
        """A concrete state of orbit ``c`` (each class's members take its local states in sorted order)."""
        devices: list = [None] * self.system.n
        for k, members in enumerate(self.members):
            locals_ = [Local(s, called, fd) for (ci, s, called, fd), n in c.counts if ci == k for _ in range(n)]
            for i, loc in zip(members, locals_):
                devices[i] = loc
        return Global(c.pc, c.error, c.failures, tuple(devices))

    def initial(self) -> Counted:
        return self.count(self.system.initial())

    # -- steps --------------------------------------------------------------
    def _enter(self, dest: int, tally: dict, close: bool) -> tuple:
        out: Counter = Counter()
        for (ci, s, _called, fd), n in tally.items():
            out[(ci, s, self.system.rule(dest, self.classes[ci], s) is None, fd and not close)] += n
        return tuple(sorted(out.items()))

    def _category(self, state: str) -> tuple[bool, bool]:
        return state in self.initiating, state in self.accepting

    def _call(self, c: Counted, key: tuple, o, k: int = 1) -> Counted:
        sysm = self.system
        phase = sysm.phases[c.pc]
        tally = Counter(dict(c.counts))
        tally[key] -= k
        tally[(key[0], o.state, True, key[3] or o.opens_fd)] += k
        tally = +tally  # drops the emptied key
        error, failures = c.error or o.error, c.failures + o.failures
        if o.error and phase.on_error == "abort-now" and not sysm.in_abort[c.pc]:
            dest = sysm.abort_start[c.pc]
            return Counted(dest, error, failures, self._enter(dest, tally, phase.closes_data_fd))
        return Counted(c.pc, error, failures, tuple(sorted(tally.items())))

    def successors(self, c: Counted, reduce: bool = True, batch: bool = False) -> list[tuple[tuple | None, Counted]]:
        """Every counted successor of ``c`` as ``(label, state)``: label None
        for the move to the next phase, else ``(local key, outcome, k)`` -- k
        devices of that key called with that outcome.

        With ``reduce``: an ample subset, k = 1 (see the module docstring).
        With ``batch``: a step may call any k >= 1 devices of one key with
        the same outcome (k = 1 for an outcome that uses a failure or reports
        an error that aborts at once) -- the steps of the z3 encoding, whose
        counterexample lengths count such batches. Without either: every
        single callback."""
        sysm = self.system
        if c.pc >= sysm.end_ok:
            return []
        pending = [key for key, _ in c.counts if not key[2]]
        if not pending:
            dest = sysm.next_err[c.pc] if c.error else sysm.next_ok[c.pc]
            return [(None, Counted(dest, c.error, c.failures,
                                   self._enter(dest, dict(c.counts), sysm.phases[c.pc].closes_data_fd)))]
        phase = sysm.phases[c.pc]
        abort_now = phase.on_error == "abort-now" and not sysm.in_abort[c.pc]
        budget = sysm.budget - c.failures
        options = [(key, sysm.outcomes(c.pc, self.classes[key[0]], key[1], key[3], budget)) for key in pending]
        # an aborting callback skips the others: dependent, no reduction
        if reduce and sum(n for key, n in c.counts if not key[2]) > 1 and not (
                abort_now and any(o.error for _, outs in options for o in outs)):
            for key, outs in options:
                cat = self._category(key[1])
                if all(o.failures == 0 and self._category(o.state) == cat for o in outs):
                    return self._distinct([((key, o, 1), self._call(c, key, o)) for o in outs])
        out = []
        counts = dict(c.counts)
        for key, outs in options:
            for o in outs:
                single = not batch or o.failures or (o.error and abort_now)
                for k in range(1, 2 if single else counts[key] + 1):
                    out.append(((key, o, k), self._call(c, key, o, k)))
        return self._distinct(out)

    @staticmethod
    def _distinct(pairs: list) -> list:
        first: dict = {}
        for label, state in pairs:
            first.setdefault(state, label)
        return [(label, state) for state, label in first.items()]

    # -- properties ---------------------------------------------------------
    def p2p_bad(self, c: Counted) -> bool:
        """True when ``c`` breaks P2P safety (the device model's ``[p2p]`` rule over the counts)."""
        if not self.system.p2p_checked(c.pc):
            return False
        i = b = ib = 0
        for (_ci, s, _called, _fd), n in c.counts:
            ini, acc = s in self.initiating, s in self.accepting
            i += n if ini else 0
            b += n if not acc else 0
            ib += n if ini and not acc else 0
        return i >= 1 and b >= 1 and not (i == 1 and b == 1 and ib == 1)

    def vm_bad(self, c: Counted) -> bool:
        """True when ``c`` breaks ``stopped-vm``: the VM is stopped and a
        device is in a state that runs (may initiate DMA: the ``[p2p]`` rule's
        initiating group, RUNNING and PRE_COPY)."""
        return self.system.vm_stopped(c.pc) and any(s in self.initiating for (_ci, s, _c, _f), _n in c.counts)


@dataclass
class Exploration:
    """The result of :func:`explore`.

    Attributes:
        system: the concrete system; ``counted`` its counted view.
        complete: every reachable (reduced) state was explored.
        stopped: why the search stopped early (time or state bound), else "".
        states: counted states stored.
        p2p_bad: a counted state breaking P2P safety (the shortest: found
            without reduction), or None.
        progress_bad: ``(counted state, reason)`` for an end state breaking
            progress or a state with no step, or None.
    """

    system: System
    counted: CountedSystem
    complete: bool
    stopped: str
    states: int = 0
    p2p_bad: Counted | None = None
    progress_bad: tuple[Counted, str] | None = None
    vm_bad: Counted | None = None
    parents: dict = field(default_factory=dict, repr=False)

    def steps(self, target: Counted) -> list[tuple]:
        """The labels of the path to ``target`` (see :meth:`CountedSystem.successors`)."""
        labels = []
        node = target
        while self.parents[node] is not None:
            node, label = self.parents[node]
            labels.append(label)
        return labels[::-1]

    def length(self, target: Counted) -> int:
        """The length of the path to ``target`` in steps of the search (batches
        for a counterexample: the length z3's BMC reports)."""
        return len(self.steps(target))

    def trace(self, target: Counted) -> list[tuple[Step | None, Global]]:
        """The path from the state at open to ``target`` (shortest in batches
        when it is a counterexample), as concrete ``(step, state)`` pairs, one
        per callback, the first with step None: the counted path replayed on
        the concrete product."""
        members = self.counted.members
        return self.system.replay(None if label is None else (members[label[0][0]], label[0][1:], *label[1:])
                                  for label in self.steps(target))


#: The :class:`Exploration` field holding each property's bad state.
_BAD = {"p2p-safety": "p2p_bad", "stopped-vm": "vm_bad", "progress": "progress_bad"}


def _search(cs: CountedSystem, reduce: bool, deadline: float, max_states: int, stop_at_first: str | None,
            batch: bool = False):
    sysm, init = cs.system, cs.initial()
    parents, queue = {init: None}, deque([init])
    bad: dict = dict.fromkeys(_BAD)
    stopped = ""
    while queue and (stop_at_first is None or bad[stop_at_first] is None):
        if len(parents) > max_states:
            stopped = f"state bound {max_states} reached"
            break
        if time.perf_counter() > deadline:
            stopped = "time bound reached"
            break
        c = queue.popleft()
        for prop, breaks in (("p2p-safety", cs.p2p_bad), ("stopped-vm", cs.vm_bad)):
            if bad[prop] is None and breaks(c):
                bad[prop] = c
        succ = cs.successors(c, reduce, batch)
        if bad["progress"] is None:
            problem = (sysm.progress_problem(cs.representative(c)) if c.pc >= sysm.end_ok
                       else None if succ else f"no step possible in phase {sysm.phase_name(c.pc)}")
            bad["progress"] = (c, problem) if problem else None
        for label, nxt in succ:
            if nxt not in parents:
                parents[nxt] = (c, label)
                queue.append(nxt)
    return parents, bad, stopped, not queue and not stopped


def explore(system: System, *, time_limit: float = 60.0, max_states: int = DEFAULT_MAX_STATES,
            reduce: bool = True) -> Exploration:
    """Explore the counted product of ``system`` breadth-first.

    Args:
        system: the composed system.
        time_limit: seconds (> 0) after which the search stops (``complete`` False).
        max_states: counted states after which the search stops.
        reduce: partial-order reduction (see the module docstring); a
            violation found with it is searched again without it, for the
            shortest counterexample.

    Returns:
        An :class:`Exploration`. Since the counted graph is acyclic and
        finite, "every run ends" is "no reachable state without a step".
    """
    deadline = time.perf_counter() + time_limit
    cs = CountedSystem(system)
    parents, bad, stopped, complete = _search(cs, reduce, deadline, max_states, None)
    if stopped == "time bound reached":
        stopped = f"time bound {time_limit:g} s reached"
    result = Exploration(system, cs, complete, stopped, len(parents),
                         bad["p2p-safety"], bad["progress"], bad["stopped-vm"], parents)
    merged = dict(parents)
    for prop, found in bad.items():
        if found is None:
            continue
        # the shortest counterexample: breadth-first over batches, unreduced
        parents2, bad2, _, _ = _search(cs, False, deadline, max_states, prop, batch=True)
        again = bad2[prop]
        if again is None:  # bound hit: keep the reduced search's (longer) witness
            continue
        node = again if prop != "progress" else again[0]
        while node is not None:  # the unreduced path's own parents win for its nodes
            merged[node] = parents2[node]
            node = parents2[node][0] if parents2[node] is not None else None
        setattr(result, _BAD[prop], again)
    result.parents = merged
    return result


@functools.lru_cache(maxsize=1)  # the verifier asks a configuration's properties in a row
def _explored(orch: Orchestration, config: Configuration, seconds: float, max_states: int) -> Exploration:
    return explore(system_of(orch, config), time_limit=seconds, max_states=max_states)


class Explicit:
    """The explicit :class:`~fsmcheck.engines.protocol.Engine` of orchestration
    models (``check(prop, orch, config)``, ``config`` a
    :class:`~.semantics.Configuration`); an exploration bounded by ``seconds``
    (> 0) or ``max_states`` answers ``unknown``."""

    name = "networkx"

    def __init__(self, seconds: float = 60.0, max_states: int = DEFAULT_MAX_STATES):
        self.seconds, self.max_states = seconds, max_states

    def implements(self, prop: str) -> bool:
        return prop in ORCHESTRATION_NAMES

    def check(self, prop: str, orch: Orchestration, config: Configuration) -> Verdict:
        """Decide ``prop`` from the configuration's exploration (one per configuration)."""
        e = _explored(orch, config, self.seconds, self.max_states)
        bad, problem = getattr(e, _BAD[prop]), None
        if prop == "progress":
            bad, problem = bad or (None, None)
        if bad is not None:
            trace = e.trace(bad)
            return Verdict(FAILS, counterexample=counterexample(e.system, prop, trace, problem),
                           note=f"{e.states} counted states; shortest in {e.length(bad)} batches "
                                f"({len(trace) - 1} callbacks and phase moves)",
                           evidence={"status": FAILS, "length": e.length(bad)})
        if not e.complete:
            return Verdict(UNKNOWN, note=f"explicit product not finished: {e.stopped} after {e.states} global states")
        return Verdict(HOLDS, note=f"{e.states} global states", evidence={"status": HOLDS})
