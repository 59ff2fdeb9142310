"""Reading a trace once: the shared front end's one pass, and a spool to replay it.

A trace may be a regular file, a pipe (``cat T | fsmcheck check-trace
/dev/stdin``), a process substitution (``<(cat T)``) or ``-``. It is read by
:func:`fsmcheck.inputs.open_lines` exactly once, in memory bounded by its
longest line (a line over the bound, or bytes that are not UTF-8, are bad
input at their line). Format detection peeks at its head; a whole-document
format (ITF) is read with :meth:`~fsmcheck.inputs.LineSource.read_rest`.

``--flags auto`` needs a second pass over a line-oriented trace (it decides
each device's flag set from the whole trace before judging it). The first
pass therefore copies the lines it reads into a spool, an anonymous
temporary file (unlinked at creation: nothing is left behind, even on
SIGKILL), and the second pass reads the spool: both passes see the same
bytes, whatever the input is (issue 23: three opens of a pipe checked
nothing).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..inputs import DEFAULT_MAX_LINE_BYTES, InputError, LineSource, open_lines

__all__ = ["TraceInputError", "TraceLines", "open_trace_lines", "MAX_LINE_BYTES"]

#: The longest trace line read (bytes): the front end's default, 1 MiB.
MAX_LINE_BYTES = DEFAULT_MAX_LINE_BYTES


class TraceInputError(InputError):
    """A trace that cannot be read: ``path:line: key: message`` (exit 2).

    Args:
        path, line: where; message: what is wrong; key: the part of the trace
            (``<trace>`` for its format, ``#meta.flags`` ...).
    """

    def __init__(self, path: Path | str, line: int, message: str, key: str = "<trace>"):
        super().__init__(InputError.at(str(path), line, key, message).diagnostics)
        self.path, self.line, self.message = str(path), line, message


class TraceLines:
    """The lines of one trace, read once, replayable.

    Call :meth:`passes` for each pass: the first reads the input (copying
    it into the spool when ``keep``), each later one reads the spool.

    Raises (from any method):
        fsmcheck.inputs.InputError: the input cannot be read, a line is over
            the bound, or is not UTF-8 (at its line).
    """

    def __init__(self, source: LineSource):
        self.source = source
        self.path = Path(source.path)
        self._spool = None
        self._read = False

    def passes(self, keep: bool = False) -> Iterator[tuple[int, str]]:
        """One pass: ``(line number, line)`` from the first line.

        Raises:
            ValueError: a second pass when the first did not ``keep`` the lines.
        """
        if not self._read:
            self._read = True
            if keep:
                self._spool = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
            yield from self._first(self._spool)
            return
        if self._spool is None:
            raise ValueError(f"{self.path}: the trace was read once without keeping it")
        self._spool.seek(0)
        for number, line in enumerate(self._spool, 1):
            yield number, line[:-1] if line.endswith("\n") else line

    def _first(self, spool) -> Iterator[tuple[int, str]]:
        for number, line in self.source:
            if spool is not None:
                spool.write(line + "\n")
            yield number, line

    def close(self) -> None:
        """Close the input and the spool."""
        self.source.close()
        if self._spool is not None:
            self._spool.close()


def open_trace_lines(path: Path | str, max_line_bytes: int = MAX_LINE_BYTES) -> TraceLines:
    """:func:`fsmcheck.inputs.open_lines` on ``path``, wrapped for replay."""
    return TraceLines(open_lines(path, max_line_bytes=max_line_bytes))
