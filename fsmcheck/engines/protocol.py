"""What an engine is: the protocol both engines implement.

An engine decides one registered property (:mod:`fsmcheck.model.properties`)
of one model in one configuration. The verifier holds its engines as
:class:`Engine` objects and compares their verdicts
(:func:`fsmcheck.verifier.verify.decide`); the orchestration engines
(:mod:`fsmcheck.orchestration`) implement it for orchestration models.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from ..model.properties import PROPERTIES
from ..model.schema import Config, Model
from ..semantics.verdict import Verdict

__all__ = ["Engine", "implementations"]


@runtime_checkable
class Engine(Protocol):
    """A decision procedure for the registered properties.

    Attributes:
        name: the engine's name as reports show it (``networkx``, ``z3``).
    """

    name: str

    def check(self, prop: str, model: Model, config: Config) -> Verdict:
        """Decide registered property ``prop`` for ``config``: ``holds``,
        ``fails`` (with a counterexample), ``unknown`` (undecided here) or
        ``error`` (no sound answer). Raises whatever an engine bug raises
        (the verifier reports it as an internal error)."""

    def implements(self, prop: str) -> bool:
        """True if the engine has an implementation of ``prop``."""


def implementations(namespace: dict, prefix: str) -> dict[str, Callable]:
    """The implementations an engine module defines, by property name: for
    each registered property, the function ``prefix`` + its
    :attr:`~fsmcheck.model.properties.Property.implementation` in
    ``namespace`` (a module's ``globals()``), where there is one."""
    found = {p.name: namespace.get(prefix + p.implementation) for p in PROPERTIES}
    return {name: fn for name, fn in found.items() if callable(fn)}
