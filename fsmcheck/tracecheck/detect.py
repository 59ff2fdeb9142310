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

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .events import Event
from ..inputs import DEFAULT_MAX_BYTES
from .itf import load_itf, looks_like_itf, parse_document
from .qemu_log import KNOWN_EVENTS, read_qemu_log
from .qmp import looks_like_qmp, read_qmp
from .reader import MAX_LINE_BYTES, TraceInputError, TraceLines, open_trace_lines

__all__ = ["TraceInputError", "TraceSource", "open_trace", "FORMATS"]

FORMATS = ("qemu-log", "qmp", "itf")
_SCAN_LINES = 200
_EVENT_LINE = re.compile(r"(?:\d+@\d+\.\d+:(?P<any>[A-Za-z_]\w*)|(?P<name>[a-z][a-z0-9]*_[a-z0-9_]+))(?: |\Z)")


@dataclass(frozen=True)
class TraceSource:
    """An opened trace (close it, or use it as a context manager).

    Attributes:
        path: the file.
        format: one of :data:`FORMATS`.
        events: ``events(keep=False)`` gives an iterator over the trace's
            events; the first call reads the input once (``keep``: into a
            spool), each later call replays that spool (:mod:`.reader`), in
            memory bounded per line.
        flags: device -> the flag set the trace itself declares (ITF
            configurations); empty for QEMU logs and QMP.
        model: the model name the trace declares (ITF), else ``""``.
        profile: the profile the trace declares (ITF), else ``""``.
        text: the open input (None for a source built from events).
        flags_line: the line declaring ``flags`` (ITF), for diagnostics.
    """

    path: Path
    format: str
    events: Callable[..., Iterator[Event]]
    flags: dict[str, frozenset[str]] = field(default_factory=dict)
    model: str = ""
    profile: str = ""
    text: TraceLines | None = None
    flags_line: int = 1

    def close(self) -> None:
        if self.text is not None:
            self.text.close()

    def __enter__(self) -> TraceSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_event_line(text: str) -> bool:
    m = _EVENT_LINE.match(text)
    if m is None:
        return False
    return m.group("any") is not None or m.group("name") in KNOWN_EVENTS or m.group("name").startswith(
        ("vfio_", "migrat"))


def open_trace(path: Path | str, *, max_line_bytes: int = MAX_LINE_BYTES,
               max_document_bytes: int = DEFAULT_MAX_BYTES) -> TraceSource:
    """Open the trace at ``path`` (a file, a pipe, ``-``) and detect its
    format from its head, reading it once (:mod:`.reader`).

    Raises:
        fsmcheck.inputs.InputError: the input cannot be read, has a line over
            ``max_line_bytes`` or bytes that are not UTF-8 (at that line), or an
            ITF document over ``max_document_bytes``;
        TraceInputError: it is empty, fits no format, or is a bad ITF trace
            (the error names the line).
    """
    text = open_trace_lines(path, max_line_bytes)
    try:
        return _detect(text, max_document_bytes)
    except BaseException:
        text.close()
        raise


def _detect(text: TraceLines, max_document_bytes: int) -> TraceSource:
    path = text.path
    lines = [(n, t) for n, t in text.source.head(_SCAN_LINES) if t.strip()]
    if not lines:
        raise TraceInputError(path, 1, "empty trace")
    first_no, first = lines[0]
    if first.lstrip().startswith("{"):
        if looks_like_qmp(first):
            return TraceSource(path, "qmp", lambda keep=False: read_qmp(text.passes(keep)), text=text)
        whole = text.source.read_rest(max_bytes=max_document_bytes)
        doc = parse_document(whole, first_no)
        if not looks_like_itf(doc):
            raise TraceInputError(path, first_no, "a JSON document but not an ITF trace "
                                  "(#meta.format \"ITF\" and states are required)")
        trace = load_itf(path, whole.text, doc)
        flags = {trace.device: trace.flags} if trace.flags is not None else {}
        return TraceSource(path, "itf", lambda keep=False: iter(trace.events), flags, trace.model, trace.profile,
                           text, trace.flags_line)
    if any(_is_event_line(t) for _, t in lines):
        return TraceSource(path, "qemu-log", lambda keep=False: read_qemu_log(text.passes(keep)), text=text)
    raise TraceInputError(path, first_no, "fits no trace format: not a QEMU trace-event line "
                          "([PID@SEC.USEC:]event_name ARGS), a QMP JSON object, nor an ITF trace: "
                          f"{first[:80]!r}")
