"""Protocol models: the file format, its loader and the in-memory form.

The names below are imported from :mod:`.loader` and :mod:`.schema` on first
use (PEP 562), so that importing a submodule such as :mod:`.shipped` (``fsmcheck
models``, the MODEL argument of every command) does not load the loader.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .format import SCHEMA, format_reference
    from .loader import FORMAT_VERSION, KNOWN_PROPERTIES, Diagnostic, ModelError, load_model
    from .schema import Arc, Blocked, CombinationRule, Config, Model, State, Walk

__all__ = [
    "Arc", "Blocked", "CombinationRule", "Config", "Diagnostic", "FORMAT_VERSION",
    "KNOWN_PROPERTIES", "Model", "ModelError", "SCHEMA", "State", "Walk", "format_reference", "load_model",
]

_SOURCES = {
    **dict.fromkeys(("FORMAT_VERSION", "KNOWN_PROPERTIES", "Diagnostic", "ModelError", "load_model"), ".loader"),
    **dict.fromkeys(("SCHEMA", "format_reference"), ".format"),
    **dict.fromkeys(("Arc", "Blocked", "CombinationRule", "Config", "Model", "State", "Walk"), ".schema"),
}


def __getattr__(name: str):
    """Import an exported name from its submodule on first use."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
