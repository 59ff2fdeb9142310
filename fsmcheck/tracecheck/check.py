"""Checking one trace against a model, streaming, in constant memory.

:func:`check_trace` reads the events of an opened trace
(:func:`.detect.open_trace`) once (with ``--flags auto`` a first pass
collects the states each device was recorded in or asked for and the
evidence of its P2P support, :mod:`.flags`, spooling what it reads; the check
replays the spool, so a pipe is read once), replays QEMU's
semantics per device (:mod:`.semantics`), judges each request, record and
data event against the model (:mod:`.device`), and after every recorded
state change evaluates the P2P quiesce rule across the devices
(:func:`fsmcheck.semantics.p2p.initiates` / ``accepts``, kept incrementally:
O(devices) per record) and, when the trace shows the VM's run state
(``vm_state_notify``, QMP ``STOP``/``RESUME``), that no device enters a
running state while the VM is stopped (rule ``vm-stopped``).

Memory: per device its state, its session and at most ``max_rows``
requests and recorded states for the report (the totals are counted); a
window of ``context`` lines before each finding and the ``context`` lines
after it; at most ``max_violations`` findings (the rest are counted).

A device enters the cross-device P2P rule at its first recorded state: a
destination QEMU's devices sit in RUNNING from open until ``vfio_load_setup``
asks for RESUMING, but the guest has not run and the trace records no state
for them, so they are not judged before the trace says where they are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from ..model.schema import Config, Model
from ..semantics.combination import NOOP, PATH
from ..semantics.p2p import QuiesceViolation, accepts, initiates, lacks_p2p
from .detect import TraceSource
from .device import DeviceModel, Tables
from .events import (IMPLIED, LOAD_DATA, LOAD_END, MALFORMED, OTHER, RECORD, REQUEST, SAVE_DATA, SAVE_END, STEP,
                     VM, VMSTATE, Event)
from .flags import HAS, LACKS, UNKNOWN, P2PEvidence, auto_flags, flags_label
from .qemu_log import CHECKED, IGNORED
from .rules import source_of
from .semantics import OK, RECOVERED, RESET, UNEXPECTED, QemuDevice, Request

__all__ = ["Violation", "DeviceReport", "TraceReport", "check_trace"]


@dataclass
class Violation:
    """A finding.

    Attributes:
        rule: the rule id (:data:`fsmcheck.tracecheck.rules.RULES`).
        path: the trace file; line: the 1-based line it points at.
        device: the device concerned (``""`` for a line-format finding).
        message: what is wrong, in one sentence.
        source: the sentence the rule comes from
            (:func:`fsmcheck.tracecheck.rules.source_of`).
        context: ``(line, text)`` of the lines around it (before, itself, after).
    """

    rule: str
    path: str
    line: int
    device: str
    message: str
    source: str = ""
    context: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class DeviceReport:
    """What the report shows of one device.

    Attributes:
        name: the device; first_line: the line it first appears on.
        flags: its flag set; flags_from: ``given`` (--flags), ``auto`` or
            ``trace`` (declared by an ITF trace).
        states: its recorded states in order, repeats collapsed (the first
            ``max_rows``); states_total: how many there were.
        requests: one dict per request (the first ``max_rows``): line,
            current, requested, recover, outcome, recorded, accepted, path.
        requests_total: how many requests there were.
    """

    name: str
    first_line: int
    flags: frozenset[str]
    flags_label: str
    flags_from: str
    p2p: str = UNKNOWN
    states: list[str] = field(default_factory=list)
    states_total: int = 0
    requests: list[dict] = field(default_factory=list)
    requests_total: int = 0


@dataclass
class TraceReport:
    """The result of checking one trace.

    Attributes:
        path, format: the file and its detected format.
        model: the model's name.
        lines: lines read; events: lines that were known events; other:
            lines kept and ignored.
        devices: one :class:`DeviceReport` per device, in order of appearance.
        violations: the findings (the first ``max_violations``);
            violations_total: how many there were.
        p2p: ``checked`` or why the P2P quiesce rule was not run.
        timeline: ``(line, device, state)`` for each recorded state change
            across the devices, in trace order (the first ``max_rows``);
            timeline_total: how many there were.
        vm: ``checked`` or why the VM run-state rule was not run.
        unclassified: ``vfio_*`` event name -> lines of it that are neither
            checked nor deliberately ignored (an event of another QEMU).
    """

    path: str
    format: str
    model: str
    lines: int = 0
    events: int = 0
    other: int = 0
    devices: list[DeviceReport] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    violations_total: int = 0
    p2p: str = "checked"
    timeline: list[tuple[int, str, str]] = field(default_factory=list)
    timeline_total: int = 0
    vm: str = "checked"
    unclassified: dict[str, int] = field(default_factory=dict)


class _Dev:
    __slots__ = ("qemu", "dm", "report", "pending_text", "pending_entry", "last")

    def __init__(self, qemu: QemuDevice, dm: DeviceModel, report: DeviceReport):
        self.qemu, self.dm, self.report = qemu, dm, report
        self.last = ""
        self.pending_text = ""
        self.pending_entry = None


class _Checker:
    def __init__(self, model: Model, source: TraceSource, flags: frozenset[str] | None,
                 seen: dict[str, set[str]], evidence: P2PEvidence | None, max_rows: int, max_violations: int,
                 context: int):
        self.model, self.source, self.flags, self.seen, self.evidence = model, source, flags, seen, evidence
        self.max_rows, self.max_violations, self.context = max_rows, max_violations, context
        self.tables = Tables(model)
        self.names = frozenset(model.state_names)
        profiles = [p.name for p in model.profiles]
        self.profile = source.profile if source.profile in profiles else profiles[0]
        self.report = TraceReport(str(source.path), source.format, model.name)
        self.devices: dict[str, _Dev] = {}
        self.recorded: dict[str, str] = {}
        # The P2P quiesce rule, kept incrementally (each recorded change costs
        # O(devices), not O(devices^2)): the devices that may initiate P2P DMA
        # and those that cannot take it, in order of first record.
        self.initiating: dict[str, None] = {}
        self.blocked: dict[str, None] = {}
        # The VM's run state: None until the trace says (vm_state_notify, STOP, RESUME).
        self.vm: str | None = None
        self.vm_line = 0
        self.notified: dict[str, int] = {}
        self.window: deque[tuple[int, str]] = deque(maxlen=context + 1)
        self.awaiting: list[list] = []
        if model.p2p is None:
            self.report.p2p = f"not run: model {model.name} declares no [p2p] rule"
            self.report.vm = f"not run: model {model.name} declares no [p2p] rule (its initiating group " \
                             "names the running states)"

    # -- findings ----------------------------------------------------------
    def violation(self, rule: str, line: int, device: str, message: str,
                  context: list[tuple[int, str]] | None = None) -> None:
        self.report.violations_total += 1
        if len(self.report.violations) >= self.max_violations:
            return
        v = Violation(rule, str(self.source.path), line, device, message, source_of(self.model, rule),
                      list(self.window) if context is None else context)
        self.report.violations.append(v)
        if context is None and self.context:
            self.awaiting.append([v, self.context])

    # -- devices -----------------------------------------------------------
    def device(self, name: str, line: int) -> _Dev:
        dev = self.devices.get(name)
        if dev is None:
            model = self.model
            if self.flags is not None:
                flags, how = self.flags, "given"
            elif name in self.source.flags:
                flags, how = self.source.flags[name], "trace"
            else:
                flags, how = auto_flags(model, self.seen.get(name, ())), "auto"
            if model.p2p is None or model.p2p.flag is None:
                p2p = UNKNOWN
            elif how == "auto" and self.evidence is not None:
                p2p = self.evidence.of(name)
            else:
                p2p = HAS if model.p2p.flag in flags else LACKS
            label = flags_label(model, flags) + (" (P2P not determined)" if p2p == UNKNOWN and how == "auto"
                                                 and model.p2p is not None else "")
            report = DeviceReport(name, line, flags, label, how, p2p)
            dm = DeviceModel(name, Config(flags, self.profile, model.flag_order), self.tables, model.initial)
            dev = self.devices[name] = _Dev(QemuDevice(model.initial, model.reset, model.error), dm, report)
            self.report.devices.append(report)
        return dev

    def row(self, dev: _Dev, req: Request, accepted: bool, path: tuple[str, ...]) -> None:
        rep = dev.report
        rep.requests_total += 1
        if len(rep.requests) < self.max_rows:
            rep.requests.append({"line": req.line, "current": req.current, "requested": req.requested,
                                 "recover": req.recover, "outcome": req.outcome, "recorded": req.recorded,
                                 "accepted": accepted, "path": list(path)})

    def recorded_state(self, dev: _Dev, line: int) -> None:
        rep, state = dev.report, dev.dm.state
        if dev.last != state:
            dev.last = state
            rep.states_total += 1
            if len(rep.states) < self.max_rows:
                rep.states.append(state)
            self.report.timeline_total += 1
            if len(self.report.timeline) < self.max_rows:
                self.report.timeline.append((line, rep.name, state))
        changed = self.recorded.get(rep.name)
        self.recorded[rep.name] = state
        if self.model.p2p is None or changed == state:
            return
        if self.vm == "stopped" and initiates(self.model, state):
            self.vm_stopped(dev, line, state)
        before = set(self._pairs(rep.name, changed)) if changed is not None else set()
        for key in (self.initiating, self.blocked):
            key.pop(rep.name, None)
        if initiates(self.model, state):
            self.initiating[rep.name] = None
        if not accepts(self.model, state):
            self.blocked[rep.name] = None
        for v in self._pairs(rep.name, state):
            if (v.initiator, v.blocked) not in before:
                self.violation("p2p-quiesce", line, rep.name, str(v))

    def _pairs(self, name: str, state: str) -> list[QuiesceViolation]:
        """The quiesce violations that involve device ``name`` in ``state``
        with the other devices' recorded states
        (:func:`fsmcheck.semantics.p2p.quiesce_violations`, restricted to one device)."""
        model, rec = self.model, self.recorded
        out = []
        if initiates(model, state):
            out += [QuiesceViolation(name, state, b, rec[b]) for b in self.blocked if b != name]
        if not accepts(model, state):
            out += [QuiesceViolation(a, rec[a], name, state) for a in self.initiating if a != name]
        return out

    def vm_stopped(self, dev: _Dev, line: int, state: str) -> None:
        """A device entered ``state`` (it runs) while the VM is stopped."""
        name = dev.report.name
        req = dev.qemu.last
        if req is not None and req.outcome == RESET:
            cause = (f"QEMU reset it after its request {req.current} -> {req.requested} (line {req.line}) failed: "
                     "hw/vfio/migration.c vfio_migration_set_state() calls vfio_migration_set_device_state("
                     "RUNNING) after VFIO_DEVICE_RESET, whatever the VM's run state")
        elif name in self.notified:
            cause = (f"QEMU's migration notifier (line {self.notified[name]}) moved it: hw/vfio/migration.c "
                     "vfio_migration_state_notifier() on MIG_EVENT_PRECOPY_FAILED (a cancelled or failed "
                     "migration, migration/migration.c migrate_fd_cleanup()) calls "
                     "vfio_migration_set_state_or_reset(vbasedev, VFIO_DEVICE_STATE_RUNNING) whatever the "
                     "VM's run state")
        else:
            cause = ("QEMU moves a device to RUNNING outside vm_state_notify() in hw/vfio/migration.c "
                     "vfio_migration_state_notifier() (MIG_EVENT_PRECOPY_FAILED: a cancelled or failed "
                     "migration) and after VFIO_DEVICE_RESET in vfio_migration_set_state(), whatever the "
                     "VM's run state")
        self.violation("vm-stopped", line, name, f"{name} entered {state} while the VM is stopped (since line "
                       f"{self.vm_line}); {cause}")

    def on_vm(self, ev: Event) -> None:
        self.vm, self.vm_line = ev.a, ev.line

    def on_vmstate(self, ev: Event) -> None:
        self.device(ev.device, ev.line)

    # -- judging -----------------------------------------------------------
    def judge_request(self, dev: _Dev, line: int, current: str, requested: str, what: str = "request"):
        entry = dev.dm.entry(current, requested)
        if entry.outcome not in (PATH, NOOP):
            rule = "error-exit" if current == self.model.error else "request-accepted"
            self.violation(rule, line, dev.report.name,
                           f"{what} {current} -> {requested} under {dev.report.flags_label}: {entry.reason}")
        return entry

    def follow(self, dev: _Dev, line: int, entry, state: str) -> None:
        """Move the model's device to ``state`` along ``entry``'s path when it
        leads there, else put it there."""
        if entry is not None and entry.outcome == PATH and entry.path and entry.path[-1] == state:
            dev.dm.move(line, entry.path)
        elif dev.dm.state != state:
            dev.dm.jump(line, state)

    def unresolved(self, dev: _Dev, req: Request) -> None:
        path = tuple(dev.pending_entry.path) if dev.pending_entry is not None else ()
        self.row(dev, req, dev.pending_entry is not None and dev.pending_entry.outcome == PATH, path)
        self.violation("recovery", req.line, dev.report.name,
                       f"request {req.current} -> {req.requested} (recover {req.recover}) failed: no state was "
                       "recorded after it (QEMU records the new state, the recover state, or RUNNING after a "
                       "reset)", [(req.line, dev.pending_text)])
        dev.pending_entry = None

    def on_request(self, ev: Event) -> None:
        names = self.names
        bad = [s for s in (ev.a, ev.b) if s not in names]
        if bad:
            self.violation("event-format", ev.line, ev.device, f"{ev.name}: {bad[0]!r} is not a state of "
                           f"{self.model.name}")
            return
        dev = self.device(ev.device, ev.line)
        left, noop = dev.qemu.request(ev.line, ev.a, ev.b)
        if left is not None:
            self.unresolved(dev, left)
        if noop is not None:
            self.row(dev, noop, True, ())
            return
        dev.pending_entry = self.judge_request(dev, ev.line, dev.qemu.state, ev.a)
        dev.pending_text = ev.text

    def on_record(self, ev: Event) -> None:
        model = self.model
        if ev.a not in self.names:
            self.violation("event-format", ev.line, ev.device,
                           f"{ev.name}: {ev.a!r} is not a state of {model.name}")
            return
        dev = self.device(ev.device, ev.line)
        if ev.b == IMPLIED:  # a QMP event or an old set_state records a change; the request is implied
            current = dev.qemu.state
            dev.qemu.state = ev.a
            entry = self.judge_request(dev, ev.line, current, ev.a, "recorded change")
            req = Request(ev.line, current, ev.a, "", OK, ev.a, ev.line)
            self.row(dev, req, entry.outcome in (PATH, NOOP), tuple(entry.path))
            self.follow(dev, ev.line, entry, ev.a)
            self.recorded_state(dev, ev.line)
            return
        entry, dev.pending_entry = dev.pending_entry, None
        req = dev.qemu.record(ev.line, ev.a)
        if req is None:
            self.violation("recorded-state", ev.line, dev.report.name,
                           f"state {ev.a} recorded with no request before it (QEMU logs "
                           "vfio_migration_set_state first)")
            self.follow(dev, ev.line, dev.dm.entry(dev.dm.state, ev.a), ev.a)
        else:
            path = tuple(entry.path) if entry is not None else ()
            self.row(dev, req, entry is not None and entry.outcome == PATH, path)
            if req.outcome == OK:
                self.follow(dev, ev.line, entry, ev.a)
            elif req.outcome == RECOVERED:
                problem = dev.dm.recovery_problem(req.current, path, req.recover)
                if problem:
                    self.violation("recovery", ev.line, dev.report.name,
                                   f"request {req.current} -> {req.requested} failed and QEMU recovered to "
                                   f"{req.recover}, but {problem}")
                self.follow(dev, ev.line, dev.dm.entry(req.current, ev.a), ev.a)
            elif req.outcome == RESET:
                dev.dm.jump(ev.line, ev.a)
            elif req.outcome == UNEXPECTED:
                self.violation("recorded-state", ev.line, dev.report.name,
                               f"{ev.a} recorded after the request {req.current} -> {req.requested} (recover "
                               f"{req.recover}) of line {req.line}; QEMU records {req.requested} on success, "
                               f"{req.recover if req.recover != model.error else model.reset} after a failure, "
                               f"or {model.reset} after a reset")
                dev.dm.jump(ev.line, ev.a)
        self.recorded_state(dev, ev.line)

    def on_step(self, ev: Event) -> None:
        model = self.model
        if ev.a not in self.names:
            self.violation("event-format", ev.line, ev.device, f"ITF state {ev.a!r} is not a state of {model.name}")
            return
        dev = self.device(ev.device, ev.line)
        current = dev.dm.state
        if ev.b == "open":
            dev.dm.jump(ev.line, ev.a)
        elif ev.b == "request":
            entry = self.judge_request(dev, ev.line, current, ev.a)
            self.row(dev, Request(ev.line, current, ev.a, "", OK, ev.a, ev.line), entry.outcome in (PATH, NOOP),
                     tuple(entry.path))
            self.follow(dev, ev.line, entry, ev.a)
        else:
            want = model.reset if ev.b == "reset" else model.error
            if ev.a != want:
                self.violation("recorded-state", ev.line, dev.report.name,
                               f"a {ev.b} step enters {ev.a}; the model's {ev.b} enters {want}")
            dev.dm.jump(ev.line, ev.a)
        dev.qemu.state = dev.dm.state
        self.recorded_state(dev, ev.line)

    def on_data(self, ev: Event, direction: str) -> None:
        dev = self.device(ev.device, ev.line)
        problem = dev.dm.data_problem(direction)
        if problem:
            what = "save data (read from the data_fd)" if direction == "read" else \
                "load data (written to the data_fd)"
            self.violation("data-session", ev.line, dev.report.name, f"{ev.name}: {what} while {problem}")

    # -- driving -----------------------------------------------------------
    def run(self) -> TraceReport:
        rep = self.report
        handlers = {
            REQUEST: self.on_request, RECORD: self.on_record, STEP: self.on_step,
            SAVE_DATA: lambda ev: self.on_data(ev, "read"), LOAD_DATA: lambda ev: self.on_data(ev, "write"),
            SAVE_END: lambda ev: self.device(ev.device, ev.line).dm.close(ev.line, "read"),
            LOAD_END: lambda ev: self.device(ev.device, ev.line).dm.close(ev.line, "write"),
            MALFORMED: lambda ev: self.violation("event-format", ev.line, ev.device, ev.a),
            VM: self.on_vm, VMSTATE: self.on_vmstate,
        }
        unclassified = rep.unclassified
        window, awaiting = self.window, self.awaiting
        lines = other = 0
        for ev in self.source.events():
            lines = ev.line
            item = (ev.line, ev.text)
            if awaiting:
                for entry in awaiting:
                    entry[0].context.append(item)
                    entry[1] -= 1
                awaiting[:] = [e for e in awaiting if e[1] > 0]
            window.append(item)
            if ev.kind == OTHER:
                other += 1
                name = ev.name
                if name == "vfio_migration_state_notifier" and ev.a == "2":  # MIG_EVENT_PRECOPY_FAILED
                    self.notified[ev.device] = ev.line
                elif name.startswith("vfio_") and name not in IGNORED and name not in CHECKED:
                    unclassified[name] = unclassified.get(name, 0) + 1
                continue
            handlers[ev.kind](ev)
        for dev in self.devices.values():
            left = dev.qemu.flush()
            if left is not None:
                self.unresolved(dev, left)
        if self.model.p2p is not None and self.model.p2p.flag is not None:
            # Devices whose state the trace records (a device seen only in data
            # events has no flag set to judge); a device whose P2P support the
            # trace does not determine is not judged (absence of evidence).
            flag = self.model.p2p.flag
            flags = {name: dev.report.flags | ({flag} if dev.report.p2p != LACKS else set())
                     for name, dev in self.devices.items() if name in self.recorded}
            for name in lacks_p2p(self.model, flags):
                d = self.devices[name].report
                others = ", ".join(n for n in flags if n != name)
                why = "shown by the trace: QEMU stopped it with the VM without its P2P prepare handler" \
                    if d.flags_from == "auto" else d.flags_from
                self.violation("p2p-flag", d.first_line, name,
                               f"{name} runs with flags {d.flags_label} ({why}), without "
                               f"{flag}, beside {others}: it cannot be quiesced while they stop", [])
        if self.vm is None and self.model.p2p is not None:
            rep.vm = "not run: the trace shows no VM run state (trace event vm_state_notify, QMP STOP/RESUME)"
        rep.lines, rep.other = lines, other
        rep.events = lines - other
        return rep


def check_trace(model: Model, source: TraceSource, flags: frozenset[str] | None = None, *,
                max_rows: int = 200, max_violations: int = 500, context: int = 2) -> TraceReport:
    """Check one trace against ``model``.

    Args:
        model: the protocol model (``vfio_v2``).
        source: the opened trace (:func:`fsmcheck.tracecheck.detect.open_trace`).
        flags: the flag set of every device, or None for ``auto`` (an ITF
            trace's own configuration wins over auto).
        max_rows: requests and recorded states kept per device for the report.
        max_violations: findings kept (all are counted).
        context: lines kept before and after each finding.

    Returns:
        The :class:`TraceReport`.

    Raises:
        OSError: the file became unreadable while streaming.
    """
    seen: dict[str, set[str]] = {}
    evidence = None
    if flags is None:
        p2p = model.p2p.flag if model.p2p is not None else None
        evidence = P2PEvidence(frozenset(s for s in model.state_names if p2p in model.state(s).needs)
                               if p2p else frozenset())
        for ev in source.events(keep=True):  # the second pass (the check) replays this one's spool
            if ev.kind in (RECORD, STEP, REQUEST):
                seen.setdefault(ev.device, set()).add(ev.a)
                evidence.state(ev.device, ev.a)
            elif ev.kind == VMSTATE:
                evidence.handler(ev.device, ev.a, ev.b)
    return _Checker(model, source, flags, seen, evidence, max_rows, max_violations, context).run()
