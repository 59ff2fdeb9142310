"""Lazy package exports (PEP 562): a package's public names imported from their
submodules on first use, so that importing the package stays light."""

from __future__ import annotations

import importlib
from typing import Callable

__all__ = ["lazy_exports"]


def lazy_exports(package: str, sources: dict[str, str], exported: list[str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``.

    Args:
        package: the package's ``__name__``.
        sources: each exported name -> the relative module that defines it (``".schema"``).
        exported: the package's ``__all__``.

    The returned ``__getattr__`` imports a name's module on first access, caches
    the value in the package's namespace and raises :class:`AttributeError` for
    any other name.
    """
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str):
        source = sources.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(source, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exported})

    return __getattr__, __dir__
