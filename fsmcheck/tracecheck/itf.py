"""Reading the ITF-like traces ``fsmcheck verify --trace-dir`` writes.

The format is documented in :mod:`fsmcheck.verifier.trace`: one JSON
document with ``#meta`` (model, property, configuration, ``flags``) and
``states``, each with ``state`` and ``via`` (``open``, ``request``, ``reset``,
``failure``). The document is read whole (these files are small); each
state becomes a ``step`` event at the line of its ``"index"`` entry, and
every other line an ``other`` event, so findings point into the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..inputs import Diagnostic, InputError, Text, parse_json
from .events import OTHER, STEP, Event
from .reader import TraceInputError

__all__ = ["ItfTrace", "load_itf", "looks_like_itf", "parse_document"]

# A state's index: up to 9 digits (no trace has a billion states; a longer
# run of digits is not an index, and int() of it is never attempted).
_INDEX = re.compile(r'"index"\s*:\s*(\d{1,9})(?!\d)')


@dataclass(frozen=True)
class ItfTrace:
    """A loaded ITF trace: its device name, model, the flags and profile its
    configuration names (None / ``""`` when it names none) and its events."""

    device: str
    model: str
    flags: frozenset[str] | None
    events: tuple[Event, ...]
    profile: str = ""
    flags_line: int = 1


def parse_document(text: Text, first_line: int = 1) -> object:
    """``text`` parsed as one JSON document (:func:`fsmcheck.inputs.parse_json`:
    nesting and integer-digit guards).

    Raises:
        fsmcheck.inputs.InputError: not JSON (at the line the parser stopped),
            nested too deeply, or an integer of too many digits.
    """
    try:
        return parse_json(text)
    except InputError as exc:  # an error at the end of the file: its last line, not the one after it
        last = max(1, text.text.count("\n") + (0 if text.text.endswith("\n") else 1))
        raise InputError([Diagnostic(d.path, min(d.line, last), d.key, d.message) for d in exc.diagnostics]) \
            from None


def looks_like_itf(doc: object) -> bool:
    """True when ``doc`` (parsed JSON) is an ITF trace."""
    return isinstance(doc, dict) and isinstance(doc.get("states"), list) and \
        isinstance(doc.get("#meta"), dict) and doc["#meta"].get("format") == "ITF"


def load_itf(path: Path, text: str, doc: dict) -> ItfTrace:
    """The :class:`ItfTrace` of ``doc``, parsed from ``text`` read at ``path``.

    Lines are counted at ``\n`` only, as JSON and editors count them (a
    U+2028 inside a string does not start a line).

    Raises:
        TraceInputError: a state lacks ``state`` or ``via``, or ``#meta.flags``
            is not a list of strings.
    """
    meta = doc["#meta"]
    device = ".".join(str(meta[k]) for k in ("model", "property", "configuration")
                      if isinstance(meta.get(k), (str, int)) and meta.get(k) != "") or path.stem
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [line.removesuffix("\r") for line in lines]
    at: dict[int, int] = {}
    seen_states = False
    for number, line in enumerate(lines, 1):
        if '"states"' in line:
            seen_states = True
        elif seen_states:
            m = _INDEX.search(line)
            if m is not None:
                at.setdefault(int(m.group(1)), number)
    steps: dict[int, list[Event]] = {}
    line = 1
    for i, state in enumerate(doc["states"]):
        line = at.get(i, line)
        if not isinstance(state, dict) or not isinstance(state.get("state"), str) or \
                state.get("via") not in ("open", "request", "reset", "failure"):
            raise TraceInputError(path, line, f"states[{i}] needs a string 'state' and a 'via' of open, "
                                  "request, reset or failure")
        steps.setdefault(line, []).append(Event(line, STEP, device, state["state"], state["via"], "state",
                                                lines[line - 1] if lines else ""))
    events = tuple(e for n, t in enumerate(lines, 1)
                   for e in steps.get(n, [Event(n, OTHER, "", "", "", "", t)]))
    flags = meta.get("flags")
    if flags is not None and not (isinstance(flags, list) and all(isinstance(f, str) for f in flags)):
        raise TraceInputError(path, _line_of(lines, '"flags"'), "#meta.flags must be a list of flag names "
                              "(strings)", "#meta.flags")
    profile = meta.get("profile")
    return ItfTrace(device, str(meta.get("model", "")) if isinstance(meta.get("model"), str) else "",
                    frozenset(flags) if flags is not None else None, events,
                    profile if isinstance(profile, str) else "", _line_of(lines, '"flags"'))


def _line_of(lines: list[str], needle: str) -> int:
    return next((n for n, t in enumerate(lines, 1) if needle in t), 1)
