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

import os
import threading
import time
from dataclasses import dataclass, field

from ..adapters.contract import DriverError

__all__ = ["AdapterFault", "Harness", "ProtocolViolation", "Outcome", "DEFAULTS", "LOST", "deadline_left",
           "adapter_lost"]

#: Run-wide settings (the pytest plugin sets them from its options):
#: ``timeout`` is the seconds one adapter call may take before the test fails;
#: ``deadline`` the ``time.monotonic()`` by which the whole run must end
#: (None: no budget).
DEFAULTS = {"timeout": 10.0, "deadline": None}

#: ``id(adapter) or id(device)`` -> why it was given up (a call hung).
LOST: dict[int, str] = {}

#: Private, for measurements only (``bench/bench_pack.py``): call the adapter
#: directly on the test's thread, without a worker, a time limit or a budget
#: -- the bare adapter the harness's cost is measured against. Never set in a
#: real run: a hung call would hang the run.
_DIRECT = False


def deadline_left() -> float | None:
    """Seconds left of the run budget (``--fsmcheck-budget``), or None."""
    deadline = DEFAULTS.get("deadline")
    return None if deadline is None else deadline - time.monotonic()


def adapter_lost(adapter) -> str | None:
    """Why ``adapter`` was given up (an earlier call hung), or None."""
    return LOST.get(id(adapter))


class ProtocolViolation(AssertionError):
    """The device did something the protocol forbids (a test failure).

    Attributes:
        rule: the rule broken, as its source words it ("" when none is cited).
    """

    def __init__(self, message: str, rule: str = ""):
        super().__init__(message)
        self.rule = rule


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


class _Worker:
    """One daemon thread that runs a device's calls in order.

    A call is handed over through two locks the worker owns for its life
    (``_go``: a call is waiting; ``_done``: its result is there), so a call
    costs two thread switches and no allocation -- not a queue, an event and
    a condition per call. :meth:`run` waits at most ``timeout`` seconds; on
    expiry the worker is abandoned (:meth:`abandon`: its thread may spin
    forever, but as a daemon it does not hold the process at exit, and if
    the call ever returns the thread ends) and never given another call.
    """

    def __init__(self):
        self._go = threading.Lock()
        self._go.acquire()
        self._done = threading.Lock()
        self._done.acquire()
        self._job: tuple | None = None
        self._result: tuple = (False, None)
        self._abandoned = False
        #: True from handing a call over until its result is taken: still True
        #: when the wait was interrupted (KeyboardInterrupt), so the worker is
        #: not given another call while one is in flight.
        self.busy = False
        self.thread = threading.Thread(target=self._loop, name="fsmcheck-adapter", daemon=True)
        self.thread.start()

    def _loop(self):
        go, done = self._go, self._done
        while True:
            go.acquire()
            job, self._job = self._job, None
            if job is None or self._abandoned:  # stop(), or given up
                return
            fn, args = job
            try:
                self._result = (True, fn(*args))
            except BaseException as exc:  # handed to the caller
                self._result = (False, exc)
            done.release()

    def run(self, fn, args, timeout: float):
        """Run ``fn(*args)`` on the worker; ``(finished, ok, value_or_exception)``
        (``finished`` False: it did not return within ``timeout`` seconds)."""
        self.busy = True
        self._job = (fn, args)
        self._go.release()
        if not self._done.acquire(True, max(0.0, min(timeout, threading.TIMEOUT_MAX))):
            return False, False, None
        self.busy = False
        ok, value = self._result
        self._result = (False, None)
        return True, ok, value

    def abandon(self):
        """Give the worker up: it gets no further call, and its thread ends
        as soon as the call in progress (if it ever) returns."""
        self._abandoned = True
        self._job = None
        try:
            self._go.release()
        except RuntimeError:  # the call was never picked up: the worker sees _abandoned when it is
            pass

    def stop(self):
        """End the (idle) worker's thread."""
        self._job = None
        self._go.release()


class _Hung(BaseException):
    """Raised asynchronously in a test's thread by :class:`_Watchdog` when an
    inline call overruns its limit (a BaseException: a driver's ``except
    Exception`` does not swallow it)."""


def _async_raiser():
    """``set(thread_ident, exception_class_or_None)`` over the C API's
    ``PyThreadState_SetAsyncExc`` (None clears a pending exception), or None
    where there is none (then every call goes to a worker)."""
    try:
        import ctypes

        api = ctypes.pythonapi.PyThreadState_SetAsyncExc
    except (ImportError, AttributeError):
        return None

    def set_exc(ident: int, exc) -> None:
        api(ctypes.c_ulong(ident), None if exc is None else ctypes.py_object(exc))  # None: NULL, clears

    return set_exc


_SET_ASYNC_EXC = _async_raiser()

#: Seconds the watchdog thread waits, with no inline device open, before it ends.
_LINGER = 0.25


class _Watchdog:
    """One daemon thread for every inline call of the process (see the module
    docstring). A call is *armed* with its deadline (a dict entry under a
    lock: no thread switch); the thread sleeps until the earliest deadline (or
    the default call timeout from now, woken early only when a call is armed
    with a deadline before that), raises :class:`_Hung` in the thread of a
    call past its deadline (again every second until it is disarmed), and
    ends when no inline device has been open for :data:`_LINGER` seconds.
    """

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[int, list] = {}   # slot -> [deadline, thread ident, fired]
        self._users = 0
        self._wake_at = 0.0
        self.thread: threading.Thread | None = None

    def enter(self) -> None:
        """An inline device opens (the thread starts if it is not running)."""
        with self._cond:
            self._users += 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="fsmcheck-watchdog", daemon=True)
                self.thread.start()

    def leave(self) -> None:
        """An inline device closes."""
        with self._cond:
            self._users -= 1
            self._cond.notify()

    def arm(self, slot: int, deadline: float) -> list:
        """Watch the calling thread's call until :meth:`disarm`; its entry."""
        entry = [deadline, threading.get_ident(), False]
        with self._cond:
            self._armed[slot] = entry
            if deadline < self._wake_at:
                self._cond.notify()
        return entry

    def disarm(self, slot: int, entry: list) -> bool:
        """Stop watching; True when the call overran (then any exception still
        pending for the thread is cleared, so none is raised later)."""
        with self._cond:
            if self._armed.get(slot) is entry:
                del self._armed[slot]
            if entry[2]:
                _SET_ASYNC_EXC(entry[1], None)
            return entry[2]

    def _loop(self) -> None:
        idle_since = None
        with self._cond:
            while True:
                now = time.monotonic()
                for entry in self._armed.values():
                    if now >= entry[0]:
                        entry[2] = True
                        entry[0] = now + 1.0
                        _SET_ASYNC_EXC(entry[1], _Hung)
                if self._armed or self._users:
                    idle_since = None
                elif idle_since is None:
                    idle_since = now
                elif now - idle_since >= _LINGER:
                    self.thread = None
                    return
                wake = min([now + DEFAULTS["timeout"], *(e[0] for e in self._armed.values())])
                if not self._users:
                    wake = min(wake, now + _LINGER)
                self._wake_at = wake
                self._cond.wait(min(max(wake - now, 0.0), threading.TIMEOUT_MAX))


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):  # a forked child has no watchdog thread, whatever the parent had
    os.register_at_fork(after_in_child=_WATCHDOG.__init__)


def _direct(fn, args):
    """``_Worker.run`` without the worker (see :data:`_DIRECT`)."""
    try:
        return True, True, fn(*args)
    except BaseException as exc:
        return True, False, exc


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
    _worker: _Worker | None = None
    _lost: str | None = None
    _inline: bool = False      # calls on the test's thread, watched by _WATCHDOG
    _watched: bool = False     # _WATCHDOG.enter() done, leave() due at close

    def __post_init__(self):
        if self.timeout is None:
            self.timeout = DEFAULTS["timeout"]
        self._inline = _SET_ASYNC_EXC is not None and getattr(self.adapter, "pure_python", False) is True

    def _call(self, what: str, fn, *args) -> Outcome:
        if self._lost is not None:
            raise AdapterFault(self.report(f"{what} not sent: the device was given up ({self._lost})"))
        if _DIRECT:
            finished, ok, value = _direct(fn, args)
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
                self._worker = _Worker()
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
        """``_Worker.run`` on the test's thread, watched by :data:`_WATCHDOG`."""
        if not self._watched:
            _WATCHDOG.enter()
            self._watched = True
        slot = id(self)
        entry = _WATCHDOG.arm(slot, time.monotonic() + limit)
        try:
            try:
                ok, value = True, fn(*args)
            except _Hung:
                raise
            except BaseException as exc:  # handed to _outcome, as from a worker
                ok, value = False, exc
            finally:
                overran = _WATCHDOG.disarm(slot, entry)
        except _Hung:  # raised in the call, or in disarm before it cleared it
            overran = _WATCHDOG.disarm(slot, entry) or True
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
        ``0 <= n <= len(data)``)."""
        out = self._call(f"write({handle})", self.device.write, handle, data)
        if out.ok and (not isinstance(out.value, int) or isinstance(out.value, bool)
                       or not 0 <= out.value <= len(data)):
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
                _WATCHDOG.leave()

    # -- reporting -----------------------------------------------------------
    def report(self, headline: str, *, expected: str = "", observed: str = "", rule: str = "") -> str:
        """A protocol-violation message: what, the sequence from open, expected
        vs observed, and the rule's source."""
        lines = [headline]
        if rule:
            lines.append(f"  rule: {rule}")
        if expected or observed:
            lines.append(f"  expected: {expected}")
            lines.append(f"  observed: {observed}")
        lines.append("  sequence from open:")
        lines += [f"    {i + 1}. {entry}" for i, entry in enumerate(self.log)]
        return "\n".join(lines)

    def violation(self, headline: str, *, expected: str, observed: str, rule: str) -> ProtocolViolation:
        return ProtocolViolation(self.report(headline, expected=expected, observed=observed, rule=rule), rule)
