"""``fsmcheck check-trace``: QEMU's migration traces checked against the model."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..console import make_console, progress_to
from ..model.options import MODEL, load_or_report, parse_flags
from ..options import json_option, no_color_option, progress_option, quiet_option, show_progress
from ..verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

__all__ = ["check_trace_command"]


@click.command("check-trace")
@click.argument("traces", metavar="TRACE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--model", "model_path", default=None, type=MODEL,
              help="The protocol model (default: the shipped models/vfio_v2.toml).")
@click.option("--flags", "flags_text", default="auto", show_default=True,
              help="Every device's flag set (e.g. STOP_COPY,P2P,PRE_COPY or 7), or 'auto': per device, the "
                   "smallest defined set holding every state it was recorded in or asked for (printed).")
@json_option("Print the result as JSON on stdout (fixed shape, see fsmcheck.tracecheck.output).")
@click.option("--sarif", "sarif_path", type=click.Path(dir_okay=False),
              help="Also write the findings as SARIF 2.1.0 to this file (located in the trace files).")
@quiet_option("Print only the findings and the summary lines.")
@progress_option()
@click.option("--max-rows", default=200, show_default=True, type=click.IntRange(min=0),
              help="Requests and states kept per device for the report (all are checked and counted).")
@click.option("--max-violations", default=500, show_default=True, type=click.IntRange(min=0),
              help="Findings kept per trace (all are counted).")
@click.option("--context", default=2, show_default=True, type=click.IntRange(min=0, max=20),
              help="Lines shown before and after each finding.")
@no_color_option()
def check_trace_command(traces, model_path, flags_text, as_json, sarif_path, quiet, progress, max_rows,
                        max_violations, context, no_color):
    """Check QEMU VFIO migration traces against the model (trace validation).

    Each TRACE is a QEMU trace-event log (-D FILE, with or without the
    PID@SEC.USEC: prefix of -msg timestamp=on), a QMP VFIO_MIGRATION event
    log (one JSON object a line) or an ITF trace of `fsmcheck verify
    --trace-dir`; the format is detected from the content. Per device: every
    request is accepted by the model from the recorded state under its flag
    set, with the kernel path it walks; data moves only in an open session
    of the right group; a failed request is followed by a legal recovery.
    Across the devices of one trace: the P2P quiesce rule.

    Exit codes: 0 no violation; 1 a violation; 2 bad input (a file that fits
    no format, an unknown flag set, a bad model); 3 internal error.
    """
    from ..model.shipped import shipped_model_path
    from .check import check_trace
    from ..inputs import InputError
    from .detect import TraceInputError, open_trace
    from .output import print_report, report_json

    from ..outputs import check_output

    if sarif_path:
        check_output(sarif_path)
    out, err = make_console(no_color), make_console(no_color, stderr=True)
    if model_path is None:
        try:
            model_path = os.path.relpath(shipped_model_path("vfio_v2"))
        except (FileNotFoundError, ValueError) as exc:
            err.print(f"error: {exc}; pass --model", markup=False)
            sys.exit(EXIT_INPUT)
    model = load_or_report(model_path, err)
    if model is None:
        sys.exit(EXIT_INPUT)
    flags = None
    if flags_text.strip().lower() != "auto":
        try:
            flags = parse_flags(model, flags_text)
        except click.BadParameter as exc:
            err.print(f"error: {exc.format_message()}", markup=False)
            sys.exit(EXIT_INPUT)
    reports, errors, codes = [], [], []
    with progress_to(err, show_progress(err, quiet=quiet, as_json=as_json, progress=progress)) as step:
        for path in traces:
            try:
                with open_trace(path) as source:
                    if source.model and source.model != model.name:
                        raise TraceInputError(path, 1, f"an ITF trace of model {source.model}, not {model.name}: "
                                              f"check it with --model models/{source.model}.toml", "#meta.model")
                    for declared in source.flags.values():
                        if declared not in model.flag_sets:
                            raise TraceInputError(path, source.flags_line, "#meta.flags: {"
                                                  + ", ".join(sorted(declared))
                                                  + f"}} is not a defined flag set of {model.name}", "#meta.flags")
                    step(f"checking {path}")
                    report = check_trace(model, source, flags, max_rows=max_rows, max_violations=max_violations,
                                         context=context)
            except Exception as exc:  # noqa: BLE001 - bad input exits 2, anything else is internal (3)
                codes.append(EXIT_INPUT if isinstance(exc, (InputError, OSError)) else EXIT_INTERNAL)
                if isinstance(exc, InputError):
                    message = str(exc)
                elif isinstance(exc, OSError):
                    message = f"{path}:1: cannot read: {exc.strerror or exc}"
                else:
                    message = f"{path}: internal error: {type(exc).__name__}: {exc}"
                err.print(message, markup=False, highlight=False)
                errors.append(message)
                continue
            reports.append(report)
            codes.append(EXIT_FAIL if report.violations_total else EXIT_OK)
    code = next((c for c in (EXIT_INTERNAL, EXIT_INPUT, EXIT_FAIL) if c in codes), EXIT_OK)
    if sarif_path:
        from ..outputs import write_file
        from .sarif import sarif_log

        write_file(Path(sarif_path), json.dumps(sarif_log(reports), indent=2) + "\n")
        if not as_json:
            err.print(f"wrote {sarif_path}", markup=False)
    if as_json:
        click.echo(json.dumps(report_json(model, flags_text if flags is None else
                                          "|".join(f for f in model.flag_order if f in flags),
                                          reports, errors, code), indent=2))
    else:
        print_report(out, model, reports, quiet=quiet)
        total = sum(r.violations_total for r in reports)
        out.print(f"check-trace: {len(reports)} trace(s) checked against {model.name}, {total} violation(s)"
                  + (f", {len(errors)} not readable" if errors else ""), markup=False)
    sys.exit(code)
