"""``fsmcheck diff`` as text: one section per kind of change, every line
pointing at the model line it comes from (``file:line``)."""

from __future__ import annotations

from ..inputs.positions import located
from .compare import ModelDiff

__all__ = ["diff_lines"]

_MAX_TESTS = 12


def _where(diff: ModelDiff, old_line: int, new_line: int) -> str:
    parts = []
    if old_line:
        parts.append(located(old_line, diff.old.path))
    if new_line:
        parts.append(located(new_line, diff.new.path))
    return " -> ".join(parts)


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:_MAX_TESTS])
    return shown + (f", ... ({len(ids) - _MAX_TESTS} more)" if len(ids) > _MAX_TESTS else "")


def diff_lines(diff: ModelDiff) -> list[str]:
    """The report as lines of plain text (no trailing newline)."""
    out = [f"fsmcheck diff: {diff.old.name} ({diff.old.path}) -> {diff.new.name} ({diff.new.path})"]
    compared = [p for p in diff.pairings if p.old is not None and p.new is not None and p.baseline]
    for p in compared:
        out.append(f"  flag set {p.new.label} is compared with {p.old.label} (its flags the old model knows)")
    out.append(f"structure: {len(diff.structure)} change(s)")
    for c in diff.structure:
        detail = f": {c.detail}" if c.detail else ""
        out.append(f"  {c.change} {c.kind} {c.key}{detail}  ({_where(diff, c.old_line, c.new_line)})")
    out.append(f"combination tables: {len(diff.entries)} entry(ies) change")
    for e in diff.entries:
        vs = f" (vs {e.baseline})" if e.baseline else ""
        out.append(f"  [{e.config}{vs}] {e.describe()}")
    out.append(f"verdicts: {len(diff.verdicts)} change(s)")
    for v in diff.verdicts:
        vs = f" (vs {v.baseline})" if v.baseline else ""
        where = f"  ({located(v.line, diff.new.path)})" if v.line else ""
        summary = f": {v.summary}" if v.summary else ""
        out.append(f"  {v.prop} [{v.config}{vs}]: {v.old} -> {v.new}{summary}{where}")
    out.append(f"pack: {len(diff.pack)} module(s) change")
    for m in diff.pack:
        base = f" (vs {m.baseline})" if m.baseline and m.baseline != m.module else ""
        out.append(f"  {m.module}{base}: {len(m.appear)} appear, {len(m.disappear)} disappear, "
                   f"{len(m.changed)} change expectation")
        if m.appear:
            out.append(f"    appear: {_ids(m.appear)}")
        if m.disappear:
            out.append(f"    disappear: {_ids(m.disappear)}")
        if m.changed:
            out.append(f"    change: {_ids([t for t, _, _ in m.changed])}")
    out.append("fsmcheck diff: " + ("observable changes" if diff.observable else "nothing observable changes"))
    return out
