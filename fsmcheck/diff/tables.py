"""Changed entries of the derived combination tables, per flag set.

Both tables are derived with :func:`fsmcheck.semantics.combination.derive_table`
(from the arcs and the path rule, never from a walk table); an entry changes
when its outcome (``rejected``, ``noop``, ``path``, ``no-path``) or its path
does. A pair that exists in one table only (a state added or removed, or
newly supported) is listed with the missing side as ``absent``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.schema import Model
from ..semantics.combination import Entry, derive_table
from .matching import Pairing

__all__ = ["EntryChange", "table_changes"]

ABSENT = "absent"


@dataclass(frozen=True)
class EntryChange:
    """One (current, requested) entry whose outcome or path changes.

    Attributes:
        config: the new model's flag-set label (the old one's if removed).
        baseline: the old flag-set label it is compared with, when different.
        current, requested: the pair.
        old, new: ``(outcome, path)``; outcome ``absent`` when the pair is not
            in that table.
        old_reason, new_reason: why a side is rejected (or has no path).
    """

    config: str
    baseline: str | None
    current: str
    requested: str
    old: tuple[str, tuple[str, ...]]
    new: tuple[str, tuple[str, ...]]
    old_reason: str = ""
    new_reason: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict (see the README's ``fsmcheck diff --json``)."""
        return {"config": self.config, "baseline": self.baseline, "current": self.current,
                "requested": self.requested,
                "old": {"outcome": self.old[0], "path": list(self.old[1]), "reason": self.old_reason},
                "new": {"outcome": self.new[0], "path": list(self.new[1]), "reason": self.new_reason}}

    def describe(self) -> str:
        """``STOP_COPY -> PRE_COPY: rejected -> path STOP_COPY -> PRE_COPY`` style text."""
        def side(value):
            outcome, path = value
            return f"{outcome} {' -> '.join((self.current,) + path)}" if outcome == "path" else outcome
        return f"{self.current} -> {self.requested}: {side(self.old)} => {side(self.new)}"


def _key(entry: Entry | None) -> tuple[str, tuple[str, ...]]:
    return (ABSENT, ()) if entry is None else (entry.outcome, tuple(entry.path))


def table_changes(old: Model, new: Model, pairings: list[Pairing]) -> list[EntryChange]:
    """Every changed entry, for every pairing whose both sides exist and
    whose models have a combination rule (an added or removed flag set is a
    structural change, not a list of entries)."""
    if old.combination is None or new.combination is None:
        return []
    out = []
    for p in pairings:
        if p.old is None or p.new is None:
            continue
        a, b = derive_table(old, p.old), derive_table(new, p.new)
        order = {s: i for i, s in enumerate(new.state_names + tuple(s for s in old.state_names
                                                                    if s not in new.state_names))}
        for pair in sorted(set(a) | set(b), key=lambda k: (order[k[0]], order[k[1]])):
            ea, eb = a.get(pair), b.get(pair)
            if _key(ea) != _key(eb):
                out.append(EntryChange(p.label, p.baseline, pair[0], pair[1], _key(ea), _key(eb),
                                       ea.reason if ea else "", eb.reason if eb else ""))
    return out
