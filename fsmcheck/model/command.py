"""``fsmcheck models``: the shipped models (name, title, sha256)."""

from __future__ import annotations

import json
import sys

import click

from ..console import make_console

__all__ = ["models_command"]


@click.command("models")
@click.option("--json", "as_json", is_flag=True,
              help='Print a JSON array of {"name", "title", "sha256", "path"}.')
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output (also NO_COLOR=1).")
def models_command(as_json, no_color):
    """List the models shipped with fsmcheck: name, title and SHA-256.

    Every command that takes a MODEL accepts a shipped model's name
    (`fsmcheck verify vfio_v2`) as well as a file's path. Exit 0; 3 when the
    installation has no models.
    """
    from rich.table import Table

    from ..model.shipped import models_dir, shipped_models

    out, err = make_console(no_color), make_console(no_color, stderr=True)
    try:
        found = shipped_models()
    except FileNotFoundError as exc:
        err.print(f"error: {exc}", markup=False)
        sys.exit(3)
    if as_json:
        click.echo(json.dumps([{"name": m.name, "title": m.title, "sha256": m.sha256, "path": str(m.path)}
                               for m in found], indent=2))
        sys.exit(0)
    table = Table(title=f"shipped models ({models_dir()})", title_justify="left", header_style="bold")
    for col in ("name", "title", "sha256"):
        table.add_column(col, overflow="fold")
    for m in found:
        table.add_row(m.name, m.title, m.sha256)
    out.print(table)
    sys.exit(0)
