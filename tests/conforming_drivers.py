"""Conforming-but-different drivers (and two broken adapters) for the pack's
gate tests. They live here, not in ``fsmcheck.drivers``: each does
something the sources allow but the reference driver does not, and the pack
must pass it (reporting an advisory where the sources leave the behaviour
open). Factories: ``--fsmcheck-adapter=tests.conforming_drivers:NAME``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import struct
import time

from fsmcheck.adapters.contract import DriverError
from fsmcheck.drivers.reference import ReferenceV2Adapter
from fsmcheck.drivers.v1_device import ReferenceV1Adapter, ReferenceV1Device
from fsmcheck.drivers.stream import StreamError, record
from fsmcheck.drivers.v2_device import ReferenceV2Device


class ShortWrites(ReferenceV2Device):
    """write() accepts at most 5 bytes per call and says so (contract: returns
    bytes accepted; vfio.h: "The user is not required to preserve buffer
    segmentation")."""

    def write(self, handle, data):
        return super().write(handle, bytes(data[:5]))


class EndedFdEinval(ReferenceV2Device):
    """I/O on an ended session's handle fails with EINVAL, not ENODEV (vfio.h
    names no errno; seed 002: "render it inoperable")."""

    def _session(self, handle, kind):
        session = self.sessions.get(handle)
        if session is not None and not session.closed and not session.enabled:
            raise DriverError("EINVAL", f"handle {handle}: its session has ended")
        return super()._session(handle, kind)


class ForcedEof(ReferenceV2Device):
    """A saving handle whose session ended reads end of stream (seed 002: the
    driver "should piggy back the force EOF"); writes fail with ENODEV."""

    def read(self, handle, size):
        session = self.sessions.get(handle)
        if session is not None and not session.closed and not session.enabled and session.kind == "save":
            self._advance()
            return b""
        return super().read(handle, size)


class ErrorInErrorOk(ReferenceV2Device):
    """SET ERROR while in ERROR succeeds, as in-tree drivers do (their loop
    `while (cur != new)` never runs)."""

    def set_state(self, state):
        if self.state == self.model.error and self.name_of.get(state) == self.model.error:
            self._advance()
            return None
        return super().set_state(state)


class FdHandles(ReferenceV2Device):
    """Handles are real file descriptors (``/dev/null``), closed only by
    close_handle() -- as on Linux, where closing the device fd does not close
    the data_fds the user holds."""

    def _new_handle(self):
        return os.open(os.devnull, os.O_RDONLY)

    def close_handle(self, handle):
        super().close_handle(handle)
        os.close(handle)


class SmallDataArea(ReferenceV1Device):
    """A v1 device whose data section (512 bytes) is smaller than 4 KiB and
    whose state (5,000 bytes) spans many chunks (seed 001: data sections of
    different sizes; each chunk resumed with the size it was saved with)."""

    state_size = 5000
    data_area = 512


class ReservedBitsIgnored(ReferenceV1Device):
    """A v1 device that ignores bits 3-31 of device_state and reads them as 0
    (seed 001: "undefined bits are ignored, and may or may not preserved")."""

    def _store_state(self, value):
        super()._store_state(value & 7)


class WorksWhileRunningV1(ReferenceV1Device):
    """A v1 device that works on its own while running (queued work, timers,
    firmware): every access in 001b/011b -- register or data -- and the
    passing of time change its internal state (vfio.h, for v2: "the device
    may advance its internal state" while running; v1 states nothing
    stricter). It does not declare ``still_when_idle``. Issue 21: the pack
    required the re-saved streams of two resumed devices to be equal."""

    still_when_idle = False
    _serials = itertools.count(1)

    def __init__(self, model, seed=0):
        super().__init__(model, seed)
        self.serial = next(self._serials)  # e.g. a queue's position: differs between two devices

    def _advance(self, works=False):
        super()._advance(works=True)
        if self.device_state & 1:
            self.memory[0] ^= time.monotonic_ns() & 0xFF
            self.memory[1] = self.serial & 0xFF


class WorksWhileRunningV2(ReferenceV2Device):
    """A v2 device whose running state changes between any two accesses, and
    with time, in every running state -- RUNNING, RUNNING_P2P, PRE_COPY,
    PRE_COPY_P2P (vfio.h: fully operational there); still only in STOP,
    STOP_COPY and RESUMING, where vfio.h says it "must not change its
    internal state"."""

    def _advance(self):
        super()._advance()
        if self.state in self.running:
            self.memory[self.tick % self.state_size] ^= (time.monotonic_ns() | 1) & 0xFF


class DirtyTracking(ReferenceV2Device):
    """PRE_COPY with dirty tracking, as mlx5 does it: what the running device
    changes after the initial snapshot is counted in dirty_bytes (which
    grows) and queued as a further pre-copy record when
    VFIO_MIG_GET_PRECOPY_INFO is asked; initial_bytes only drops as read
    (vfio.h: dirty_bytes "may increase as the internal device state is
    modified or decrease as that modified state is read")."""

    def _start_session(self, dst):
        handle = super()._start_session(dst)
        session = self.sessions[handle]
        session.initial_end = len(session.data)
        session.seen = bytes(self.memory)
        return handle

    def precopy_info(self, handle):
        initial, _ = super().precopy_info(handle)
        session = self.sessions[handle]
        changed = sum(a != b for a, b in zip(session.seen, self.memory))
        if changed and session.read_pos >= session.initial_end:
            session.data += record(b"P", bytes(self.memory))
            session.seen = bytes(self.memory)
        pending = len(session.data) - session.read_pos
        initial = max(session.initial_end - session.read_pos, 0)
        return initial, pending - initial + (changed if session.read_pos < session.initial_end else 0)


class OwnStreamFormat(ReferenceV2Device):
    """A stream format of the device's own: every saving session begins with
    a 16-byte header carrying a session sequence number and the time, so two
    saves of one unchanged state differ in their bytes (vfio.h: the stream is
    "opaque"). The device offers ``state_digest()`` (the contract's optional
    observation), and the pack compares states by it, not by bytes."""

    _sessions = itertools.count(1)

    def _start_session(self, dst):
        handle = super()._start_session(dst)
        session = self.sessions[handle]
        if session.kind == "save":
            session.header = struct.pack("<QQ", next(self._sessions), time.monotonic_ns())
        return handle

    def read(self, handle, size):
        session = self.sessions.get(handle)
        if session is not None and getattr(session, "header", b"") and session.enabled and not session.closed:
            chunk, session.header = session.header[:max(size, 0)], session.header[max(size, 0):]
            self._advance()
            return chunk
        return super().read(handle, size)

    def precopy_info(self, handle):
        initial, dirty = super().precopy_info(handle)
        return initial + len(getattr(self.sessions[handle], "header", b"")), dirty

    def _validate(self, data):
        if len(data) < 16:
            raise StreamError("no session header")
        return super()._validate(data[16:])

    def state_digest(self):
        return hashlib.sha256(self.memory).digest()


class RejectsWithEperm(ReferenceV2Device):
    """A rejected SET fails with EPERM, not EINVAL (vfio.h: such a request
    "return[s] error", no errno named)."""

    def set_state(self, state):
        try:
            return super().set_state(state)
        except DriverError as exc:
            if exc.errno == "EINVAL":
                raise DriverError("EPERM", exc.message) from None
            raise


class EndedResumeFdEbadf(ReferenceV2Device):
    """I/O on an ended resuming session's handle fails with EBADF (the errno
    is the driver's choice: vfio.h names none)."""

    def write(self, handle, data):
        session = self.sessions.get(handle)
        if session is not None and not session.closed and not session.enabled:
            raise DriverError("EBADF", "session ended")
        return super().write(handle, data)


class Spins(ReferenceV2Device):
    """Not conforming: SET spins forever (the skip-loop hang of a driver's
    core), holding the GIL between switches like a real busy loop."""

    def set_state(self, state):
        while True:
            pass


class Sleeps(ReferenceV2Device):
    """Not conforming: every SET takes 2 s."""

    def set_state(self, state):
        time.sleep(2)
        return super().set_state(state)


def _v2(cls):
    def factory(protocol):
        return ReferenceV2Adapter(cls) if protocol == "v2" else None

    return factory


def _v1(cls):
    def factory(protocol):
        return ReferenceV1Adapter(cls) if protocol == "v1" else None

    return factory


short_writes = _v2(ShortWrites)
ended_fd_einval = _v2(EndedFdEinval)
forced_eof = _v2(ForcedEof)
error_in_error_ok = _v2(ErrorInErrorOk)
fd_handles = _v2(FdHandles)
small_data_area = _v1(SmallDataArea)
reserved_bits_ignored = _v1(ReservedBitsIgnored)
works_while_running_v1 = _v1(WorksWhileRunningV1)
works_while_running_v2 = _v2(WorksWhileRunningV2)
dirty_tracking = _v2(DirtyTracking)
own_stream_format = _v2(OwnStreamFormat)
rejects_with_eperm = _v2(RejectsWithEperm)
ended_resume_fd_ebadf = _v2(EndedResumeFdEbadf)
spins = _v2(Spins)
sleeps = _v2(Sleeps)


def nothing(protocol):
    """A factory with no driver at all."""
    return None
