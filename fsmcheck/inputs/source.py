"""Reading a file once: whole (:func:`read_text`) or line by line (:func:`open_lines`).

A path is a file, a device such as ``/dev/stdin`` or ``/dev/fd/N`` (a shell's
``<(...)``), or ``-`` for standard input. It is opened once and read in one pass,
so a pipe gives the same result as the file it carries.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from .diagnostic import InputError

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_LINE_BYTES", "LineSource", "Text", "directory_of", "open_lines",
           "read_text"]

#: The largest whole file read by default (bytes): 64 MiB, far above any model,
#: errata file, pack module or ITF trace fsmcheck writes.
DEFAULT_MAX_BYTES = 64 << 20

#: The longest line of a line-oriented file read by default (bytes): 1 MiB. A
#: QEMU trace-event line or a QMP event is well under 4 KiB.
DEFAULT_MAX_LINE_BYTES = 1 << 20


def directory_of(path: str | os.PathLike) -> Path:
    """The directory a relative file name inside the file at ``path`` is taken
    from: the file's own; the current directory for standard input (``-``) or
    a device (``/dev/stdin``, a shell's ``<(...)`` as ``/dev/fd/N``), which
    have none of their own."""
    if str(path) in ("-", "<stdin>") or str(Path(path).absolute()).startswith(("/dev/", "/proc/")):
        return Path.cwd()
    return Path(path).parent


def _display(path: str | os.PathLike) -> str:
    return "<stdin>" if str(path) == "-" else str(path)


def _open(path: str | os.PathLike) -> tuple[BinaryIO, bool]:
    """The binary stream of ``path`` and whether it is ours to close."""
    if str(path) == "-":
        return sys.stdin.buffer, False
    try:
        return open(path, "rb"), True  # noqa: SIM115 (closed by the caller)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise InputError.at(_display(path), 1, "<file>", f"cannot read: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _decode(path: str, data: bytes, first_line: int = 1) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = first_line + data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError.at(path, line, "<file>",
                            f"not UTF-8: byte {data[exc.start]:#04x} at column {column}") from None


@dataclass(frozen=True)
class Text:
    """A whole input file, read once.

    Attributes:
        path: the name diagnostics use (``<stdin>`` for ``-``).
        data: the file's bytes.
        text: ``data`` decoded as UTF-8.
    """

    path: str
    data: bytes = field(repr=False)
    text: str = field(repr=False)

    @property
    def sha256(self) -> str:
        """The SHA-256 of :attr:`data`, as hex."""
        return hashlib.sha256(self.data).hexdigest()

    def line_of(self, offset: int) -> int:
        """The 1-based line of character ``offset`` of :attr:`text` (LF counts
        lines; nothing else does)."""
        return self.text.count("\n", 0, offset) + 1

    def error(self, line: int, key: str, message: str) -> InputError:
        """An :class:`InputError` of one diagnostic in this file."""
        return InputError.at(self.path, line, key, message)


def _read_bounded(stream: BinaryIO, path: str, max_bytes: int, already: int = 0) -> bytes:
    data = stream.read(max_bytes - already + 1)
    if already + len(data) > max_bytes:
        raise InputError.at(path, 1, "<file>", f"larger than {max_bytes:,} bytes; not read")
    return data


def read_text(path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Text:
    """Read the whole file at ``path`` (a file, a device, or ``-``) once.

    Raises:
        InputError: the file cannot be opened or read (a directory, missing,
            no permission), is larger than ``max_bytes`` (nothing more is read),
            or is not UTF-8 (at the line and column of the first bad byte).
    """
    name = _display(path)
    stream, own = _open(path)
    try:
        data = _read_bounded(stream, name, max_bytes)
    except OSError as exc:
        raise InputError.at(name, 1, "<file>", f"cannot read: {_reason(exc)}") from None
    finally:
        if own:
            stream.close()
    return Text(name, data, _decode(name, data))


class LineSource:
    """A line-oriented file read once, in order, in memory bounded by its longest
    line. Use as a context manager (the file is closed at exit).

    - :meth:`head` peeks at the first lines without consuming them;
    - iterating yields ``(lineno, line)`` (1-based; the line without its LF or
      CRLF), the peeked lines first;
    - :meth:`read_rest` returns the whole file as a :class:`Text` instead, for a
      format that is one document (e.g. an ITF trace found by :meth:`head`).

    ``lines_read`` counts the lines delivered so far. Every method raises
    :class:`InputError` for a line over ``max_line_bytes`` or not UTF-8, at its
    line; reading the file is never restarted.
    """

    def __init__(self, path: str | os.PathLike, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES):
        self.path = _display(path)
        self.max_line_bytes = max_line_bytes
        self.lines_read = 0
        self._stream, self._own = _open(path)
        self._peeked: list[bytes] = []
        self._next_lineno = 1  # the number of the first peeked line, or of the next line read
        self._iterating = False
        self._eof = False

    def __enter__(self) -> "LineSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the file (not standard input). Idempotent."""
        if self._own:
            self._stream.close()
            self._own = False

    def _raw_line(self, lineno: int) -> bytes | None:
        if self._eof:
            return None
        try:
            raw = self._stream.readline(self.max_line_bytes + 1)
        except OSError as exc:
            raise InputError.at(self.path, lineno, "<file>", f"cannot read: {_reason(exc)}") from None
        if not raw:
            self._eof = True
            return None
        if len(raw) > self.max_line_bytes and not raw.endswith(b"\n"):
            raise InputError.at(self.path, lineno, "<line>",
                                f"line longer than {self.max_line_bytes:,} bytes; not read")
        return raw

    def _line(self, lineno: int, raw: bytes) -> str:
        text = _decode(self.path, raw, lineno)
        if text.endswith("\n"):
            text = text[:-1]
            if text.endswith("\r"):
                text = text[:-1]
        return text

    def head(self, n: int) -> list[tuple[int, str]]:
        """The first ``n`` lines (fewer at end of file) as ``(lineno, line)``,
        left to be iterated or read again.

        Raises:
            ValueError: iteration has already begun.
        """
        if self._iterating:
            raise ValueError("head() after iteration began")
        while len(self._peeked) < n:
            raw = self._raw_line(1 + len(self._peeked))
            if raw is None:
                break
            self._peeked.append(raw)
        return [(i, self._line(i, raw)) for i, raw in enumerate(self._peeked[:n], start=1)]

    def __iter__(self) -> Iterator[tuple[int, str]]:
        self._iterating = True
        while True:
            lineno = self._next_lineno
            if self._peeked:
                raw = self._peeked.pop(0)
            else:
                raw = self._raw_line(lineno)
                if raw is None:
                    return
            self._next_lineno += 1
            self.lines_read += 1
            yield lineno, self._line(lineno, raw)

    def read_rest(self, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Text:
        """The whole file (peeked lines included) as one :class:`Text`, read in
        one pass up to ``max_bytes``.

        Raises:
            InputError: larger than ``max_bytes``, or not UTF-8.
            ValueError: iteration has already begun.
        """
        if self._iterating:
            raise ValueError("read_rest() after iteration began")
        self._iterating = True
        start = b"".join(self._peeked)
        self._peeked.clear()
        if len(start) > max_bytes:
            raise InputError.at(self.path, 1, "<file>", f"larger than {max_bytes:,} bytes; not read")
        try:
            rest = b"" if self._eof else _read_bounded(self._stream, self.path, max_bytes, len(start))
        except OSError as exc:
            raise InputError.at(self.path, 1, "<file>", f"cannot read: {_reason(exc)}") from None
        data = start + rest
        self._eof = True
        return Text(self.path, data, _decode(self.path, data))


def open_lines(path: str | os.PathLike, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> LineSource:
    """Open ``path`` (a file, a device, or ``-``) for one pass over its lines.

    Raises:
        InputError: the file cannot be opened.
    """
    return LineSource(path, max_line_bytes=max_line_bytes)

