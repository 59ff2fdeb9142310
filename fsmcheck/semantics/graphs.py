"""Compiling a model to networkx graphs, one per configuration.

:func:`arc_graph` gives the directed graph of the arcs a configuration has:
nodes are the supported states (with ``value``, ``requestable`` and ``line``
attributes), edges the arcs (with ``session``, ``line`` and ``kind`` =
``"arc"``). :func:`system_graph` adds what the environment can do besides
requests: ``reset`` edges from every state to the reset target and
``failure`` edges from every state to the error state (vfio.h "any ->
ERROR").
"""

from __future__ import annotations

import networkx as nx

from ..model.schema import Config, Model

__all__ = ["UndecidedError", "accepted_values", "arc_effects", "arc_graph", "declared_effects", "system_graph"]


class UndecidedError(Exception):
    """Raised when the explicit engine cannot decide a question exactly.

    For a bit-encoded model whose validity predicate reads bits outside the
    state mask, the explicit engine would have to enumerate ``2**width``
    values; it refuses and the property is reported ``unknown``.
    """


def accepted_values(model: Model, config: Config) -> set[str]:
    """States a request may name under ``config``.

    Enum models: the supported, requestable states. Bit-encoded models: the
    states whose value satisfies the validity predicate (any setting of the
    reserved bits gives the same answer, since the predicate reads only bits
    of the mask).

    Raises:
        UndecidedError: the predicate reads bits outside the mask.
    """
    supported = model.supported(config.flags)
    if model.encoding != "bits" or model.valid is None:
        return {s for s in supported if model.state(s).requestable}
    if model.valid.support & ~model.mask:
        raise UndecidedError(
            f"validity predicate reads bits {model.valid.support & ~model.mask:#x} outside the "
            f"mask {model.mask:#x}; the explicit engine enumerates only masked values"
        )
    return {s for s in supported if model.valid(model.state(s).value)}


def _declared(model: Model, config: Config) -> list:
    """The declared arcs ``config`` takes: enabled by its flags, between
    supported states, with a tag its profile lists (if it lists any)."""
    supported = set(model.supported(config.flags))
    profile = model.profile(config.profile)
    return [a for a in model.arcs
            if a.enabled(config.flags) and a.src in supported and a.dst in supported
            and (profile.tags is None or a.tag in profile.tags)]


def declared_effects(model: Model, config: Config) -> dict[tuple[str, str], str]:
    """``{(src, dst): effect}`` of the declared arcs ``config`` takes."""
    return {(a.src, a.dst): a.session for a in _declared(model, config)}


def arc_effects(model: Model, config: Config) -> dict[tuple[str, str], str]:
    """The session effect of every arc of ``config``: ``{(src, dst): effect}``.

    A ``declared`` profile: each declared arc's effect (the loader rejects
    two arcs of one pair with different effects). An ``all-requestable``
    profile: every ordered pair of distinct accepted states, with the effect
    of the declared arc of that pair if there is one, else ``"none"`` (the
    profile declares steps, not sessions). Both engines read this one
    definition.

    Raises:
        UndecidedError: see :func:`accepted_values` (``all-requestable`` only).
    """
    declared = declared_effects(model, config)
    if model.profile(config.profile).arcs != "all-requestable":
        return declared
    accepted = [s for s in model.state_names if s in accepted_values(model, config)]
    return {(a, b): declared.get((a, b), "none") for a in accepted for b in accepted if a != b}


def arc_graph(model: Model, config: Config) -> nx.DiGraph:
    """The arcs of ``config`` as a :class:`networkx.DiGraph`.

    A ``declared`` profile takes the model's arcs whose flags match and whose
    end states are supported (and whose tag the profile lists, if it lists
    any); an ``all-requestable`` profile takes every ordered pair of distinct
    accepted states (:func:`accepted_values`).

    Raises:
        UndecidedError: see :func:`accepted_values` (``all-requestable`` only).
    """
    graph = nx.DiGraph(config=config.label)
    supported = model.supported(config.flags)
    for name in supported:
        state = model.state(name)
        graph.add_node(name, value=state.value, requestable=state.requestable, line=state.line)
    profile = model.profile(config.profile)
    if profile.arcs == "all-requestable":
        for (a, b), effect in arc_effects(model, config).items():
            graph.add_edge(a, b, session=effect, line=profile.line, kind="arc", tag="profile")
        return graph
    for arc in _declared(model, config):
        graph.add_edge(arc.src, arc.dst, session=arc.session, line=arc.line, kind="arc", tag=arc.tag)
    return graph


def system_graph(model: Model, config: Config) -> nx.MultiDiGraph:
    """:func:`arc_graph` plus ``reset`` and ``failure`` edges (edge key = kind)."""
    graph = nx.MultiDiGraph(arc_graph(model, config))
    for name in list(graph.nodes):
        if model.reset in graph:
            graph.add_edge(name, model.reset, key="reset", kind="reset")
        if model.error in graph and name != model.error:
            graph.add_edge(name, model.error, key="failure", kind="failure")
    return graph
