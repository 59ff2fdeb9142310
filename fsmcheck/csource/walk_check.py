"""Checking a walk read from C against the model, on both engines.

For each defined flag set, :func:`check_walk` decides ``walk-terminates``
and ``walk-agrees`` with the verifier's two engines (the model's own walk is
replaced by the one read from C), and lists every (current, requested) pair
where the walk and the table derived from the model's arcs differ -- not
only the first.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..semantics.combination import NO_PATH, REJECTED, derive_table
from ..model.schema import Config, Model
from ..verifier.verify import Result, verify_model
from ..semantics.walk import EINVAL, OK, run_walk
from .kernel_walk import KernelWalk

__all__ = ["Difference", "FlagSetReport", "check_walk"]


@dataclass(frozen=True)
class Difference:
    """A pair where the walk and the derived table disagree."""

    current: str
    requested: str
    walk: str
    model: str
    kind: str
    line: int

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FlagSetReport:
    """The walk's results for one flag set."""

    config: Config
    results: list[Result]
    differences: list[Difference]


def _describe(cur: str, outcome: str, path: tuple[str, ...], cycle=()) -> str:
    if outcome == OK:
        return " -> ".join((cur,) + path) if path else f"{cur} (no-op)"
    if outcome == EINVAL:
        return "EINVAL" if not path else " -> ".join((cur,) + path) + " then EINVAL"
    return f"no end ({outcome}: {' -> '.join(cycle + cycle[:1])})"


def _kind(model: Model, config: Config, result, entry) -> str:
    supported = set(model.supported(config.flags))
    if result.outcome not in (OK, EINVAL):
        return "does not terminate"
    if model.error in result.path:
        return "enters ERROR mid-path"
    if any(s not in supported for s in result.path):
        return "enters an unsupported state"
    if (result.outcome == EINVAL) != (entry.outcome in (REJECTED, NO_PATH)):
        return "rejects a valid request" if result.outcome == EINVAL else "accepts a rejected request"
    return "takes another path"


def check_walk(kw: KernelWalk, model: Model, *, timeout_ms: int = 10000, progress=None) -> list[FlagSetReport]:
    """Check walk ``kw`` against ``model`` for every flag set of the model;
    ``progress`` is called before each property instance (as by
    :func:`~fsmcheck.verifier.verify.verify_model`)."""
    checked = dataclasses.replace(model, walk=kw.walk, properties=("walk-terminates", "walk-agrees"))
    results = verify_model(checked, timeout_ms=timeout_ms, progress=progress)
    reports = []
    for config in model.configs():
        mine = [r for r in results if r.config == config.label]
        table = derive_table(model, config)
        differences = []
        for (cur, req), entry in table.items():
            result = run_walk(checked, config, cur, req)
            want_outcome = EINVAL if entry.outcome in (REJECTED, NO_PATH) else OK
            if (result.outcome, result.path) == (want_outcome, entry.path if want_outcome == OK else ()):
                continue
            differences.append(Difference(
                cur, req, _describe(cur, result.outcome, result.path, result.cycle),
                _describe(cur, want_outcome, entry.path), _kind(model, config, result, entry),
                kw.line_of((cur, req))))
        reports.append(FlagSetReport(config, mine, differences))
    return reports
