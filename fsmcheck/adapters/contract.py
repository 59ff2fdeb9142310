"""The adapter contract: how a conformance pack talks to a driver.

A driver author implements a few dozen lines: an *adapter factory* that,
given a protocol name, returns an adapter (or None if the driver does not
speak that protocol); the adapter opens fresh devices. Nothing here depends
on pytest, so the same adapter can drive a hypothesis state machine or an
automata learner.

Errors mirror the kernel: an operation that fails raises
:class:`DriverError` with the errno *name* (``"EINVAL"``, ``"ENODEV"``...).
Data-session handles are file descriptors (on Linux: the ``data_fd``):
non-negative integers, never reused while the pack runs. The pack closes
every handle it was given with ``close_handle`` when its test ends (vfio.h:
"The user is responsible to close this FD when it is finished"), then the
device with ``close``. ``write`` may accept fewer bytes than given and
returns how many (vfio.h: "The user is not required to preserve buffer
segmentation"); the pack writes the rest again.

Every call runs with a time limit (``--fsmcheck-call-timeout``); a call
that exceeds it is abandoned and the adapter given up for the rest of the
run (its remaining tests fail at once), so an adapter must not rely on a
call being waited for. ``--fsmcheck-budget`` bounds the whole run.

An adapter may declare ``pure_python = True`` (an attribute) when every call
of its devices runs Python bytecode in the pack's process and never blocks
in C (a system call, a lock, a sleep): its calls are then made on the test's
own thread under a watchdog, without a worker thread's handoff
(:mod:`fsmcheck.pack.harness`). Leave it unset for anything that talks to a
kernel or a device.

v2 (``VFIO_DEVICE_FEATURE`` on a device fd; vfio.h)::

    class MyV2Device:
        def migration_flags(self) -> int: ...          # VFIO_DEVICE_FEATURE_MIGRATION GET
        def get_state(self) -> int: ...                # MIG_DEVICE_STATE GET: enum value
        def set_state(self, state: int) -> int | None: # MIG_DEVICE_STATE SET: data_fd (>= 0) or None
            ...                                        # raises DriverError("EINVAL") etc.
        def reset(self) -> None: ...                   # VFIO_DEVICE_RESET
        def read(self, handle: int, size: int) -> bytes: ...   # b"" = end of stream;
                                                       # DriverError("ENOMSG") = no data yet (PRE_COPY)
        def write(self, handle: int, data: bytes) -> int: ...  # bytes accepted, 0..len(data)
        def close_handle(self, handle: int) -> None: ...       # close(data_fd)
        def close(self) -> None: ...

    class MyV2Adapter:
        def open(self, flags: int) -> MyV2Device:
            # A fresh device. `flags` is the flag set the suite targets; a real
            # device may ignore it (suites whose flags differ are skipped).
            ...

v1 (the migration region; seed 000/001)::

    class MyV1Device:
        def read_header(self, offset: int, width: int) -> int: ...   # width in bytes: 4 or 8
        def write_header(self, offset: int, width: int, value: int) -> None: ...
        def read_data(self, offset: int, size: int) -> bytes: ...    # region offset
        def write_data(self, offset: int, data: bytes) -> None: ...
        def reset(self) -> None: ...
        def close(self) -> None: ...

    class MyV1Adapter:
        def open(self) -> MyV1Device: ...

The factory, named to the pack as ``--fsmcheck-adapter=package.module:factory``::

    def factory(protocol: str):        # "v2" or "v1"
        return MyV2Adapter() if protocol == "v2" else None

Optional capability: a device with ``inject_failure(src, dst, errno="EIO",
to_error=False)`` lets the error-path suite make the step ``src -> dst``
fail once (entering the error state when ``to_error``); without it those
tests are skipped, not failed. A device with ``precopy_info(handle) ->
(initial_bytes, dirty_bytes)`` (``VFIO_MIG_GET_PRECOPY_INFO``) gets the
pre-copy suite; without it that suite is skipped. A complete, working example is
:mod:`fsmcheck.drivers.reference` (the reference drivers' factory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol, runtime_checkable

__all__ = ["AdapterFactory", "DriverError", "TransportLimit", "V1Adapter", "V1Device", "V2Adapter", "V2Device",
           "transport_limits"]


class DriverError(Exception):
    """An operation failed the way the kernel would fail it.

    Attributes:
        errno: the errno name, e.g. ``"EINVAL"``, ``"ENODEV"``, ``"ENOMSG"``.
        message: free text for people.
    """

    def __init__(self, errno: str, message: str = ""):
        super().__init__(f"{errno}: {message}" if message else errno)
        self.errno = errno
        self.message = message


@runtime_checkable
class V2Device(Protocol):
    """A VFIO v2 migration device (see the module docstring)."""

    def migration_flags(self) -> int: ...
    def get_state(self) -> int: ...
    def set_state(self, state: int) -> Optional[int]: ...
    def reset(self) -> None: ...
    def read(self, handle: int, size: int) -> bytes: ...
    def write(self, handle: int, data: bytes) -> int: ...
    def close_handle(self, handle: int) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class V2Adapter(Protocol):
    """Opens fresh v2 devices."""

    def open(self, flags: int) -> V2Device: ...


@runtime_checkable
class V1Device(Protocol):
    """A VFIO v1 migration region (see the module docstring)."""

    def read_header(self, offset: int, width: int) -> int: ...
    def write_header(self, offset: int, width: int, value: int) -> None: ...
    def read_data(self, offset: int, size: int) -> bytes: ...
    def write_data(self, offset: int, data: bytes) -> None: ...
    def reset(self) -> None: ...
    def close(self) -> None: ...


@runtime_checkable
class V1Adapter(Protocol):
    """Opens fresh v1 devices."""

    def open(self) -> V1Device: ...


#: ``factory(protocol) -> adapter or None``.
AdapterFactory = Callable[[str], object]


# -- What a transport cannot show (issue 20) ------------------------------------
# An adapter whose transport has no counterpart of something a rule observes
# (vfio-user: no data_fd, no VFIO_MIG_GET_PRECOPY_INFO) declares it, so the
# pack skips or adapts exactly the checks of that rule and the coverage
# summary says so, instead of judging what the adapter made up.


@dataclass(frozen=True)
class TransportLimit:
    """A v2 rule (a key of :data:`fsmcheck.pack.v2_spec.RULES`) the adapter's
    transport cannot show, with why and what stands in for it (``reason``,
    one sentence, quoted in skips and in the coverage summary)."""

    rule: str
    reason: str


def transport_limits(adapter: object) -> dict[str, str]:
    """``rule -> reason`` from the adapter's optional ``transport_limits``
    attribute (a sequence of :class:`TransportLimit`); empty without one."""
    return {limit.rule: limit.reason for limit in getattr(adapter, "transport_limits", ()) or ()}
