"""``fsmcheck verify``, ``fsmcheck table``, ``fsmcheck render`` and
``fsmcheck report``: the verdicts as a table (and SARIF, ITF traces), the
derived combination tables, diagrams, one HTML page.

Light at import (click only): each command imports the engines, rich and
graphviz when it runs, so ``fsmcheck verify --help`` stays fast
(``tests/test_startup.py``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..console import make_console
from ..model.options import MODEL, configs_or_exit, load_or_exit, load_or_report, parse_flags
from ..options import json_option, no_color_option, progress_option, quiet_option, show_progress
from ..verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

    from ..model.schema import Config, Model

__all__ = ["render", "report", "table", "verify"]


def _read_trace(model: Model, path: str, err):
    """A trace file: an ITF-like trace (``fsmcheck verify --trace-dir``) or a
    JSON list of state names. Returns (steps, configuration label or None).

    Read through :mod:`fsmcheck.inputs` (once; UTF-8, nesting and size
    guards); a file that is not such a trace is one diagnostic
    ``file:line: key: message`` on ``err`` and exit 2."""
    from ..inputs import InputError, parse_json, read_text
    from ..verifier.trace import steps

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
@quiet_option("Print nothing but errors.")
@no_color_option()
def render(model_path, output, flags_text, profile, trace_path, quiet, no_color):
    """Draw MODEL's state diagram with graphviz: one per configuration side by
    side, or the one --flags / --profile choose.

    The saving group is a cluster, arcs are coloured by their data-session
    effect (starts/keeps/ends), blocked requests are dashed with a bar, the
    error state and v1's invalid values are drawn apart, and the state at
    open and the reset target are marked. Exit 0 on success, 2 on bad input
    or when graphviz's `dot` is missing (the message says how to install it).
    """
    from ..outputs import check_output
    from .diagram import FORMATS, DotMissingError, diagram, render as render_file

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
@quiet_option("No progress; print only the summary line.")
@progress_option()
@no_color_option()
@click.option("--reproducible/--with-times", default=None,
              help="Leave out engine and verification times so two runs compare byte for byte "
                   "(default: on when SOURCE_DATE_EPOCH is set, which also fixes the date).")
def report(models, output, diagram_dir, timeout_ms, quiet, progress, no_color, reproducible):
    """Verify MODELS and write one self-contained HTML review report: the
    diagrams of every configuration, the property table with both engines'
    verdicts and times, the derived combination tables as matrices, each
    counterexample as steps and as a highlighted diagram, and the v1 <-> v2
    correspondence. The file opens offline.

    The report is written whatever the verdicts; the exit code is verify's
    (0 all hold, 1 a property fails or is unknown, 2 bad input, 3 engine
    disagreement or internal error).
    """
    from rich.text import Text

    from ..model import ModelError
    from ..outputs import check_output, write_file
    from .diagram import DotMissingError, diagram, render as render_file
    from .report import build_report

    check_output(output)
    if diagram_dir:
        check_output(diagram_dir, directory=True)

    out, err = make_console(no_color), make_console(no_color, stderr=True)
    start = time.perf_counter()
    show = show_progress(err, quiet=quiet, progress=progress)
    try:
        if show and err.is_terminal:
            with err.status("building the report") as status:
                page, reports = build_report(models, progress=lambda t: status.update(Text(t)),
                                             timeout_ms=timeout_ms, reproducible=reproducible)
        elif show:
            page, reports = build_report(models, progress=lambda t: err.print(t, markup=False, highlight=False),
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


#: Bounds of verify's numbers (issue 23: --devices 10**30 overflowed, 10**9
#: exhausted memory; --deadline inf/nan ended in a traceback). 1024 devices
#: is far beyond one user context's VFIO devices and beyond what either
#: orchestration engine decides within a deadline; a deadline is at most
#: 10^6 s (11.6 days), finite.
MAX_DEVICES = 1024
MAX_DEADLINE_S = 1e6


def _finite(ctx, param, value):
    """Click callback: refuse NaN (a range check lets it through)."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds", ctx=ctx, param=param)
    return value


@click.command()
@click.argument("models", nargs=-1, required=True, type=MODEL)
@json_option("Print the results as JSON on stdout.")
@click.option("--timeout-ms", default=10000, show_default=True, type=click.IntRange(min=1),
              help="z3 timeout per query; a timeout makes the verdict 'unknown'.")
@quiet_option()
@progress_option()
@no_color_option()
@click.option("--sarif", "sarif_path", type=click.Path(dir_okay=False),
              help="Also write the results as SARIF 2.1.0 to this file (one result per failing property "
                   "instance, located at the model line).")
@click.option("--trace-dir", type=click.Path(file_okay=False),
              help="Also write each counterexample as an ITF-like JSON trace into this directory.")
@click.option("--devices", default=2, show_default=True, type=click.IntRange(min=1, max=MAX_DEVICES),
              help="Orchestration models: the number of devices N.")
@click.option("--failures", default=0, show_default=True, type=click.IntRange(min=0),
              help="Orchestration models: request failures allowed per run (F).")
@click.option("--flags", "flag_sets", multiple=True, metavar="FLAGS",
              help="Orchestration models only (elsewhere exit 2): a device's flag set (STOP_COPY,P2P or 3); "
                   "repeat for devices 0, 1, ...; the last repeats. Default: the model's default_flags.")
@click.option("--deadline", "deadline_s", default=1800.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True, max=MAX_DEADLINE_S), callback=_finite,
              help="Seconds the whole run may take (all models); instances not decided by then are "
                   "'unknown' (exit 1). --timeout-ms bounds one z3 query, this bounds the run.")
def verify(models, as_json, timeout_ms, quiet, progress, no_color, sarif_path, trace_dir, devices, failures, flag_sets,
           deadline_s):
    """Decide every property of each MODEL on both engines.

    Prints a table of properties with each engine's verdict and time, every
    failing property's shortest counterexample and the model-file line it
    points at. --sarif and --trace-dir write machine formats for CI (see
    fsmcheck.ci.sarif and fsmcheck.verifier.trace for the formats).

    An orchestration model (a file with an [orchestration] table, e.g.
    models/qemu_orchestration.toml) is checked over --devices N devices with
    --failures F: P2P safety and progress of every run, by the explicit
    product (networkx) and by z3 (BMC and k-induction).
    """
    from rich.text import Text

    from ..inputs.positions import located
    from ..verifier.verify import verify_model
    from ..verifier.verify_report import document_json, exit_code, print_results, results_json

    from ..orchestration import Orchestration, load
    from ..outputs import check_output

    if sarif_path:
        check_output(sarif_path)
    if trace_dir:
        check_output(trace_dir, directory=True)
    out, err = make_console(no_color), make_console(no_color, stderr=True)
    loaded = [(path, load_or_report(path, err, load)) for path in models]  # each read once
    if flag_sets and not all(isinstance(model, Orchestration) for _, model in loaded):
        plain = ", ".join(str(p) for p, model in loaded if not isinstance(model, Orchestration))
        raise click.UsageError(f"--flags chooses the devices' flag sets of an orchestration model; {plain} "
                               "is not one (verify checks every flag set of a protocol model)")
    codes, documents, errors, verified = [], [], [], []
    live = err.is_terminal and show_progress(err, quiet=quiet, as_json=as_json, progress=progress)
    lines = show_progress(err, quiet=quiet, as_json=as_json, progress=progress) and not live
    began = time.monotonic()
    ends_at = began + deadline_s

    def remaining() -> float:
        return max(ends_at - time.monotonic(), 1e-3)

    for path, model in loaded:
        if model is None:
            codes.append(EXIT_INPUT)
            errors.append(f"{path}: not a valid model")
            continue
        if isinstance(model, Orchestration):
            from ..orchestration.command import verify_file

            checked = verify_file(model, err, devices=devices, failures=failures, flags=flag_sets,
                                  timeout_ms=min(timeout_ms, int(remaining() * 1000)),
                                  explicit_seconds=min(60.0, remaining()),
                                  progress=(lambda text: err.print(f"verifying {text}", markup=False))
                                  if live or lines else None)
            if checked is None:
                codes.append(EXIT_INPUT)
                errors.append(f"{path}: not a valid orchestration check")
                continue
            model, results, seconds = checked
            codes.append(exit_code(results))
            verified.append((model, results))
            if as_json:
                documents.append(results_json(model, results, seconds))
            elif not quiet or any(r.status != "holds" for r in results):
                print_results(out, model, [r for r in results if not quiet or r.status != "holds"], seconds)
            else:
                out.print(f"{model.name}: {len(results)} property instances hold ({seconds:.2f} s)")
            continue
        start = time.perf_counter()
        try:
            if live:
                with err.status(Text(f"verifying {model.name}")) as status:
                    results = verify_model(model, timeout_ms=timeout_ms, deadline=remaining(),
                                           progress=lambda text: status.update(Text(f"verifying {text}")))
            else:
                results = verify_model(model, timeout_ms=timeout_ms, deadline=remaining(),
                                       progress=_progress_lines(err, began) if lines else None)
        except ValueError as exc:
            err.print(f"{located(model.line_of('properties', 'check'), path)}: properties.check: {exc}",
                      markup=False, highlight=False)
            codes.append(EXIT_INPUT)
            errors.append(f"{path}: {exc}")
            continue
        seconds = time.perf_counter() - start
        codes.append(exit_code(results))
        verified.append((model, results))
        if as_json:
            documents.append(results_json(model, results, seconds))
        elif quiet:
            failing = [r for r in results if r.status != "holds"]
            if failing:
                print_results(out, model, failing, seconds)
            else:
                out.print(f"{model.name}: {len(results)} property instances hold ({seconds:.2f} s)", markup=False)
        else:
            print_results(out, model, results, seconds)
    code = _worst(codes)
    if sarif_path:
        from ..ci.sarif import sarif_log
        from ..outputs import write_file

        write_file(Path(sarif_path), json.dumps(sarif_log(verified), indent=2) + "\n")
        if not quiet and not as_json:
            err.print(f"wrote {sarif_path}", markup=False)
    if trace_dir:
        written = _write_traces(Path(trace_dir), verified)
        if not quiet and not as_json:
            err.print(f"wrote {len(written)} trace(s) to {trace_dir}", markup=False)
    if as_json:
        click.echo(json.dumps(document_json(documents, errors, code), indent=2))
    sys.exit(code)


def _progress_lines(err: Console, start: float, quiet_for: float = 2.0):
    """Progress (``--progress``) for a stderr that is not a terminal: once
    the run (begun at ``start``, a :func:`time.monotonic` time) has taken
    ``quiet_for`` seconds, one plain line when an instance starts, at most
    every ``quiet_for`` seconds (short runs print nothing)."""
    last = [float("-inf")]

    def show(text: str) -> None:
        now = time.monotonic()
        if now - start >= quiet_for and now - last[0] >= quiet_for:
            last[0] = now
            err.print(f"verifying {text} ({now - start:.0f} s)", markup=False, highlight=False)

    return show


def _write_traces(directory: Path, verified) -> list[Path]:
    """One ITF-like JSON file per counterexample: MODEL.PROPERTY.CONFIG.ENGINE.itf.json."""
    import re

    from ..outputs import write_file
    from ..verifier.trace import itf_trace

    written = []
    for model, results in verified:
        if not hasattr(model, "configs"):  # an orchestration model
            from ..orchestration.command import itf_documents

            for stem, doc in itf_documents(model, results):
                written.append(write_file(directory / f"{stem}.itf.json", json.dumps(doc, indent=2) + "\n"))
            continue
        for r in results:
            for engine, v in r.verdicts.items():
                if v.counterexample is None:
                    continue
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{model.name}.{r.prop.name}.{r.config}.{engine}")
                doc = itf_trace(model, r, engine)
                written.append(write_file(directory / f"{name}.itf.json", json.dumps(doc, indent=2) + "\n"))
    return written


def _worst(codes: list[int]) -> int:
    for code in (EXIT_INTERNAL, EXIT_INPUT, 1):
        if code in codes:
            return code
    return EXIT_OK


@click.command()
@click.argument("model_path", metavar="MODEL", type=MODEL)
@click.option("--flags", "flags_text", default=None,
              help="Flag set, e.g. STOP_COPY,P2P,PRE_COPY (or 7). Default: every defined set.")
@click.option("--profile", default=None, help="Profile name (models with profiles).")
@json_option("Print the table as JSON.")
@click.option("--literal-rule", is_flag=True,
              help="Apply the uAPI prose rule literally: no saving-group state in the interior, "
                   "even for a path that stays inside the group.")
@no_color_option()
def table(model_path, flags_text, profile, as_json, literal_rule, no_color):
    """Print the combination table derived from MODEL's arcs and path rule.

    The table is computed from the arcs and the rule (shortest path; no
    saving-group state in the interior; unsupported states skipped), never
    from a walk table the model carries. JSON (one flag set):
    {"flags": [...], "table": {CURRENT: {REQUESTED: {"next": STATE or "EINVAL",
    "path": [STATE, ...]}}}}; without --flags, a JSON array of those.
    """
    from ..model.schema import Config
    from ..semantics.combination import derive_table, table_json
    from ..semantics.graphs import UndecidedError

    out, err = make_console(no_color), make_console(no_color, stderr=True)
    model = load_or_report(model_path, err)
    if model is None:
        sys.exit(EXIT_INPUT)
    if model.combination is None:
        err.print(f"{model_path}:1: combination: the model has no [combination] rule", markup=False)
        sys.exit(EXIT_INPUT)
    try:
        flag_sets = [parse_flags(model, flags_text)] if flags_text else list(model.flag_sets)
        profiles = [p.name for p in model.profiles]
        if profile is not None and profile not in profiles:
            raise click.BadParameter(f"unknown profile {profile!r}; the model has {', '.join(profiles)}",
                                     param_hint="--profile")
    except click.BadParameter as exc:
        err.print(f"error: {exc.format_message()}", markup=False)
        sys.exit(EXIT_INPUT)
    profile = profile or profiles[0]
    within = False if literal_rule else None
    documents, ambiguous = [], False
    for flags in flag_sets:
        config = Config(flags, profile, model.flag_order)
        try:
            derived = derive_table(model, config, within_group=within)
        except UndecidedError as exc:  # e.g. a validity predicate reading reserved bits
            make_console(no_color, stderr=True).print(
                f"unknown: the table of {config.label} is not derived: {exc}", markup=False)
            sys.exit(EXIT_FAIL)
        ambiguous = ambiguous or any(e.ambiguous for e in derived.values())
        if as_json:
            documents.append(table_json(model, config, derived))
        else:
            _print_table(out, model, config, derived)
    if as_json:
        click.echo(json.dumps(documents[0] if flags_text else documents, indent=2))
    sys.exit(1 if ambiguous else EXIT_OK)


def _print_table(out: Console, model: Model, config: Config, derived) -> None:
    """One flag set's derived table as a rich table on ``out``."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=Text(f"{model.name} [{config.label}]: derived combination table"), header_style="bold",
              title_justify="left")
    for col in ("current", "requested", "next", "path"):
        t.add_column(col)
    for (cur, req), e in derived.items():
        if e.outcome == "path":
            path = " -> ".join(e.path)
            if e.ambiguous:
                path += "  [AMBIGUOUS: " + " | ".join(" -> ".join(p) for p in e.alternatives) + "]"
        elif e.outcome == "noop":
            path = "(no-op)"
        else:
            path = e.reason
        t.add_row(Text(cur), Text(req), Text(e.next), Text(path))
    out.print(t)
