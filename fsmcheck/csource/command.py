"""``fsmcheck kernel-walk`` and ``fsmcheck driver-arcs``: checks on kernel C."""

from __future__ import annotations

import json
import sys

import click
from rich.text import Text
from rich.table import Table

from ..console import make_console, progress_to
from ..model.options import MODEL, load_or_exit
from ..model.shipped import shipped_model_path
from ..model.schema import Config
from ..options import json_option, no_color_option, progress_option, show_progress
from ..verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_OK
from .driver_arcs import compare_arcs, find_flags, read_driver_arcs
from .kernel_walk import WALK_FUNCTION, read_kernel_walk
from .source import SourceError
from .walk_check import check_walk

__all__ = ["driver_arcs", "kernel_walk"]


def default_model() -> str:
    """The shipped v2 model (the installed package's or the checkout's), else ``models/vfio_v2.toml`` of the CWD."""
    try:
        return str(shipped_model_path("vfio_v2"))
    except FileNotFoundError:
        return "models/vfio_v2.toml"


@click.command("kernel-walk")
@click.argument("c_file", metavar="FILE.c", type=click.Path(dir_okay=False))
@click.option("--model", "model_path", default=default_model, show_default="vfio_v2",
              type=MODEL, help="The v2 model the walk must equal.")
@click.option("--function", default=WALK_FUNCTION, show_default=True, help="The walk's function.")
@json_option()
@click.option("--timeout-ms", default=10000, show_default=True, type=click.IntRange(min=1))
@progress_option()
@no_color_option()
def kernel_walk(c_file, model_path, function, as_json, timeout_ms, progress, no_color):
    """Check the kernel's combination walk in FILE.c (vfio_main.c or a patch).

    Parses vfio_mig_get_next_state() with pycparser: the next-step table, the
    per-state flag requirements and the skip loop. For each flag set of the
    model, both engines decide that the walk terminates from every pair (a
    non-terminating pair is shown with its cycle) and that it equals the
    table derived from the model's arcs; every differing pair is listed.
    Exit codes as `fsmcheck verify`.
    """
    out, err = make_console(no_color), make_console(no_color, stderr=True)
    model = load_or_exit(model_path, err)
    from ..verifier.verify_report import exit_code

    with progress_to(err, show_progress(err, as_json=as_json, progress=progress)) as step:
        try:
            step(f"reading {function}() in {c_file}")
            kw = read_kernel_walk(c_file, model, function)
        except SourceError as exc:
            err.print(f"error: {exc}", markup=False)
            sys.exit(EXIT_INPUT)
        reports = check_walk(kw, model, timeout_ms=timeout_ms, progress=lambda text: step(f"checking {text}"))
    code = exit_code([r for rep in reports for r in rep.results])
    if code == EXIT_OK and any(rep.differences for rep in reports):
        code = EXIT_FAIL
    if as_json:
        click.echo(json.dumps(_walk_json(kw, reports, code), indent=2))
        sys.exit(code)
    walk = kw.walk
    out.print(f"{kw.path}: {function}() at line {kw.function_line}", style="bold", markup=False)
    out.print(f"  table at line {kw.table_line}; skip loop at line {kw.loop_line} stops at "
              f"{', '.join(sorted(walk.exits)) or 'supported states only'}; rejects at "
              f"{', '.join(sorted(walk.reject)) or 'nothing'}; checks the flags of "
              f"{'current' if walk.check_current else ''}"
              f"{' and ' if walk.check_current and walk.check_requested else ''}"
              f"{'requested' if walk.check_requested else ''} state", markup=False)
    for note in kw.notes:
        out.print(f"  note: {note}", markup=False)
    table = Table(header_style="bold")
    for col in ("flag set", "walk-terminates", "walk-agrees", "differences"):
        table.add_column(col)
    for rep in reports:
        status = {r.prop.name: r for r in rep.results}
        table.add_row(Text(rep.config.label), *(_engines(status[n]) for n in ("walk-terminates", "walk-agrees")),
                      str(len(rep.differences)))
    out.print(table)
    for rep in reports:
        for r in rep.results:
            if r.status != "holds":
                cex = r.counterexample
                pair = cex.data.get("pair") if cex else None
                line = kw.line_of(pair) if pair else kw.loop_line
                out.print(f"{r.status.upper()} {r.prop.name} [{rep.config.label}]: "
                          f"{cex.summary if cex else r.detail}", markup=False)
                out.print(f"  at {kw.path}:{line}", markup=False)
        for d in rep.differences:
            out.print(f"  [{rep.config.label}] {d.current} -> {d.requested}: walk {d.walk}; model {d.model} "
                      f"({d.kind}) at {kw.path}:{d.line}", markup=False)
    verdict = "terminates and equals the model on every flag set" if code == EXIT_OK else "does NOT match the model"
    out.print(f"kernel-walk: the walk {verdict}")
    sys.exit(code)


def _engines(result) -> str:
    engines = ", ".join(f"{n} {v.status}" for n, v in result.verdicts.items())
    return f"{result.status} ({engines})"


def _walk_json(kw, reports, code) -> dict:
    walk = kw.walk
    return {
        "file": kw.path, "function_line": kw.function_line, "exit_code": code,
        "walk": {"exits": sorted(walk.exits), "reject": sorted(walk.reject),
                 "check_current": walk.check_current, "check_requested": walk.check_requested,
                 "table_line": kw.table_line, "loop_line": kw.loop_line},
        "notes": kw.notes,
        "flag_sets": [
            {
                "flags": sorted(rep.config.flags),
                "label": rep.config.label,
                "properties": {
                    r.prop.name: {
                        "status": r.status,
                        "engines": {n: v.status for n, v in r.verdicts.items()},
                        "counterexample": r.counterexample.to_json() if r.counterexample else None,
                    } for r in rep.results
                },
                "differences": [d.to_json() for d in rep.differences],
            } for rep in reports
        ],
    }


@click.command("driver-arcs")
@click.argument("c_file", metavar="FILE.c", type=click.Path(dir_okay=False))
@click.option("--flags", "flags_text", default="auto", show_default=True,
              help="auto (the driver's migration_flags), or e.g. STOP_COPY,P2P.")
@click.option("--function", default=None, help="The step function (default: found by its arc tests).")
@click.option("--model", "model_path", default=default_model, show_default="vfio_v2",
              type=MODEL)
@click.option("--tree", "tree", default=None, type=click.Path(file_okay=False),
              help="Kernel tree whose include paths resolve the driver's headers "
                   "(default: the nearest ancestor of FILE.c with an include/ directory).")
@json_option()
@progress_option()
@no_color_option()
def driver_arcs(c_file, flags_text, function, model_path, tree, as_json, progress, no_color):
    """Compare the arcs a driver's step function handles with those the walk
    requires for its migration_flags.

    FILE.c is a driver source (flags are also looked for in the other .c files
    of its directory) or a patch email (its added C). Missing arcs are errors
    (production would hit the driver's WARN_ON and return EINVAL); extra arcs
    are reported as unreachable; a data_fd returned where the model has no new
    session (or the reverse) is an error; so is a step that discards a
    callee's error result. Callees are looked up in FILE.c, its directory and
    the headers it includes through the kernel tree's include paths; a callee
    called as a statement whose declaration is found nowhere is named on an
    info line. Exit 0 clean, 1 findings, 2 bad input.
    """
    out, err = make_console(no_color), make_console(no_color, stderr=True)
    model = load_or_exit(model_path, err)
    with progress_to(err, show_progress(err, as_json=as_json, progress=progress)) as step:
        try:
            step(f"reading the step function in {c_file} and its callees")
            driver = read_driver_arcs(c_file, model, function, tree)
            if flags_text == "auto":
                step(f"looking for migration_flags in {c_file} and its directory")
                found = find_flags(c_file, model)
                if found is None:
                    raise SourceError(f"{c_file}: no migration_flags assignment in the file or its directory; "
                                      "pass --flags")
                flags, where = found
            else:
                flags = frozenset(f.strip() for f in flags_text.replace("|", ",").split(",") if f.strip())
                where = "--flags"
                if flags not in model.flag_sets:
                    raise SourceError(f"--flags {flags_text}: not a defined flag set of {model.name}")
        except SourceError as exc:
            err.print(f"error: {exc}", markup=False)
            sys.exit(EXIT_INPUT)
    config = Config(flags, model.profiles[0].name, model.flag_order)
    cmp = compare_arcs(driver, model, config)
    code = EXIT_OK if cmp.clean else EXIT_FAIL
    if as_json:
        click.echo(json.dumps({
            "file": driver.path, "function": driver.function, "line": driver.line,
            "variables": {"current": driver.current_var, "requested": driver.requested_var},
            "flags": sorted(flags), "flags_declared_at": where, "exit_code": code,
            "handled": [{"from": a.src, "to": a.dst, "line": a.line, "session": a.session} for a in driver.arcs],
            "required": [list(a) for a in cmp.required],
            "missing": [list(a) for a in cmp.missing],
            "extra": [{"from": a.src, "to": a.dst, "line": a.line} for a in cmp.extra],
            "session_errors": cmp.session_errors, "session_notes": cmp.session_notes,
            "discarded_results": cmp.discarded,
            "tree": driver.tree, "unresolved_callees": cmp.unresolved,
        }, indent=2))
        sys.exit(code)
    out.print(f"{driver.path}: {driver.function}() at line {driver.line} "
              f"(current: {driver.current_var}, requested: {driver.requested_var})", markup=False)
    out.print(f"  flags {config.label} (declared at {where}); handles {len(driver.arcs)} arcs; "
              f"the walk requires {len(cmp.required)}", markup=False)
    for src, dst in cmp.missing:
        out.print(f"  ERROR missing arc {src} -> {dst}: the walk asks for it; the driver would WARN_ON "
                  "and fail with EINVAL", markup=False)
    for line in cmp.session_errors + cmp.discarded:
        out.print(f"  ERROR {line}", markup=False)
    for a in cmp.extra:
        out.print(f"  note: {driver.path}:{a.line}: {a.src} -> {a.dst} is handled but unreachable with "
                  f"flags {config.label}", markup=False)
    for line in cmp.session_notes:
        out.print(f"  note: {line}", markup=False)
    if cmp.unresolved:
        out.print(f"  info: headers searched through the include paths of "
                  f"{driver.tree or '(no kernel tree: pass --tree DIR)'}", markup=False)
    for line in cmp.unresolved:
        out.print(f"  info: {line}", markup=False)
    out.print(f"driver-arcs: {'clean' if cmp.clean else 'findings'}", markup=False)
    sys.exit(code)
