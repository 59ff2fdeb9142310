"""Reading a trace file once, in bounded memory, whatever it is.

A trace may be a regular file, a pipe (``cat T | fsmcheck check-trace
/dev/stdin``), or a process substitution (``<(cat T)``). :class:`TraceText`
opens it exactly once: a seekable file is re-read by seeking back (detection,
``--flags auto`` and the check all read the same open file), a non-seekable
one is first spooled, whole, into an anonymous temporary file (unlinked at
creation, so nothing is left behind even on SIGKILL) and then read from
there. Either way no pass can see other bytes than another.

Memory is bounded per file: lines are read with a byte limit
(:data:`MAX_LINE_BYTES`); a longer line is bad input at its line number, and
a whole-document read (ITF) has its own limit (:data:`MAX_DOCUMENT_BYTES`).
Bytes are decoded as UTF-8 with U+FFFD for what does not decode; a line ends
at ``\\n`` only (``\\r\\n`` loses its ``\\r``), as QEMU writes it and JSON
counts lines.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["TraceText", "TraceInputError", "MAX_LINE_BYTES", "MAX_DOCUMENT_BYTES"]

#: The longest line read (bytes, without the line end): a QEMU trace-event or
#: QMP line is under 1 KiB; 1 MiB leaves room and bounds memory.
MAX_LINE_BYTES = 1 << 20
#: The largest ITF document read whole (bytes); `fsmcheck verify --trace-dir`
#: writes traces of a few KiB.
MAX_DOCUMENT_BYTES = 64 << 20


class TraceInputError(Exception):
    """A trace that cannot be read: ``path:line: message`` (exit 2)."""

    def __init__(self, path: Path | str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = str(path), line, message


class TraceText:
    """One trace input, opened once (see the module docstring).

    Args:
        path: the file, ``/dev/stdin``, or a ``/dev/fd/N`` of a process substitution.
        max_line_bytes: the longest line accepted.

    Raises:
        TraceInputError: the file cannot be opened or spooled (line 1).
    """

    def __init__(self, path: Path | str, *, max_line_bytes: int = MAX_LINE_BYTES):
        self.path = Path(path)
        self.max_line_bytes = max_line_bytes
        self.spooled = False
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as exc:
            raise TraceInputError(self.path, 1, f"cannot read: {exc.strerror or exc}") from exc
        try:
            if stat.S_ISREG(os.fstat(handle.fileno()).st_mode) and handle.seekable():
                self._file = handle
            else:  # a pipe, FIFO or character device: read once, into an unlinked temporary file
                spool = tempfile.TemporaryFile()  # noqa: SIM115
                try:
                    shutil.copyfileobj(handle, spool, 1 << 20)
                except BaseException:
                    spool.close()
                    raise
                handle.close()
                self._file, self.spooled = spool, True
        except OSError as exc:
            handle.close()
            raise TraceInputError(self.path, 1, f"cannot read: {exc.strerror or exc}") from exc

    @property
    def size(self) -> int:
        """The input's size in bytes."""
        return os.fstat(self._file.fileno()).st_size

    def lines(self) -> Iterator[tuple[int, str]]:
        """Yield ``(line number, text without its line end)`` from the start.

        Raises:
            TraceInputError: a line longer than ``max_line_bytes`` (at its number).
        """
        f = self._file
        f.seek(0)
        limit = self.max_line_bytes
        number = 0
        while True:
            raw = f.readline(limit + 1)
            if not raw:
                return
            number += 1
            if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
                raise TraceInputError(self.path, number, f"line longer than {limit} bytes: not a trace line "
                                      "(refused, to keep memory bounded)")
            yield number, raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")

    def head(self, count: int, max_bytes: int = 64 << 10) -> list[tuple[int, str]]:
        """The first ``count`` lines (numbered), at most ``max_bytes`` each
        (a longer line is cut: detection needs only its start)."""
        f = self._file
        f.seek(0)
        out = []
        for number in range(1, count + 1):
            raw = f.readline(max_bytes)
            if not raw:
                break
            while not raw.endswith(b"\n"):  # skip the rest of a long line, in bounded reads
                more = f.readline(max_bytes)
                if not more:
                    break
                if more.endswith(b"\n"):
                    break
            out.append((number, raw.rstrip(b"\n").removesuffix(b"\r").decode("utf-8", errors="replace")))
        return out

    def read_all(self, max_bytes: int = MAX_DOCUMENT_BYTES) -> str:
        """The whole text (for a JSON document).

        Raises:
            TraceInputError: the input is larger than ``max_bytes`` (line 1).
        """
        size = self.size
        if size > max_bytes:
            raise TraceInputError(self.path, 1, f"a JSON document of {size} bytes, over the {max_bytes} bytes "
                                  "an ITF trace may have (refused, to keep memory bounded)")
        self._file.seek(0)
        return self._file.read(max_bytes + 1).decode("utf-8", errors="replace")

    def close(self) -> None:
        """Close the file (a spool is removed by the system)."""
        self._file.close()

    def __enter__(self) -> TraceText:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
