"""What the commands share: a console on stdout or stderr.

Loading a model for a command (diagnostics as ``file:line: key: message``), the
MODEL argument and ``--flags`` / ``--profile`` live in :mod:`fsmcheck.model.options`."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:  # rich is imported when used, not at start-up
    from rich.console import Console

__all__ = ["make_console", "progress_to"]


def make_console(no_color: bool, stderr: bool = False, quiet: bool = False) -> Console:
    """A rich console on stdout (or stderr); plain text with ``no_color``;
    discards everything with ``quiet``; 160 columns when not a terminal.

    Never turns ``:name:`` into an emoji (model text is printed as it is).
    On stderr, lines are never wrapped: a diagnostic is one line, so each
    keeps its ``file:line:`` prefix."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    return Console(no_color=no_color, stderr=stderr, highlight=False, soft_wrap=stderr, quiet=quiet,
                   emoji=False, width=None if stream.isatty() else 160)


@contextmanager
def progress_to(err: Console, show: bool) -> Iterator[Callable[[str], None]]:
    """A command's progress on ``err`` (its stderr console), as a callable
    taking one short text: a live status line on a terminal, one plain line a
    call elsewhere (``--progress``), nothing when ``show`` is false
    (:func:`fsmcheck.options.show_progress` decides). Never on stdout, so
    never in ``--json`` output."""
    if not show:
        yield lambda text: None
    elif err.is_terminal:
        from rich.text import Text

        with err.status("") as status:
            yield lambda text: status.update(Text(text))
    else:
        yield lambda text: err.print(text, markup=False, highlight=False)
