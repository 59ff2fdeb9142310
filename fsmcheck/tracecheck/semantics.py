"""QEMU's semantics of its two state events, as ``hw/vfio/migration.c`` has them.

``vfio_migration_set_state(vbasedev, new_state, recover_state, errp)``
(QEMU 10):

1. logs ``vfio_migration_set_state`` (new, recover) *before* anything else;
2. returns at once, with no ioctl, when ``new_state`` is the current
   ``migration->device_state`` (a no-op, still logged);
3. on a successful ``VFIO_DEVICE_FEATURE`` SET it calls
   ``vfio_migration_set_device_state(new_state)``, which logs
   ``vfio_migration_set_device_state`` and sends the QMP ``VFIO_MIGRATION``
   event;
4. on failure with recover state ERROR it resets the device
   (``VFIO_DEVICE_RESET``) and records RUNNING; with another recover state it
   requests that state and records it, or, when that fails too, resets and
   records RUNNING.

So a ``set_state`` not followed by ``set_device_state`` of the new state is
a failed request; what follows it says how QEMU recovered. The device starts
RUNNING (``vfio_migration_init()`` sets ``migration->device_state`` to
RUNNING without logging it).

:class:`QemuDevice` replays this for one device and resolves each request
into a :class:`Request` with its outcome.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Request", "QemuDevice", "OK", "NOOP", "RECOVERED", "RESET", "UNEXPECTED", "UNRESOLVED"]

OK, NOOP, RECOVERED, RESET, UNEXPECTED, UNRESOLVED = "ok", "noop", "recovered", "reset", "unexpected", "unresolved"


@dataclass
class Request:
    """One ``vfio_migration_set_state`` call.

    Attributes:
        line: the line of its ``set_state`` event.
        current: QEMU's ``device_state`` when it was made.
        requested, recover: its new and recover states.
        outcome: ``noop`` (new == current, no ioctl), ``ok`` (new recorded),
            ``recovered`` (failed; the recover state recorded), ``reset``
            (failed; RUNNING recorded after VFIO_DEVICE_RESET), ``unexpected``
            (another state recorded) or ``unresolved`` (no state recorded
            before the device's next request, or the end of the trace).
        recorded: the state recorded after it (``""`` when none).
        record_line: the line of that record (0 when none).
    """

    line: int
    current: str
    requested: str
    recover: str
    outcome: str = ""
    recorded: str = ""
    record_line: int = 0

    @property
    def failed(self) -> bool:
        """True when the ioctl failed (recovered, reset or unresolved)."""
        return self.outcome in (RECOVERED, RESET, UNRESOLVED)


class QemuDevice:
    """QEMU's ``migration->device_state`` of one device, replayed from its events.

    Args:
        initial: the state QEMU starts in (RUNNING).
        reset: the state a reset records (RUNNING).
        error: the recover state that means "reset on failure" (ERROR).
    """

    def __init__(self, initial: str, reset: str, error: str | None):
        self.state = initial
        self.reset, self.error = reset, error
        self.pending: Request | None = None
        #: The last request resolved by a record (None before the first).
        self.last: Request | None = None

    def request(self, line: int, requested: str, recover: str) -> tuple[Request | None, Request | None]:
        """A ``set_state`` event.

        Returns:
            ``(unresolved, noop)``: the device's previous request when it
            was still waiting for its record (now ``unresolved``), and this
            request when it is a no-op (resolved at once), else None.
        """
        left = self.flush()
        req = Request(line, self.state, requested, recover)
        if requested == self.state:
            req.outcome = NOOP
            return left, req
        self.pending = req
        return left, None

    def record(self, line: int, state: str) -> Request | None:
        """A ``set_device_state`` event; returns the request it resolves
        (None when no request was waiting: a state recorded unasked)."""
        req, self.pending = self.pending, None
        self.state = state
        if req is None:
            return None
        self.last = req
        req.recorded, req.record_line = state, line
        if state == req.requested:
            req.outcome = OK
        elif state == req.recover and req.recover != self.error:
            req.outcome = RECOVERED
        elif state == self.reset:
            req.outcome = RESET
        else:
            req.outcome = UNEXPECTED
        return req

    def flush(self) -> Request | None:
        """End of the trace (or the next request): the waiting request, now
        ``unresolved``, or None."""
        req, self.pending = self.pending, None
        if req is not None:
            req.outcome = UNRESOLVED
        return req
