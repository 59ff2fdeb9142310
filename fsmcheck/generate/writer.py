"""Writing a pack to disk atomically, and checking a committed pack is current."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["stale_files", "write_files"]


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write ``{name: text}`` into ``directory``; each file is written to a
    temporary file and renamed into place, so an interrupted run leaves either
    the old or the new file, never a partial one. Returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(files.items()):
        target = directory / name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        written.append(target)
    return written


def stale_files(directory: Path, files: dict[str, str]) -> list[str]:
    """Names whose content on disk differs from ``files`` (or is missing)."""
    out = []
    for name, text in sorted(files.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out
