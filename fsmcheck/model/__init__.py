"""Protocol models: the file format, its loader and the in-memory form."""

from .loader import FORMAT_VERSION, KNOWN_PROPERTIES, Diagnostic, ModelError, load_model
from .schema import Arc, Blocked, CombinationRule, Config, Model, State, Walk

__all__ = [
    "Arc", "Blocked", "CombinationRule", "Config", "Diagnostic", "FORMAT_VERSION",
    "KNOWN_PROPERTIES", "Model", "ModelError", "State", "Walk", "load_model",
]
