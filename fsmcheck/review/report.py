"""The review report: one self-contained HTML file for spec reviewers.

:func:`build_report` verifies each model on both engines and writes, per
model:

* the state diagram of every configuration (inline SVG, :mod:`.diagram`);
* the property table: each instance's statement and source, both engines'
  verdicts and times, and the combined verdict;
* for models with a combination rule, the derived combination table of each
  flag set as a current x requested matrix: the next state in the cell, the
  whole path in the cell's tooltip and below it, rejected pairs (EINVAL)
  marked, ambiguous pairs flagged with every alternative;
* each counterexample as a numbered step list and as a diagram with the
  trace highlighted;
* the v1 <-> v2 correspondence (state map with encodings) when the model
  declares one.

The file references nothing outside itself (no scripts, fonts or images are
fetched), so it opens offline. Apart from the times and the generation date
in the header, the same models give the same file; with ``reproducible``
(default when ``SOURCE_DATE_EPOCH`` is set) the times are left out and the
date is ``SOURCE_DATE_EPOCH``'s, so two builds compare byte for byte.
"""

from __future__ import annotations

import datetime
import os
import html
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from .. import __version__
from ..semantics.combination import NO_PATH, NOOP, PATH, derive_table
from ..inputs.positions import located
from ..model import load_model
from ..model.schema import Config, Model
from ..verifier.trace import steps
from ..verifier.verify import ENGINES, Result, verify_model
from ..verifier.verify_report import exit_code
from .diagram import diagram, render_bytes

__all__ = ["ModelReport", "build_report", "report_html"]

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#24292f;max-width:none}
h1{font-size:1.6em}h2{border-bottom:2px solid #d0d7de;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}table{border-collapse:collapse;margin:.5em 0 1em}
th,td{border:1px solid #d0d7de;padding:.25em .5em;text-align:left;vertical-align:top;font-size:.9em}
th{background:#f6f8fa}.holds{color:#1a7f37}.fails,.error,.disagree{color:#cf222e;font-weight:bold}
.unknown{color:#9a6700;font-weight:bold}.diagrams{display:flex;flex-wrap:wrap;gap:.8em;align-items:flex-start}
.diagram{border:1px solid #d0d7de;padding:.4em;margin:0;max-width:46%}
.diagram svg{max-width:100%;height:auto;display:block}td.rejected{background:#f6f8fa;color:#8c959f}
td.noop{color:#8c959f}td.path{background:#dafbe1}td.ambiguous{background:#ffebe9;font-weight:bold}
td.no-path{background:#ffebe9}.matrix td{text-align:center;white-space:nowrap}.small{font-size:.8em;color:#57606a}
ol.trace li{font-family:monospace}code{background:#f6f8fa;padding:0 .2em}
table.chart td{font-family:monospace;font-size:.8em}tr.violation td{background:#ffebe9}
"""


@dataclass
class ModelReport:
    """What the report shows for one model: the model, its results, the
    verification time in seconds (>= 0) and the SVG diagram of each
    configuration (label -> graphviz's SVG document, rendered once for the
    page and for ``fsmcheck report --diagrams``)."""

    model: Model
    results: list[Result]
    seconds: float
    svgs: dict[str, bytes] = field(default_factory=dict)


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _inline(svg: bytes) -> str:
    """Inline SVG: graphviz's document without the XML prolog and doctype."""
    text = svg.decode()
    return text[text.index("<svg"):]


def _figure(svg: bytes, model: Model, label: str, kind: str) -> str:
    return (f'<figure class="diagram" data-model="{_esc(model.name)}" data-config="{_esc(label)}" '
            f'data-kind="{kind}">{_inline(svg)}<figcaption class="small">{_esc(label)}</figcaption></figure>')


def _verdict_cell(v, times: bool = True) -> str:
    if v is None:
        return "<td>-</td>"
    note = f' title="{_esc(v.note)}"' if v.note else ""
    spent = f' <span class="small">{v.seconds * 1000:.0f} ms</span>' if times else ""
    return f'<td class="{v.status}"{note}>{v.status}{spent}</td>'


def _property_table(rep: ModelReport, times: bool = True) -> str:
    rows = []
    for r in rep.results:
        rows.append(
            f"<tr><td><code>{_esc(r.prop.name)}</code></td><td>{_esc(r.config)}</td>"
            f"<td>{_esc(r.statement)}<div class='small'>{_esc(r.prop.source)}</div></td>"
            + "".join(_verdict_cell(r.verdicts.get(n), times) for n in ENGINES)
            + f'<td class="{r.status}">{_esc(r.status)}'
            + (f"<div class='small'>{_esc(r.detail)}</div>" if r.detail else "") + "</td></tr>")
    head = "".join(f"<th>{n}</th>" for n in ENGINES)
    return (f'<table class="properties"><tr><th>property</th><th>configuration</th><th>statement</th>{head}'
            f"<th>verdict</th></tr>{''.join(rows)}</table>")


def _matrix(model: Model, config: Config) -> str:
    table = derive_table(model, config)
    states = list(model.state_names)
    head = "".join(f"<th>{_esc(s)}</th>" for s in states)
    rows, paths = [], []
    for cur in states:
        cells = []
        for req in states:
            e = table.get((cur, req))
            if e is None:
                cells.append("<td class='rejected' title='the current state is not supported under "
                             "these flags'>·</td>")
                continue
            if e.outcome == PATH:
                full = " → ".join((cur,) + e.path)
                cls = "ambiguous" if e.ambiguous else "path"
                tip = full if not e.ambiguous else "AMBIGUOUS: " + " | ".join(
                    " → ".join((cur,) + p) for p in e.alternatives)
                text = e.next + (" ⚠" if e.ambiguous else "")
                paths.append(f"<li><code>{_esc(tip)}</code></li>")
            elif e.outcome == NOOP:
                cls, tip, text = "noop", "no-op: the current state is requested", "="
            elif e.outcome == NO_PATH:
                cls, tip, text = "no-path", f"no admissible path: {e.reason}", "no path"
            else:
                cls, tip, text = "rejected", f"EINVAL: {e.reason}", "EINVAL"
            cells.append(f'<td class="{cls}" title="{_esc(tip)}">{_esc(text)}</td>')
        rows.append(f"<tr><th>{_esc(cur)}</th>{''.join(cells)}</tr>")
    ambiguous = sum(1 for e in table.values() if e.ambiguous)
    flag = (f"<p class='fails'>{ambiguous} ambiguous pair(s): the rule allows more than one shortest path</p>"
            if ambiguous else "")
    return (f"<h4>{_esc(config.label)}</h4>{flag}<table class='matrix' data-config='{_esc(config.label)}'>"
            f"<tr><th>current \\ requested</th>{head}</tr>{''.join(rows)}</table>"
            f"<details><summary class='small'>paths ({len(paths)})</summary><ul>{''.join(paths)}</ul></details>")


def _counterexamples(rep: ModelReport) -> str:
    model, out = rep.model, []
    for r in rep.results:
        cex = r.counterexample
        if cex is None:
            continue
        where = located(cex.line, model.path) if cex.line else str(model.path)
        items = "".join(f"<li>{_esc(t)}</li>" for t in cex.trace)
        block = (f"<h4 class='fails'>{_esc(r.prop.name)} [{_esc(r.config)}]</h4><p>{_esc(cex.summary)}</p>"
                 f"<p class='small'>declared at <code>{_esc(where)}</code></p><ol class='trace'>{items}</ol>")
        config = model.config(r.config) or model.configs()[0]
        try:
            trace = steps(model, cex.trace)
        except ValueError:
            trace = None
        if trace:
            svg = render_bytes(diagram(model, [config], trace, config), "svg")
            block += "<div class='diagrams'>" + _figure(svg, model, f"{r.prop.name} [{r.config}]",
                                                            "counterexample") + "</div>"
        out.append(block)
    return "".join(out) or "<p class='holds'>No counterexample: every property holds.</p>"


def _correspondence(model: Model) -> str:
    corr = model.correspondence
    if corr is None:
        return ""
    other = corr.model or load_model(corr.model_path)
    rows = "".join(f"<tr><td>{_esc(a)}</td><td>{_esc(other.describe(b))}</td></tr>"
                   for a, b in corr.mapping.items())
    unmapped = [s for s in model.state_names if s not in corr.mapping]
    note = (f"<p class='small'>No {other.name} encoding: {_esc(', '.join(unmapped))}</p>" if unmapped else "")
    return (f"<h3>Correspondence: {_esc(model.name)} → {_esc(other.name)} ({_esc(corr.profile)} profile)</h3>"
            f"<table class='correspondence'><tr><th>{_esc(model.name)} state</th><th>{_esc(other.name)} "
            f"device_state</th></tr>{rows}</table>{note}")


def _section(rep: ModelReport, anchor: str, times: bool = True) -> str:
    model = rep.model
    code = exit_code(rep.results)
    figures = "<div class='diagrams'>" + "".join(
        _figure(rep.svgs[c.label], model, c.label, "configuration") for c in model.configs()) + "</div>"
    matrices = ""
    if model.combination is not None:
        matrices = "<h3>Derived combination tables</h3>" + "".join(
            _matrix(model, c) for c in model.configs())
    counts = {}
    for r in rep.results:
        counts[r.status] = counts.get(r.status, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return (f"<section id='{anchor}'><h2>{_esc(model.name)}: {_esc(model.title)}</h2>"
            f"<p class='small'><code>{_esc(model.path)}</code> sha256 {_esc(model.digest[:16])}… · "
            f"{len(rep.results)} property instances: {_esc(summary)} · "
            + (f"verified in {rep.seconds:.2f} s · " if times else "") +
            f"exit code {code}</p>"
            f"<h3>State diagrams</h3>{figures}<h3>Properties</h3>{_property_table(rep, times)}"
            f"{matrices}<h3>Counterexamples</h3>{_counterexamples(rep)}{_correspondence(model)}</section>")


def build_date(environ=None) -> datetime.datetime | None:
    """The report's date: ``SOURCE_DATE_EPOCH`` (seconds since 1970, UTC; see
    reproducible-builds.org/specs/source-date-epoch) when set, else now.

    Raises:
        ValueError: ``SOURCE_DATE_EPOCH`` is set but not a non-negative integer.
    """
    environ = os.environ if environ is None else environ
    epoch = environ.get("SOURCE_DATE_EPOCH")
    if epoch is None:
        return datetime.datetime.now(datetime.timezone.utc)
    if not epoch.strip().isdigit():
        raise ValueError(f"SOURCE_DATE_EPOCH must be a non-negative integer, got {epoch!r}")
    return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)


def report_html(reports: Sequence[ModelReport], extra: Sequence[tuple[str, str, str]] = (), *,
                reproducible: bool | None = None, date: datetime.datetime | None = None) -> str:
    """The report page for already-verified models (see the module docstring).

    Args:
        reports: the verified models.
        extra: sections after the models' (orchestration models, ``fsmcheck
            diff --html``): each ``(anchor, title, inner HTML)``, listed in the
            table of contents.
        reproducible: leave out what differs between two runs on the same
            input (each engine's time, each model's verification time), so
            two builds compare byte for byte. Default: when
            ``SOURCE_DATE_EPOCH`` is set.
        date: the date printed; default :func:`build_date`.
    """
    if reproducible is None:
        reproducible = "SOURCE_DATE_EPOCH" in os.environ
    date = date or build_date()
    stamp = date.strftime("%Y-%m-%d %H:%M UTC")
    times = not reproducible
    anchors = [f"model{i}" for i in range(len(reports))]
    toc = "".join(f"<li><a href='#{a}'>{_esc(r.model.name)}</a> <span class='small'>{_esc(r.model.path)}</span></li>"
                  for a, r in zip(anchors, reports))
    toc += "".join(f"<li><a href='#{_esc(a)}'>{_esc(t)}</a></li>" for a, t, _ in extra)
    body = "".join(_section(r, a, times) for r, a in zip(reports, anchors))
    body += "".join(f"<section id='{_esc(a)}'><h2>{_esc(t)}</h2>{inner}</section>" for a, t, inner in extra)
    from ..rules.html import rules_section  # the rule catalogue (fsmcheck rules)

    # packs compile only from models that verify (as `fsmcheck generate` requires)
    body += rules_section([r.model for r in reports if all(x.status == "holds" for x in r.results)])
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>fsmcheck review report</title><style>{_CSS}</style></head><body>"
            f"<h1>fsmcheck review report</h1><p class='small'>fsmcheck {__version__} · {stamp}</p>"
            f"<ul>{toc}</ul>{body}</body></html>\n")


def build_report(paths: Sequence[str], progress: Callable[[str], None] | None = None,
                 timeout_ms: int = 10000, reproducible: bool | None = None) -> tuple[str, list[ModelReport]]:
    """Load, verify and report the models at ``paths``.

    Args:
        paths: model files.
        progress: called with a short description before each step.
        timeout_ms: z3's per-query timeout (> 0).
        reproducible: see :func:`report_html`.

    Returns:
        ``(html, reports)``.

    Raises:
        fsmcheck.model.ModelError: a model file is malformed.
        fsmcheck.review.diagram.DotMissingError: graphviz's ``dot`` is missing.
    """
    reports, extra = [], []
    for path in paths:
        from ..orchestration import Orchestration, load

        model = load(path)
        if isinstance(model, Orchestration):  # its own section: N devices, both engines, sequence charts
            from ..orchestration.report import orchestration_section

            if progress:
                progress(f"{path}: orchestration")
            title, section, _ = orchestration_section(model, timeout_ms=max(timeout_ms, 60000))
            extra.append((f"orch{len(extra)}", title, section))
            continue
        start = time.perf_counter()
        results = verify_model(model, timeout_ms=timeout_ms, progress=progress)
        seconds = time.perf_counter() - start
        if progress:
            progress(f"{model.name}: diagrams and tables")
        svgs = {c.label: render_bytes(diagram(model, [c]), "svg") for c in model.configs()}
        reports.append(ModelReport(model, results, seconds, svgs))
    return report_html(reports, extra, reproducible=reproducible), reports
