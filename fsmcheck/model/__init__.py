"""Protocol models: the file format, its loader and the in-memory form.

The names below are imported from :mod:`.loader` and :mod:`.schema` on first
use (PEP 562), so that importing a submodule such as :mod:`.shipped` (``fsmcheck
models``, the MODEL argument of every command) does not load the loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:
    from .format import SCHEMA
    from .loader import FORMAT_VERSION, KNOWN_PROPERTIES, Diagnostic, ModelError, load_model
    from .schema import Arc, Blocked, CombinationRule, Config, Model, State, Walk

__all__ = [
    "Arc", "Blocked", "CombinationRule", "Config", "Diagnostic", "FORMAT_VERSION",
    "KNOWN_PROPERTIES", "Model", "ModelError", "SCHEMA", "State", "Walk", "load_model",
]

_SOURCES = {
    **dict.fromkeys(("FORMAT_VERSION", "KNOWN_PROPERTIES", "Diagnostic", "ModelError", "load_model"), ".loader"),
    "SCHEMA": ".format",
    **dict.fromkeys(("Arc", "Blocked", "CombinationRule", "Config", "Model", "State", "Walk"), ".schema"),
}


__getattr__, __dir__ = lazy_exports(__name__, _SOURCES, __all__)
