"""What an engine says about a property: a verdict and its counterexample."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Counterexample", "Verdict", "HOLDS", "FAILS", "UNKNOWN", "ERROR", "fail", "looping_pairs"]

HOLDS, FAILS, UNKNOWN = "holds", "fails", "unknown"
#: An engine could not give a sound answer (an internal error, or premises
#: that contradict each other): the CLI exits 3.
ERROR = "error"


@dataclass(frozen=True)
class Counterexample:
    """A minimal witness that a property fails.

    Attributes:
        summary: one line saying what goes wrong.
        trace: the shortest trace, as described states (``NAME`` or
            ``NAME (011b)``), each step optionally annotated (``--reset-->``).
        line: the model-file line where the offending state, arc or rule is
            declared (0 if none applies).
        data: machine-readable details (pair, path, cycle...).
    """

    summary: str
    trace: tuple[str, ...] = ()
    line: int = 0
    data: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return {"summary": self.summary, "trace": list(self.trace), "line": self.line, "data": self.data}


@dataclass(frozen=True)
class Verdict:
    """One engine's answer for one property instance.

    Attributes:
        status: ``holds``, ``fails`` or ``unknown`` (a z3 timeout or a question
            the engine cannot decide; never counted as ``holds``).
        seconds: wall time the engine spent (>= 0).
        counterexample: set when ``status`` is ``fails``.
        note: why a verdict is ``unknown``, or other context.
        evidence: engine-specific facts the two engines must agree on (for the
            combination table: the table itself); compared, never printed.
    """

    status: str
    seconds: float = 0.0
    counterexample: Counterexample | None = None
    note: str = ""
    evidence: object = field(default=None, compare=False)


def fail(summary: str, trace=(), line: int = 0, evidence=None, **data) -> Verdict:
    """A failing :class:`Verdict` whose counterexample is ``summary``,
    ``trace``, ``line`` and ``data``; ``evidence`` (the derived table) goes to
    the verdict, where the engines' results are compared, not into the
    counterexample."""
    return Verdict(FAILS, counterexample=Counterexample(summary, tuple(trace), line, data), evidence=evidence)


def looping_pairs(pairs) -> str:
    """Wording for a counterexample: `` (looping pairs: A -> B, C -> D)``
    when more than one (current, requested) pair loops, else ``""``."""
    if len(pairs) < 2:
        return ""
    return " (looping pairs: " + ", ".join(f"{a} -> {b}" for a, b in pairs) + ")"
