"""Everything ``fsmcheck diff`` reports about two models, and whether any of
it is observable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..model.schema import Model
from ..verifier.verify import Result, verify_model
from .matching import Pairing, pair_configs
from .pack_tests import ModuleChange, pack_changes
from .structure import StructuralChange, structural_changes
from .tables import EntryChange, table_changes
from .verdicts import VerdictChange, verdict_changes

__all__ = ["ModelDiff", "diff_models", "JSON_VERSION"]

#: Version of the ``fsmcheck diff --json`` shape (README: "fsmcheck diff").
JSON_VERSION = 1


@dataclass
class ModelDiff:
    """What changes from model ``old`` to model ``new``.

    Attributes:
        old, new: the models.
        pairings: each new configuration with its baseline (:mod:`.matching`).
        structure: declarations added, removed or changed.
        entries: combination-table entries whose outcome or path changes.
        verdicts: property instances whose verdict changes.
        pack: pack modules whose tests appear, disappear or change expectation.
        old_results, new_results: the full verification results.
    """

    old: Model
    new: Model
    pairings: list[Pairing]
    structure: list[StructuralChange]
    entries: list[EntryChange]
    verdicts: list[VerdictChange]
    pack: list[ModuleChange]
    old_results: list[Result]
    new_results: list[Result]

    @property
    def observable(self) -> bool:
        """True when anything a user or driver could see changes: a
        declaration, a table entry, a verdict or a pack test. A change of
        comments, sources or line numbers alone is not observable."""
        return bool(self.structure or self.entries or self.verdicts or self.pack)

    def changed_arcs(self) -> dict[str, dict[tuple[str, str], str]]:
        """Per new configuration label, the arcs to highlight in its diagram:
        ``(src, dst) -> "added"`` for an arc of the new configuration that its
        baseline lacks, ``"changed"`` for one whose session effect differs,
        ``"removed"`` for a baseline arc the new configuration lacks."""
        from ..semantics.graphs import arc_graph

        out = {}
        for p in self.pairings:
            if p.new is None:
                continue
            nb = {(u, v): d.get("session", "none") for u, v, d in arc_graph(self.new, p.new).edges(data=True)}
            ob = ({(u, v): d.get("session", "none") for u, v, d in arc_graph(self.old, p.old).edges(data=True)}
                  if p.old is not None else {})
            marks = {k: "added" for k in nb if k not in ob}
            marks.update({k: "changed" for k in nb if k in ob and ob[k] != nb[k]})
            marks.update({k: "removed" for k in ob if k not in nb})
            out[p.new.label] = marks
        return out

    def to_json(self) -> dict:
        """The documented ``fsmcheck diff --json`` document (README)."""
        return {
            "version": JSON_VERSION,
            "old": {"path": str(self.old.path), "name": self.old.name, "sha256": self.old.digest},
            "new": {"path": str(self.new.path), "name": self.new.name, "sha256": self.new.digest},
            "observable": self.observable,
            "configs": [{"config": p.label, "baseline": p.old.label if p.old else None,
                         "status": "removed" if p.new is None else "added" if p.old is None else "compared"}
                        for p in self.pairings],
            "structure": [c.to_json() for c in self.structure],
            "table": [e.to_json() for e in self.entries],
            "verdicts": [v.to_json() for v in self.verdicts],
            "pack": [m.to_json() for m in self.pack],
            "highlighted_arcs": {label: [{"from": u, "to": v, "change": c} for (u, v), c in sorted(marks.items())]
                                 for label, marks in self.changed_arcs().items() if marks},
        }


def diff_models(old: Model, new: Model, *, timeout_ms: int = 10000,
                progress: Callable[[str], None] | None = None) -> ModelDiff:
    """Compare two loaded models: structure, tables, verdicts and pack.

    Args:
        old, new: the models (any kinds verify_model and the pack compiler take).
        timeout_ms: z3's per-query timeout in milliseconds (> 0).
        progress: called with a short description before each step.

    Raises:
        ValueError: a model the pack compiler does not take, or a property
            that does not apply (from the verifier or the pack compiler).
    """
    say = progress or (lambda _msg: None)
    pairings = pair_configs(old, new)
    say("structure")
    structure = structural_changes(old, new)
    say("combination tables")
    entries = table_changes(old, new, pairings)
    old_results = verify_model(old, timeout_ms=timeout_ms, progress=progress)
    new_results = verify_model(new, timeout_ms=timeout_ms, progress=progress)
    verdicts = verdict_changes(old_results, new_results, pairings)
    say("packs")
    pack = pack_changes(old, new, pairings)
    return ModelDiff(old, new, pairings, structure, entries, verdicts, pack, old_results, new_results)
