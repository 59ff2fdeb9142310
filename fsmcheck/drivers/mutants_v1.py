"""Mutant v1 drivers: the reference region driver with one plausible defect each."""

from __future__ import annotations

from ..adapters.contract import DriverError
from .v1_device import FIELDS, ReferenceV1Adapter, ReferenceV1Device

__all__ = ["MUTANTS", "factory_for"]


class Accepts101(ReferenceV1Device):
    """RESUMING|RUNNING (101b) is accepted (seed 003: invalid)."""

    def _write_state(self, value):
        if value & 7 == 5 and self.device_state & 7 != self.error_value:
            self._store_state(value)
            return
        super()._write_state(value)


class Accepts111(ReferenceV1Device):
    """111b is accepted (SPEC 1: invalid)."""

    def _write_state(self, value):
        if value & 7 == 7 and self.device_state & 7 != self.error_value:
            self._store_state(value)
            return
        super()._write_state(value)


class UnalignedAccessAccepted(ReferenceV1Device):
    """Accesses off a field's offset are served (seed 001: native width and alignment only)."""

    def _check_access(self, offset, width):
        for name, (off, size, _) in FIELDS.items():
            if off <= offset < off + size and width == size:
                return name
        return super()._check_access(offset, width)


class WideAccessAccepted(ReferenceV1Device):
    """device_state read with an 8-byte access (seed 001: native width only)."""

    def _check_access(self, offset, width):
        if (offset, width) == (0, 8):
            return "device_state"
        return super()._check_access(offset, width)


class ResetToStop(ReferenceV1Device):
    """Reset gives 000b (seed 000: reset returns 001b)."""

    def _reset_value(self):
        return 0


class PhantomState(ReferenceV1Device):
    """After a write of 010b the driver reports 011b, a value never written (SPEC 1)."""

    def _reported_state(self):
        value = super()._reported_state()
        return value | 1 if value & 7 == 2 else value


class ErrorLeftByWrite(ReferenceV1Device):
    """A write leaves the error state 110b (SPEC 1: only reset leaves it)."""

    def _write_state(self, value):
        if self.device_state & 7 == self.error_value and self._valid(value):
            self.device_state = value
            return
        super()._write_state(value)


class ResumeNotValidated(ReferenceV1Device):
    """Clearing RESUMING accepts corrupt data (SPEC 1: it may fail that write)."""

    def _validate(self, data):
        try:
            return super()._validate(data)
        except ValueError:
            return bytes(self.memory)


class PendingNeverDrains(ReferenceV1Device):
    """pending_bytes never reaches 0 in stop-and-copy (seed 001 saving sequence)."""

    def _pending(self):
        return max(super()._pending(), 1) if self.device_state & 7 == 2 else super()._pending()


class ResumeIgnored(ReferenceV1Device):
    """Clearing RESUMING validates the data but does not load it: the device
    keeps its own state (seed 000: the data "should be used to resume
    device")."""

    def _validate(self, data):
        super()._validate(data)
        return bytes(self.memory)


class ReadOnlyWritable(ReferenceV1Device):
    """pending_bytes accepts writes (seed 001: read only)."""

    def write_header(self, offset, width, value):
        if (offset, width) == (8, 8):
            return None
        return super().write_header(offset, width, value)


class RequiredArcMissing(ReferenceV1Device):
    """SAVING|RUNNING -> SAVING (011b -> 010b, live migration) fails (SPEC 1 required arcs)."""

    def _write_state(self, value):
        if self.device_state & 7 == 3 and value & 7 == 2:
            raise DriverError("EINVAL", "not supported")
        super()._write_state(value)


MUTANTS = {cls.__name__: cls for cls in (
    Accepts101, Accepts111, UnalignedAccessAccepted, WideAccessAccepted,
    ResetToStop, PhantomState, ErrorLeftByWrite, ResumeNotValidated, PendingNeverDrains,
    ReadOnlyWritable, RequiredArcMissing, ResumeIgnored,
)}


def factory_for(name: str):
    """An adapter factory serving mutant ``name`` for v1 (and nothing for v2)."""
    cls = MUTANTS[name]

    def factory(protocol: str):
        return ReferenceV1Adapter(cls) if protocol == "v1" else None

    return factory


def __getattr__(name: str):
    """``factory_Accepts101`` (etc.) is the adapter factory of that mutant."""
    if name.startswith("factory_") and name[len("factory_"):] in MUTANTS:
        return factory_for(name[len("factory_"):])
    raise AttributeError(name)
