"""The ``fsmcheck`` command line: the group and where each command lives.

Every command is defined in its package's ``command.py`` and loaded by
:class:`LazyGroup` only when named, so start-up imports click and little
else (``tests/test_startup.py`` guards this; ``bench/bench_startup.py``
times it). The options every command spells alike are in
:mod:`fsmcheck.options`; the exit codes (every command):
0 success / all hold; 1 a property fails or is unknown, a check or test
fails; 2 bad input or usage; 3 internal error or engine disagreement.
"""

from __future__ import annotations

import importlib

import click

from . import __version__
from .verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

__all__ = ["EXIT_FAIL", "EXIT_INPUT", "EXIT_INTERNAL", "EXIT_OK", "LAZY_SUBCOMMANDS", "LazyGroup", "main"]


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
    "driver-arcs": ("fsmcheck.csource.command:driver_arcs",
                    "Compare the arcs a driver's step function handles with those the walk requires for "
                    "its migration_flags."),
    "generate": ("fsmcheck.generate.command:generate",
                 "Compile verified MODELS into pytest conformance modules in OUTPUT."),
    "export": ("fsmcheck.export.command:export", "Export MODEL for other tools."),
    "kernel-walk": ("fsmcheck.csource.command:kernel_walk",
                    "Check the kernel's combination walk in FILE.c (vfio_main.c or a patch)."),
    "models": ("fsmcheck.model.command:models_command",
               "List the models shipped with fsmcheck: name, title and SHA-256."),
    "mutate": ("fsmcheck.mutation.command:mutate",
               "Run the pack against the reference drivers and every mutant driver; print which suites killed "
               "each mutant and the mutation score (with --full, every suite that kills it; by default the "
               "first kill)."),
    "render": ("fsmcheck.review.command:render",
               "Draw MODEL's state diagram with graphviz: one per configuration side by side, or the one "
               "--flags / --profile choose."),
    "report": ("fsmcheck.review.command:report",
               "Verify MODELS and write one self-contained HTML review report: the diagrams of every "
               "configuration, the property table with both engines' verdicts and times, the derived "
               "combination tables as matrices, each counterexample as steps and as a highlighted diagram, "
               "and the v1 <-> v2 correspondence."),
    "rules": ("fsmcheck.rules.command:rules",
              "Print the rule catalogue: every MUST/SHOULD of vfio.h and seeds 000-004 (id, level, source, "
              "sentence), with the tests of the pack that can kill a violation of it -- read from the rules "
              "the checks cite, not listed by hand."),
    "table": ("fsmcheck.review.command:table",
              "Print the combination table derived from MODEL's arcs and path rule."),
    "verify": ("fsmcheck.review.command:verify", "Decide every property of each MODEL on both engines."),
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

    Exit codes (every command): 0 success / all hold; 1 a property fails
    or is unknown, a check or a test fails; 2 bad input or usage; 3 internal
    error or engine disagreement.
    """


if __name__ == "__main__":  # pragma: no cover
    main()
