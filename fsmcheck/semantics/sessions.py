"""The data-session effect an arc must have, from the session groups.

vfio.h: entering the saving group (RUNNING -> PRE_COPY, RUNNING_P2P ->
PRE_COPY_P2P, STOP -> STOP_COPY) or RESUMING (STOP -> RESUMING) returns a new
data_fd; moving inside the saving group keeps it; leaving ends it (seed 002:
every session gets a new fd).
"""

from __future__ import annotations

from ..model.schema import Model

__all__ = ["expected_effect"]


def expected_effect(model: Model, src: str, dst: str) -> str:
    """``starts``, ``keeps``, ``ends``, ``none``, or ``ends+starts`` (an arc
    from one session group straight into another, which no single declared
    effect can describe)."""
    g_src = model.group_of(src, model.session_groups)
    g_dst = model.group_of(dst, model.session_groups)
    if g_src is None and g_dst is None:
        return "none"
    if g_src == g_dst:
        return "keeps"
    if g_src is None:
        return "starts"
    if g_dst is None:
        return "ends"
    return "ends+starts"

