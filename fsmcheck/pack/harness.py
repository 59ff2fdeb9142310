"""Driving a device through its adapter, recording every operation.

:class:`Harness` wraps an adapter's device: each call runs with a time
limit (an adapter that hangs fails the test instead of stalling the run),
errors that are not :class:`~fsmcheck.adapters.contract.DriverError` become
readable failures, and every operation is logged so that a violation prints
the exact request sequence from open.

Calls run on one daemon worker thread per device (or inline, for adapters
that declare their devices pure Python: see below). A call that does not
return within the time limit is abandoned: the device (and its adapter) is
marked *lost*, no further call is sent to it, and every later test of that
adapter fails at once ("lost after a hang") instead of starting another
worker. So a spinning adapter costs at most one stuck thread per adapter,
and a daemon thread never keeps the interpreter from exiting. The harness
closes every data-session handle it was given (``close_handle``) and the
device when the test ends.

Why a worker and not the test's own thread: a call made on the test's
thread that hangs inside C (an ioctl the driver never completes, a lock, a
sleep) can be neither interrupted nor abandoned -- the test would never
fail and the run never end. A worker costs a handoff each way per call
(through a pair of locks the worker keeps for its life), and on a loaded
machine each handoff waits for the scheduler. So an adapter that *declares*
its devices pure Python (``adapter.pure_python`` is True: every call runs
Python bytecode in this process, never a blocking system call, lock or C
loop -- fsmcheck's own reference and mutant drivers) has its calls made on
the test's thread, and one watchdog thread per process (it ends when no
such device has been open for a moment) interrupts a call that overruns
its limit with an asynchronous exception, which bytecode always lets
through: the test fails, the device is given up, the run stops, as with a
worker. Every other adapter -- the Linux ioctl adapter, a user's, a test
double that blocks -- keeps the worker. ``bench/bench_pack.py`` measures
the whole pack through the harness against a bare pass-through.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from ..adapters.contract import DriverError
from . import calls
from .calls import DEFAULTS, LOST, adapter_lost, deadline_left
from .cited import rule_id_of

__all__ = ["AdapterFault", "Harness", "ProtocolViolation", "Outcome", "DEFAULTS", "LOST", "deadline_left",
           "adapter_lost", "sequence_lines"]

class ProtocolViolation(AssertionError):
    """The device did something the protocol forbids (a test failure).

    Attributes:
        rule: the rule broken, as its source words it ("" when none is cited).
        rule_id: the catalogue rule it breaks (:class:`~.cited.Cited`; "" when none).
    """

    def __init__(self, message: str, rule: str = ""):
        super().__init__(message)
        self.rule = rule
        self.rule_id = rule_id_of(rule)


class AdapterFault(AssertionError):
    """The adapter itself misbehaved: it raised a non-driver exception, hung,
    or returned a value of the wrong type (a test failure, not a crash)."""


@dataclass(frozen=True)
class Outcome:
    """What a call gave: ``value`` or the errno name in ``error``."""

    value: object = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


#: A run of at least this many identical log entries is printed as one line.
_RUN = 3


def sequence_lines(log: list[str]) -> list[str]:
    """The numbered lines of a reproduction: each operation of ``log`` with
    its step number, a run of :data:`_RUN` or more identical operations as
    one line with its steps and count (``12-262159. write(35, 1 bytes) -> ok
    (x262148)``), so a reproduction stays readable and small."""
    out, step = [], 1
    for entry, run in itertools.groupby(log):
        n = len(list(run))
        out += ([f"    {step}-{step + n - 1}. {entry}  (x{n})"] if n >= _RUN
                else [f"    {k}. {entry}" for k in range(step, step + n)])
        step += n
    return out


@dataclass
class Harness:
    """One device under test, with the log of what was done to it.

    Attributes:
        device: the adapter's device.
        names: state value -> name, for readable logs.
        log: one line per operation, from open.
        timeout: seconds per adapter call.
        adapter: the adapter that opened the device; a hang marks it lost.
        label: the flag-set label (``"STOP_COPY|P2P"``, ``"v1"``) for advisories.
        handles: every data-session handle the device gave, in order; the
            ones still open are closed (``close_handle``) by :meth:`close`.
    """

    device: object
    names: dict[int, str]
    log: list[str] = field(default_factory=list)
    timeout: float | None = None
    adapter: object = None
    label: str = ""
    handles: list[int] = field(default_factory=list)
    reset_rule: str = ""
    _worker: calls._Worker | None = None
    _lost: str | None = None
    _inline: bool = False      # calls on the test's thread, watched by calls._WATCHDOG
    _watched: bool = False     # calls._WATCHDOG.enter() done, leave() due at close

    def __post_init__(self):
        if self.timeout is None:
            self.timeout = DEFAULTS["timeout"]
        self._inline = calls._SET_ASYNC_EXC is not None and getattr(self.adapter, "pure_python", False) is True

    def _call(self, what: str, fn, *args) -> Outcome:
        if self._lost is not None:
            raise AdapterFault(self.report(f"{what} not sent: the device was given up ({self._lost})"))
        if calls._DIRECT:
            finished, ok, value = calls._direct(fn, args)
            return self._outcome(what, ok, value)
        limit = self.timeout
        left = deadline_left()
        budget_bound = left is not None and left < limit
        if budget_bound:
            limit = max(left, 0.0)
        if self._inline:
            finished, ok, value = self._run_inline(fn, args, limit)
        else:
            if self._worker is None or self._worker.busy:
                if self._worker is not None:  # a wait for its last call was interrupted: never reuse it
                    self._worker.abandon()
                self._worker = calls._Worker()
            finished, ok, value = self._worker.run(fn, args, limit)
        if not finished:
            why = (f"the run budget ran out during {what}" if budget_bound
                   else f"{what} did not return within {self.timeout:g} s")
            self._give_up(why)
            self.log.append(f"{what} -> did not return within {limit:g} s")
            raise AdapterFault(self.report(f"the adapter hung in {what}" if not budget_bound else
                                           f"the run budget (--fsmcheck-budget) ran out in {what}")) from None
        return self._outcome(what, ok, value)

    def _run_inline(self, fn, args, limit: float):
        """``calls._Worker.run`` on the test's thread, watched by :data:`calls._WATCHDOG`."""
        if not self._watched:
            calls._WATCHDOG.enter()
            self._watched = True
        slot = id(self)
        entry = calls._WATCHDOG.arm(slot, time.monotonic() + limit)
        try:
            try:
                ok, value = True, fn(*args)
            except calls._Hung:
                raise
            except BaseException as exc:  # handed to _outcome, as from a worker
                ok, value = False, exc
            finally:
                overran = calls._WATCHDOG.disarm(slot, entry)
        except calls._Hung:  # raised in the call, or in disarm before it cleared it
            overran = calls._WATCHDOG.disarm(slot, entry) or True
        if overran:
            return False, False, None
        return True, ok, value

    def _outcome(self, what: str, ok: bool, value) -> Outcome:
        """The :class:`Outcome` of a call that returned ``value`` (``ok``) or raised it."""
        if ok:
            return Outcome(value=value)
        if isinstance(value, DriverError):
            return Outcome(error=value.errno)
        if isinstance(value, Exception):  # the adapter's own bug: a readable failure
            self.log.append(f"{what} -> raised {type(value).__name__}: {value}")
            raise AdapterFault(self.report(f"the adapter raised {type(value).__name__} in {what}: {value}")) from None
        raise value  # KeyboardInterrupt, SystemExit

    def _give_up(self, why: str) -> None:
        """Mark the device and its adapter lost: no call is sent to them again
        (the hung worker thread is abandoned, not joined)."""
        self._lost = why
        if self._worker is not None:
            self._worker.abandon()  # a daemon; it gets no further call and ends if the call returns
        self._worker = None
        LOST[id(self.device)] = why
        if self.adapter is not None:
            LOST[id(self.adapter)] = why

    def name(self, value) -> str:
        return self.names.get(value, str(value)) if isinstance(value, int) else repr(value)

    # -- v2 operations ---------------------------------------------------------
    def get(self) -> int:
        out = self._call("GET", self.device.get_state)
        if not out.ok:
            self.log.append(f"GET -> {out.error}")
            raise ProtocolViolation(self.report(f"GET failed with {out.error}"))
        if not isinstance(out.value, int) or isinstance(out.value, bool):
            raise AdapterFault(self.report(f"GET returned {out.value!r}, not an int"))
        self.log.append(f"GET -> {self.name(out.value)}")
        return out.value

    def set(self, value: int) -> Outcome:
        out = self._call(f"SET {self.name(value)}", self.device.set_state, value)
        if out.ok and out.value is not None and (not isinstance(out.value, int) or isinstance(out.value, bool)):
            raise AdapterFault(self.report(f"SET returned {out.value!r}: a handle must be an int or None"))
        if out.ok and out.value is not None:
            self.handles.append(out.value)
        self.log.append(f"SET {self.name(value)} -> " + (out.error or (f"ok, handle {out.value}" if out.value is not None else "ok")))
        return out

    def reset(self) -> None:
        out = self._call("RESET", self.device.reset)
        self.log.append("RESET -> " + (out.error or "ok"))
        if not out.ok:  # cites the protocol's reset rule when the suite set one (reset_rule), so errata can name it
            raise ProtocolViolation(self.report(f"reset failed with {out.error}", rule=self.reset_rule),
                                    self.reset_rule)

    def read(self, handle: int, size: int = 4096) -> Outcome:
        out = self._call(f"read({handle})", self.device.read, handle, size)
        if out.ok and not isinstance(out.value, (bytes, bytearray)):
            raise AdapterFault(self.report(f"read returned {type(out.value).__name__}, not bytes"))
        self.log.append(f"read({handle}, {size}) -> " + (out.error or f"{len(out.value)} bytes"))
        return out

    def write(self, handle: int, data: bytes) -> Outcome:
        """write(): ``value`` is the number of bytes accepted (contract:
        ``0 <= n <= len(data)``; a count over ``len(data)`` is the driver's
        violation, which :func:`fsmcheck.pack.v2_checks.write_fd` fails)."""
        out = self._call(f"write({handle})", self.device.write, handle, data)
        if out.ok and (not isinstance(out.value, int) or isinstance(out.value, bool) or out.value < 0):
            raise AdapterFault(self.report(f"write returned {out.value!r}: expected the bytes accepted, "
                                           f"0..{len(data)}"))
        self.log.append(f"write({handle}, {len(data)} bytes) -> "
                        + (out.error or (f"{out.value} accepted" if out.value != len(data) else "ok")))
        return out

    def precopy_info(self, handle: int) -> Outcome:
        """VFIO_MIG_GET_PRECOPY_INFO: ``(initial_bytes, dirty_bytes)``."""
        out = self._call(f"precopy_info({handle})", self.device.precopy_info, handle)
        if out.ok and not (isinstance(out.value, tuple) and len(out.value) == 2
                           and all(isinstance(v, int) and v >= 0 for v in out.value)):
            raise AdapterFault(self.report(f"precopy_info returned {out.value!r}, not (initial_bytes, dirty_bytes)"))
        self.log.append(f"precopy_info({handle}) -> " + (out.error or
                        f"initial_bytes {out.value[0]}, dirty_bytes {out.value[1]}"))
        return out

    def state_digest(self) -> bytes | None:
        """The device's optional ``state_digest()`` (the contract): bytes
        that are equal exactly when two devices' internal states are, or
        None when the device has no such method. The pack calls it only
        where the protocol makes the device still (STOP, STOP_COPY)."""
        fn = getattr(self.device, "state_digest", None)
        if fn is None:
            return None
        out = self._call("state_digest", fn)
        if not out.ok or not isinstance(out.value, (bytes, bytearray)):
            raise AdapterFault(self.report(f"state_digest gave {out.error or repr(out.value)}, not bytes"))
        self.log.append(f"state_digest -> {len(out.value)} bytes")
        return bytes(out.value)

    # -- v1 operations -----------------------------------------------------------
    def read_header(self, offset: int, width: int) -> Outcome:
        out = self._call(f"read_header({offset}, {width})", self.device.read_header, offset, width)
        self.log.append(f"read_header(offset={offset}, width={width}) -> "
                        + (out.error or (f"{out.value:#x}" if isinstance(out.value, int) else repr(out.value))))
        return out

    def write_header(self, offset: int, width: int, value: int) -> Outcome:
        out = self._call(f"write_header({offset}, {width})", self.device.write_header, offset, width, value)
        self.log.append(f"write_header(offset={offset}, width={width}, {value:#x}) -> " + (out.error or "ok"))
        return out

    def read_data(self, offset: int, size: int) -> Outcome:
        out = self._call("read_data", self.device.read_data, offset, size)
        self.log.append(f"read_data({offset:#x}, {size}) -> " + (out.error or f"{len(out.value)} bytes"))
        return out

    def write_data(self, offset: int, data: bytes) -> Outcome:
        out = self._call("write_data", self.device.write_data, offset, data)
        self.log.append(f"write_data({offset:#x}, {len(data)} bytes) -> " + (out.error or "ok"))
        return out

    def close_handles(self) -> None:
        """close_handle() every handle the device gave (the user closes each
        data_fd when finished; vfio.h). An error (EBADF: already closed) is
        logged, not failed."""
        while self.handles:
            handle = self.handles.pop(0)
            closer = getattr(self.device, "close_handle", None)
            if closer is None:
                return
            out = self._call(f"close_handle({handle})", closer, handle)
            self.log.append(f"close_handle({handle}) -> " + (out.error or "ok"))

    def close(self) -> None:
        """Close the handles, then the device; stop the worker thread. Nothing
        is sent to a lost device."""
        try:
            if self._lost is None:
                try:
                    self.close_handles()
                finally:
                    self._call("close", self.device.close)
        finally:
            if self._worker is not None:
                if self._worker.busy:
                    self._worker.abandon()
                else:
                    self._worker.stop()
                self._worker = None
            if self._watched:
                self._watched = False
                calls._WATCHDOG.leave()

    # -- reporting -----------------------------------------------------------
    def report(self, headline: str, *, expected: str = "", observed: str = "", rule: str = "") -> str:
        """A protocol-violation message: what, the sequence from open, expected
        vs observed, and the rule's source."""
        lines = [headline]
        if rule:
            rule_id = rule_id_of(rule)
            lines.append(f"  rule: {rule}" + (f" [{rule_id}]" if rule_id else ""))
        if expected or observed:
            lines.append(f"  expected: {expected}")
            lines.append(f"  observed: {observed}")
        lines.append("  sequence from open:")
        lines += sequence_lines(self.log)
        return "\n".join(lines)

    def violation(self, headline: str, *, expected: str, observed: str, rule: str) -> ProtocolViolation:
        return ProtocolViolation(self.report(headline, expected=expected, observed=observed, rule=rule), rule)
