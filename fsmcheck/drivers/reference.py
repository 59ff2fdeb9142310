"""The reference drivers' adapter factory -- also the worked example of the
adapter contract (:mod:`fsmcheck.adapters.contract`).

Use it with a pack: ``pytest generated_tests
--fsmcheck-adapter=fsmcheck.drivers.reference:factory`` (the default).
"""

from __future__ import annotations

from functools import lru_cache

from ..model import load_model
from ..model.shipped import shipped_model_path
from ..adapters.contract import DriverError
from .v2_device import ReferenceV2Device

__all__ = ["factory", "ReferenceV2Adapter", "v2_model", "pure_python_class"]


def pure_python_class(cls) -> bool:
    """Whether ``cls`` and every class it derives from are defined in
    ``fsmcheck.drivers`` -- code that runs Python bytecode only, never a
    blocking system call, lock or C loop. An adapter whose devices are such
    says so with ``pure_python = True``, and the pack's harness then makes
    its calls on the test's thread (a hang is interrupted by an asynchronous
    exception); a device class from anywhere else (a test double that
    blocks, a user's subclass) keeps the harness's worker thread."""
    return all(c.__module__.startswith("fsmcheck.drivers.") for c in cls.__mro__ if c is not object)


@lru_cache(maxsize=None)
def v2_model():
    """The shipped v2 model, loaded once."""
    return load_model(shipped_model_path("vfio_v2"))


class ReferenceV2Adapter:
    """Opens :class:`ReferenceV2Device` instances of any defined flag set.

    Like a real device (a VFIO group or device fd is exclusive), it opens one
    device at a time: opening while the previous one is still open fails with
    EBUSY, so a pack that needs two devices at once fails here too, not only
    on hardware. ``device_class`` lets a mutant reuse the adapter.
    """

    def __init__(self, device_class=ReferenceV2Device):
        self.device_class = device_class
        self._opened = 0
        self._current = None

    @property
    def pure_python(self) -> bool:
        """True when the device class and every class it derives from are
        fsmcheck's own drivers (:func:`pure_python_class`)."""
        return pure_python_class(self.device_class)

    def open(self, flags: int):
        if self._current is not None and not self._current.closed:
            raise DriverError("EBUSY", "the previous device is still open")
        self._opened += 1
        self._current = self.device_class(v2_model(), flags, seed=self._opened)
        return self._current


def factory(protocol: str):
    """The adapter factory: ``"v2"`` and ``"v1"`` reference drivers."""
    if protocol == "v2":
        return ReferenceV2Adapter()
    if protocol == "v1":
        from .v1_device import ReferenceV1Adapter

        return ReferenceV1Adapter()
    return None
