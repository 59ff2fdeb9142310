"""The NVMe variant driver of the Dec 2022 RFC (seed 004), as an adapter.

Built from the RFC's description, not its code: migration flags STOP_COPY
only, hence its six arcs (RUNNING <-> STOP, STOP <-> STOP_COPY, STOP <->
RESUMING); and its defects as the review thread found them:

- STOP -> RUNNING ignores the result of the resume command
  (``nvmevf_cmd_resume_device()``), so a failed step is reported as success;
- there is no ERROR state: a failure the device cannot recover from still
  reports the state it started in;
- resume data is capped at 256 KiB while saving is unbounded, so a device
  whose state is bigger cannot be resumed from its own stream.

``pytest generated_tests --fsmcheck-adapter=fsmcheck.drivers.nvme_rfc:factory``
runs the pack against it (the STOP_COPY module applies; the others skip).
"""

from __future__ import annotations

from ..adapters.contract import DriverError
from .reference import ReferenceV2Adapter
from .v2_device import ReferenceV2Device

__all__ = ["NvmeRfcDevice", "factory", "RESUME_CAP"]

#: The RFC's resume buffer (seed 004: 256 KiB).
RESUME_CAP = 256 * 1024


class NvmeRfcDevice(ReferenceV2Device):
    """The reference device with the RFC's flags, size and defects."""

    state_size = 320 * 1024   # an NVMe controller's state can exceed the resume cap

    def __init__(self, model, flags, seed=0):
        super().__init__(model, 1, seed)   # VFIO_MIGRATION_STOP_COPY only, whatever was asked

    def _step(self, src, dst):
        try:
            return super()._step(src, dst)
        except DriverError:
            if (src, dst) == ("STOP", "RUNNING"):   # the discarded nvmevf_cmd_resume_device() result
                return None
            raise

    def inject_failure(self, src, dst, errno="EIO", to_error=False):
        super().inject_failure(src, dst, errno, False)   # no ERROR state

    def write(self, handle, data):
        session = self._session(handle, "resume")
        room = RESUME_CAP - len(session.data)
        if room <= 0:
            raise DriverError("ENOSPC", "resume buffer full (256 KiB)")
        return super().write(handle, data[:room])


def factory(protocol: str):
    """The RFC driver for v2; nothing for v1."""
    return ReferenceV2Adapter(NvmeRfcDevice) if protocol == "v2" else None
