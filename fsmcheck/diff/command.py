"""``fsmcheck diff OLD.toml NEW.toml``."""

from __future__ import annotations

import json
import sys
import time

import click

from ..console import make_console
from ..model.options import MODEL, load_or_report
from ..outputs import check_output, write_file
from ..review.diagram import DotMissingError
from ..semantics.graphs import UndecidedError
from ..verifier.verify import DISAGREE, ERROR
from ..verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK
from .compare import diff_models
from .text import diff_lines

__all__ = ["diff"]


@click.command("diff")
@click.argument("old_path", metavar="OLD.toml", type=MODEL)
@click.argument("new_path", metavar="NEW.toml", type=MODEL)
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON (shape: README, 'fsmcheck diff').")
@click.option("--html", "html_out", default=None, type=click.Path(dir_okay=False),
              help="Also write the review report of NEW with a 'diff' section (changed arcs highlighted).")
@click.option("--timeout-ms", default=10000, show_default=True, type=click.IntRange(min=1),
              help="z3's per-query timeout.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR")
def diff(old_path, new_path, as_json, html_out, timeout_ms, quiet, no_color):
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
    if html_out:
        check_output(html_out)
    err = make_console(no_color, stderr=True, quiet=quiet)
    old = load_or_report(old_path, err)
    new = load_or_report(new_path, err)
    if old is None or new is None:
        sys.exit(EXIT_INPUT)
    start = time.perf_counter()
    try:
        result = diff_models(old, new, timeout_ms=timeout_ms,
                             progress=lambda msg: err.print(f"[diff] {msg}", markup=False))
    except (ValueError, UndecidedError) as exc:  # UndecidedError: no explicit table to compare
        make_console(no_color, stderr=True).print(f"error: {exc}", markup=False)
        sys.exit(EXIT_INPUT)
    seconds = time.perf_counter() - start
    code = EXIT_FAIL if result.observable else EXIT_OK
    broken = [f"{m.name}: {r.prop.name} [{r.config}]: {r.status}: {r.detail}"
              for m, results in ((old, result.old_results), (new, result.new_results))
              for r in results if r.status in (DISAGREE, ERROR)]
    if broken:  # an engine disagreement or crash: never report a diff built on it
        for line in broken:
            make_console(no_color, stderr=True).print(f"internal error: {line}", markup=False)
        code = EXIT_INTERNAL
    if html_out:
        from .html import diff_html

        try:
            write_file(html_out, diff_html(result, seconds))
        except DotMissingError as exc:
            make_console(no_color, stderr=True).print(f"error: {exc}", markup=False)
            sys.exit(EXIT_INPUT)
        err.print(f"[diff] wrote {html_out}", markup=False)
    if as_json:
        doc = result.to_json()
        doc["exit_code"] = code
        click.echo(json.dumps(doc, indent=2))
    else:
        for line in diff_lines(result):
            click.echo(line)
    sys.exit(code)
