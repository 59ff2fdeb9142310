"""Start-up: the CLI imports only what a command uses (issue 14).

No timings here (they are in ``bench/bench_startup.py``): a fresh
interpreter imports the CLI, runs ``--help`` and light commands' ``--help``
through click's runner, and must not have imported the engines, the
solvers or the libraries of other commands. A top-level import of one of
them in ``fsmcheck.cli``, ``fsmcheck.console`` or a light command's module
fails these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from fsmcheck.cli import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK, LAZY_SUBCOMMANDS, LazyGroup, main

#: Modules no ``--help`` below may import.
HEAVY = ("z3", "networkx", "rich", "graphviz", "hypothesis", "pycparser", "pytest", "jsonschema", "playwright",
         "fsmcheck.engines", "fsmcheck.verifier.verify", "fsmcheck.verifier.verify_report",
         "fsmcheck.semantics.combination", "fsmcheck.semantics.graphs", "fsmcheck.model.loader", "fsmcheck.csource", "fsmcheck.review.report",
         "fsmcheck.review.diagram", "fsmcheck.diff", "fsmcheck.tracecheck", "fsmcheck.orchestration",
         "fsmcheck.generate.pack", "fsmcheck.generate.writer", "fsmcheck.mutation.runs",
         "fsmcheck.mutation.score", "fsmcheck.mutation.pool")

#: Invocations that must stay light (every command's module is light at import).
LIGHT = [["--help"], ["--version"], ["verify", "--help"], ["table", "--help"], ["generate", "--help"],
         ["mutate", "--help"], ["models", "--help"], ["rules", "--help"], ["run-pack", "--help"],
         ["render", "--help"], ["report", "--help"]]

COMMANDS = ["check-trace", "diff", "driver-arcs", "export", "generate", "kernel-walk", "models", "mutate", "render",
            "report", "rules", "run-pack", "table", "verify"]

_PROBE = """
import json, sys
from click.testing import CliRunner
heavy = {heavy!r}
loaded = lambda: [h for h in heavy if h in sys.modules]  # a submodule's import imports its package
import fsmcheck.cli
steps = [["import fsmcheck.cli", 0, loaded()]]
for args in {light!r}:
    result = CliRunner().invoke(fsmcheck.cli.main, args)
    steps.append([" ".join(args), result.exit_code, loaded()])
print(json.dumps(steps))
"""


def test_help_imports_no_engine_solver_or_other_command():
    probe = _PROBE.format(heavy=HEAVY, light=LIGHT)
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for step, code, loaded in json.loads(proc.stdout):
        assert code == 0, step
        assert loaded == [], f"`fsmcheck {step}` imported {', '.join(loaded)}"


def test_module_run_prints_the_same_help():
    proc = subprocess.run([sys.executable, "-m", "fsmcheck.cli", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: ") and "Commands:" in proc.stdout
    assert all(f"  {name} " in proc.stdout for name in COMMANDS)


def test_every_command_is_listed_and_resolves():
    ctx = click.Context(main)
    assert main.list_commands(ctx) == COMMANDS
    for name in COMMANDS:
        command = main.get_command(ctx, name)
        assert isinstance(command, click.Command) and command.name == name


@pytest.mark.parametrize("name", sorted(LAZY_SUBCOMMANDS))
def test_lazy_summary_is_shortened_as_the_commands_own_help(name):
    real = LazyGroup(lazy_subcommands=LAZY_SUBCOMMANDS).load_command(name)
    stand_in = click.Command(name, help=LAZY_SUBCOMMANDS[name][1])
    assert not real.hidden and not real.deprecated and real.short_help is None
    first_sentence = real.get_short_help_str(10_000)
    for limit in range(1, 400):
        assert stand_in.get_short_help_str(limit) == real.get_short_help_str(limit), (
            f"the help of {name} changed: in fsmcheck/cli.py, LAZY_SUBCOMMANDS[{name!r}] must be "
            f"(..., {first_sentence!r})")


@pytest.mark.parametrize("width", [50, 80, 120, 250])
def test_help_listing_equals_the_loaded_commands_listing(width):
    lazy = LazyGroup("fsmcheck", lazy_subcommands=LAZY_SUBCOMMANDS)
    eager = click.Group("fsmcheck", commands={n: lazy.load_command(n) for n in LAZY_SUBCOMMANDS})

    def listing(group: click.Group) -> str:
        formatter = click.HelpFormatter(width=width)
        group.format_commands(click.Context(group), formatter)
        return formatter.getvalue()

    assert listing(lazy) == listing(eager)
    assert not lazy.commands, "listing the commands must not import them"


def test_exit_codes_are_the_documented_ones():
    # one leaf module, fsmcheck.verifier.exit_codes; docs/commands.md prints fsmcheck.options.EXIT_CODES
    from fsmcheck.verifier import verify_report

    assert (EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL) == (0, 1, 2, 3)
    assert (EXIT_OK, EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL) == (
        verify_report.EXIT_OK, verify_report.EXIT_FAIL, verify_report.EXIT_INPUT, verify_report.EXIT_INTERNAL)


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2 and "No such command 'no-such-command'" in result.output
