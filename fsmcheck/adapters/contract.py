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

Optional capabilities (Protocols below): ``inject_failure`` lets the
error-path suite make one step fail (:class:`V2FailureInjection`);
``precopy_info`` gets the pre-copy suite (:class:`V2PreCopyInfo`);
``state_digest`` lets the pack compare device states where the stream is not
a function of the state alone (:class:`V2StateDigest`); a v1 device's
``still_when_idle`` lets it compare the re-saved streams of resumed devices
(:class:`V1Device`). Without one, its tests are skipped or its comparison
is not made, never failed. Stillness: vfio.h promises it only in STOP,
STOP_COPY and RESUMING ("must not change its internal state"); in RUNNING,
RUNNING_P2P and PRE_COPY(_P2P) "the device may advance its internal state",
and no check assumes otherwise. A complete, working example is
:mod:`fsmcheck.drivers.reference` (the reference drivers' factory).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, runtime_checkable

__all__ = ["AdapterFactory", "DriverError", "TransportLimit", "V1Adapter", "V1Device", "V2Adapter", "V2Device",
           "V2FailureInjection", "V2PreCopyInfo", "V2StateDigest", "transport_limits"]


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
    """A VFIO v2 migration device (vfio.h, ``VFIO_DEVICE_FEATURE_MIGRATION`` and
    ``VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE``). Every method may raise
    :class:`DriverError` where the kernel would fail the call; any other
    exception is the adapter's own bug (the test errors, the driver is not
    judged). Which checks need a method: all of them need the first four;
    the data methods are needed by every suite that opens a session."""

    def migration_flags(self) -> int:
        """VFIO_DEVICE_FEATURE_MIGRATION GET: the ``VFIO_MIGRATION_*`` bit mask.

        Returns: e.g. 1 (STOP_COPY), 3 (|P2P), 5 (|PRE_COPY), 7. A suite whose
        flag set differs is skipped; a value that is no defined flag set fails
        ``test_migration_flags_defined`` (vfio.h: "at least
        VFIO_MIGRATION_STOP_COPY must be set").
        """
        ...

    def get_state(self) -> int:
        """MIG_DEVICE_STATE GET: the ``enum vfio_device_mig_state`` value the
        device is in now (every suite compares it with the model's state).

        Raises: :class:`DriverError` -- any errno fails the test (rule ``v2.get``).
        """
        ...

    def set_state(self, state: int) -> Optional[int]:
        """MIG_DEVICE_STATE SET: carry out the whole (combination) transition
        to ``state`` before returning (vfio.h: "must fully transition the
        device to the new state value before the operation returns").

        Args:
            state: the requested enum value; the pack also sends values the
                device must reject (unsupported states, ERROR, >= 8).
        Returns: the new session's handle (the ``data_fd``, an int >= 0,
            never reused) when the transition starts a session -- into the
            saving group, or STOP -> RESUMING -- else None.
        Raises:
            DriverError: the request is rejected (vfio.h names no errno; EINVAL
                as in-tree, another errno is an advisory) or a step failed
                (any errno; the device is then in the start state, one on the
                path, or ERROR -- and GET must say which).
        Needed by: every suite (pairs, rejections, tour, W-method, state machine).
        """
        ...

    def reset(self) -> None:
        """VFIO_DEVICE_RESET: back to RUNNING from any state, ERROR included;
        every session's handle stops carrying data (``test_reset``, the error
        suites, the W-method's reset inputs).

        Raises: :class:`DriverError` -- fails the test (rule ``v2.error-reset``).
        """
        ...

    def read(self, handle: int, size: int) -> bytes:
        """read() on a saving session's handle.

        Args:
            handle: a handle :meth:`set_state` returned.
            size: the most bytes wanted (> 0).
        Returns: at most ``size`` bytes (more is a violation, ``v2.fd-read-write``);
            ``b""`` is end of stream (permanent in STOP_COPY).
        Raises:
            DriverError: ``ENOMSG`` at PRE_COPY's temporary end of stream; any
                errno on an ended session (ENODEV in-tree; others advised on) --
                data from an ended session is a violation.
        Needed by: saving sessions, end of stream, round trips, pre-copy suites.
        """
        ...

    def write(self, handle: int, data: bytes) -> int:
        """write() on a resuming session's handle.

        Args:
            handle: the handle STOP -> RESUMING returned.
            data: the next bytes of the stream, in any segmentation (vfio.h:
                "The user is not required to preserve buffer segmentation").
        Returns: how many bytes were taken, ``0 <= n <= len(data)`` (more is a
            violation, ``v2.fd-read-write``); the pack writes the rest again.
        Raises:
            DriverError: on an ended session (the session is over: a write()
                that succeeds there fails the test; the errno is the driver's
                choice). Refusing a stream the device saved fails the test
                (``v2.resuming-loads``).
        Needed by: every suite that resumes a stream.
        """
        ...

    def close_handle(self, handle: int) -> None:
        """close(data_fd): the pack closes every handle it was given when its
        test ends (vfio.h: "The user is responsible to close this FD").

        Raises: :class:`DriverError` (e.g. EBADF) -- logged, never failed.
        """
        ...

    def close(self) -> None:
        """Close the device (after its handles). Errors are logged."""
        ...


@runtime_checkable
class V2FailureInjection(Protocol):
    """Optional: a device that can fail one step on request. Without it the
    error-path suites (``test_failure_path``, rejections and resets from
    ERROR) are skipped, not failed."""

    def inject_failure(self, src: str, dst: str, errno: str = "EIO", to_error: bool = False) -> None:
        """Make the next step (arc) ``src -> dst`` of a SET fail with ``errno``.

        Args:
            src, dst: state names of one arc, as in the model (``"STOP"``).
            errno: the errno name the SET then fails with.
            to_error: the failure leaves the device in ERROR (GET must say so:
                ``v2.get``); else in the state before the failing step.
        """
        ...


@runtime_checkable
class V2PreCopyInfo(Protocol):
    """Optional, and mandatory for a device that claims PRE_COPY (vfio.h):
    without it ``test_precopy_info`` is skipped."""

    def precopy_info(self, handle: int) -> tuple[int, int]:
        """VFIO_MIG_GET_PRECOPY_INFO on the saving handle.

        Returns: ``(initial_bytes, dirty_bytes)``, both >= 0. ``initial_bytes``
            never grows within a session (``v2.precopy-initial-bytes``) and
            should drop by what is read; ``dirty_bytes`` may grow as the running
            device changes.
        Raises: :class:`DriverError` -- in a PRE_COPY state it fails the test
            (``v2.precopy-info-mandatory``); elsewhere EINVAL is expected (an
            advisory otherwise).
        """
        ...


@runtime_checkable
class V2StateDigest(Protocol):
    """Optional: an observation of the device's internal state, for devices
    whose stream is not a function of their state alone (a sequence number,
    a time, a nonce: the stream is the device's own, vfio.h: "opaque").
    With it the pack compares states by digest; without it by the bytes of
    streams saved where the device is still (STOP, STOP_COPY). Coverage says
    which comparison ran (``compared [...]``)."""

    def state_digest(self) -> bytes:
        """Bytes equal exactly when two devices' internal (migratable) states
        are equal. Called only in STOP and STOP_COPY, where vfio.h says the
        device "must not change its internal state" (end of stream, round
        trips, the stream-current check)."""
        ...


@runtime_checkable
class V2Adapter(Protocol):
    """Opens fresh v2 devices. Optional attribute ``pure_python = True``: see
    the module docstring."""

    def open(self, flags: int) -> V2Device:
        """A fresh device (one at a time: the pack closes it before the next).

        Args:
            flags: the flag set the suite targets; a real device may ignore it.
        Raises: any exception -- the test errors (an adapter fault).
        """
        ...


@runtime_checkable
class V1Device(Protocol):
    """A VFIO v1 migration region (seeds 000/001; SPEC.md section 1).
    Failures raise :class:`DriverError`. Optional: ``inject_failure(src, dst,
    errno="EIO", to_error=False)`` as for v2 (state names such as
    ``"RUNNING"``); without it the error-state tests are skipped. Optional
    attribute ``still_when_idle = True``: the device does not change its
    internal state while running (001b) unless the pack drives its data
    section -- no queued work, timers or firmware. Only then are the
    re-saved streams of two resumed devices compared
    (``test_saving_and_resuming``): the v1 arcs give no way to stop a resumed
    device before saving it."""

    def read_header(self, offset: int, width: int) -> int:
        """Read a header field at ``offset`` (bytes) with an access of
        ``width`` bytes (4 or 8). Off-width or unaligned accesses must fail
        (``v1.native-access``)."""
        ...

    def write_header(self, offset: int, width: int, value: int) -> None:
        """Write a header field; read-only fields and invalid device_state
        values must fail (``v1.read-only-fields``, ``v1.invalid-states``)."""
        ...

    def read_data(self, offset: int, size: int) -> bytes:
        """Read ``size`` bytes of the data section at region ``offset``."""
        ...

    def write_data(self, offset: int, data: bytes) -> None:
        """Write ``data`` into the data section at region ``offset``."""
        ...

    def reset(self) -> None:
        """VFIO_DEVICE_RESET: device_state 001b from every state (``v1.reset-to-running``)."""
        ...

    def close(self) -> None:
        """Close the device."""
        ...


@runtime_checkable
class V1Adapter(Protocol):
    """Opens fresh v1 devices."""

    def open(self) -> V1Device:
        """A fresh device (one at a time)."""
        ...


class AdapterFactory(Protocol):
    """``factory(protocol, device=None) -> adapter or None``, named to the
    pack as ``--fsmcheck-adapter=package.module:factory``."""

    def __call__(self, protocol: str, *, device: Optional[str] = None) -> object:
        """The adapter for ``protocol`` (``"v2"`` or ``"v1"``), or None.

        Args:
            device: given only when a device is named for this process
                (``--fsmcheck-device``/``--fsmcheck-devices``, one per pytest-xdist
                worker in a fleet); a factory that takes no ``device=``
                keyword is refused then, not called.
        """
        ...


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
