"""Checking a committed pack is current; writing goes through :mod:`fsmcheck.outputs`
(re-exported here: ``write_file``, ``write_files``)."""

from __future__ import annotations

from pathlib import Path

from ..outputs import write_file, write_files

__all__ = ["stale_files", "write_file", "write_files"]


def stale_files(directory: Path, files: dict[str, str]) -> list[str]:
    """Names whose content on disk differs from ``files`` (or is missing)."""
    out = []
    for name, text in sorted(files.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out
