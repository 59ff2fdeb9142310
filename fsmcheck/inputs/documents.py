"""TOML and JSON documents parsed with the guards every input gets.

tomllib and json recurse once per level of nesting and convert integers with
:func:`int`, so a file of a few kilobytes can exhaust the stack or hit Python's
integer-digit limit. Both are checked before parsing, each ending as an
:class:`~.diagnostic.InputError` at the line where it happens, like a syntax error.
"""

from __future__ import annotations

import json
import re
import sys
import tomllib

from .diagnostic import InputError
from .source import Text

__all__ = ["MAX_NESTING", "parse_json", "parse_json_line", "parse_toml"]

#: The deepest nesting of arrays and tables (TOML inline tables, JSON objects)
#: read. The shipped models nest 3 levels; tomllib and json recurse per level.
MAX_NESTING = 100

# Possessive and atomic forms keep the scanner's memory constant on long strings.
_TOML_TOKENS = re.compile(
    r'"""(?>[^"\\]++|\\.|"(?!""))*+(?:"""|\Z)'
    r"|'''(?>[^']++|'(?!''))*+(?:'''|\Z)"
    r'|"(?>[^"\\\n]++|\\.)*+"?'
    r"|'[^'\n]*+'?"
    r"|#[^\n]*+"
    r"|[\[\]{}]",
    re.S,
)
_JSON_TOKENS = re.compile(r'"(?>[^"\\]++|\\.)*+"?|[\[\]{}]', re.S)


def _nesting(text: str, tokens: re.Pattern) -> tuple[int, int]:
    """The deepest nesting of ``[``/``{`` outside strings and comments, and the
    offset where it is first reached."""
    depth = deepest = 0
    at = 0
    for match in tokens.finditer(text):
        char = text[match.start()]
        if char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, match.start()
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest, at


def _check_nesting(doc: Text, tokens: re.Pattern, key: str) -> None:
    depth, at = _nesting(doc.text, tokens)
    if depth > MAX_NESTING:
        raise doc.error(doc.line_of(at), key, f"arrays or tables nested more than {MAX_NESTING} levels deep")



def _digits_error(doc: Text, key: str) -> InputError:
    """The diagnostic for an integer of more digits than Python converts."""
    limit = sys.get_int_max_str_digits() or 4300
    match = re.search(r"\d{%d}" % (limit + 1), doc.text)
    line = doc.line_of(match.start()) if match else 1
    return doc.error(line, key, f"an integer of more than {limit} digits")


def parse_toml(doc: Text) -> dict:
    """tomllib's parse of ``doc``.

    Raises:
        InputError: a TOML syntax error (at its line and column), nesting deeper
            than :data:`MAX_NESTING`, or an integer of more digits than Python
            converts.
    """
    _check_nesting(doc, _TOML_TOKENS, "<toml>")
    try:
        return tomllib.loads(doc.text)
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", text)
        if match:
            line = int(match.group(1))
        elif "at end of document" in text:
            line = doc.text.removesuffix("\n").count("\n") + 1
        else:
            line = 1
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", text)
        where = f" (column {match.group(2)})" if match else (" (at end of file)" if "end of document" in text else "")
        raise doc.error(line, "<toml>", f"TOML syntax error: {msg}{where}") from None
    except ValueError:  # int() over the digit limit
        raise _digits_error(doc, "<toml>") from None
    except (RecursionError, MemoryError):
        raise doc.error(1, "<toml>", "the document is nested too deeply to parse") from None


def _reject_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _json_loads(doc: Text, key: str):
    _check_nesting(doc, _JSON_TOKENS, key)
    try:
        return json.loads(doc.text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        last = doc.text.removesuffix("\n").count("\n") + 1  # an error at the end is on the last line
        line, where = (exc.lineno, f"column {exc.colno}") if exc.lineno <= last else (last, "at end of file")
        raise doc.error(line, key, f"JSON syntax error: {exc.msg} ({where})") from None
    except ValueError as exc:
        if "is not JSON" in str(exc):
            match = re.search(r"-?\b(?:NaN|Infinity)\b", doc.text)
            raise doc.error(doc.line_of(match.start()) if match else 1, key, str(exc)) from None
        raise _digits_error(doc, key) from None
    except (RecursionError, MemoryError):
        raise doc.error(1, key, "the document is nested too deeply to parse") from None


def parse_json(doc: Text):
    """json's parse of the whole of ``doc``.

    Raises:
        InputError: a JSON syntax error (at its line and column), ``NaN`` or
            ``Infinity``, nesting deeper than :data:`MAX_NESTING`, or an integer
            of more digits than Python converts.
    """
    return _json_loads(doc, "<json>")


def parse_json_line(path: str, lineno: int, line: str):
    """json's parse of one line of a JSON-lines file (``path``, line ``lineno``),
    with the guards of :func:`parse_json`; diagnostics carry ``lineno``.

    Raises:
        InputError: as :func:`parse_json`, at ``lineno``.
    """
    try:
        return _json_loads(Text(path, b"", line), "<json>")
    except InputError as exc:
        raise InputError.at(path, lineno, "<json>", exc.diagnostics[0].message) from None
