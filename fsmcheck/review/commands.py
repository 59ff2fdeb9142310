"""``fsmcheck render`` and ``fsmcheck report``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
from rich.text import Text

from ..console import make_console
from ..model.options import MODEL, configs_or_exit, load_or_exit
from ..outputs import check_output, write_file
from ..model import ModelError
from ..model.schema import Model
from ..verifier.trace import steps
from ..verifier.exit_codes import EXIT_INPUT, EXIT_OK
from .diagram import FORMATS, DotMissingError, diagram, render as render_file

__all__ = ["render", "report"]


def _read_trace(model: Model, path: str, err):
    """A trace file: an ITF-like trace (``fsmcheck verify --trace-dir``) or a
    JSON list of state names. Returns (steps, configuration label or None).

    Read through :mod:`fsmcheck.inputs` (once; UTF-8, nesting and size
    guards); a file that is not such a trace is one diagnostic
    ``file:line: key: message`` on ``err`` and exit 2."""
    from ..inputs import InputError, parse_json, read_text

    try:
        doc = read_text(path)
        data = parse_json(doc)
    except InputError as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False)
        sys.exit(EXIT_INPUT)

    def bad(key: str, message: str):
        at = doc.text.find(json.dumps(key)) if key != "<trace>" else -1
        err.print(str(doc.error(doc.line_of(at) if at >= 0 else 1, key, message).diagnostics[0]), markup=False)
        sys.exit(EXIT_INPUT)

    if isinstance(data, dict) and "states" in data:
        meta = data.get("#meta", {})
        if not isinstance(meta, dict):
            bad("#meta", "must be an object")
        label = meta.get("configuration")
        if label is not None and not isinstance(label, str):
            bad("configuration", "must be a string")
        states = data["states"]
        if not isinstance(states, list) or not all(
                isinstance(s, dict) and isinstance(s.get("state"), str) and isinstance(s.get("via"), (str, type(None)))
                for s in states):
            bad("states", 'must be a list of objects {"state": NAME, "via": KIND}')
        names = [s["state"] + ("" if s.get("via") in (None, "open", "request") else f" [{s['via']}]")
                 for s in states]
    elif isinstance(data, list) and all(isinstance(x, str) for x in data):
        label, names = None, data
    else:
        bad("<trace>", "expected an ITF-like trace object or a list of state names")
    try:
        return steps(model, names), label
    except (KeyError, TypeError, ValueError) as exc:
        bad("<trace>", str(exc))


@click.command()
@click.argument("model_path", metavar="MODEL", type=MODEL)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file; the suffix picks the format: .svg, .png, .pdf or .dot.")
@click.option("--flags", "flags_text", default=None, help="Draw one flag set (e.g. STOP_COPY,P2P or 3).")
@click.option("--profile", default=None, help="Draw one profile (v1: strict or lenient).")
@click.option("--trace", "trace_path", type=click.Path(dir_okay=False, exists=True),
              help="Overlay a trace: an ITF-like JSON trace from `verify --trace-dir`, or a JSON list of "
                   "state names (a combination path). Its arcs are numbered and highlighted.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output.")
def render(model_path, output, flags_text, profile, trace_path, quiet, no_color):
    """Draw MODEL's state diagram with graphviz: one per configuration side by
    side, or the one --flags / --profile choose.

    The saving group is a cluster, arcs are coloured by their data-session
    effect (starts/keeps/ends), blocked requests are dashed with a bar, the
    error state and v1's invalid values are drawn apart, and the state at
    open and the reset target are marked. Exit 0 on success, 2 on bad input
    or when graphviz's `dot` is missing (the message says how to install it).
    """
    check_output(output)
    out, err = make_console(no_color, quiet=quiet), make_console(no_color, stderr=True)
    model = load_or_exit(model_path, err)
    trace, label = (None, None)
    if trace_path:
        trace, label = _read_trace(model, trace_path, err)
        if label and not flags_text and not profile:
            chosen = model.config(label)
            if chosen is None:
                err.print(f"{trace_path}: configuration {label!r} is not one of {model.name}'s", markup=False)
                sys.exit(EXIT_INPUT)
            configs = [chosen]
        else:
            configs = configs_or_exit(model, flags_text, profile, err)
    else:
        configs = configs_or_exit(model, flags_text, profile, err)
    suffix = Path(output).suffix.lstrip(".").lower()
    if suffix not in FORMATS:
        err.print(f"error: {output}: unknown format {suffix!r}; use .svg, .png, .pdf or .dot", markup=False)
        sys.exit(EXIT_INPUT)
    target = next((c for c in configs if c.label == label), configs[0]) if trace else None
    try:
        written = render_file(diagram(model, configs, trace, target), Path(output))
    except DotMissingError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INPUT)
    out.print(f"wrote {written} ({', '.join(c.label for c in configs)})", markup=False)
    sys.exit(EXIT_OK)


@click.command()
@click.argument("models", nargs=-1, required=True, type=MODEL)
@click.option("-o", "--output", default="report.html", show_default=True, type=click.Path(dir_okay=False),
              help="The HTML file.")
@click.option("--diagrams", "diagram_dir", type=click.Path(file_okay=False),
              help="Also write each configuration's diagram as SVG into this directory.")
@click.option("--timeout-ms", default=10000, show_default=True, type=click.IntRange(min=1),
              help="z3 timeout per query.")
@click.option("--quiet", "-q", is_flag=True, help="No progress; print only the summary line.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output.")
@click.option("--reproducible/--with-times", default=None,
              help="Leave out engine and verification times so two runs compare byte for byte "
                   "(default: on when SOURCE_DATE_EPOCH is set, which also fixes the date).")
def report(models, output, diagram_dir, timeout_ms, quiet, no_color, reproducible):
    """Verify MODELS and write one self-contained HTML review report: the
    diagrams of every configuration, the property table with both engines'
    verdicts and times, the derived combination tables as matrices, each
    counterexample as steps and as a highlighted diagram, and the v1 <-> v2
    correspondence. The file opens offline.

    The report is written whatever the verdicts; the exit code is verify's
    (0 all hold, 1 a property fails or is unknown, 2 bad input, 3 engine
    disagreement or internal error).
    """
    from .report import build_report

    check_output(output)
    if diagram_dir:
        check_output(diagram_dir, directory=True)
    out, err = make_console(no_color), make_console(no_color, stderr=True)
    start = time.perf_counter()
    show = not quiet and err.is_terminal
    try:
        if show:
            with err.status("building the report") as status:
                page, reports = build_report(models, progress=lambda t: status.update(Text(t)),
                                             timeout_ms=timeout_ms, reproducible=reproducible)
        else:
            page, reports = build_report(models, timeout_ms=timeout_ms, reproducible=reproducible)
    except ModelError as exc:
        for d in exc.diagnostics:
            err.print(str(d), markup=False)
        sys.exit(EXIT_INPUT)
    except (DotMissingError, ValueError) as exc:  # a listed property does not apply; bad SOURCE_DATE_EPOCH
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INPUT)
    write_file(Path(output), page)
    written = [Path(output)]
    if diagram_dir:
        for rep in reports:
            for config in rep.model.configs():
                name = "".join(ch if ch.isalnum() else "_" for ch in config.label).strip("_")
                written.append(write_file(Path(diagram_dir) / f"{rep.model.name}.{name}.svg",
                                          rep.svgs[config.label]))
            written.append(render_file(diagram(rep.model), Path(diagram_dir) / f"{rep.model.name}.svg"))
    from ..verifier.verify_report import exit_code

    codes = [exit_code(r.results) for r in reports]
    code = max(codes) if codes else EXIT_OK
    if not quiet:
        for path in written:
            out.print(f"wrote {path}", markup=False)
    instances = sum(len(r.results) for r in reports)
    out.print(f"report: {len(reports)} model(s), {instances} property instances, exit code {code} "
              f"({time.perf_counter() - start:.1f} s)", markup=False)
    sys.exit(code)
