"""Mutant v2 drivers: the reference driver with one plausible defect each.

Every mutant names the rule it breaks and where the rule comes from. The
conformance pack must kill each one (``fsmcheck mutate``).
"""

from __future__ import annotations

from ..adapters.contract import DriverError
from .reference import ReferenceV2Adapter
from .stream import StreamError
from .v2_device import ReferenceV2Device

__all__ = ["MUTANTS", "factory_for"]


class WrongResetTarget(ReferenceV2Device):
    """Reset leaves the device in STOP instead of RUNNING (vfio.h VFIO_DEVICE_RESET)."""

    def _reset_target(self):
        return "STOP"


class MissingArc(ReferenceV2Device):
    """STOP -> RESUMING is not implemented: the driver WARN_ONs and fails (vfio_main.c arc list)."""

    def _step(self, src, dst):
        if (src, dst) == ("STOP", "RESUMING"):
            raise DriverError("EINVAL", "arc not implemented")
        return super()._step(src, dst)


class AcceptsError(ReferenceV2Device):
    """SET ERROR succeeds and enters ERROR (vfio.h: ERROR cannot be specified)."""

    def set_state(self, state):
        if self.name_of.get(state) == self.model.error:
            self._end_all_sessions()
            self.state = self.model.error
            return None
        return super().set_state(state)


class AcceptsOutOfRange(ReferenceV2Device):
    """A value >= 8 is taken modulo 8 instead of failing (vfio.h enum; SET checks the value)."""

    def set_state(self, state):
        return super().set_state(state & 7 if state >= 8 else state)


class BlockedArcAllowed(ReferenceV2Device):
    """STOP_COPY -> PRE_COPY is carried out through STOP and RUNNING (vfio.h: blocked)."""

    def set_state(self, state):
        target = self.name_of.get(state)
        if self.state == "STOP_COPY" and target in ("PRE_COPY", "PRE_COPY_P2P") and target in \
                self.model.supported(self.flags):
            self.set_state(self.value_of["RUNNING"])
            return super().set_state(state)
        return super().set_state(state)


class SavingGroupInteriorPath(ReferenceV2Device):
    """PRE_COPY -> RUNNING_P2P goes through PRE_COPY_P2P, a saving-group state in the
    interior (vfio.h path rule); observable when a step of the derived path fails."""

    def _path(self, current, target, derived):
        if (current, target) == ("PRE_COPY", "RUNNING_P2P"):
            return ("PRE_COPY_P2P", "RUNNING_P2P")
        return derived


class NonShortestPath(ReferenceV2Device):
    """RUNNING -> STOP_COPY takes a detour through RESUMING (vfio.h: shortest path)."""

    def _path(self, current, target, derived):
        if target == "STOP_COPY" and derived and derived[-2:] == ("STOP", "STOP_COPY"):
            return derived[:-1] + ("RESUMING", "STOP", "STOP_COPY")
        return derived


class ReusedHandle(ReferenceV2Device):
    """Every session gets the same handle (seed 002: data_fds are never re-used)."""

    def _new_handle(self):
        return 1000


class HandleNeverDisabled(ReferenceV2Device):
    """Ending a session or a reset leaves the old handle working (seed 002; drivers give ENODEV)."""

    def _disable(self, session):
        pass


class NewHandleInSavingGroup(ReferenceV2Device):
    """PRE_COPY -> STOP_COPY (and PRE_COPY_P2P -> STOP_COPY) return a new handle
    (vfio.h: moving inside the saving group keeps the fd)."""

    def _step(self, src, dst):
        handle = super()._step(src, dst)
        if dst == "STOP_COPY" and src in ("PRE_COPY", "PRE_COPY_P2P"):
            self.active.handle = handle = self._new_handle()
            self.sessions[handle] = self.active
        return handle


class CorruptResumeAccepted(ReferenceV2Device):
    """RESUMING -> STOP accepts any data (vfio.h: the driver must validate and fail)."""

    def _validate(self, data):
        try:
            return super()._validate(data)
        except ValueError:
            return bytes(self.memory)


class FailedStepReportedSuccess(ReferenceV2Device):
    """A failed STOP -> RUNNING (or -> RUNNING_P2P) step is reported as success: the
    NVMe RFC ignores nvmevf_cmd_resume_device()'s result (seed 004)."""

    def _step(self, src, dst):
        try:
            return super()._step(src, dst)
        except DriverError:
            if src == "STOP" and dst in ("RUNNING", "RUNNING_P2P"):
                return None
            raise


class NoEndOfStream(ReferenceV2Device):
    """STOP_COPY never reports end of stream (read returns ENOMSG instead of 0; vfio.h)."""

    def _eof_allowed(self):
        return False


class StaleStateReported(ReferenceV2Device):
    """GET reports RUNNING while the device is in RUNNING_P2P (vfio.h: GET returns the state)."""

    def get_state(self):
        value = super().get_state()
        return self.value_of["RUNNING"] if self.state == "RUNNING_P2P" else value


class PreCopyInfoMissing(ReferenceV2Device):
    """VFIO_MIG_GET_PRECOPY_INFO is not implemented (ENOTTY) although the driver
    claims PRE_COPY (vfio.h: "Support for this ioctl is mandatory")."""

    def precopy_info(self, handle):
        raise DriverError("ENOTTY", "VFIO_MIG_GET_PRECOPY_INFO not implemented")


class PreCopyEndOfStream(ReferenceV2Device):
    """At the temporary end of stream in PRE_COPY read() returns b"" instead of
    ENOMSG -- a SHOULD of vfio.h that mtty (Linux 6.12) does not follow: the
    pack reports an advisory, it does not fail the driver."""

    def read(self, handle, size):
        try:
            return super().read(handle, size)
        except DriverError as exc:
            if exc.errno == "ENOMSG":
                return b""
            raise


class MissingTailAccepted(ReferenceV2Device):
    """RESUMING -> STOP accepts a stream whose last record is incomplete: the
    driver loads the final state as soon as it has it and never checks the
    end (vfio.h: incomplete data must fail the SET)."""

    def _validate(self, data):
        offset = 0
        while offset + 5 <= len(data):
            tag, length = data[offset:offset + 1], int.from_bytes(data[offset + 1:offset + 5], "little")
            payload = data[offset + 5:offset + 5 + length]
            if tag == b"F" and len(payload) == length == self.state_size:
                return payload
            offset += 5 + length
        raise StreamError("no final state")


class LosesPreCopyChanges(ReferenceV2Device):
    """A session that went through PRE_COPY ends its stream with the state
    as it was when PRE_COPY was entered: the changes made while pre-copying
    are lost (vfio.h: end of stream "indicates the entire device state has
    been transferred")."""

    def _start_session(self, dst):
        self._snapshot = bytes(self.memory)
        return super()._start_session(dst)

    def _finalize_save(self):
        if self.active is not None and self.active.kind == "save" and not self.active.final:
            current = bytes(self.memory)
            self.memory[:] = self._snapshot
            self._finalize(self.active)
            self.memory[:] = current


class EarlyEndOfStream(ReferenceV2Device):
    """In STOP_COPY, read() gives end of stream once before the last bytes,
    then the rest (vfio.h: the end of stream is permanent, read() "always
    returning 0")."""

    def read(self, handle, size):
        session = self.sessions.get(handle)
        if session is not None and session.final and session.enabled and session.read_pos < len(session.data):
            if session.read_pos and not getattr(session, "early", False):
                session.early = True
                return b""
            size = min(size, max(len(session.data) // 2, 1))
        return super().read(handle, size)


class ChangesInStop(ReferenceV2Device):
    """The device keeps changing its internal state in STOP (vfio.h: "It must
    not change its internal state")."""

    def _advance(self):
        super()._advance()
        if self.state == "STOP":
            self.tick += 1
            self.memory[self.tick % self.state_size] ^= 0x5A


class NegativeHandle(ReferenceV2Device):
    """Sessions get negative handles, never reused (the data_fd is a file
    descriptor: vfio.h returns it in data_fd, -1 meaning none)."""

    def _new_handle(self):
        return -super()._new_handle()


class UndefinedFlags(ReferenceV2Device):
    """migration_flags() reports PRE_COPY|P2P without STOP_COPY, a combination
    vfio.h leaves undefined ("at least VFIO_MIGRATION_STOP_COPY must be set")."""

    def migration_flags(self):
        super().migration_flags()
        bits = self.model.flag_bits
        return 1 << bits["P2P"] | 1 << bits["PRE_COPY"]


class EndedResumeFdWritable(ReferenceV2Device):
    """After RESUMING -> STOP (or a reset) the old resuming handle refuses
    read() with ENODEV but still takes write()s, dropping the bytes (vfio.h:
    leaving RESUMING "terminates a data transfer session"; issue 21: caught
    once, then only advised on)."""

    def write(self, handle, data):
        session = self.sessions.get(handle)
        if session is not None and not session.closed and not session.enabled and session.kind == "resume":
            self._advance()
            return len(data)
        return super().write(handle, data)


class ReadOverrun(ReferenceV2Device):
    """read() gives one byte more than asked when more is pending (read(2):
    at most the count asked for; vfio.h: the data flows "using read() and
    write()")."""

    def read(self, handle, size):
        chunk = super().read(handle, size)
        session = self.sessions.get(handle)
        if chunk and len(chunk) == size and session.read_pos < len(session.data):
            session.read_pos += 1
            return chunk + bytes(session.data[session.read_pos - 1:session.read_pos])
        return chunk


class WriteOverclaims(ReferenceV2Device):
    """write() of a short buffer reports one byte more than it was given
    (write(2): at most the count given)."""

    def write(self, handle, data):
        taken = super().write(handle, data)
        return taken + 1 if 0 < len(data) < 16 else taken


class StaleStopCopyStream(ReferenceV2Device):
    """Every STOP_COPY session after the first streams the first session's
    bytes again (a cached image), whatever the device holds now (vfio.h:
    "STOP_COPY - The device internal state can be read out")."""

    def _finalize(self, session):
        cached = getattr(self, "_first_image", None)
        if cached is not None and not session.data:
            session.data += cached
            session.final = True
            return
        super()._finalize(session)
        if cached is None:
            self._first_image = bytes(session.data)


class InitialBytesGrow(ReferenceV2Device):
    """VFIO_MIG_GET_PRECOPY_INFO counts the running device's changes into
    initial_bytes, which grows (vfio.h: initial_bytes "indicates the amount
    of initial precopy data"; changes are dirty_bytes)."""

    def precopy_info(self, handle):
        initial, dirty = super().precopy_info(handle)
        return initial + self.tick, dirty


#: name -> device class, in a stable order.
MUTANTS = {cls.__name__: cls for cls in (
    WrongResetTarget, MissingArc, AcceptsError, AcceptsOutOfRange, BlockedArcAllowed,
    SavingGroupInteriorPath, NonShortestPath, ReusedHandle, HandleNeverDisabled,
    NewHandleInSavingGroup, CorruptResumeAccepted, FailedStepReportedSuccess, NoEndOfStream,
    StaleStateReported, PreCopyInfoMissing, MissingTailAccepted, LosesPreCopyChanges, EarlyEndOfStream,
    ChangesInStop, NegativeHandle, UndefinedFlags, EndedResumeFdWritable, ReadOverrun, WriteOverclaims,
    StaleStopCopyStream, InitialBytesGrow,
)}


def factory_for(name: str):
    """An adapter factory serving mutant ``name`` for v2 (and nothing for v1)."""
    cls = MUTANTS[name]

    def factory(protocol: str):
        return ReferenceV2Adapter(cls) if protocol == "v2" else None

    return factory


def __getattr__(name: str):
    """``factory_WrongResetTarget`` (etc.) is the adapter factory of that mutant:
    ``--fsmcheck-adapter=fsmcheck.drivers.mutants_v2:factory_WrongResetTarget``."""
    if name.startswith("factory_") and name[len("factory_"):] in MUTANTS:
        return factory_for(name[len("factory_"):])
    raise AttributeError(name)
