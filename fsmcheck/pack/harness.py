"""Driving a device through its adapter, recording every operation.

:class:`Harness` wraps an adapter's device: each call runs with a time
limit (an adapter that hangs fails the test instead of stalling the run),
errors that are not :class:`~fsmcheck.adapters.contract.DriverError` become
readable failures, and every operation is logged so that a violation prints
the exact request sequence from open.

Calls run on one daemon worker thread per device. A call that does not
return within the time limit is abandoned: the device (and its adapter) is
marked *lost*, no further call is sent to it, and every later test of that
adapter fails at once ("lost after a hang") instead of starting another
worker. So a spinning adapter costs at most one stuck thread per adapter,
and a daemon thread never keeps the interpreter from exiting. The harness
closes every data-session handle it was given (``close_handle``) and the
device when the test ends.
"""

from __future__ import annotations

import queue
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

    :meth:`run` waits at most ``timeout`` seconds; on expiry the worker is
    abandoned (its thread may spin forever, but as a daemon it does not hold
    the process at exit) and never given another call.
    """

    def __init__(self):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="fsmcheck-adapter", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, args, box, done = item
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:  # handed to the caller
                box.append((False, exc))
            done.set()

    def run(self, fn, args, timeout: float):
        """``(finished, ok, value_or_exception)``."""
        box: list = []
        done = threading.Event()
        self._calls.put((fn, args, box, done))
        if not done.wait(timeout):
            return False, False, None
        ok, value = box[0]
        return True, ok, value

    def stop(self):
        self._calls.put(None)


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
    _worker: _Worker | None = None
    _lost: str | None = None

    def __post_init__(self):
        if self.timeout is None:
            self.timeout = DEFAULTS["timeout"]

    def _call(self, what: str, fn, *args) -> Outcome:
        if self._lost is not None:
            raise AdapterFault(self.report(f"{what} not sent: the device was given up ({self._lost})"))
        limit = self.timeout
        left = deadline_left()
        budget_bound = left is not None and left < limit
        if budget_bound:
            limit = max(left, 0.0)
        if self._worker is None:
            self._worker = _Worker()
        finished, ok, value = self._worker.run(fn, args, limit)
        if not finished:
            why = (f"the run budget ran out during {what}" if budget_bound
                   else f"{what} did not return within {self.timeout:g} s")
            self._give_up(why)
            self.log.append(f"{what} -> did not return within {limit:g} s")
            raise AdapterFault(self.report(f"the adapter hung in {what}" if not budget_bound else
                                           f"the run budget (--fsmcheck-budget) ran out in {what}")) from None
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
        self._worker = None  # abandoned: it is a daemon and gets no further call
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
        if not out.ok:
            raise ProtocolViolation(self.report(f"reset failed with {out.error}"))

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
                self._worker.stop()
                self._worker = None

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
