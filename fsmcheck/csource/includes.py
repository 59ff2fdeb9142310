"""Finding the headers a kernel C file includes, through a kernel tree's include paths.

A driver's callees are often declared outside its folder: the Intel Xe VF
migration driver (``drivers/vfio/pci/xe/main.c``, 2025-26) calls
``xe_sriov_vfio_stop_copy_exit()``, declared ``int`` in a header under
``include/drm/intel/``. :func:`included_headers` follows the file's
``#include`` directives the way kbuild's ``LINUXINCLUDE`` does:

- ``#include "x.h"``: the including file's directory, then the include paths;
- ``#include <x.h>``: the include paths only.

The include paths of a tree are ``include``, ``include/uapi`` and, where
present, ``arch/x86/include`` and ``arch/x86/include/uapi`` (Debian's amd64
kernel; scripts/Makefile / top-level Makefile ``LINUXINCLUDE``).
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Iterator

__all__ = ["find_tree", "include_paths", "included_headers", "MAX_HEADERS"]

#: Most headers :func:`included_headers` reads for one file (a bound on the walk).
MAX_HEADERS = 400

_INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.MULTILINE)


def find_tree(path: str | Path) -> Path | None:
    """The kernel tree ``path`` sits in: the nearest ancestor directory that
    has an ``include/`` directory, or None when no ancestor has one."""
    here = Path(path).resolve()
    for parent in ([here] if here.is_dir() else []) + list(here.parents):
        if (parent / "include").is_dir():
            return parent
    return None


def include_paths(tree: str | Path) -> list[Path]:
    """The directories ``#include <...>`` searches in kernel tree ``tree``, in
    kbuild's order; only those that exist."""
    tree = Path(tree)
    candidates = [tree / "arch/x86/include", tree / "include",
                  tree / "arch/x86/include/uapi", tree / "include/uapi"]
    return [p for p in candidates if p.is_dir()]


def includes_of(text: str) -> list[tuple[str, str]]:
    """The ``#include`` directives of C ``text``: (``<`` or ``"``, name), in order."""
    return [(m.group(1), m.group(2).strip()) for m in _INCLUDE.finditer(text)]


def _resolve(kind: str, name: str, here: Path | None, paths: list[Path]) -> Path | None:
    search = ([here] if kind == '"' and here is not None else []) + paths
    for directory in search:
        candidate = directory / name
        if candidate.is_file():
            return candidate.resolve()
    return None


def included_headers(text: str, directory: Path | None, tree: Path | None,
                     limit: int = MAX_HEADERS) -> Iterator[tuple[Path, str]]:
    """The headers C ``text`` includes, directly and transitively, breadth first.

    Args:
        text: the including file's C text.
        directory: the including file's directory (for ``"x.h"``), or None (a patch).
        tree: the kernel tree root whose include paths are searched, or None
            (then only ``"x.h"`` next to the file resolves).
        limit: at most this many headers are read (>= 0).

    Yields:
        (path, text) of each header found, each once; a directive that names no
        file under the search paths is skipped (the caller reports what it
        could not resolve). Unreadable files are skipped.
    """
    paths = include_paths(tree) if tree is not None else []
    queue = deque((kind, name, directory) for kind, name in includes_of(text))
    seen: set[Path] = set()
    while queue and len(seen) < limit:
        kind, name, here = queue.popleft()
        found = _resolve(kind, name, here, paths)
        if found is None or found in seen:
            continue
        seen.add(found)
        try:
            body = found.read_text(errors="replace")
        except OSError:
            continue
        yield found, body
        queue.extend((k, n, found.parent) for k, n in includes_of(body))
