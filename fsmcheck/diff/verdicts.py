"""Property verdicts that change between two models.

Both models are decided by :func:`fsmcheck.verifier.verify.verify_model`
(both engines). A property instance of the new model is matched with the
instance of the same property in its baseline configuration
(:mod:`.matching`); model-wide properties (configuration ``all``) with each
other. An instance with no counterpart is listed with the missing side as
``absent``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..verifier.verify import Result
from .matching import Pairing

__all__ = ["VerdictChange", "verdict_changes"]

ABSENT = "absent"


@dataclass(frozen=True)
class VerdictChange:
    """One property instance whose combined verdict changes.

    Attributes:
        prop: the property name.
        config: the new configuration label (``all`` for model-wide ones; the
            old label if the instance was removed).
        baseline: the old configuration label, when different.
        old, new: the combined status (``holds``, ``fails``, ``unknown``,
            ``disagree``, ``error``) or ``absent``.
        summary: the new side's counterexample summary (or the old side's
            when the new one holds), else "".
        line: the model line the counterexample points at (0 if none).
    """

    prop: str
    config: str
    baseline: str | None
    old: str
    new: str
    summary: str = ""
    line: int = 0

    def to_json(self) -> dict:
        """A JSON-ready dict (see the README's ``fsmcheck diff --json``)."""
        return {"property": self.prop, "config": self.config, "baseline": self.baseline,
                "old": self.old, "new": self.new, "summary": self.summary, "line": self.line}


def _index(results: list[Result]) -> dict[tuple[str, str], Result]:
    return {(r.prop.name, r.config): r for r in results}


def verdict_changes(old_results: list[Result], new_results: list[Result],
                    pairings: list[Pairing]) -> list[VerdictChange]:
    """The instances whose status differs, in the new model's property order,
    then removed instances."""
    a, b = _index(old_results), _index(new_results)
    partner = {p.new.label: p.old.label for p in pairings if p.new is not None and p.old is not None}
    partner["all"] = "all"
    out, seen = [], set()
    for r in new_results:
        base = partner.get(r.config)
        old = a.get((r.prop.name, base)) if base is not None else None
        if old is not None:
            seen.add((r.prop.name, base))
        old_status = old.status if old is not None else ABSENT
        if old_status != r.status:
            cex = r.counterexample or (old.counterexample if old is not None else None)
            out.append(VerdictChange(r.prop.name, r.config, base if base not in (None, r.config) else None,
                                     old_status, r.status, cex.summary if cex else "", cex.line if cex else 0))
    for r in old_results:
        if (r.prop.name, r.config) not in seen:
            cex = r.counterexample
            out.append(VerdictChange(r.prop.name, r.config, None, r.status, ABSENT,
                                     cex.summary if cex else "", cex.line if cex else 0))
    return out
