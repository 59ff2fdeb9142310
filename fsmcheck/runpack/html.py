"""The results of a run-pack run as one self-contained HTML page."""

from __future__ import annotations

import html
from collections import Counter

from .results import RuleOutcome

__all__ = ["results_html"]

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;width:100%}"
          "td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}.small{font-size:85%}"
          ".failed{background:#fdd}.held{background:#dfd}.advisory{background:#ffd}"
          "pre{white-space:pre-wrap;font-size:80%;max-height:30em;overflow:auto;background:#f6f6f6;padding:6px}")

_ORDER = ("failed", "adapter error", "erratum", "held", "advisory", "not run", "not checked")


def _row(o: RuleOutcome) -> str:
    r = o.rule
    repro = ""
    for case in o.failures[:5]:
        repro += (f"<details><summary><code>{html.escape(case.name)}</code>: {html.escape(case.message[:300])}"
                  f"</summary><pre>{html.escape(case.text)}</pre></details>")
    if len(o.failures) > 5:
        repro += f"<p class='small'>and {len(o.failures) - 5} more failing test(s) (see the JUnit XML)</p>"
    detail = repro or (f"{o.ran} test(s) ran" if o.ran else html.escape(r.unobservable or r.note or ""))
    return (f"<tr class='{o.verdict.replace(' ', '-')}'><td><code>{html.escape(r.id)}</code></td><td>{r.level}</td>"
            f"<td>{html.escape(o.verdict)}</td><td>&ldquo;{html.escape(r.sentence)}&rdquo;"
            f"<div class='small'>{html.escape(r.source)}: {html.escape(r.section)}</div></td>"
            f"<td class='small'>{detail}</td></tr>")


def results_html(title: str, device: str, outcomes: list[RuleOutcome], coverage: list[str], exit_code: int) -> str:
    """The page: a ``<section id='results'>`` with the rules that failed
    (each failing test's message and reproduction), held, drew advisories,
    were not run or are not checked by a pack; then the coverage summary
    and the run's advisories (lines of ``coverage``)."""
    counts = Counter(o.verdict for o in outcomes)
    summary = ", ".join(f"{counts[v]} {v}" for v in _ORDER if counts[v])
    rows = "".join(_row(o) for v in _ORDER for o in outcomes if o.verdict == v)
    advisories = [line for line in coverage if line.startswith("advisory")]
    adv = ("<h3>Advisories (SHOULD-level deviations)</h3><ul>"
           + "".join(f"<li>{html.escape(a)}</li>" for a in advisories) + "</ul>") if advisories else ""
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<section id='results'><h2>Results</h2><p>Device: <code>{html.escape(device)}</code>; "
            f"pytest exit code {exit_code}; rules: {summary}.</p>"
            f"<table><thead><tr><th>rule</th><th>level</th><th>verdict</th><th>sentence</th>"
            f"<th>failing tests with their reproductions / tests run</th></tr></thead><tbody>{rows}</tbody></table>"
            f"{adv}<h3>Coverage</h3><pre>{html.escape(chr(10).join(coverage))}</pre></section></body></html>\n")
