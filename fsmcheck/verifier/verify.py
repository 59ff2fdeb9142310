"""Deciding a model's properties with both engines and comparing them.

:func:`verify_model` runs every listed property of a model in every
configuration on the explicit (networkx) and the symbolic (z3) engine and
combines their verdicts into one :class:`Result` per property instance:

=========  =========  ==========
networkx   z3         result
=========  =========  ==========
holds      holds      holds
fails      fails      fails
holds      fails      disagree
either     unknown    fails if the other fails, else unknown
=========  =========  ==========

Engines also return *evidence* (the derived combination table); when both
return it and it differs, the result is ``disagree`` even if both hold. A
``disagree`` or an exception inside an engine is an internal error: the CLI
exits 3 and never silently picks one engine.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Callable, Iterable

from ..engines import explicit, symbolic
from ..engines.protocol import Engine
from ..model.schema import Config, Model
from ..semantics import deadline as _deadline
from ..model.properties import Property, applicable
from ..semantics.verdict import FAILS, HOLDS, UNKNOWN, Verdict

__all__ = ["Result", "verify_model", "decide", "DISAGREE", "ERROR", "ENGINES"]

DISAGREE, ERROR = "disagree", "error"

#: Engine names as shown in reports, in report order.
ENGINES = (explicit.Explicit.name, symbolic.Symbolic.name)


@dataclass(frozen=True)
class Result:
    """The combined verdict of one property instance.

    Attributes:
        prop: the :class:`~fsmcheck.model.properties.Property`.
        config: the configuration label, or ``"all"`` for model-wide properties.
        statement: the one-line statement for this instance.
        status: ``holds``, ``fails``, ``unknown``, ``disagree`` or ``error``.
        verdicts: engine name -> :class:`~fsmcheck.semantics.verdict.Verdict`.
        detail: why the status is ``disagree`` or ``error``.
    """

    prop: Property
    config: str
    statement: str
    status: str
    verdicts: dict
    detail: str = ""

    @property
    def counterexample(self):
        """The counterexample of the first failing engine, or None."""
        for name in ENGINES:
            v = self.verdicts.get(name)
            if v is not None and v.counterexample is not None:
                return v.counterexample
        return None


def _run(engine: Engine, name: str, model: Model, config: Config) -> Verdict:
    start = time.perf_counter()
    try:
        _deadline.check()
        verdict = engine.check(name, model, config)
    except _deadline.DeadlineExpired:
        return Verdict(UNKNOWN, time.perf_counter() - start, note="not decided before the deadline")
    except Exception as exc:  # an engine bug must surface as an internal error, not a crash
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return Verdict(ERROR, time.perf_counter() - start, note=f"internal error: {detail}")
    return Verdict(verdict.status, time.perf_counter() - start, verdict.counterexample,
                   verdict.note, verdict.evidence)


def combine(verdicts: dict) -> tuple[str, str]:
    """Combine engine verdicts into ``(status, detail)`` (see the module table)."""
    statuses = {n: v.status for n, v in verdicts.items()}
    errors = [f"{n}: {verdicts[n].note}" for n, s in statuses.items() if s == ERROR]
    if errors:
        return ERROR, "; ".join(errors)
    values = set(statuses.values())
    if {HOLDS, FAILS} <= values:
        says = ", ".join(f"{n} says {s}" for n, s in statuses.items())
        return DISAGREE, f"engines disagree: {says}"
    evidence = [v.evidence for v in verdicts.values() if v.evidence is not None]
    if len(evidence) == len(verdicts) > 1 and any(e != evidence[0] for e in evidence[1:]):
        return DISAGREE, "engines derived different results: " + _first_difference(evidence[0], evidence[1])
    if FAILS in values:
        return FAILS, ""
    if UNKNOWN in values:
        notes = "; ".join(f"{n}: {v.note}" for n, v in verdicts.items() if v.status == UNKNOWN)
        return UNKNOWN, notes
    return HOLDS, ""


def _first_difference(a, b) -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return f"{key}: networkx {a.get(key)!r} vs z3 {b.get(key)!r}"
    return f"networkx {a!r} vs z3 {b!r}"


def verify_model(model: Model, *, timeout_ms: int = symbolic.DEFAULT_TIMEOUT_MS,
                 progress: Callable[[str], None] | None = None,
                 deadline: float | None = None) -> list[Result]:
    """Decide every listed property of ``model`` on both engines.

    Args:
        model: a loaded model.
        timeout_ms: z3's per-query timeout in milliseconds (> 0); a timeout
            gives ``unknown``.
        progress: called with a short description before each instance.
        deadline: seconds (> 0) the whole call may take, or None (also
            bounded by any deadline already in force, see
            :mod:`fsmcheck.semantics.deadline`). An engine interrupted by it,
            and every instance not started by then, says ``unknown``.

    Returns:
        One :class:`Result` per property and configuration (model-wide
        properties once, with config ``"all"``), in property order.

    Raises:
        ValueError: a listed property does not apply to the model.
    """
    engines = (explicit.Explicit(), symbolic.Symbolic(timeout_ms))
    with _deadline.deadline(deadline):
        return decide(model, _instances(model, progress), engines)


def _instances(model: Model, progress):
    configs = model.configs()
    for prop in applicable(model):
        for config in configs[:1] if prop.scope == "model" else configs:
            label = "all" if prop.scope == "model" else config.label
            if progress:
                progress(f"{model.name}: {prop.name} [{label}]")
            yield prop, config, label


def decide(model, instances: Iterable[tuple[Property, object, str]], engines: tuple[Engine, ...]) -> list[Result]:
    """The one verdict loop (device and orchestration models): every engine
    (an :class:`Engine`) decides each ``(property, configuration, label)`` of
    ``instances`` (in report order; a generator may report progress) within
    the deadline in force, an exception being ``error``; one :class:`Result`
    per instance, the verdicts combined (:func:`combine`)."""
    results = []
    for prop, config, label in instances:
        verdicts = {engine.name: _run(engine, prop.name, model, config) for engine in engines}
        status, detail = combine(verdicts)
        results.append(Result(prop, label, prop.statement(model, config), status, verdicts, detail))
    return results
