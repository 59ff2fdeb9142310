"""``fsmcheck export``: a model for other tools."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from ..console import make_console
from ..model.options import MODEL, configs_or_exit, load_or_exit
from ..outputs import check_output, write_file
from ..review.diagram import diagram
from ..verifier.exit_codes import EXIT_INPUT, EXIT_OK
from .graph_json import graph_json
from .promela import promela, promela_all

__all__ = ["export"]


@click.command()
@click.argument("model_path", metavar="MODEL", type=MODEL)
@click.option("--format", "fmt", required=True, type=click.Choice(["promela", "json", "dot"]),
              help="promela: one SPIN model per configuration; json: the fsmcheck-graph schema; "
                   "dot: the diagram's graphviz source.")
@click.option("-o", "--output", type=click.Path(),
              help="Output file (a directory for promela without --flags/--profile); default stdout.")
@click.option("--flags", "flags_text", default=None, help="One flag set (promela, dot; with json: exit 2).")
@click.option("--profile", default=None, help="One profile (promela, dot; with json: exit 2).")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output.")
@click.option("--run", "run_name", default=None,
              help="Orchestration models (promela): the run to export (default: the first).")
@click.option("--devices", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Orchestration models (promela): the number of devices N.")
@click.option("--failures", default=0, show_default=True, type=click.IntRange(0, 16),
              help="Orchestration models (promela): the failure budget F.")
def export(model_path, fmt, output, flags_text, profile, no_color, run_name, devices, failures):
    """Export MODEL for other tools.

    promela: each configuration's FSM with the no-invalid-entry property as
    assertions and reachability as LTL claims (see fsmcheck.export.promela);
    json: states, arcs with attributes, flag sets and each configuration's
    derived graph, schema "fsmcheck-graph" version 1 (see
    fsmcheck.export.graph_json); dot: the state diagram's DOT source.
    """
    if output:
        check_output(output, directory=fmt == "promela" and not flags_text and not profile)
    err = make_console(no_color, stderr=True)
    from ..orchestration import Orchestration, load

    model = load_or_exit(model_path, err, load)
    if isinstance(model, Orchestration):
        from .orchestration_command import export_orchestration

        export_orchestration(model, fmt, output, run_name, devices, failures, err)
    if fmt == "json" and (flags_text or profile):
        raise click.UsageError("--format json exports every configuration; --flags/--profile choose nothing there")
    if fmt == "json":
        text = json.dumps(graph_json(model), indent=2) + "\n"
    elif fmt == "dot":
        text = diagram(model, configs_or_exit(model, flags_text, profile, err)).source
    elif flags_text or profile:
        configs = configs_or_exit(model, flags_text, profile, err)
        if len(configs) != 1:
            err.print("error: --flags/--profile must choose one configuration for a single Promela file",
                      markup=False)
            sys.exit(EXIT_INPUT)
        text = promela(model, configs[0])
    else:
        if not output:
            err.print("error: promela without --flags/--profile writes one file per configuration: "
                      "give -o DIRECTORY", markup=False)
            sys.exit(EXIT_INPUT)
        for name, pml in promela_all(model).items():
            err.print(f"wrote {write_file(Path(output) / name, pml)}", markup=False)
        sys.exit(EXIT_OK)
    write_or_echo(text, output, err)


def write_or_echo(text: str, output, err) -> NoReturn:
    """``text`` into the file ``output`` (saying so on ``err``), or on stdout
    when there is none; then exit 0."""
    if output:
        write_file(Path(output), text)
        err.print(f"wrote {output}", markup=False)
    else:
        click.echo(text, nl=False)
    sys.exit(EXIT_OK)
