"""Conforming-but-different drivers (and two broken adapters) for the pack's
gate tests. They live here, not in ``fsmcheck.drivers``: each does
something the sources allow but the reference driver does not, and the pack
must pass it (reporting an advisory where the sources leave the behaviour
open). Factories: ``--fsmcheck-adapter=tests.conforming_drivers:NAME``.
"""

from __future__ import annotations

import os
import time

from fsmcheck.adapters.contract import DriverError
from fsmcheck.drivers.reference import ReferenceV2Adapter
from fsmcheck.drivers.v1_device import ReferenceV1Adapter, ReferenceV1Device
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
spins = _v2(Spins)
sleeps = _v2(Sleeps)


def nothing(protocol):
    """A factory with no driver at all."""
    return None
