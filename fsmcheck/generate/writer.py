"""Writing files atomically (packs, diagrams, reports), and checking a committed pack is current."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["stale_files", "write_file", "write_files"]


def write_file(target: Path, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8 with ``\\n`` line ends, or bytes) to
    ``target`` through a temporary file in the same directory renamed into
    place, so an interrupted run leaves either the old file or the new one,
    never a partial one. The file's mode is 0666 less the umask, as for any
    new file. Creates missing parent directories; returns ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        # mkstemp creates the file 0600; a written file gets the mode any
        # new file would (0666 less the umask), like open() gives.
        os.fchmod(fd, 0o666 & ~_umask())
        if isinstance(data, bytes):
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        else:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write ``{name: text}`` into ``directory``, each file atomically
    (:func:`write_file`). Returns the written paths."""
    return [write_file(Path(directory) / name, text) for name, text in sorted(files.items())]


def stale_files(directory: Path, files: dict[str, str]) -> list[str]:
    """Names whose content on disk differs from ``files`` (or is missing)."""
    out = []
    for name, text in sorted(files.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out
