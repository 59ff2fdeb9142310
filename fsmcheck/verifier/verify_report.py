"""Rendering verification results: a rich table for people, JSON for machines."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .. import __version__
from ..inputs.positions import file_of, located
from ..model.schema import Model
from .verify import DISAGREE, ENGINES, ERROR, Result
from ..semantics.verdict import FAILS, HOLDS, UNKNOWN

__all__ = ["print_results", "results_json", "exit_code", "EXIT_OK", "EXIT_FAIL", "EXIT_INPUT", "EXIT_INTERNAL"]

#: Exit codes of ``fsmcheck verify`` (and of every command that checks).
from .exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK  # noqa: F401 (re-exported)

_STYLE = {HOLDS: "green", FAILS: "bold red", UNKNOWN: "yellow", DISAGREE: "bold magenta", ERROR: "bold magenta"}


def exit_code(results: list[Result]) -> int:
    """0 if every result holds; 1 if any fails or is unknown; 3 on an engine
    disagreement or internal error (which wins over 1)."""
    statuses = {r.status for r in results}
    if statuses & {DISAGREE, ERROR}:
        return EXIT_INTERNAL
    if statuses & {FAILS, UNKNOWN}:
        return EXIT_FAIL
    return EXIT_OK


def _cell(verdict) -> Text:
    if verdict is None:
        return Text("-")
    return Text(f"{verdict.status} {verdict.seconds * 1000:.0f} ms", style=_STYLE.get(verdict.status, ""))


def print_results(console: Console, model: Model, results: list[Result], seconds: float) -> None:
    """Print one model's results: a table, the statements, then every
    counterexample (trace, model-file location) and engine disagreement."""
    console.print(Text(f"{model.name}: {model.title}", style="bold"), Text(f"({model.path})", style="dim"))
    table = Table(show_header=True, header_style="bold", pad_edge=False)
    table.add_column("property")
    table.add_column("configuration")
    for name in ENGINES:
        table.add_column(name, no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for r in results:
        # Model-supplied text goes in as Text, never parsed as rich markup.
        table.add_row(Text(r.prop.name), Text(r.config), *(_cell(r.verdicts.get(n)) for n in ENGINES),
                      Text(r.status, style=_STYLE.get(r.status, "")))
    console.print(table)
    console.print(Text("statements:", style="bold"))
    seen = set()
    for r in results:
        if r.prop.name not in seen:
            seen.add(r.prop.name)
            console.print(Text.assemble(f"  {r.prop.name}: {r.statement}  ", (f"({r.prop.source})", "dim")),
                          highlight=False)
    for r in results:
        if r.status in (FAILS, DISAGREE, ERROR) or (r.status == UNKNOWN):
            _print_problem(console, model, r)
    counts = {s: sum(1 for r in results if r.status == s) for s in (HOLDS, FAILS, UNKNOWN, DISAGREE, ERROR)}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    console.print(f"{model.name}: {len(results)} property instances: {summary} ({seconds:.2f} s)\n",
                  highlight=False, markup=False)


def _print_problem(console: Console, model: Model, r: Result) -> None:
    head = Text(f"{r.status.upper()} {r.prop.name} [{r.config}]", style=_STYLE.get(r.status, ""))
    console.print(head)
    if r.detail:
        console.print(f"  {r.detail}", highlight=False, markup=False)
    cex = r.counterexample
    if cex is not None:
        console.print(f"  {cex.summary}", highlight=False, markup=False)
        if cex.trace:
            console.print("  trace: " + " -> ".join(cex.trace), highlight=False, markup=False)
        if cex.line:
            console.print(f"  at {located(cex.line, model.path)}", highlight=False, markup=False)


def _cex_json(model: Model, cex) -> dict | None:
    """A counterexample's JSON, with ``file``: the file declaring its line."""
    return None if cex is None else {**cex.to_json(), "file": file_of(cex.line, model.path)}


def _verdict_json(model: Model, v) -> dict:
    out = {"status": v.status, "seconds": round(v.seconds, 6)}
    if v.note:
        out["note"] = v.note
    if v.counterexample is not None:
        out["counterexample"] = _cex_json(model, v.counterexample)
    return out


def results_json(model: Model, results: list[Result], seconds: float) -> dict:
    """One model's results as a JSON-ready dict (the ``--json`` shape)."""
    return {
        "model": model.name,
        "path": str(model.path),
        "sha256": model.digest,
        "seconds": round(seconds, 6),
        "exit_code": exit_code(results),
        "results": [
            {
                "property": r.prop.name,
                "configuration": r.config,
                "statement": r.statement,
                "source": r.prop.source,
                "status": r.status,
                "detail": r.detail,
                "engines": {n: _verdict_json(model, v) for n, v in r.verdicts.items()},
                "counterexample": _cex_json(model, r.counterexample),
            }
            for r in results
        ],
    }


def document_json(models: list[dict], errors: list[str], code: int) -> dict:
    """The whole ``fsmcheck verify --json`` document."""
    return {"fsmcheck": __version__, "exit_code": code, "errors": errors, "models": models}
