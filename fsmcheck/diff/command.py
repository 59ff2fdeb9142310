"""``fsmcheck diff OLD.toml NEW.toml``."""

from __future__ import annotations

import json
import sys
import time

import click

from ..console import make_console
from ..model import ModelError, load_model
from ..model.options import MODEL
from ..outputs import check_output, write_file
from ..options import json_option, no_color_option, progress_option, quiet_option, show_progress
from ..review.diagram import DotMissingError
from ..semantics.graphs import UndecidedError
from ..verifier.verify import DISAGREE, ERROR
from ..verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK
from .compare import diff_models
from .text import diff_lines

__all__ = ["diff"]


def _json_error(message: str, diagnostics: list[str], code: int) -> None:
    """``--json``'s document for a run that produced no diff; exits ``code``."""
    click.echo(json.dumps({"error": message, "diagnostics": diagnostics, "exit_code": code}, indent=2))
    sys.exit(code)


@click.command("diff")
@click.argument("old_path", metavar="OLD.toml", type=MODEL)
@click.argument("new_path", metavar="NEW.toml", type=MODEL)
@json_option("Print the diff as JSON (shape: docs, 'fsmcheck diff'); a bad input is a JSON error document.")
@click.option("-o", "--output", "html_out", default=None, type=click.Path(dir_okay=False),
              help="Also write the review report of NEW with a 'diff' section (changed arcs highlighted) "
                   "to this HTML file.")
@click.option("--html", "html_alias", default=None, type=click.Path(dir_okay=False), hidden=True,
              help="The former name of -o/--output.")
@click.option("--timeout-ms", default=10000, show_default=True, type=click.IntRange(min=1),
              help="z3's per-query timeout.")
@quiet_option("No progress and no 'wrote' line; errors are still printed.")
@progress_option()
@no_color_option()
def diff(old_path, new_path, as_json, html_out, html_alias, timeout_ms, quiet, progress, no_color):
    """Show what changes from model OLD.toml to NEW.toml: declarations added,
    removed or changed (with their lines); per flag set, the combination-table
    entries whose outcome or path changes and the properties whose verdict
    changes; the generated pack's tests that appear, disappear or change
    expectation. A flag set that only adds flags OLD does not define is
    compared with the set it extends.

    Exit 0 when nothing observable changes, 1 otherwise, 2 bad input (a
    malformed model), 3 internal error (an engine error or disagreement while
    verifying either model).
    """
    if html_out and html_alias:
        raise click.UsageError("give the HTML file once: -o/--output (--html is its former name)")
    html_out = html_out or html_alias
    if html_out:
        check_output(html_out)
    err = make_console(no_color, stderr=True)  # errors: never silenced by --quiet
    info = make_console(no_color, stderr=True, quiet=quiet or not show_progress(err, quiet=quiet, progress=progress))
    models, diagnostics = [], []
    for path in (old_path, new_path):
        try:
            models.append(load_model(path))
        except ModelError as exc:
            diagnostics += [str(d) for d in exc.diagnostics]
    if diagnostics:
        if as_json:
            _json_error("not a valid model", diagnostics, EXIT_INPUT)
        for line in diagnostics:
            err.print(line, markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT)
    old, new = models
    start = time.perf_counter()
    try:
        result = diff_models(old, new, timeout_ms=timeout_ms,
                             progress=lambda msg: info.print(f"[diff] {msg}", markup=False))
    except (ValueError, UndecidedError) as exc:  # UndecidedError: no explicit table to compare
        if as_json:
            _json_error(str(exc), [], EXIT_INPUT)
        err.print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INPUT)
    seconds = time.perf_counter() - start
    code = EXIT_FAIL if result.observable else EXIT_OK
    broken = [f"{m.name}: {r.prop.name} [{r.config}]: {r.status}: {r.detail}"
              for m, results in ((old, result.old_results), (new, result.new_results))
              for r in results if r.status in (DISAGREE, ERROR)]
    if broken:  # an engine disagreement or crash: never report a diff built on it
        for line in broken:
            err.print(f"internal error: {line}", markup=False)
        code = EXIT_INTERNAL
    if html_out:
        from .html import diff_html

        try:
            write_file(html_out, diff_html(result, seconds))
        except DotMissingError as exc:
            if as_json:
                _json_error(str(exc), [], EXIT_INPUT)
            err.print(f"error: {exc}", markup=False)
            sys.exit(EXIT_INPUT)
        if not quiet:
            err.print(f"[diff] wrote {html_out}", markup=False)
    if as_json:
        doc = result.to_json()
        doc["exit_code"] = code
        click.echo(json.dumps(doc, indent=2))
    else:
        for line in diff_lines(result):
            click.echo(line)
    sys.exit(code)
