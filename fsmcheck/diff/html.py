"""``fsmcheck diff --html``: the review report page of the new model with a
``diff`` section -- each configuration's diagram with the changed arcs
highlighted, and the changes as tables. Reuses :mod:`fsmcheck.review.report`
(page, style, the new model's own section) and
:mod:`fsmcheck.review.diagram`."""

from __future__ import annotations

import html

from ..review.diagram import diagram, render_bytes
from ..review.report import ModelReport, report_html
from .compare import ModelDiff

__all__ = ["diff_html", "diff_section"]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _inline(svg: bytes) -> str:
    text = svg.decode()
    return text[text.index("<svg"):]


def _table(head: list[str], rows: list[list]) -> str:
    if not rows:
        return "<p class='small'>none</p>"
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def diff_section(diff: ModelDiff) -> str:
    """The inner HTML of the ``diff`` section.

    Raises:
        fsmcheck.review.diagram.DotMissingError: graphviz's ``dot`` is missing.
    """
    marks = diff.changed_arcs()
    figures = []
    for p in diff.pairings:
        if p.new is None:
            continue
        svg = render_bytes(diagram(diff.new, [p.new], highlight={p.new.label: marks.get(p.new.label, {})}), "svg")
        caption = p.new.label + (f" (vs {p.old.label})" if p.baseline else "" if p.old else " (new)")
        n = len(marks.get(p.new.label, {}))
        figures.append(f'<figure class="diagram" data-model="{_e(diff.new.name)}" data-config="{_e(p.new.label)}" '
                       f'data-kind="diff" data-highlighted="{n}">{_inline(svg)}'
                       f'<figcaption class="small">{_e(caption)}: {n} highlighted arc(s)</figcaption></figure>')
    verdict = "observable changes (exit 1)" if diff.observable else "nothing observable changes (exit 0)"
    return (f"<p class='small'><code>{_e(diff.old.path)}</code> → <code>{_e(diff.new.path)}</code>: {_e(verdict)}. "
            "Purple arcs are added or changed in the new model; dotted purple ones are removed.</p>"
            f"<h3>Diagrams of {_e(diff.new.name)}</h3><div class='diagrams'>{''.join(figures)}</div>"
            "<h3>Structure</h3>" + _table(
                ["change", "kind", "key", "detail", "old line", "new line"],
                [[c.change, c.kind, c.key, c.detail, c.old_line or "", c.new_line or ""] for c in diff.structure])
            + "<h3>Combination-table entries</h3>" + _table(
                ["flag set", "compared with", "current", "requested", "old", "new"],
                [[e.config, e.baseline or e.config, e.current, e.requested,
                  f"{e.old[0]} {' → '.join(e.old[1])}".strip(), f"{e.new[0]} {' → '.join(e.new[1])}".strip()]
                 for e in diff.entries])
            + "<h3>Verdicts</h3>" + _table(
                ["property", "configuration", "compared with", "old", "new", "counterexample"],
                [[v.prop, v.config, v.baseline or v.config, v.old, v.new, v.summary] for v in diff.verdicts])
            + "<h3>Pack tests</h3>" + _table(
                ["module", "compared with", "appear", "disappear", "change expectation"],
                [[m.module, m.baseline or "(new module)", " ".join(m.appear), " ".join(m.disappear),
                  " ".join(t for t, _, _ in m.changed)] for m in diff.pack]))


def diff_html(diff: ModelDiff, seconds: float = 0.0) -> str:
    """The whole page: the new model's report section, then the ``diff`` section."""
    svgs = {c.label: render_bytes(diagram(diff.new, [c]), "svg") for c in diff.new.configs()}
    report = ModelReport(diff.new, diff.new_results, seconds, svgs)
    return report_html([report], extra=[("diff", f"diff: {diff.old.name} → {diff.new.name}", diff_section(diff))])
