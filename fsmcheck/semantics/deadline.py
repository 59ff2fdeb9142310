"""A global deadline for a verification run.

``fsmcheck verify --deadline`` bounds the whole run, not one z3 query. The
deadline in force is a context variable set with :func:`deadline`; the z3
engine clamps every query's timeout to the time left
(:func:`remaining_ms`), and both engines call :func:`check` between units of
work. Past the deadline :class:`DeadlineExpired` is raised; the verifier turns
the instance it interrupts, and every instance not yet started, into
``unknown``.
"""

from __future__ import annotations

import contextlib
import contextvars
import time

__all__ = ["DeadlineExpired", "check", "deadline", "remaining_ms"]

_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar("fsmcheck_deadline", default=None)


class DeadlineExpired(Exception):
    """Raised by :func:`check` (and the z3 engine's queries) once the deadline
    in force has passed."""


@contextlib.contextmanager
def deadline(seconds: float | None):
    """Within the ``with`` block, work must end ``seconds`` (> 0) from now;
    None means no deadline. Nested deadlines keep the earlier one."""
    at = None if seconds is None else time.monotonic() + seconds
    outer = _AT.get()
    if outer is not None and (at is None or outer < at):
        at = outer
    token = _AT.set(at)
    try:
        yield
    finally:
        _AT.reset(token)


def remaining_ms(default: int) -> int:
    """``default`` clamped to the milliseconds left (at least 1).

    Raises:
        DeadlineExpired: no time is left.
    """
    at = _AT.get()
    if at is None:
        return default
    left = at - time.monotonic()
    if left <= 0:
        raise DeadlineExpired("the deadline passed")
    return max(1, min(default, int(left * 1000)))


def check() -> None:
    """Raise :class:`DeadlineExpired` if the deadline in force has passed."""
    at = _AT.get()
    if at is not None and time.monotonic() >= at:
        raise DeadlineExpired("the deadline passed")
