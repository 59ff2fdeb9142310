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

from .events import OTHER, STEP, Event

__all__ = ["ItfTrace", "load_itf", "looks_like_itf"]

_INDEX = re.compile(r'"index"\s*:\s*(\d+)')


@dataclass(frozen=True)
class ItfTrace:
    """A loaded ITF trace: its device name, model, the flags and profile its
    configuration names (None / ``""`` when it names none) and its events."""

    device: str
    model: str
    flags: frozenset[str] | None
    events: tuple[Event, ...]
    profile: str = ""


def looks_like_itf(doc: object) -> bool:
    """True when ``doc`` (parsed JSON) is an ITF trace."""
    return isinstance(doc, dict) and isinstance(doc.get("states"), list) and \
        isinstance(doc.get("#meta"), dict) and doc["#meta"].get("format") == "ITF"


def load_itf(path: Path, text: str, doc: dict) -> ItfTrace:
    """The :class:`ItfTrace` of ``doc``, parsed from ``text`` read at ``path``.

    Raises:
        ValueError: a state lacks ``state`` or ``via`` (message ``LINE: what``).
    """
    meta = doc["#meta"]
    device = ".".join(str(meta[k]) for k in ("model", "property", "configuration") if meta.get(k)) or path.stem
    lines = text.splitlines()
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
            raise ValueError(f"{line}: states[{i}] needs a string 'state' and a 'via' of open, request, "
                             "reset or failure")
        steps.setdefault(line, []).append(Event(line, STEP, device, state["state"], state["via"], "state",
                                                lines[line - 1] if lines else ""))
    events = tuple(e for n, t in enumerate(lines, 1)
                   for e in steps.get(n, [Event(n, OTHER, "", "", "", "", t)]))
    flags = meta.get("flags")
    return ItfTrace(device, str(meta.get("model", "")),
                    frozenset(flags) if isinstance(flags, list) else None, events,
                    str(meta.get("profile") or ""))

