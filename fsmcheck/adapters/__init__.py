"""Driver adapters: the contract a driver author implements (:mod:`.contract`)."""

from .contract import DriverError, V1Adapter, V1Device, V2Adapter, V2Device

__all__ = ["DriverError", "V1Adapter", "V1Device", "V2Adapter", "V2Device"]
