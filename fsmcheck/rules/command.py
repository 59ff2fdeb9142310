"""``fsmcheck rules``: print the rule catalogue with its killing tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..options import json_option, no_color_option
from .catalogue import CatalogueError, rule_table, uncovered_musts

__all__ = ["rules", "shipped_pack"]


def shipped_pack() -> dict[str, str]:
    """The conformance pack of the shipped models (``vfio_v1``, ``vfio_v2``,
    package data), as ``{module file name: source}``: what ``fsmcheck
    generate`` writes into ``generated_tests/``, derived in memory so the
    catalogue needs no checkout."""
    from ..generate.pack import pack_files
    from ..model import load_model
    from ..model.shipped import shipped_model_path

    files: dict[str, str] = {}
    for name in ("vfio_v1", "vfio_v2"):
        files.update(pack_files(load_model(shipped_model_path(name))))
    return files


@click.command()
@click.option("-p", "--pack", "pack_dir", default=None, type=click.Path(file_okay=False, exists=True),
              help="A generated pack whose tests are listed (default: the pack of the shipped models, "
                   "generated in memory: works from an installed wheel).")
@click.option("--protocol", type=click.Choice(["v1", "v2"]), default=None, help="Only this protocol's rules.")
@json_option("Print the catalogue as JSON.")
@no_color_option()
def rules(pack_dir, protocol, as_json, no_color):
    """Print the rule catalogue: every MUST/SHOULD of vfio.h and seeds
    000-004 (id, level, source, sentence), with the tests of the pack that
    can kill a violation of it -- read from the rules the checks cite, not
    listed by hand. Levels: MUST and SHOULD bind the driver; USER binds the
    user (the pack honours it); OPEN is left open by the sources (the pack
    reports an advisory, never a failure).

    Exit 0; 1 when a MUST the pack can observe has no killing test; 3 when
    the catalogue itself is malformed.
    """
    from ..console import make_console

    try:
        rows = rule_table(Path(pack_dir) if pack_dir else shipped_pack())
    except CatalogueError as exc:
        click.echo(f"fsmcheck rules: {exc}", err=True)
        sys.exit(3)
    if protocol:
        rows = [r for r in rows if r.rule.protocol == protocol]
    missing = uncovered_musts(rows)
    code = 1 if missing else 0
    if as_json:
        click.echo(json.dumps({"pack": str(pack_dir) if pack_dir else "shipped", "rules": [r.as_dict() for r in rows],
                               "uncovered_musts": [r.rule.id for r in missing], "exit_code": code}, indent=2))
        sys.exit(code)
    out = make_console(no_color)
    for r in rows:
        rule = r.rule
        out.print(f"{rule.id}  {rule.level}  [{r.status}]  {rule.source}: {rule.section}", markup=False,
                  highlight=False)
        out.print(f"    \"{rule.sentence}\"", markup=False, highlight=False, soft_wrap=True)
        if r.kills:
            names = sorted({t.split("::", 1)[1] for t in r.kills})
            out.print(f"    killed by: {', '.join(names)} ({len(r.kills)} test functions)", markup=False,
                      highlight=False, soft_wrap=True)
        if r.advises:
            names = sorted({t.split("::", 1)[1] for t in r.advises})
            out.print(f"    advisory from: {', '.join(names)}", markup=False, highlight=False, soft_wrap=True)
        for label, text in (("not observable", rule.unobservable), ("note", rule.note)):
            if text:
                out.print(f"    {label}: {text}", markup=False, highlight=False, soft_wrap=True)
    counts = {}
    for r in rows:
        counts[r.status] = counts.get(r.status, 0) + 1
    out.print(f"{len(rows)} rules: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
              + (f"; MUST with no killing test: {', '.join(r.rule.id for r in missing)}" if missing else ""),
              markup=False, highlight=False)
    sys.exit(code)
