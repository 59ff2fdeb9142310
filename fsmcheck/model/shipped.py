"""The shipped models: found by name, in the installed package or the checkout.

The checkout's ``models/`` is the one source. Building the wheel copies its
``*.toml`` files (``models/variants/`` too, so the relative references
``../vfio_v1.toml`` and ``vfio_v2.toml`` inside them still resolve) into the
package as ``fsmcheck/models/`` (see ``setup.py``); an installed fsmcheck
reads them from there with :mod:`importlib.resources`. Run from a checkout
(an editable install), the package has no ``models/`` and the checkout's
``models/`` beside the package is used.

A shipped model's name is its file's stem (``vfio_v2``, ``qemu_orchestration``,
``vfio_v2_precopy_reinit`` for ``variants/vfio_v2_precopy_reinit.toml``).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ShippedModel", "UnknownModel", "models_dir", "resolve_model", "shipped_model_path", "shipped_models"]


class UnknownModel(ValueError):
    """A model argument that is neither a file nor a shipped model's name."""


@dataclass(frozen=True)
class ShippedModel:
    """One shipped model: ``name`` (file stem), ``title`` (the model's
    ``[model] title``, or its first comment line), ``path`` (the file on
    disk) and ``sha256`` (hex digest of the file's bytes)."""

    name: str
    title: str
    path: Path
    sha256: str


def models_dir() -> Path:
    """The directory of the shipped models: the installed package's
    ``fsmcheck/models/`` if it exists, else the checkout's ``models/``.

    Raises:
        FileNotFoundError: neither exists (a broken installation).
    """
    packaged = importlib.resources.files("fsmcheck") / "models"
    if packaged.is_dir():
        # A wheel installs package data as plain files: the Traversable is a Path.
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / "models"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"no shipped models: neither {packaged} nor {checkout} exists (a broken installation; "
                            "reinstall fsmcheck)")


def _title(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    try:
        title = (tomllib.loads(text).get("model") or {}).get("title")
    except tomllib.TOMLDecodeError:
        title = None
    if isinstance(title, str) and title:
        return title
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def shipped_models() -> list[ShippedModel]:
    """Every shipped model, top-level ones first, then ``variants/``, each
    sorted by name. Raises FileNotFoundError as :func:`models_dir`."""
    root = models_dir()
    paths = sorted(root.glob("*.toml")) + sorted(root.glob("variants/*.toml"))
    return [ShippedModel(p.stem, _title(p), p, hashlib.sha256(p.read_bytes()).hexdigest()) for p in paths]


def shipped_model_path(name: str) -> Path:
    """Path of shipped model ``name`` (e.g. ``"vfio_v2"``).

    Raises:
        FileNotFoundError: no shipped model has that name.
    """
    for model in shipped_models():
        if model.name == name:
            return model.path
    known = ", ".join(m.name for m in shipped_models())
    raise FileNotFoundError(f"no shipped model {name!r} (known: {known})")


def resolve_model(argument: str) -> str:
    """A command's MODEL argument as a file path: ``argument`` itself when it
    is a path (an existing file, or anything with a ``/`` or a ``.toml``
    suffix), else the path of the shipped model of that name.

    Raises:
        UnknownModel: neither; the message lists the shipped models' names.
    """
    if Path(argument).is_file() or "/" in argument or "\\" in argument or argument.endswith(".toml"):
        return argument  # a path: a missing file is the loader's error to report
    try:
        return str(shipped_model_path(argument))
    except FileNotFoundError:
        known = ", ".join(m.name for m in shipped_models())
        raise UnknownModel(f"{argument!r} is neither a model file nor a shipped model (shipped: {known})") from None
