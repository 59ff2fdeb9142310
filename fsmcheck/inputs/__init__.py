"""The one front end for every file fsmcheck reads: models, orchestration files,
errata, traces, packs, ITF counterexamples.

Whatever the kind, a file is read once (a pipe or ``/dev/stdin`` is consumed in one
pass, never reopened), and every way it can be unreadable ends as one
:class:`InputError` whose :class:`Diagnostic` items render as
``file:line: key: message`` (exit 2 in every command):

- bytes: a missing or unreadable file, a directory, more than the size bound;
- text: bytes that are not UTF-8 (the line and column of the first bad byte);
- structure: TOML or JSON syntax (at its line), nesting deeper than
  :data:`MAX_NESTING`, integers of more digits than Python converts, a line over
  its bound in a line-oriented file.

- :func:`read_text` reads a whole file into a :class:`Text`;
- :func:`open_lines` streams a line-oriented file (traces) once, with a
  peekable head for format detection and :meth:`LineSource.read_rest` for a
  whole-document format found there;
- :func:`parse_toml`, :func:`parse_json` and :func:`parse_json_line` parse with
  the guards; :mod:`.positions` maps TOML key paths to lines.

Line numbers count LF only (TOML's and JSON's rule): U+2028, form feeds and the
other characters :meth:`str.splitlines` breaks at do not shift them.
"""

from .diagnostic import Diagnostic, InputError
from .documents import MAX_NESTING, parse_json, parse_json_line, parse_toml
from .source import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE_BYTES, LineSource, Text, directory_of, open_lines, read_text

__all__ = [
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_LINE_BYTES", "Diagnostic", "InputError", "LineSource", "MAX_NESTING",
    "Text", "directory_of", "open_lines", "parse_json", "parse_json_line", "parse_toml", "read_text",
]
