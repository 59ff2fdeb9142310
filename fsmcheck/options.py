"""The options every command spells the same way (issue 24: one CLI grammar).

=====================  =====================================================
option                 meaning, in every command that has it
=====================  =====================================================
``-q`` / ``--quiet``   print only failures, errors and the summary line;
                       never hides a diagnostic (a bad input is always said)
``--json``             the result as one JSON document on stdout (errors too:
                       ``{"error": ..., "diagnostics": [...], "exit_code": 2}``)
``-o`` / ``--output``  where the command's one product goes: a FILE for a
                       command that writes one file (render, report, diff's
                       HTML, export), a DIRECTORY for one that writes a tree
                       (generate, run-pack)
``--progress``         progress lines on stderr even when it is not a terminal
                       (on a terminal they are shown unless ``-q``/``--json``)
``--no-color``         plain text (also ``NO_COLOR=1``)
``--flags``            a flag set, only where it chooses something; a command
                       for which it would choose nothing refuses it (exit 2)
=====================  =====================================================

The exit codes are :mod:`fsmcheck.verifier.exit_codes` (:data:`EXIT_CODES`
here is the table the documentation prints). Light: imports click only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import click

from .verifier.exit_codes import EXIT_FAIL, EXIT_INPUT, EXIT_INTERNAL, EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["EXIT_CODES", "PYTEST_EXIT", "json_option", "no_color_option", "progress_option", "quiet_option",
           "show_progress"]

#: Every command's exit codes: (code, meaning).
EXIT_CODES = (
    (EXIT_OK, "success: every property holds, every test passed, nothing observable changed"),
    (EXIT_FAIL, "a property fails or is unknown, a check found a defect, a test failed, a diff is observable"),
    (EXIT_INPUT, "bad input or usage: a malformed file, an unknown option or flag set, a missing device file"),
    (EXIT_INTERNAL, "internal error: the engines disagree, fsmcheck (or the pack's pytest run) broke or was "
                    "interrupted"),
)

#: pytest's exit codes (``pytest.ExitCode``) as ``fsmcheck run-pack`` reports
#: them: OK 0 -> 0; TESTS_FAILED 1 -> 1; INTERRUPTED 2 -> 3 (the run did not
#: finish: a collection error or ^C); INTERNAL_ERROR 3 -> 3; USAGE_ERROR 4 ->
#: 2 (a bad errata or devices file reaches the plugin as a usage error);
#: NO_TESTS_COLLECTED 5 -> 1 (nothing ran against the device: not a pass);
#: MAX_WARNINGS_ERROR 6 -> 1 (a limit the run was given was exceeded). Any
#: other code -> 3.
PYTEST_EXIT = {0: EXIT_OK, 1: EXIT_FAIL, 2: EXIT_INTERNAL, 3: EXIT_INTERNAL, 4: EXIT_INPUT, 5: EXIT_FAIL,
               6: EXIT_FAIL}


def quiet_option(help: str = "Print only failures, errors and the summary line.") -> Callable:
    """``-q`` / ``--quiet`` (parameter ``quiet``)."""
    return click.option("--quiet", "-q", is_flag=True, help=help)


def json_option(help: str = "Print the result as JSON on stdout.") -> Callable:
    """``--json`` (parameter ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def progress_option() -> Callable:
    """``--progress`` (parameter ``progress``)."""
    return click.option("--progress", is_flag=True,
                        help="Progress lines on stderr even when it is not a terminal (on a terminal they are "
                             "shown unless -q or --json).")


def no_color_option() -> Callable:
    """``--no-color`` (parameter ``no_color``; also ``NO_COLOR=1``)."""
    return click.option("--no-color", is_flag=True, envvar="NO_COLOR", help="Plain text output (also NO_COLOR=1).")


def show_progress(err: Console, *, quiet: bool = False, as_json: bool = False, progress: bool = False) -> bool:
    """Whether a command prints progress on ``err``: with ``--progress``
    always; otherwise only on a terminal, and not with ``-q`` or ``--json``."""
    if progress:
        return True
    return err.is_terminal and not quiet and not as_json
