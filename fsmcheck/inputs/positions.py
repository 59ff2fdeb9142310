"""Line numbers of the keys of a TOML document.

:mod:`tomllib` parses TOML exactly but reports no positions. This module
recovers them with a line scanner that understands the constructs where a key
is *declared*: ``[table]`` and ``[[array-of-tables]]`` headers and
``key = value`` lines (bare, quoted and dotted keys). It never interprets
values; tomllib remains the parser of record, so a file the scanner misreads
still loads correctly and only its error positions degrade to the nearest
enclosing key.

A key path is a tuple of strings and integers, e.g. ``("arcs", 3, "to")`` for
the ``to`` key of the fourth ``[[arcs]]`` table.
"""

from __future__ import annotations

import re

__all__ = ["KeyLines", "Line", "file_of", "located", "index_lines", "split_lines"]

_BARE = r"[A-Za-z0-9_-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"|\'[^\']*\''
_KEY = rf"(?:{_BARE}|{_QUOTED})"
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")
_INLINE_KEY = re.compile(rf"(?:^|[{{,])\s*({_KEY})\s*=")


def _split_dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(_KEY, text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


class Line(int):
    """A 1-based line number that names its file: ``file`` is the path of the
    file declaring the key (a model resolved from several files, ``extends``),
    or None when it is the one document indexed. It is an ``int`` everywhere
    else (compared, hashed, printed and written to JSON as the number)."""

    def __new__(cls, number: int, file: str | None = None):
        self = super().__new__(cls, number)
        self.file = file
        return self


def file_of(line: int, path) -> str:
    """The file declaring ``line`` (a :class:`Line`), else ``path`` (the
    document's own), as a string."""
    return str(getattr(line, "file", None) or path)


def located(line: int, path) -> str:
    """``FILE:LINE`` of ``line``, FILE as :func:`file_of` gives it."""
    return f"{file_of(line, path)}:{line}"


class KeyLines:
    """Map from key paths to the 1-based line that declares them.

    :meth:`line` answers for any path: an exact match, else the line of the
    longest declared prefix, else 1.
    """

    def __init__(self, lines: dict[tuple, int], files: dict[tuple, str] | None = None):
        self._lines = lines
        self._files = files or {}

    def where(self, path: tuple) -> tuple[str | None, int]:
        """``(file, line)`` declaring ``path`` or its nearest declared prefix;
        the file is None when it is the one document that was indexed (only a
        model resolved from several files, ``extends``, names files)."""
        path = tuple(path)
        while path:
            if path in self._lines:
                return self._files.get(path), self._lines[path]
            path = path[:-1]
        return None, 1

    def line(self, path: tuple) -> Line:
        """Return the line declaring ``path`` or its nearest declared prefix
        (a :class:`Line`: it names the file, if :meth:`where` does)."""
        file, line = self.where(path)
        return Line(line, file)

    def items(self):
        """``(key path, line)`` of every declared key."""
        return self._lines.items()

    def __contains__(self, path: tuple) -> bool:
        return tuple(path) in self._lines

    def __eq__(self, other) -> bool:
        return isinstance(other, KeyLines) and (self._lines, self._files) == (other._lines, other._files)

    __hash__ = None


def split_lines(text: str) -> list[str]:
    """``text`` split into lines as TOML counts them: at LF only, with the CR
    of a CRLF removed. Line ``n`` (1-based) is element ``n - 1``."""
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def index_lines(text: str) -> KeyLines:
    """Scan TOML ``text`` and return the :class:`KeyLines` of its keys.

    Inline tables written on one line (``KEY = { a = 1, b = 2 }``) have their
    inner keys indexed at that line. Multi-line strings are skipped.
    """
    lines: dict[tuple, int] = {}
    counters: dict[tuple, int] = {}
    table: tuple = ()
    in_multiline: str | None = None
    # TOML ends lines only at LF (CRLF included); str.splitlines() would also
    # break at U+2028, U+2029, U+0085 and others, which comments may hold.
    for number, raw in enumerate(split_lines(text), start=1):
        if in_multiline:
            if raw.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        header = _HEADER.match(raw)
        if header:
            path = _split_dotted(header.group(2))
            if header.group(1) == "[[":
                index = counters.get(path, 0)
                counters[path] = index + 1
                lines.setdefault(path, number)
                table = path + (index,)
            else:
                table = path
            lines.setdefault(table, number)
            continue
        assign = _ASSIGN.match(raw)
        if not assign:
            continue
        key = table + _split_dotted(assign.group(1))
        lines.setdefault(key, number)
        rest = raw[assign.end():]
        for delim in ('"""', "'''"):
            if rest.count(delim) % 2 == 1:
                in_multiline = delim
        if rest.lstrip().startswith("{"):
            for inner in _INLINE_KEY.finditer(rest.lstrip()):
                lines.setdefault(key + _split_dotted(inner.group(1)), number)
    return KeyLines(lines)
