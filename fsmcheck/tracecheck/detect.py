"""Telling a trace's format from its content, and opening it as events.

Three formats (see :mod:`.qemu_log`, :mod:`.qmp`, :mod:`.itf`):

* ``qemu-log``: the first non-blank lines include a trace-event line --
  ``PID@SEC.USEC:NAME ...`` or, without the prefix, a snake_case event name
  (every QEMU trace event has one) followed by a space or the line end;
* ``qmp``: the first non-blank line is a QMP JSON object (an ``event``,
  ``return``, ``error`` or greeting);
* ``itf``: the whole file is one JSON document with ``#meta.format`` ``ITF``.

A file that fits none is bad input (:class:`TraceInputError`, exit 2), named
with the line that did not fit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

from .events import Event
from .itf import load_itf, looks_like_itf
from .qemu_log import KNOWN_EVENTS, read_qemu_log
from .qmp import looks_like_qmp, read_qmp

__all__ = ["TraceInputError", "TraceSource", "open_trace", "FORMATS"]

FORMATS = ("qemu-log", "qmp", "itf")
_SCAN_LINES = 200
_EVENT_LINE = re.compile(r"(?:\d+@\d+\.\d+:(?P<any>[A-Za-z_]\w*)|(?P<name>[a-z][a-z0-9]*_[a-z0-9_]+))(?: |\Z)")


class TraceInputError(Exception):
    """A trace that cannot be read: ``path:line: message`` (exit 2)."""

    def __init__(self, path: Path | str, line: int, message: str):
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = str(path), line, message


@dataclass(frozen=True)
class TraceSource:
    """An opened trace.

    Attributes:
        path: the file.
        format: one of :data:`FORMATS`.
        events: a callable giving a fresh iterator over the file's events
            (so the checker may read it twice, in constant memory).
        flags: device -> the flag set the trace itself declares (ITF
            configurations); empty for QEMU logs and QMP.
        model: the model name the trace declares (ITF), else ``""``.
        profile: the profile the trace declares (ITF), else ``""``.
    """

    path: Path
    format: str
    events: Callable[[], Iterator[Event]]
    flags: dict[str, frozenset[str]] = field(default_factory=dict)
    model: str = ""
    profile: str = ""


def _is_event_line(text: str) -> bool:
    m = _EVENT_LINE.match(text)
    if m is None:
        return False
    return m.group("any") is not None or m.group("name") in KNOWN_EVENTS or m.group("name").startswith(
        ("vfio_", "migrat"))


def open_trace(path: Path | str) -> TraceSource:
    """Detect the format of the trace at ``path`` from its content and open it.

    Raises:
        TraceInputError: the file cannot be read, is empty, or fits no format
            (the error names the first line that did not fit).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = [(n, raw.rstrip("\r\n")) for n, raw in islice(enumerate(handle, 1), _SCAN_LINES)]
    except OSError as exc:
        raise TraceInputError(path, 1, f"cannot read: {exc.strerror or exc}") from exc
    lines = [(n, t) for n, t in head if t.strip()]
    if not lines:
        raise TraceInputError(path, 1, "empty trace")
    first_no, first = lines[0]
    if first.lstrip().startswith("{"):
        if looks_like_qmp(first):
            return TraceSource(path, "qmp", lambda: read_qmp(path))
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            doc = json.loads(text)
        except ValueError as exc:
            line = getattr(exc, "lineno", first_no)
            raise TraceInputError(path, line, "starts like JSON but is neither a QMP event line nor an ITF "
                                  f"trace ({getattr(exc, 'msg', exc)})") from exc
        if not looks_like_itf(doc):
            raise TraceInputError(path, first_no, "a JSON document but not an ITF trace "
                                  "(#meta.format \"ITF\" and states are required)")
        try:
            trace = load_itf(path, text, doc)
        except ValueError as exc:
            line, _, message = str(exc).partition(": ")
            raise TraceInputError(path, int(line), message) from exc
        flags = {trace.device: trace.flags} if trace.flags is not None else {}
        return TraceSource(path, "itf", lambda: iter(trace.events), flags, trace.model, trace.profile)
    if any(_is_event_line(t) for _, t in lines):
        return TraceSource(path, "qemu-log", lambda: read_qemu_log(path))
    raise TraceInputError(path, first_no, "fits no trace format: not a QEMU trace-event line "
                          "([PID@SEC.USEC:]event_name ARGS), a QMP JSON object, nor an ITF trace: "
                          f"{first[:80]!r}")
