"""``fsmcheck mutate``: the pack against the reference drivers and every mutant driver."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ..console import make_console
from ..options import json_option, no_color_option, progress_option, quiet_option, show_progress
from ..verifier.exit_codes import EXIT_OK

__all__ = ["mutate"]


@click.command()
@click.option("-p", "--pack", "pack_dir", default="generated_tests", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The generated pack (fsmcheck generate -o DIR).")
@click.option("--seed", default=0, show_default=True, type=int, help="State-machine seed for every run.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(min=1), help="Parallel pytest runs.")
@click.option("--full", is_flag=True,
              help="Run every test against every mutant (the whole killing-suite table); "
                   "by default each mutant stops at its first kill.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of the killing-order file (default: $XDG_CACHE_HOME/fsmcheck).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the killing-order file.")
@json_option("Print the score as JSON.")
@quiet_option("No per-mutant lines; print the score table and summary.")
@progress_option()
@no_color_option()
def mutate(pack_dir, seed, jobs, full, cache_dir, no_cache, as_json, quiet, progress, no_color):
    """Run the pack against the reference drivers and every mutant driver;
    print which suites killed each mutant and the mutation score (with
    --full, every suite that kills it; by default the first kill).

    Exit 0 when the reference drivers pass, every mutant is killed and
    every MUST of the rule catalogue the pack can observe has a killing
    test (``fsmcheck rules``); 1 otherwise.
    """
    from rich.table import Table

    from .score import score

    if not any(pack_dir.glob("test_vfio_v*.py")):
        raise click.BadParameter(f"no generated pack in {str(pack_dir.absolute())!r} (no test_vfio_v*.py): write "
                                 "one with `fsmcheck generate -o DIR` and name it with --pack DIR", param_hint="'--pack'")
    out, err = make_console(no_color), make_console(no_color, stderr=True)
    show = (lambda r: err.print(f"  {r.protocol} {r.name}: {'killed' if r.killed else 'SURVIVED'} "
                                f"({r.seconds:.1f} s)", markup=False)) \
        if show_progress(err, quiet=quiet, as_json=as_json, progress=progress) else None
    start = time.perf_counter()
    reference, mutants = score(pack_dir, seed=seed, jobs=jobs, full=full, progress=show,
                               cache_dir=cache_dir, use_cache=not no_cache)
    ref_ok = all(r.failed == 0 and r.errors == 0 and r.returncode == 0 for r in reference)
    killed = sum(1 for m in mutants if m.killed)
    from ..rules import rule_table, uncovered_musts  # every observable MUST needs a killing test

    uncovered = [r.rule.id for r in uncovered_musts(rule_table(pack_dir))]
    seconds = time.perf_counter() - start
    code = EXIT_OK if ref_ok and killed == len(mutants) and not uncovered else 1
    if as_json:
        click.echo(json.dumps({
            "reference": [{"protocol": r.protocol, "passed": r.passed, "failed": r.failed, "skipped": r.skipped,
                           "seconds": round(r.seconds, 2)} for r in reference],
            "mutants": [{"name": m.name, "protocol": m.protocol, "description": m.description,
                         "killed": m.killed, "suites": m.suites, "failed": m.failed, "passed": m.passed,
                         "errors": m.errors}
                        for m in mutants],
            "score": {"killed": killed, "total": len(mutants)}, "uncovered_musts": uncovered,
            "seconds": round(seconds, 1), "exit_code": code}, indent=2))
        sys.exit(code)
    for r in reference:
        out.print(f"reference {r.protocol}: {r.passed} passed, {r.failed} failed, {r.errors} errors, {r.skipped} skipped "
                  f"({r.seconds:.1f} s)", markup=False)
    table = Table(title="mutation score", title_justify="left", header_style="bold")
    for col in ("protocol", "mutant", "verdict", "killed by (failing tests per suite)", "defect"):
        table.add_column(col)
    for m in mutants:
        suites = ", ".join(f"{s} {n}" for s, n in sorted(m.suites.items(), key=lambda kv: -kv[1]))
        verdict = "killed" if m.killed else ("ERRORS" if m.errors else "SURVIVED")
        table.add_row(m.protocol, m.name, verdict, suites or "-", m.description)
    out.print(table)
    out.print(f"mutation score: {killed}/{len(mutants)} killed ({seconds:.0f} s)"
              + ("" if ref_ok else "; the reference drivers FAIL the pack"), markup=False)
    if uncovered:
        out.print(f"MUST rules with no killing test in the pack (fsmcheck rules): {', '.join(uncovered)}",
                  markup=False)
    sys.exit(code)
