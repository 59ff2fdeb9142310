"""The v2 pack of one flag set: every suite's data, derived from the model."""

from __future__ import annotations

from ..semantics.combination import NO_PATH, NOOP, PATH, REJECTED, derive_table
from ..inputs.positions import located
from ..model.schema import Config, Model
from .tour import arc_tour
from .wmethod import FAULT_MODEL, input_alphabet, w_method_sequences

__all__ = ["v2_pack_data", "W_EXTRA_STATES", "CAPABILITY_SUITES"]

#: The W-method bound on extra states.
W_EXTRA_STATES = 1

#: Optional capabilities (``[[capabilities]] name``) the pack has a suite for:
#: name -> (module to import, check function, test function name).
CAPABILITY_SUITES = {
    "PRECOPY_INFO_REINIT": ("fsmcheck.pack.precopy_reinit", "check_precopy_reinit", "test_precopy_info_reinit"),
}


def v2_pack_data(model: Model, config: Config) -> dict:
    """Everything a generated v2 module holds for ``config``, as plain data.

    Raises:
        ValueError: the model declares a capability the pack has no suite for
            (see :data:`CAPABILITY_SUITES`).
    """
    table = derive_table(model, config)
    supported = model.supported(config.flags)
    error = model.error
    spec = {
        "model": model.name,
        "sha256": model.digest,
        "flags": [f for f in model.flag_order if f in config.flags],
        "flags_value": model.flags_value(config.flags),
        "defined_flags": sorted(model.flags_value(fs) for fs in model.flag_sets),
        "states": {s.name: s.value for s in model.states},
        "supported": list(supported),
        "initial": model.initial,
        "reset": model.reset,
        "error": error,
        "session_groups": {g: list(model.groups[g]) for g in model.session_groups},
        "directions": dict(model.session_directions),
        "arcs": [[a.src, a.dst, a.session] for a in model.arcs
                 if a.enabled(config.flags) and {a.src, a.dst} <= set(supported)],
        "table": {cur: {req: [("rejected" if e.outcome in (REJECTED, NO_PATH) else e.outcome), list(e.path)]
                        for (c, req), e in table.items() if c == cur}
                  for cur in supported},
    }
    tour = arc_tour(model, config)
    pairs = [(c, r) for (c, r), e in table.items() if e.outcome in (PATH, NOOP)]
    rejections = []
    top = max(s.value for s in model.states)
    for cur in supported:
        for (c, r), e in table.items():
            if c == cur and e.outcome in (REJECTED, NO_PATH):
                rejections.append((cur, model.state(r).value, e.reason))
        rejections.append((cur, top + 1, f"{top + 1} names no state"))
        rejections.append((cur, 2**32 - 1, "0xffffffff names no state"))
    failures = [(c, r, i, to_error) for (c, r), e in table.items() if e.outcome == PATH
                for i in range(len(e.path)) for to_error in (False, True)]
    saving_paths = _saving_paths(model, config, table)
    sequences = w_method_sequences(model, config, W_EXTRA_STATES, table)
    # Each input once as a list, shared by every sequence that holds it (the
    # suite of a large model has millions of sequences).
    as_list = {step: list(step) for step in input_alphabet(model)}
    extra = {}
    capabilities = _capabilities(model, config)
    precopy_states = _precopy_states(model, config)
    if capabilities:  # only when declared: packs of models without them stay byte-identical
        extra["capabilities"] = capabilities
    return {
        "spec": spec,
        "tour": [list(step) for step in tour.steps],
        "tour_info": {"length": tour.length, "optimum": tour.optimum, "lower_bound": tour.lower_bound,
                      "arcs": tour.arcs, "resets": tour.resets},
        "pairs": pairs,
        "rejections": rejections,
        "resets": list(supported),
        "saving_paths": saving_paths,
        "failures": failures,
        "sequences": [list(map(as_list.__getitem__, seq)) for seq in sequences],
        "fault_model": FAULT_MODEL.format(n=len(supported), m=W_EXTRA_STATES),
        "coverage": {"states": len(supported), "arcs": len(spec["arcs"]), "pairs": len(pairs)},
        "precopy_states": precopy_states,
        "precopy_paths": _precopy_paths(model, config, table, saving_paths, precopy_states),
        **extra,
    }


def _capabilities(model: Model, config: Config) -> list[dict]:
    """The optional capabilities that apply to ``config`` (their ``needs``
    flags are set), each with the supported states it is exercised in."""
    out = []
    supported = set(model.supported(config.flags))
    for cap in model.capabilities:
        if cap.name not in CAPABILITY_SUITES:
            raise ValueError(f"{located(cap.line, model.path)}: capabilities: the pack has no suite for {cap.name!r} "
                             f"(known: {', '.join(sorted(CAPABILITY_SUITES))})")
        if cap.needs <= config.flags:
            states = [s for s in cap.states if s in supported]
            if states:
                out.append({"name": cap.name, "feature": cap.feature, "states": states})
    return out


def _precopy_states(model: Model, config: Config) -> list[str]:
    """The pre-copy states: in a read (saving) session group while the device
    runs (the model's ``running`` group) -- vfio.h's PRE_COPY and PRE_COPY_P2P."""
    supported = set(model.supported(config.flags))
    saving = {s for g in model.session_groups if model.session_directions.get(g) == "read"
              for s in model.groups[g]}
    running = set(model.groups.get("running", ()))
    return [s for s in model.state_names if s in supported and s in saving and s in running]


def _stop_copy_state(model: Model, config: Config) -> str | None:
    """The stop-and-copy state: the supported state of a read (saving)
    session group outside the ``running`` group -- vfio.h's STOP_COPY, "the
    device is stopped and the internal state can be read out" -- or None
    when the model has no such state or more than one."""
    supported = set(model.supported(config.flags))
    saving = {s for g in model.session_groups if model.session_directions.get(g) == "read"
              for s in model.groups[g]}
    running = set(model.groups.get("running", ()))
    found = [s for s in model.state_names if s in supported and s in saving and s not in running]
    return found[0] if len(found) == 1 else None


def _precopy_paths(model: Model, config: Config, table, saving_paths, precopy_states) -> list[list[str]]:
    """The saving paths that start in a pre-copy state and end in the
    stop-and-copy state (:func:`_stop_copy_state`, appended when the table
    has a path to it); none when the model has no single stop-and-copy state."""
    stop_copy = _stop_copy_state(model, config)
    if stop_copy is None:
        return []
    return [p if p[-1] == stop_copy else p + [stop_copy] for p in saving_paths
            if p[0] in precopy_states
            and (p[-1] == stop_copy or table[(p[-1], stop_copy)].outcome == PATH)]


def _saving_paths(model: Model, config: Config, table) -> list[list[str]]:
    """Walks into the saving group and inside it: from the state at open, every
    maximal chain of saving-group states joined by 'keeps' arcs."""
    supported = set(model.supported(config.flags))
    saving = [g for g in model.session_groups if model.session_directions.get(g) == "read"]
    members = {s for g in saving for s in model.groups[g]} & supported
    keeps = {(a.src, a.dst) for a in model.arcs if a.enabled(config.flags) and a.session == "keeps"
             and {a.src, a.dst} <= members}
    entries = [s for s in model.state_names if s in members
               and table[(model.initial, s)].outcome == PATH]
    paths = []
    for entry in entries:
        path = [entry]
        while True:
            nxt = next((b for a, b in sorted(keeps, key=lambda k: (model.state_names.index(k[0]),
                                                                   model.state_names.index(k[1])))
                        if a == path[-1] and b not in path), None)
            if nxt is None:
                break
            path.append(nxt)
        paths.append(path)
    return paths
