"""The orchestration section of the HTML review report.

:func:`orchestration_section` verifies an orchestration model with N = 2
devices, failure-free and with one failure (the configuration where QEMU's
limitation shows), and writes an HTML section: the property table (both
engines' verdicts, times and how z3 decided: the k that closed the
induction, or the BMC depth of the counterexample), then each
counterexample as a sequence chart -- one row per QEMU callback, one column
per device, the device called marked, the last row (the broken state)
highlighted.
"""

from __future__ import annotations

import html
import time

from ..inputs.positions import located
from .loader import load_orchestration
from .schema import Orchestration
from .trace import chart_rows
from .verify import verify_orchestration

__all__ = ["orchestration_section"]


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def orchestration_section(path: str | Orchestration, *, devices: int = 2, failure_budgets=(0, 1),
                          timeout_ms: int = 60000) -> tuple[str, str, list]:
    """Verify the orchestration model at ``path`` (or already loaded) and write its report section.

    Returns:
        ``(title, html, results)``: the section's title (``name: title`` of the
        model, for the heading and the table of contents), its inner HTML (the
        report wraps it in a ``<section>``), and every :class:`~fsmcheck.verifier.verify.Result`.

    Raises:
        fsmcheck.model.ModelError: the file is not a valid orchestration model.
    """
    orch = path if isinstance(path, Orchestration) else load_orchestration(path)
    start = time.perf_counter()
    all_results, charts = [], []
    for failures in failure_budgets:
        results, checked = verify_orchestration(orch, devices=devices, failures=failures, timeout_ms=timeout_ms)
        all_results += results
        for r in results:
            # the engine whose counterexample the result shows (networkx first, as Result.counterexample)
            trace = checked.traces.get((r.config, r.prop.name, "networkx")) or checked.traces.get(
                (r.config, r.prop.name, "z3"))
            if trace is None:
                continue
            rows = chart_rows(checked.systems[r.config], trace)
            head = "".join(f"<th>{_esc(c)}</th>" for c in rows[0])
            body = "".join(
                "<tr" + (" class='violation'" if i == len(rows) - 2 else "") + ">"
                + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for i, row in enumerate(rows[1:]))
            cex = r.counterexample
            charts.append(f"<h4 class='fails'>{_esc(r.prop.name)} [{_esc(r.config)}]</h4>"
                          f"<p>{_esc(cex.summary)}</p><p class='small'>phase declared at "
                          f"<code>{_esc(located(cex.line, orch.path))}</code>; {len(rows) - 2} steps, shortest "
                          f"(both engines)</p><table class='chart'><tr>{head}</tr>{body}</table>")
    seconds = time.perf_counter() - start
    table = ["<table><tr><th>property</th><th>configuration</th><th>networkx</th><th>z3</th>"
             "<th>verdict</th><th>how</th></tr>"]
    for r in all_results:
        cells = "".join(f"<td class='{_esc(v.status)}'>{_esc(v.status)} {v.seconds * 1000:.0f} ms</td>"
                        for v in (r.verdicts["networkx"], r.verdicts["z3"]))
        how = r.verdicts["z3"].note + (f"; {r.detail}" if r.detail else "")
        table.append(f"<tr><td>{_esc(r.prop.name)}</td><td>{_esc(r.config)}</td>{cells}"
                     f"<td class='{_esc(r.status)}'>{_esc(r.status)}</td><td class='small'>{_esc(how)}</td></tr>")
    table.append("</table>")
    statements = "".join(f"<li><b>{_esc(r.prop.name)}</b>: {_esc(r.statement)} "
                         f"<span class='small'>({_esc(r.prop.source)})</span></li>"
                         for r in {r.prop.name: r for r in all_results}.values())
    try:
        from .diagram import phase_svg

        svg = phase_svg(orch)
        svg = "<h4>per-phase diagram</h4>" + svg[svg.index("<svg"):]
    except Exception as exc:  # graphviz's dot missing: the section without its diagram
        svg = f"<p class='small'>per-phase diagram not drawn: {_esc(exc)}</p>"
    section = (f"<p class='small'>{_esc(orch.path)} · device model {_esc(orch.device.path)} · "
               f"N = {devices} devices · failure budgets {', '.join(map(str, failure_budgets))} · "
               f"verified in {seconds:.2f} s</p>{svg}<ul>{statements}</ul>{''.join(table)}"
               f"{''.join(charts) or '<p class=holds>No counterexample.</p>'}")
    return f"{orch.name}: {orch.title}", section, all_results
