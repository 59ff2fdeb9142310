"""What ``check-trace`` prints: the text report and the ``--json`` document.

Text: per trace, one table per device (each request with its line, the
recorded state after it and the kernel path the model derives) headed by
the device's flag set and its sequence of recorded states; then each
finding as ``FILE:LINE: RULE: message`` with its device, the source
sentence of the rule and the lines around it.

JSON (``--json``), a fixed shape::

    {"fsmcheck": VERSION, "model": NAME, "model_path": PATH, "flags": "auto" | "A|B",
     "rules": {RULE: {"statement": str, "source": str}},
     "traces": [{"file": str, "format": "qemu-log" | "qmp" | "itf",
                 "lines": int, "events": int, "other": int, "p2p": "checked" | "not run: ...",
                 "devices": [{"name": str, "first_line": int, "flags": [FLAG...],
                              "flags_from": "auto" | "given" | "trace",
                              "p2p": "has" | "lacks" | "not determined",
                              "states": [STATE...], "states_total": int,
                              "requests": [{"line": int, "current": STATE, "requested": STATE,
                                            "recover": STATE | "", "outcome": "ok" | "noop" |
                                            "recovered" | "reset" | "unexpected" | "unresolved",
                                            "recorded": STATE | "", "accepted": bool,
                                            "path": [STATE...]}],
                              "requests_total": int}],
                 "violations": [{"rule": RULE, "file": str, "line": int, "device": str,
                                 "message": str, "source": str,
                                 "context": [{"line": int, "text": str}]}],
                 "violations_total": int,
                 "timeline": [{"line": int, "device": str, "state": STATE}], "timeline_total": int,
                 "vm": "checked" | "not run: ...", "unclassified": {EVENT: int}}],
     "errors": ["FILE:LINE: message"],
     "summary": {"traces": int, "violations": int}, "exit_code": 0 | 1 | 2 | 3}

``states`` and ``requests`` hold at most the first ``--max-rows`` entries
(``*_total`` counts all); ``violations`` at most ``--max-violations``.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..model.schema import Model
from .check import TraceReport
from .rules import RULES, source_of

__all__ = ["print_report", "report_json"]


def _sequence_table(trace: TraceReport) -> Table:
    """One row per recorded state change, one column per device: the state
    of every device at that point (the device that changed marked *)."""
    names = [d.name for d in trace.devices]
    t = Table(title="recorded states, in trace order (* = changed)", title_justify="left", header_style="bold")
    t.add_column("line")
    for n in names:
        t.add_column(Text(n))
    now = {n: "-" for n in names}
    for line, name, state in trace.timeline:
        now[name] = state
        t.add_row(str(line), *[f"{now[n]} *" if n == name else now[n] for n in names])
    if trace.timeline_total > len(trace.timeline):
        t.add_row("...", f"{trace.timeline_total - len(trace.timeline)} more", *[""] * (len(names) - 1))
    return t


def _device_table(model: Model, trace: TraceReport, dev) -> Table:
    title = Text(f"{dev.name}: requests, recorded states, kernel paths")
    t = Table(title=title, title_justify="left", header_style="bold")
    for col in ("line", "request", "recover", "outcome", "recorded", "kernel path"):
        t.add_column(col)
    for r in dev.requests:
        if r["outcome"] == "noop":
            path = "(no-op: no ioctl)"
        elif not r["accepted"]:
            path = "REJECTED by the model"
        else:
            path = " -> ".join([r["current"], *r["path"]])
        t.add_row(str(r["line"]), f"{r['current']} -> {r['requested']}", r["recover"] or "-", r["outcome"],
                  r["recorded"] or "-", path)
    if dev.requests_total > len(dev.requests):
        t.add_row("...", f"{dev.requests_total - len(dev.requests)} more requests", "", "", "", "")
    return t


def print_report(out: Console, model: Model, traces: Sequence[TraceReport], quiet: bool = False) -> None:
    """Print each trace's device tables (unless ``quiet``) and findings."""
    for trace in traces:
        out.print(f"{trace.path}: {trace.format}, {trace.lines} lines, {trace.events} events, "
                  f"{len(trace.devices)} device(s); P2P quiesce rule: {trace.p2p}; VM run-state rule: {trace.vm}",
                  markup=False, soft_wrap=True)
        if trace.unclassified:
            out.print(f"  note: vfio events this checker neither checks nor ignores (another QEMU?): "
                      + ", ".join(f"{n} ({c})" for n, c in sorted(trace.unclassified.items())),
                      markup=False, highlight=False, soft_wrap=True)
        for dev in trace.devices:
            more = f" (+{dev.states_total - len(dev.states)} more)" if dev.states_total > len(dev.states) else ""
            out.print(f"  {dev.name} [flags {dev.flags_label}, {dev.flags_from}]: "
                      + " -> ".join(dev.states) + more, markup=False, highlight=False, soft_wrap=True)
        if not quiet:
            for dev in trace.devices:
                out.print(_device_table(model, trace, dev))
            if len(trace.devices) > 1 and trace.timeline:
                out.print(_sequence_table(trace))
        for v in trace.violations:
            out.print(f"{v.path}:{v.line}: {v.rule}: {v.message}", markup=False, highlight=False,
                      soft_wrap=True)
            if v.device:
                out.print(f"    device: {v.device}", markup=False, highlight=False, soft_wrap=True)
            out.print(f"    source: {v.source}", markup=False, highlight=False, soft_wrap=True)
            for line, text in v.context:
                mark = ">" if line == v.line else " "
                shown = text if len(text) <= 400 else f"{text[:400]}... ({len(text)} characters)"
                out.print(f"  {mark} {line:>6} | {shown}", markup=False, highlight=False, soft_wrap=True)
        if trace.violations_total > len(trace.violations):
            out.print(f"... and {trace.violations_total - len(trace.violations)} more violation(s) not shown",
                      markup=False)
        out.print(f"{trace.path}: {trace.violations_total} violation(s)", markup=False)


def report_json(model: Model, flags: str, traces: Sequence[TraceReport], errors: Sequence[str],
                code: int) -> dict:
    """The ``--json`` document (shape in the module docstring)."""
    docs = []
    for t in traces:
        docs.append({
            "file": t.path, "format": t.format, "lines": t.lines, "events": t.events, "other": t.other,
            "p2p": t.p2p,
            "devices": [{"name": d.name, "first_line": d.first_line,
                         "flags": [f for f in model.flag_order if f in d.flags], "flags_from": d.flags_from,
                         "p2p": d.p2p,
                         "states": d.states, "states_total": d.states_total,
                         "requests": d.requests, "requests_total": d.requests_total} for d in t.devices],
            "violations": [{"rule": v.rule, "file": v.path, "line": v.line, "device": v.device,
                            "message": v.message, "source": v.source,
                            "context": [{"line": n, "text": s} for n, s in v.context]} for v in t.violations],
            "violations_total": t.violations_total,
            "timeline": [{"line": n, "device": d, "state": s} for n, d, s in t.timeline],
            "timeline_total": t.timeline_total,
            "vm": t.vm,
            "unclassified": dict(sorted(t.unclassified.items())),
        })
    return {
        "fsmcheck": __version__, "model": model.name, "model_path": str(model.path), "flags": flags,
        "rules": {r.id: {"statement": r.statement, "source": source_of(model, r.id)} for r in RULES.values()},
        "traces": docs, "errors": list(errors),
        "summary": {"traces": len(traces), "violations": sum(t.violations_total for t in traces)},
        "exit_code": code,
    }
