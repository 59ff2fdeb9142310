"""Locating the shipped models (``models/`` of this checkout)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["shipped_model_path"]


def shipped_model_path(name: str) -> Path:
    """Path of shipped model ``name`` (e.g. ``"vfio_v2"``).

    Raises:
        FileNotFoundError: fsmcheck is not run from its checkout (the models
            live in ``models/`` beside the package).
    """
    path = Path(__file__).resolve().parents[2] / "models" / f"{name}.toml"
    if not path.is_file():
        raise FileNotFoundError(f"shipped model {name!r} not found at {path}; run fsmcheck from its checkout")
    return path
