"""What QEMU's callbacks do to N devices: the composed transition system.

One device, one callback (:func:`callback_outcomes`). QEMU's
``vfio_migration_set_state(new, recover)`` (hw/vfio/migration.c, QEMU 10)
requests ``new``; on failure with a recover state other than ERROR it
requests ``recover``; if that fails too, or recover is ERROR, it resets the
device (``VFIO_DEVICE_RESET``; QEMU then records RUNNING). What a request
does is derived from the device model, never written in the orchestration:
:func:`fsmcheck.semantics.combination.derive_table` gives for the device's
flag set whether the request is rejected (EINVAL: the device stays where it
is), a no-op, or a path of arcs. An accepted request may fail when the
failure budget allows it; vfio.h ("If this function fails then current
device_state may be the original operating state or some other state along
the combination transition path", and any -> ERROR) leaves the device in
its current state, in a state along the path, or in ERROR. A callback
*reports an error* when its first request did not succeed (its ``ret``),
and also when a new ``data_fd`` arrives while QEMU still holds one
("data_fd out of sync", -EBADF).

N devices, one run (:class:`System`). Global state: the phase (an index
into the run's phases, its abort phases, then two end markers), whether an
error has been reported (``migration_file_set_error()``), the failures used,
and per device (state, called in this phase, QEMU holds a data_fd). A step
is one callback on one device not yet called in the phase (devices in any
order: system/runstate.c vm_state_notify() calls every prepare callback,
then every main callback, in registration order, which the model leaves
free), or the move to the next phase once every device has been called. A
device no rule applies to is not called (e.g. no prepare callback without
VFIO_MIGRATION_P2P: vfio_migration_init() registers prepare_cb only then).

The global states checked are those between callbacks: the states a device
passes inside one VFIO_DEVICE_FEATURE ioctl are not observable by the VMM
and are not checked.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from ..model.schema import Config, Model
from ..semantics.combination import NOOP, PATH, derive_table
from .schema import RECOVER_CURRENT, Orchestration, Phase, Run

__all__ = ["Outcome", "callback_outcomes", "Local", "Global", "Step", "System", "device_config",
           "Configuration", "system_of"]


@dataclass(frozen=True)
class Outcome:
    """What one callback does to one device.

    Attributes:
        state: the device's state afterwards.
        failures: injected request failures used (0, 1 or 2).
        error: the callback reports an error (its first request did not
            succeed, or data_fd out of sync).
        opens_fd: a new data_fd was returned (a data session started).
        reset: the device was reset (VFIO_DEVICE_RESET).
        story: what happened, in QEMU's terms.
    """

    state: str
    failures: int
    error: bool
    opens_fd: bool
    reset: bool
    story: str


def device_config(device: Model, flags: frozenset[str]) -> Config:
    """The device model's configuration for ``flags``.

    Raises:
        ValueError: ``flags`` is not one of the device model's flag sets.
    """
    for config in device.configs():
        if config.flags == flags:
            return config
    raise ValueError(f"{','.join(sorted(flags))} is not a flag set of {device.name}")


@functools.lru_cache(maxsize=32)
def _table(device: Model, flags: frozenset[str]):
    """The derived combination table, computed once per model (its content key) and flag set."""
    return derive_table(device, device_config(device, flags))


def _opens(device: Model, current: str, requested: str) -> bool:
    return any(requested in device.groups[g] and current not in device.groups[g] for g in device.session_groups)


def callback_outcomes(device: Model, flags: frozenset[str], request: str, recover: str, state: str,
                      fd_open: bool, budget: int) -> tuple[Outcome, ...]:
    """Every way ``vfio_migration_set_state(request, recover)`` can end.

    Args:
        device: the device model (v2); ``flags`` its feature flags.
        request, recover: as in the callback's rule (``recover`` may be
            :data:`~.schema.RECOVER_CURRENT`).
        state: the device's state before the call; ``fd_open``: QEMU holds a data_fd.
        budget: request failures still allowed (>= 0).

    Returns:
        The distinct outcomes, successes first; never empty.
    """
    table = _table(device, flags)
    error_state, reset_state = device.error, device.reset
    if recover == RECOVER_CURRENT:
        recover = state
    out: list[Outcome] = []

    def recovery(landed: str, used: int, why: str):
        if recover == error_state:
            out.append(Outcome(reset_state, used, True, False, True,
                               f"{why}; recover ERROR: VFIO_DEVICE_RESET -> {reset_state}"))
            return
        entry = table.get((landed, recover))
        if entry is not None and entry.outcome in (PATH, NOOP):
            out.append(Outcome(recover, used, True, False, False, f"{why}; recover {recover}: ok"))
            if entry.outcome == PATH and budget - used > 0:
                out.append(Outcome(reset_state, used + 1, True, False, True,
                                   f"{why}; recover {recover} failed: VFIO_DEVICE_RESET -> {reset_state}"))
        else:
            out.append(Outcome(reset_state, used, True, False, True,
                               f"{why}; recover {recover} rejected (EINVAL): VFIO_DEVICE_RESET -> {reset_state}"))

    entry = table.get((state, request))
    if entry is not None and entry.outcome == NOOP:
        out.append(Outcome(state, 0, False, False, False, f"{request}: ok (no-op)"))
    elif entry is not None and entry.outcome == PATH:
        opens = _opens(device, state, request)
        if opens and fd_open:
            out.append(Outcome(request, 0, True, True, False, f"{request}: ok, but data_fd out of sync (-EBADF)"))
        else:
            out.append(Outcome(request, 0, False, opens, False, f"{request}: ok"))
        if budget > 0:
            landings = [state] + [s for s in entry.path[:-1] if s != state] + [error_state]
            for landed in dict.fromkeys(landings):
                recovery(landed, 1, f"{request} failed (left {landed})")
    else:
        recovery(state, 0, f"{request} rejected (EINVAL)")
    return tuple(dict.fromkeys(out))


def _effect(o: Outcome) -> tuple:
    return o.state, o.failures, o.error, o.opens_fd


class Local(NamedTuple):
    """One device in a global state: its ``state``, whether it has been
    ``called`` in the current phase, and whether QEMU holds its data_fd.
    (A named tuple: hashed in C, as the explicit product hashes millions.)"""

    state: str
    called: bool
    fd: bool


class Global(NamedTuple):
    """A global state: phase index ``pc``, error reported, failures used, devices."""

    pc: int
    error: bool
    failures: int
    devices: tuple[Local, ...]


@dataclass(frozen=True)
class Step:
    """One transition: ``device`` (index) called by ``phase``, or the move
    to the next phase (``device`` None); ``text`` says it in QEMU's terms."""

    phase: str
    device: int | None
    text: str
    outcome: Outcome | None = None


class System:
    """The composed system of one run over N devices.

    Args:
        orch: the orchestration model; ``run`` one of its runs.
        flags: one flag set per device (N = ``len(flags)`` >= 1).
        failures: the failure budget F >= 0 (request failures in the whole run).

    Attributes:
        phases: the run's phases, then each abort sequence; ``end_ok`` and
            ``end_abort`` are the two end markers (phase indices past them).
        next_ok, next_err: phase index -> the phase after it, normally and
            after an error (for ``on_error`` phases of the run itself).
        abort_start: phase index -> where ``abort-now`` jumps.

    Raises:
        ValueError: a flag set the device model does not define, or N < 1.
    """

    def __init__(self, orch: Orchestration, run: Run, flags: tuple[frozenset[str], ...], failures: int):
        if not flags:
            raise ValueError("an orchestration needs at least one device")
        for f in flags:
            device_config(orch.device, f)
        self.orch, self.run, self.device = orch, run, orch.device
        self.flags, self.budget, self.n = tuple(flags), failures, len(flags)
        self.outcomes = functools.lru_cache(maxsize=4096)(self._outcomes)
        segments = [(False, run.phases), (True, run.abort)]
        segments += [(True, seq) for seq in (run.abort_from or {}).values()]
        self.phases: list[Phase] = []
        starts = []
        for _, seq in segments:
            starts.append(len(self.phases))
            self.phases.extend(seq)
        self.end_ok, self.end_abort = len(self.phases), len(self.phases) + 1
        self.next_ok, self.next_err, self.abort_start, self.in_abort = {}, {}, {}, {}
        for k, (is_abort, seq) in enumerate(segments):
            end = self.end_abort if is_abort else self.end_ok
            for i in range(len(seq)):
                pc = starts[k] + i
                self.in_abort[pc] = is_abort
                self.next_ok[pc] = pc + 1 if i + 1 < len(seq) else end
        default_abort = starts[1] if run.abort else self.end_abort
        for i, ph in enumerate(run.phases):
            dest = default_abort
            if ph.name in (run.abort_from or {}):
                k = 2 + list(run.abort_from).index(ph.name)
                dest = starts[k] if run.abort_from[ph.name] else self.end_abort
            self.abort_start[i] = dest
            self.next_err[i] = dest if ph.on_error == "abort" else self.next_ok[i]
        for pc in range(len(run.phases), len(self.phases)):
            self.next_err[pc] = self.next_ok[pc]
        self._vm = self._vm_states()

    def _vm_states(self) -> dict:
        """pc -> the VM is stopped in the states of phase ``pc`` (True/False),
        or None where the phases leading there disagree (then not checked).
        The VM runs at open; a ``vm = "stops"`` phase stops it once its
        callbacks are done, a ``vm = "starts"`` phase starts it (QEMU 10
        system/runstate.c: do_vm_stop() pauses the vCPUs, then
        vm_state_notify(false); vm_start() runs vm_state_notify(true))."""
        preds: dict = {0: set()}
        for pc in range(self.end_ok):
            dests = {self.next_ok[pc], self.next_err[pc]}
            if self.phases[pc].on_error == "abort-now" and not self.in_abort[pc]:
                dests.add(self.abort_start[pc])
            for dest in dests:
                preds.setdefault(dest, set()).add(pc)
        vm: dict = {}

        def after(pc: int):
            state = vm.get(pc)
            return True if self.phases[pc].vm == "stops" else state

        for pc in range(self.end_abort + 1):
            if pc < self.end_ok and self.phases[pc].vm == "starts":
                vm[pc] = False
                continue
            if pc == 0:
                vm[pc] = False
                continue
            origins = {after(q) for q in preds.get(pc, ()) if q < pc}
            vm[pc] = origins.pop() if len(origins) == 1 else None
        return vm

    def vm_stopped(self, pc: int) -> bool:
        """True when the VM is stopped (and its stop callbacks done) in phase ``pc``."""
        return bool(self._vm.get(pc))

    # -- one device -------------------------------------------------------
    def phase_name(self, pc: int) -> str:
        """The phase at ``pc`` (``end`` / ``end (aborted)`` for the markers)."""
        if pc == self.end_ok:
            return "end"
        if pc == self.end_abort:
            return "end (aborted)"
        return self.phases[pc].name

    def rule(self, pc: int, flags: frozenset[str], state: str):
        """The rule device state ``state`` takes in phase ``pc`` (None: not called)."""
        if pc >= self.end_ok:
            return None
        return self.phases[pc].rule_for(state, flags, self.run.runstate)

    def _outcomes(self, pc: int, flags: frozenset[str], state: str, fd: bool, budget: int) -> tuple[Outcome, ...]:
        """The outcomes of calling phase ``pc``'s callback on such a device
        (empty when no rule applies); :meth:`outcomes` is this, cached (bounded)."""
        rule = self.rule(pc, flags, state)
        return () if rule is None else callback_outcomes(self.device, flags, rule.request, rule.recover, state,
                                                         fd, budget)

    def enter(self, pc: int, locals_: tuple[Local, ...], close_fds: bool) -> tuple[Local, ...]:
        """The devices on entering phase ``pc``: called = no rule applies."""
        return tuple(Local(d.state, self.rule(pc, f, d.state) is None, d.fd and not close_fds)
                     for d, f in zip(locals_, self.flags))

    # -- the composed system ----------------------------------------------
    def initial(self) -> Global:
        """The state at open: every device in the device model's initial state."""
        start = tuple(Local(self.device.initial, False, False) for _ in range(self.n))
        return Global(0, False, 0, self.enter(0, start, False))

    def successors(self, g: Global) -> list[tuple[Step, Global]]:
        """Every step from ``g`` (empty at the end markers)."""
        if g.pc >= self.end_ok:
            return []
        phase = self.phases[g.pc]
        out = []
        pending = [i for i, d in enumerate(g.devices) if not d.called]
        for i in pending:
            d, flags = g.devices[i], self.flags[i]
            for o in self.outcomes(g.pc, flags, d.state, d.fd, self.budget - g.failures):
                devices = list(g.devices)
                devices[i] = Local(o.state, True, d.fd or o.opens_fd)
                error = g.error or o.error
                text = f"{phase.callback}(dev{i}) ({phase.name}): {o.story}"
                if o.error and phase.on_error == "abort-now" and not self.in_abort[g.pc]:
                    dest = self.abort_start[g.pc]
                    text += f"; the error aborts the migration -> {self.phase_name(dest)}"
                    nxt = Global(dest, error, g.failures + o.failures,
                                 self.enter(dest, tuple(devices), phase.closes_data_fd))
                else:
                    nxt = Global(g.pc, error, g.failures + o.failures, tuple(devices))
                out.append((Step(phase.name, i, text, o), nxt))
        if not pending:
            dest = self.next_err[g.pc] if g.error else self.next_ok[g.pc]
            why = " (an error was reported: abort)" if g.error and dest != self.next_ok[g.pc] else ""
            text = f"{phase.event or phase.name} done{why} -> {self.phase_name(dest)}"
            nxt = Global(dest, g.error, g.failures, self.enter(dest, g.devices, phase.closes_data_fd))
            out.append((Step(phase.name, None, text), nxt))
        return out

    def replay(self, moves) -> list[tuple[Step | None, Global]]:
        """The concrete trace of an engine's counted ``moves`` from the state at
        open: ``(step, state)`` pairs, the first step None. A move is None
        (to the next phase) or ``(devices, local, outcome, k)``: k devices of
        ``devices`` in ``local`` called with ``outcome``'s effect. Raises
        RuntimeError when a move is no step of the system (an engine bug)."""
        g = self.initial()
        out: list = [(None, g)]
        for move in moves:
            for _ in range(1 if move is None else move[3]):
                device = None if move is None else next(i for i in move[0] if g.devices[i] == move[1])
                found = next(((s, h) for s, h in self.successors(g) if s.device == device
                              and (device is None or _effect(s.outcome) == _effect(move[2]))), None)
                if found is None:
                    raise RuntimeError(f"trace step {len(out)} does not decode to a step of the system")
                out.append(found)
                g = found[1]
        return out

    # -- properties ---------------------------------------------------------
    def p2p_checked(self, pc: int) -> bool:
        """True when P2P safety is checked in phase ``pc``: everywhere, except
        before the run's ``p2p_from`` phase (the destination: no device has
        been programmed by a guest before the VM first starts) and at the end
        of an abort without abort phases or target (QEMU exits)."""
        if pc == self.end_abort and not self.run.abort and not self.run.abort_target:
            return False  # QEMU exits: the kernel closes and resets every device
        first = self.run.p2p_from
        if not first:
            return True
        names = [ph.name for ph in self.run.phases]
        return pc >= len(names) or pc >= names.index(first)

    def states_of(self, g: Global) -> dict[str, str]:
        """``{"dev0": state, ...}`` of a global state."""
        return {f"dev{i}": d.state for i, d in enumerate(g.devices)}

    def allowed_end(self, pc: int) -> frozenset[str] | None:
        """States a device may end in at end marker ``pc`` (None: no requirement)."""
        target = self.run.target if pc == self.end_ok else self.run.abort_target
        if not target:
            return None
        return target | ({self.device.reset} if self.budget > 0 else frozenset())

    def session_states(self) -> frozenset[str]:
        """States that hold a data session (the device model's session groups)."""
        return frozenset(s for g in self.device.session_groups for s in self.device.groups[g])

    def progress_problem(self, g: Global) -> str | None:
        """Why end state ``g`` breaks progress, or None (also None before the end)."""
        if g.pc < self.end_ok:
            return None
        allowed = self.allowed_end(g.pc)
        if allowed is None:
            return None  # QEMU exits: the kernel closes every fd
        sessions = self.session_states()
        for i, d in enumerate(g.devices):
            if d.state not in allowed:
                return f"dev{i} ends the run in {d.state}, not in {' or '.join(sorted(allowed))}"
            if d.fd:
                return f"dev{i} ends the run with its data_fd still open"
            if d.state in sessions:
                return f"dev{i} ends the run in {d.state} with a data session open"
        return None


@dataclass(frozen=True)
class Configuration:
    """One configuration of an orchestration model as the engines take it
    (hashable: a cache key): the ``run``'s name, one flag set per device
    (N >= 1), the failure budget F >= 0, and the report's ``label``
    (``migrate-source N=2 F=1 [STOP_COPY,P2P,PRE_COPY x2]``, see :meth:`of`)."""

    run: str
    flags: tuple[frozenset[str], ...]
    failures: int
    label: str

    @classmethod
    def of(cls, orch: Orchestration, run: str, flags, failures: int) -> Configuration:
        """The configuration of ``run`` over ``flags`` with budget ``failures``."""
        order, flags = orch.device.flag_order, tuple(flags)
        sets = "; ".join(f"{','.join(x for x in order if x in f)} x{k}" for f, k in Counter(flags).items())
        return cls(run, flags, failures, f"{run} N={len(flags)} F={failures} [{sets}]")


@functools.lru_cache(maxsize=8)
def system_of(orch: Orchestration, config: Configuration) -> System:
    """The :class:`System` of ``config``, built once for both engines (KeyError: no such run)."""
    return System(orch, orch.run(config.run), config.flags, config.failures)
