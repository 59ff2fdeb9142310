"""The property registry, as the verifier's callers import it (it lives in
:mod:`fsmcheck.model.properties`, below the loader that reads its names)."""

from ..model.properties import PROPERTIES, Property, applicable, requirement

__all__ = ["Property", "PROPERTIES", "applicable", "requirement"]
