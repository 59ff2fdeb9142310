"""``fsmcheck table``: the combination table derived from a model's arcs and path rule."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from ..console import make_console
from ..model.options import MODEL, load_or_report, parse_flags
from ..options import json_option, no_color_option
from ..verifier.exit_codes import EXIT_INPUT, EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

    from ..model.schema import Config, Model

__all__ = ["table"]


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
    from .combination import derive_table, table_json

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
        derived = derive_table(model, config, within_group=within)
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
