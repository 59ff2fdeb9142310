"""Adapter factories for the PRECOPY_INFO_REINIT suite's tests: the reference
driver with ``precopy_info_v2`` added (a test double, not a driver).

- ``factory``: conforming -- on its second query it re-initialises (appends
  fresh initial data to the session) and says so with REINIT;
- ``silent_factory``: the same fresh data, reported without REINIT (a
  violation);
- ``dropping_factory``: reports REINIT but disables the data fd (a violation).
"""

from fsmcheck.adapters.contract import DriverError
from fsmcheck.drivers.reference import ReferenceV2Adapter
from fsmcheck.drivers.v2_device import ReferenceV2Device


class ReinitDevice(ReferenceV2Device):
    flag_reinit = True
    drop_session = False

    def precopy_info_v2(self, handle: int) -> tuple[int, int, bool]:
        initial, dirty = self.precopy_info(handle)
        self._queries = getattr(self, "_queries", 0) + 1
        if self._queries != 2:
            return initial, dirty, False
        session = self.sessions[handle]
        session.data[session.read_pos:session.read_pos] = b"\x5a" * 512   # fresh initial data
        if self.drop_session:
            session.enabled = False
        return initial + 512, dirty, self.flag_reinit


class SilentReinitDevice(ReinitDevice):
    flag_reinit = False


class DroppingReinitDevice(ReinitDevice):
    drop_session = True


def factory(protocol: str):
    return ReferenceV2Adapter(ReinitDevice) if protocol == "v2" else None


def silent_factory(protocol: str):
    return ReferenceV2Adapter(SilentReinitDevice) if protocol == "v2" else None


def dropping_factory(protocol: str):
    return ReferenceV2Adapter(DroppingReinitDevice) if protocol == "v2" else None


__all__ = ["factory", "silent_factory", "dropping_factory", "DriverError"]
