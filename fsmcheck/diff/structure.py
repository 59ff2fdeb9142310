"""Structural changes between two models: declarations added, removed, changed.

Each declaration is keyed by what identifies it in the model file (a state by
name, an arc by ``from -> to`` and its flag conditions, a blocked request by
its pair, a group by name, a flag by name, a flag set by its flags, a
capability by name) and compared by the fields that carry meaning (never by
its line or free-text ``source``). Each change carries the line of the
declaration in the old and the new file (0 when absent there).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.schema import Model

__all__ = ["StructuralChange", "structural_changes", "KINDS"]

#: Kinds of declaration compared, in report order.
KINDS = ("flag", "flag set", "state", "group", "arc", "blocked", "capability")


@dataclass(frozen=True)
class StructuralChange:
    """One declaration added, removed or changed.

    Attributes:
        kind: one of :data:`KINDS`.
        key: what identifies it (``RUNNING -> STOP [needs P2P]``, a state name...).
        change: ``added``, ``removed`` or ``changed``.
        old_line, new_line: its line in the old / new model file (0 if absent).
        detail: for ``changed``, what differs (``needs: [] -> ['P2P']``).
    """

    kind: str
    key: str
    change: str
    old_line: int = 0
    new_line: int = 0
    detail: str = ""

    def to_json(self) -> dict:
        """A JSON-ready dict (see the README's ``fsmcheck diff --json``)."""
        return {"kind": self.kind, "key": self.key, "change": self.change,
                "old_line": self.old_line, "new_line": self.new_line, "detail": self.detail}


def _cond(needs, unless) -> str:
    parts = []
    if needs:
        parts.append("needs " + ",".join(sorted(needs)))
    if unless:
        parts.append("unless " + ",".join(sorted(unless)))
    return f" [{'; '.join(parts)}]" if parts else ""


def _declarations(model: Model) -> dict[tuple[str, str], tuple[int, dict]]:
    """(kind, key) -> (line, fields compared) for every declaration of ``model``."""
    out: dict[tuple[str, str], tuple[int, dict]] = {}
    flags_line = model.line_of("flags")
    for flag, bit in model.flag_bits.items():
        out[("flag", flag)] = (model.line_of("flags", "bits", flag) or flags_line, {"bit": bit})
    for i, flags in enumerate(model.flag_sets):
        key = "|".join(f for f in model.flag_order if f in flags) or "(no flags)"
        out[("flag set", key)] = (model.line_of("flags", "sets", i) or flags_line, {})
    for s in model.states:
        out[("state", s.name)] = (s.line, {"value": s.value, "needs": sorted(s.needs),
                                           "requestable": s.requestable})
    for name, members in model.groups.items():
        out[("group", name)] = (model.line_of("groups", name), {"members": sorted(members)})
    for a in model.arcs:
        out[("arc", f"{a.src} -> {a.dst}{_cond(a.needs, a.unless)}")] = (
            a.line, {"session": a.session, "tag": a.tag})
    for b in model.blocked:
        out[("blocked", f"{b.src} -> {b.dst}")] = (b.line, {"unless": sorted(b.unless)})
    for c in model.capabilities:
        out[("capability", c.name)] = (c.line, {"feature": c.feature, "needs": sorted(c.needs),
                                                "states": list(c.states)})
    return out


def structural_changes(old: Model, new: Model) -> list[StructuralChange]:
    """Every declaration of ``old`` and ``new`` that was added, removed or
    changed, ordered by kind (:data:`KINDS`) then key."""
    a, b = _declarations(old), _declarations(new)
    out = []
    for kind_key in sorted(set(a) | set(b), key=lambda k: (KINDS.index(k[0]), k[1])):
        kind, key = kind_key
        if kind_key not in a:
            out.append(StructuralChange(kind, key, "added", 0, b[kind_key][0]))
        elif kind_key not in b:
            out.append(StructuralChange(kind, key, "removed", a[kind_key][0], 0))
        elif a[kind_key][1] != b[kind_key][1]:
            (ol, of), (nl, nf) = a[kind_key], b[kind_key]
            detail = "; ".join(f"{f}: {of.get(f)!r} -> {nf.get(f)!r}" for f in sorted(set(of) | set(nf))
                               if of.get(f) != nf.get(f))
            out.append(StructuralChange(kind, key, "changed", ol, nl, detail))
    return out
