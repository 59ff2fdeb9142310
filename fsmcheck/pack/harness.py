"""Driving a device through its adapter, recording every operation.

:class:`Harness` wraps an adapter's device: each call runs with a time
limit (an adapter that hangs fails the test instead of stalling the run),
errors that are not :class:`~fsmcheck.adapters.contract.DriverError` become
readable failures, and every operation is logged so that a violation prints
the exact request sequence from open.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass, field

from ..adapters.contract import DriverError

__all__ = ["AdapterFault", "Harness", "ProtocolViolation", "Outcome", "DEFAULTS"]

#: Run-wide settings (the pytest plugin sets them from its options):
#: ``timeout`` is the seconds one adapter call may take before the test fails.
DEFAULTS = {"timeout": 10.0}


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


@dataclass
class Harness:
    """One device under test, with the log of what was done to it.

    Attributes:
        device: the adapter's device.
        names: state value -> name, for readable logs.
        log: one line per operation, from open.
        timeout: seconds per adapter call.
    """

    device: object
    names: dict[int, str]
    log: list[str] = field(default_factory=list)
    timeout: float | None = None
    _pool: concurrent.futures.ThreadPoolExecutor | None = None

    def __post_init__(self):
        if self.timeout is None:
            self.timeout = DEFAULTS["timeout"]

    def _call(self, what: str, fn, *args) -> Outcome:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="fsmcheck-adapter")
        future = self._pool.submit(fn, *args)
        try:
            value = future.result(timeout=self.timeout)
        except concurrent.futures.TimeoutError:
            self._pool.shutdown(wait=False)
            self._pool = None
            self.log.append(f"{what} -> did not return within {self.timeout:g} s")
            raise AdapterFault(self.report(f"the adapter hung in {what}")) from None
        except DriverError as exc:
            return Outcome(error=exc.errno)
        except Exception as exc:  # the adapter's own bug: a readable failure
            self.log.append(f"{what} -> raised {type(exc).__name__}: {exc}")
            raise AdapterFault(self.report(f"the adapter raised {type(exc).__name__} in {what}: {exc}")) from None
        return Outcome(value=value)

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
        out = self._call(f"write({handle})", self.device.write, handle, data)
        self.log.append(f"write({handle}, {len(data)} bytes) -> " + (out.error or "ok"))
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

    def close(self) -> None:
        try:
            self._call("close", self.device.close)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=False)
                self._pool = None

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
