"""Locating C functions in a source file or a patch email.

A :class:`Source` is C text together with the original line number of each
of its lines, so a function cut out of a file -- or assembled from the ``+``
lines of a patch in an email -- still reports the lines a reviewer sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CFunction", "Source", "SourceError", "read_source", "strip_comments"]


class SourceError(Exception):
    """A file cannot be read, or a function cannot be found or cut out."""


@dataclass(frozen=True)
class CFunction:
    """One function definition: its name, its text (comments blanked) and the
    original line number of each of its lines."""

    name: str
    text: str
    lines: tuple[int, ...]
    path: str

    @property
    def first_line(self) -> int:
        return self.lines[0]


@dataclass(frozen=True)
class Source:
    """C text (comments blanked, newlines kept) with original line numbers."""

    path: str
    text: str
    lines: tuple[int, ...]
    patch: bool = False

    def functions(self) -> list[CFunction]:
        """Every function definition at file scope, in order."""
        out = []
        for match in _DEF.finditer(self.text):
            name = match.group("name")
            if name in _KEYWORDS:
                continue
            open_brace = match.end() - 1
            close = _matching_brace(self.text, open_brace)
            if close is None:
                continue
            start = self.text.rfind("\n", 0, match.start(_start_group(match))) + 1
            body = self.text[start:close + 1]
            first = self.text.count("\n", 0, start)
            count = body.count("\n") + 1
            out.append(CFunction(name, body, self.lines[first:first + count], self.path))
        return out

    def function(self, name: str) -> CFunction:
        """The definition of function ``name``.

        Raises:
            SourceError: no such definition.
        """
        for fn in self.functions():
            if fn.name == name:
                return fn
        raise SourceError(f"{self.path}: no definition of function {name}()")


# A definition: return type and name at the start of a line (the name may be
# on its own line after the type, kernel style), parameters, then "{".
_DEF = re.compile(
    r"^(?P<head>[A-Za-z_][\w \t\*]*?[\s\*])?(?P<name>[A-Za-z_]\w*)\s*\((?P<params>[^;{}()]*(?:\([^()]*\)[^;{}()]*)*)\)\s*\{",
    re.MULTILINE,
)
_KEYWORDS = {"if", "while", "for", "switch", "return", "sizeof", "do", "else"}


def _start_group(match: re.Match) -> str:
    return "head" if match.group("head") else "name"


def _matching_brace(text: str, open_index: int) -> int | None:
    depth, i, n = 0, open_index, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            i = _skip_literal(text, i)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None


def _skip_literal(text: str, i: int) -> int:
    quote, i = text[i], i + 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def strip_comments(text: str) -> str:
    """Blank ``/* */`` and ``//`` comments, keeping newlines and string literals."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text[i] in "\"'":
            end = _skip_literal(text, i)
            out.append(text[i:end])
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


_DIFF = re.compile(r"^diff --git a/(\S+) b/(\S+)\s*$")


def read_source(path: str | Path, *, member: str | None = None) -> Source:
    """Read a C file, or the added C of a patch email.

    A file whose text contains ``diff --git`` lines is taken as a patch: the
    ``+`` lines (unquoted, outside ``+++`` headers) of every diff of a ``.c``
    file -- only of ``member`` when given -- are joined, each keeping its line
    number in the email.

    Raises:
        SourceError: unreadable file, or a patch without added C.
    """
    path = Path(path)
    try:
        raw = path.read_text(errors="replace")
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = raw.splitlines()
    if not any(_DIFF.match(line) for line in lines):
        return Source(str(path), strip_comments(raw), tuple(range(1, len(lines) + 2)))
    kept, numbers, current = [], [], None
    for number, line in enumerate(lines, 1):
        header = _DIFF.match(line)
        if header:
            current = header.group(2)
            continue
        if current is None or not current.endswith(".c") or (member and not current.endswith(member)):
            continue
        if line.startswith("+") and not line.startswith("+++"):
            kept.append(line[1:])
            numbers.append(number)
    if not kept:
        raise SourceError(f"{path}: a patch, but it adds no C" + (f" to {member}" if member else ""))
    return Source(str(path), strip_comments("\n".join(kept)), tuple(numbers) + (numbers[-1] + 1,), patch=True)
