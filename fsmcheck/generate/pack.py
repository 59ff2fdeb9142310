"""Building a model's whole pack: ``{file name: source}``."""

from __future__ import annotations

import os
from pathlib import Path

from ..model.schema import Model
from .render import module_name, render_v2_module
from .v2_pack import v2_pack_data

__all__ = ["pack_files"]


def pack_files(model: Model, relative_to: Path | None = None) -> dict[str, str]:
    """The pack modules of ``model``: one per flag set for a v2-style (enum,
    combination) model, one for a bit-encoded v1 model.

    Raises:
        ValueError: the model is of neither kind.
    """
    shown = os.path.relpath(model.path, relative_to) if relative_to else model.path.name
    shown = Path(shown).as_posix()
    if model.encoding == "enum" and model.combination is not None:
        files = {}
        for config in model.configs():
            data = v2_pack_data(model, config)
            files[module_name(model.name, data["spec"]["flags"])] = render_v2_module(data, shown)
        return files
    if model.encoding == "bits":
        from .v1_pack import render_v1_module, v1_pack_data

        return {module_name(model.name, None): render_v1_module(v1_pack_data(model), shown)}
    raise ValueError(f"{model.name}: fsmcheck generates packs for enum models with a [combination] rule "
                     "and for bit-encoded models")
