"""The ``fsmcheck`` command line.

Exit codes (every command): 0 all properties hold / success; 1 a property
fails or could not be decided (``unknown``); 2 bad input (a malformed model
file, an unknown flag set); 3 an internal error or an engine disagreement.

Start-up imports click and little else: each command imports what it uses
(the engines, z3, networkx, rich, graphviz, pycparser) when it runs, and the
commands defined in other packages are loaded by :class:`LazyGroup` only
when named (``tests/test_startup.py`` guards this; ``bench/bench_startup.py``
times it).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__
from .console import make_console
from .model.options import MODEL, load_or_report, parse_flags

if TYPE_CHECKING:  # imported where used: start-up imports only what a command needs
    from rich.console import Console

    from .model.schema import Config, Model

__all__ = ["LAZY_SUBCOMMANDS", "LazyGroup", "main"]


_console = make_console
_load = load_or_report

from .verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK  # noqa: E402,F401


class LazyGroup(click.Group):
    """A click group whose subcommands named in ``lazy_subcommands`` are
    imported only when a command line uses them.

    ``lazy_subcommands`` maps a command's name to ``(import path, summary)``:
    the import path is ``package.module:attribute`` (a :class:`click.Command`);
    the summary is the first sentence of the command's help, which the
    group's ``--help`` listing shortens exactly as click shortens the
    command's own help, so ``fsmcheck --help`` lists every command without
    importing any (``tests/test_startup.py`` checks each summary against its
    command). ``fsmcheck CMD ...``, ``fsmcheck CMD --help`` and shell
    completion import the command's module, and only that one.
    """

    def __init__(self, *args, lazy_subcommands: dict[str, tuple[str, str]] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_subcommands = dict(lazy_subcommands or {})
        self._listing = False

    def invoke(self, ctx: click.Context):
        """Run the command; an :class:`~fsmcheck.inputs.InputError` that reaches
        here (a file no command-specific check caught) is printed one
        diagnostic a line on stderr, exit 2, never a traceback."""
        from .inputs import InputError

        try:
            return super().invoke(ctx)
        except InputError as exc:
            for d in exc.diagnostics:
                click.echo(str(d), err=True)
            ctx.exit(EXIT_INPUT)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The names of the loaded and of the lazy subcommands, sorted."""
        return sorted({*self.commands, *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command ``cmd_name``, imported on first use (while the
        group's help lists its commands: a stand-in carrying the summary)."""
        if cmd_name in self.lazy_subcommands and cmd_name not in self.commands:
            if self._listing:
                return click.Command(cmd_name, help=self.lazy_subcommands[cmd_name][1])
            self.add_command(self.load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def load_command(self, cmd_name: str) -> click.Command:
        """Import the lazy subcommand ``cmd_name``.

        Raises:
            TypeError: its import path does not name a click command.
        """
        module_name, _, attribute = self.lazy_subcommands[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing of the commands, with the lazy ones' summaries."""
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


#: The commands defined outside this module: import path, and the first
#: sentence of the command's help (what ``fsmcheck --help`` lists).
LAZY_SUBCOMMANDS = {
    "check-trace": ("fsmcheck.tracecheck.command:check_trace_command",
                    "Check QEMU VFIO migration traces against the model (trace validation)."),
    "diff": ("fsmcheck.diff.command:diff",
             "Show what changes from model OLD.toml to NEW.toml: declarations added, removed or changed "
             "(with their lines); per flag set, the combination-table entries whose outcome or path "
             "changes and the properties whose verdict changes; the generated pack's tests that appear, "
             "disappear or change expectation."),
    "driver-arcs": ("fsmcheck.csource.commands:driver_arcs",
                    "Compare the arcs a driver's step function handles with those the walk requires for "
                    "its migration_flags."),
    "export": ("fsmcheck.export.command:export", "Export MODEL for other tools."),
    "kernel-walk": ("fsmcheck.csource.commands:kernel_walk",
                    "Check the kernel's combination walk in FILE.c (vfio_main.c or a patch)."),
    "models": ("fsmcheck.model.command:models_command",
               "List the models shipped with fsmcheck: name, title and SHA-256."),
    "render": ("fsmcheck.review.commands:render",
               "Draw MODEL's state diagram with graphviz: one per configuration side by side, or the one "
               "--flags / --profile choose."),
    "report": ("fsmcheck.review.commands:report",
               "Verify MODELS and write one self-contained HTML review report: the diagrams of every "
               "configuration, the property table with both engines' verdicts and times, the derived "
               "combination tables as matrices, each counterexample as steps and as a highlighted diagram, "
               "and the v1 <-> v2 correspondence."),
    "rules": ("fsmcheck.rules.command:rules",
              "Print the rule catalogue: every MUST/SHOULD of vfio.h and seeds 000-004 (id, level, source, "
              "sentence), with the tests of the pack that can kill a violation of it -- read from the rules "
              "the checks cite, not listed by hand."),
    "run-pack": ("fsmcheck.runpack.command:run_pack_command",
                 "Run the shipped v2 conformance pack against one real VFIO device, or a fleet."),
}


@click.group(cls=LazyGroup, lazy_subcommands=LAZY_SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fsmcheck")
def main() -> None:
    """Verify device-migration protocol models (VFIO v1 and v2) with two
    engines, networkx and z3; derive their combination tables; compile them
    into pytest conformance packs and score the packs against mutant
    drivers; check the kernel's walk and drivers' arcs straight from C.

    Exit codes: 0 success / all hold; 1 a property fails or is unknown;
    2 bad input; 3 internal error or engine disagreement.
    """


@main.command()
@click.argument("models", nargs=-1, required=True, type=MODEL)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option("--timeout-ms", default=10000, show_default=True, type=click.IntRange(min=1),
              help="z3 timeout per query; a timeout makes the verdict 'unknown'.")
@click.option("--quiet", "-q", is_flag=True, help="Print only failures and the summary line.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output (also NO_COLOR=1).")
@click.option("--sarif", "sarif_path", type=click.Path(dir_okay=False),
              help="Also write the results as SARIF 2.1.0 to this file (one result per failing property "
                   "instance, located at the model line).")
@click.option("--trace-dir", type=click.Path(file_okay=False),
              help="Also write each counterexample as an ITF-like JSON trace into this directory.")
@click.option("--devices", default=2, show_default=True, type=click.IntRange(min=1),
              help="Orchestration models: the number of devices N.")
@click.option("--failures", default=0, show_default=True, type=click.IntRange(min=0),
              help="Orchestration models: request failures allowed per run (F).")
@click.option("--flags", "flag_sets", multiple=True, metavar="FLAGS",
              help="Orchestration models: a device's flag set (STOP_COPY,P2P or 3); repeat for devices "
                   "0, 1, ...; the last repeats. Default: the model's default_flags.")
@click.option("--deadline", "deadline_s", default=1800.0, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Seconds the whole run may take (all models); instances not decided by then are "
                   "'unknown' (exit 1). --timeout-ms bounds one z3 query, this bounds the run.")
def verify(models, as_json, timeout_ms, quiet, no_color, sarif_path, trace_dir, devices, failures, flag_sets,
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

    from .verifier.verify import verify_model
    from .verifier.verify_report import document_json, exit_code, print_results, results_json

    out, err = _console(no_color), _console(no_color, stderr=True)
    codes, documents, errors, verified = [], [], [], []
    show_progress = not quiet and not as_json and err.is_terminal
    began = time.monotonic()
    ends_at = began + deadline_s

    def remaining() -> float:
        return max(ends_at - time.monotonic(), 1e-3)

    for path in models:
        from .orchestration import is_orchestration

        if is_orchestration(path):
            from .orchestration.command import verify_file

            checked = verify_file(path, err, devices=devices, failures=failures, flags=flag_sets,
                                  timeout_ms=min(timeout_ms, int(remaining() * 1000)),
                                  progress=(lambda text: err.print(f"verifying {text}", markup=False))
                                  if show_progress else None)
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
        model = _load(path, err)
        if model is None:
            codes.append(EXIT_INPUT)
            errors.append(f"{path}: not a valid model")
            continue
        start = time.perf_counter()
        try:
            if show_progress:
                with err.status(Text(f"verifying {model.name}")) as status:
                    results = verify_model(model, timeout_ms=timeout_ms, deadline=remaining(),
                                           progress=lambda text: status.update(Text(f"verifying {text}")))
            else:
                results = verify_model(model, timeout_ms=timeout_ms, deadline=remaining(),
                                       progress=None if quiet or as_json else _progress_lines(err, began))
        except ValueError as exc:
            err.print(f"{path}:{model.line_of('properties', 'check')}: properties.check: {exc}",
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
        from .ci.sarif import sarif_log
        from .generate.writer import write_file

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
    """Progress for a stderr that is not a terminal: once the run (begun at
    ``start``, a :func:`time.monotonic` time) has taken ``quiet_for``
    seconds, one plain line when an instance starts, at most every
    ``quiet_for`` seconds (short runs print nothing)."""
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

    from .generate.writer import write_file
    from .verifier.trace import itf_trace

    written = []
    for model, results in verified:
        if not hasattr(model, "configs"):  # an orchestration model
            from .orchestration.command import itf_documents

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


@main.command()
@click.argument("model_path", metavar="MODEL", type=MODEL)
@click.option("--flags", "flags_text", default=None,
              help="Flag set, e.g. STOP_COPY,P2P,PRE_COPY (or 7). Default: every defined set.")
@click.option("--profile", default=None, help="Profile name (models with profiles).")
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
@click.option("--literal-rule", is_flag=True,
              help="Apply the uAPI prose rule literally: no saving-group state in the interior, "
                   "even for a path that stays inside the group.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output.")
def table(model_path, flags_text, profile, as_json, literal_rule, no_color):
    """Print the combination table derived from MODEL's arcs and path rule.

    The table is computed from the arcs and the rule (shortest path; no
    saving-group state in the interior; unsupported states skipped), never
    from a walk table the model carries. JSON (one flag set):
    {"flags": [...], "table": {CURRENT: {REQUESTED: {"next": STATE or "EINVAL",
    "path": [STATE, ...]}}}}; without --flags, a JSON array of those.
    """
    from .model.schema import Config
    from .semantics.combination import derive_table, table_json

    out, err = _console(no_color), _console(no_color, stderr=True)
    model = _load(model_path, err)
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


@main.command()
@click.argument("models", nargs=-1, type=MODEL)
@click.option("-o", "--output", default="generated_tests", show_default=True, type=click.Path(file_okay=False),
              help="Directory of the pack.")
@click.option("--check", "check_only", is_flag=True,
              help="Write nothing; exit 1 if the pack in OUTPUT is stale or missing.")
@click.option("--no-verify", is_flag=True, help="Generate even if a property fails (not recommended).")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR")
def generate(models, output, check_only, no_verify, no_color):
    """Compile verified MODELS into pytest conformance modules in OUTPUT.

    Without MODELS, the models named in the stamps of the pack already in
    OUTPUT are used (so `fsmcheck generate --check` checks a committed pack),
    else the shipped models/*.toml. Each model is verified first (both
    engines); a model whose properties do not all hold is not compiled
    (exit 1) unless --no-verify. Output is
    byte-identical on every run and stamped with the model's SHA-256 and the
    fsmcheck version. Run the pack with `pytest OUTPUT
    [--fsmcheck-adapter=module:factory]`.
    """
    from .generate.pack import pack_files, stamped_models, unshipped_stamps
    from .generate.writer import stale_files, write_files
    from .model.shipped import shipped_model_path
    from .verifier.verify import verify_model
    from .verifier.verify_report import exit_code

    out, err = _console(no_color), _console(no_color, stderr=True)
    directory = Path(output)
    if not models:
        unshipped = unshipped_stamps(directory) if directory.is_dir() else []
        if unshipped:
            err.print(f"{directory}: the pack was generated from model(s) {', '.join(unshipped)}, which fsmcheck "
                      "does not ship: name their files (fsmcheck generate MODEL.toml ...)", markup=False)
            sys.exit(EXIT_INPUT)
        found = stamped_models(directory) if directory.is_dir() else []
        if not found:
            found = [shipped_model_path(name) for name in ("vfio_v1", "vfio_v2")]
        models = tuple(str(p) for p in found)
    files, code = {}, EXIT_OK
    for path in models:
        model = _load(path, err)
        if model is None:
            sys.exit(EXIT_INPUT)
        if not no_verify:
            results = verify_model(model)
            verdict = exit_code(results)
            if verdict != EXIT_OK:
                failing = ", ".join(f"{r.prop.name} [{r.config}]" for r in results if r.status != "holds")
                err.print(f"{path}: not generated: properties do not hold: {failing}", markup=False)
                sys.exit(verdict)
        try:
            files.update(pack_files(model))
        except ValueError as exc:
            err.print(f"{path}: {exc}", markup=False)
            sys.exit(EXIT_INPUT)
    if check_only:
        stale = stale_files(directory, files)
        for name in stale:
            out.print(f"stale: {directory / name}", markup=False)
        if stale:
            out.print(f"the pack in {directory} is stale: run fsmcheck generate {' '.join(models)} -o {output}",
                      markup=False)
            sys.exit(1)
        out.print(f"the pack in {directory} is current ({len(files)} modules)", markup=False)
        sys.exit(EXIT_OK)
    for written in write_files(directory, files):
        out.print(f"wrote {written}", markup=False)
    sys.exit(code)


@main.command()
@click.option("-p", "--pack", "pack_dir", default="generated_tests", show_default=True,
              type=click.Path(file_okay=False, exists=True), help="The generated pack.")
@click.option("--seed", default=0, show_default=True, type=int, help="State-machine seed for every run.")
@click.option("--jobs", default=2, show_default=True, type=click.IntRange(min=1), help="Parallel pytest runs.")
@click.option("--full", is_flag=True,
              help="Run every test against every mutant (the whole killing-suite table); "
                   "by default each mutant stops at its first kill.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of the killing-order file (default: $XDG_CACHE_HOME/fsmcheck).")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the killing-order file.")
@click.option("--json", "as_json", is_flag=True, help="Print the score as JSON.")
@click.option("--no-color", is_flag=True, envvar="NO_COLOR")
def mutate(pack_dir, seed, jobs, full, cache_dir, no_cache, as_json, no_color):
    """Run the pack against the reference drivers and every mutant driver;
    print which suites killed each mutant and the mutation score (with
    --full, every suite that kills it; by default the first kill).

    Exit 0 when the reference drivers pass, every mutant is killed and
    every MUST of the rule catalogue the pack can observe has a killing
    test (``fsmcheck rules``); 1 otherwise.
    """
    from rich.table import Table

    from .mutate import score

    out, err = _console(no_color), _console(no_color, stderr=True)
    show = (lambda r: err.print(f"  {r.protocol} {r.name}: {'killed' if r.killed else 'SURVIVED'} "
                                f"({r.seconds:.1f} s)", markup=False)) if not as_json else None
    start = time.perf_counter()
    reference, mutants = score(Path(pack_dir), seed=seed, jobs=jobs, full=full, progress=show,
                               cache_dir=cache_dir, use_cache=not no_cache)
    ref_ok = all(r.failed == 0 and r.errors == 0 and r.returncode == 0 for r in reference)
    killed = sum(1 for m in mutants if m.killed)
    from .rules import rule_table, uncovered_musts  # every observable MUST needs a killing test

    uncovered = [r.rule.id for r in uncovered_musts(rule_table(Path(pack_dir)))]
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


if __name__ == "__main__":  # pragma: no cover
    main()
