"""The v1 pack: the migration region's suites, derived from ``vfio_v1.toml``."""

from __future__ import annotations

import networkx as nx

from ..semantics.graphs import accepted_values, arc_graph
from ..inputs.positions import located
from ..model.schema import Model
from .render import _data, header

__all__ = ["render_v1_module", "v1_pack_data"]

RESERVED_PATTERNS = (0x8, 0xA5A5A5A0, 0xFFFFFFF8)


def v1_pack_data(model: Model) -> dict:
    """All v1 suites' data, as plain values.

    Raises:
        ValueError: the model has not exactly one profile of declared arcs
            and one of all-requestable arcs (the v1 model's ``strict`` and
            ``lenient``); or a valid state no path of the strict profile's arcs
            reaches from the state at open (the pack could not bring a
            device there; the ``reachability`` property, when checked, fails
            for it), as ``file:line: states: message``.
    """
    strict, lenient = _strict_and_lenient(model)
    strict_graph, lenient_graph = arc_graph(model, strict), arc_graph(model, lenient)
    valid = [s for s in model.state_names if s in accepted_values(model, lenient)]
    value = {s.name: s.value for s in model.states}
    paths = nx.single_source_shortest_path(strict_graph, model.initial) if model.initial in strict_graph else {}
    reach = {}
    for state in valid:
        if state not in paths:
            raise ValueError(f"{located(model.state(state).line, model.path)}: states: {state} is a valid state but no "
                             f"path of the strict profile's arcs reaches it from {model.initial}: the pack "
                             "cannot bring a device there (add the arc, or check `reachability`)")
        reach[state] = [value[s] for s in paths[state][1:]]
    invalid = [s.value for s in model.states if s.name not in valid]
    fields = {f["name"]: {"offset": f["offset"], "width": f["width"], "access": f["access"]} for f in model.region}
    bad_access = []
    for name, f in fields.items():
        for width in (1, 2, 4, 8):
            if width != f["width"]:
                bad_access.append(("read", f["offset"], width))
        bad_access.append(("read", f["offset"] + 1, f["width"]))
        if f["access"] == "ro":
            bad_access.append(("write", f["offset"], f["width"]))
    order = model.state_names
    strict_arcs = sorted(strict_graph.edges, key=lambda e: (order.index(e[0]), order.index(e[1])))
    unspecified = sorted((e for e in lenient_graph.edges if not strict_graph.has_edge(*e)),
                         key=lambda e: (order.index(e[0]), order.index(e[1])))
    spec = {
        "model": model.name, "sha256": model.digest, "mask": model.mask,
        "states": [{"name": s.name, "value": s.value} for s in model.states],
        "values": value, "initial": model.initial, "reset": model.reset, "error": model.error,
        "fields": fields, "reach": reach,
    }
    return {
        "spec": spec,
        "invalid": [(cur, v | r) for cur in valid for v in invalid for r in (0,) + RESERVED_PATTERNS[:1]],
        "reserved": [(t, r) for t in ("STOP", "RUNNING") if t in valid for r in RESERVED_PATTERNS],
        "bad_access": bad_access,
        "arcs": strict_arcs,
        "unspecified": unspecified,
        "resets": valid + [model.error],
        "error_writes": [value[s] for s in valid],
        "coverage": {"states": len(valid) + 1, "arcs": len(strict_arcs)},
    }


def _strict_and_lenient(model: Model):
    """The configurations of the profile of declared arcs (the arcs the
    sources require: ``strict``) and of the all-requestable profile (any valid
    write: ``lenient``), told by their ``arcs`` kind, not their names.

    Raises:
        ValueError: not exactly one profile of each kind.
    """
    kinds = {"declared": [], "all-requestable": []}
    for p in model.profiles:
        kinds.setdefault(p.arcs, []).append(p.name)
    if len(kinds["declared"]) != 1 or len(kinds["all-requestable"]) != 1:
        found = ", ".join(f"{p.name} ({p.arcs})" for p in model.profiles) or "none"
        raise ValueError(f"{located(model.line_of('profiles'), model.path)}: profiles: the v1 pack needs one profile "
                         f'with arcs = "declared" and one with arcs = "all-requestable" (found: {found})')
    configs = {c.profile: c for c in model.configs()}
    return configs[kinds["declared"][0]], configs[kinds["all-requestable"][0]]


def render_v1_module(data: dict, model_path: str) -> str:
    """The source of the v1 pack module."""
    spec = data["spec"]
    doc = [
        "The v1 migration region. Suites:",
        "",
        f"- invalid writes: {len(data['invalid'])} (101b, 110b, 111b from every valid state, with and",
        "  without reserved bits): the write fails, device_state unchanged.",
        f"- reserved bits: {len(data['reserved'])} writes with bits 3-31 set: taken; whether they read back",
        "  is left open (seed 001), so a change is an advisory.",
        f"- access: {len(data['bad_access'])} accesses off a field's native width or alignment, or writes",
        "  to read-only fields: each fails.",
        f"- arcs: the {len(data['arcs'])} required and agreed transitions; {len(data['unspecified'])} "
        "transitions the sources",
        "  never discussed are recorded (user property `unspecified_arc`), not judged.",
        f"- reset from each of {len(data['resets'])} states (the error state via failure injection) -> 001b.",
        "- the error state: every write out of it fails.",
        "- saving (pre-copy, stop-and-copy) and resuming sequences, each chunk resumed with the size it",
        "  was saved with; a resumed device saved again gives equal streams; empty, truncated,",
        "  tail-less and corrupted resume data fail when RESUMING is cleared.",
    ]
    out = [header(f"{spec['model']}", model_path, spec["sha256"], doc)]
    out.append("import pytest\n\n")
    out.append("from fsmcheck.pack import v1_checks as check\n")
    out.append("from fsmcheck.pack.coverage import COVERAGE\n\n")
    out.append(f"SPEC = {_data(spec)}\n\n")
    out.append(f'COVERAGE.expected["v1"] = {_data(data["coverage"])}\n\n')
    out.append(f"# (current state, written device_state)\nINVALID = {_data(data['invalid'])}\n\n\n")
    out.append('@pytest.mark.parametrize("current, value", INVALID, ids=[f"{c}<-{v:#x}" for c, v in INVALID])\n'
               "def test_invalid_write(fsmcheck_v1, current, value):\n"
               "    check.check_invalid_write(fsmcheck_v1, SPEC, current, value)\n\n\n")
    out.append(f"RESERVED = {_data(data['reserved'])}\n\n\n")
    out.append('@pytest.mark.parametrize("target, reserved", RESERVED, ids=[f"{t}|{r:#x}" for t, r in RESERVED])\n'
               "def test_reserved_bits_preserved(fsmcheck_v1, target, reserved):\n"
               "    check.check_reserved_bits(fsmcheck_v1, SPEC, target, reserved)\n\n\n")
    out.append(f"# (operation, offset, width in bytes)\nBAD_ACCESS = {_data(data['bad_access'])}\n\n\n")
    out.append('@pytest.mark.parametrize("op, offset, width", BAD_ACCESS,\n'
               '                         ids=[f"{o}@{off}x{w}" for o, off, w in BAD_ACCESS])\n'
               "def test_bad_access(fsmcheck_v1, op, offset, width):\n"
               "    check.check_bad_access(fsmcheck_v1, SPEC, op, offset, width)\n\n\n")
    out.append(f"ARCS = {_data(data['arcs'])}\n\n\n")
    out.append('@pytest.mark.parametrize("src, dst", ARCS, ids=[f"{a}->{b}" for a, b in ARCS])\n'
               "def test_required_arc(fsmcheck_v1, src, dst):\n"
               "    check.check_arc(fsmcheck_v1, SPEC, src, dst)\n\n\n")
    out.append(f"UNSPECIFIED = {_data(data['unspecified'])}\n\n\n")
    out.append('@pytest.mark.parametrize("src, dst", UNSPECIFIED, ids=[f"{a}->{b}" for a, b in UNSPECIFIED])\n'
               "def test_unspecified_arc_recorded(fsmcheck_v1, src, dst, record_property):\n"
               "    check.check_unspecified_arc(fsmcheck_v1, SPEC, src, dst, record_property)\n\n\n")
    out.append(f"RESET_FROM = {_data(data['resets'])}\n\n\n")
    out.append('@pytest.mark.parametrize("current", RESET_FROM)\n'
               "def test_reset(fsmcheck_v1, current):\n"
               "    check.check_reset(fsmcheck_v1, SPEC, current)\n\n\n")
    out.append(f"ERROR_WRITES = {_data(data['error_writes'])}\n\n\n")
    out.append('@pytest.mark.parametrize("value", ERROR_WRITES)\n'
               "def test_error_state_left_only_by_reset(fsmcheck_v1, value):\n"
               "    check.check_error_state(fsmcheck_v1, SPEC, value)\n\n\n")
    out.append("def test_saving_and_resuming(fsmcheck_v1):\n"
               "    check.check_saving_and_resuming(fsmcheck_v1, SPEC)\n\n\n")
    out.append('@pytest.mark.parametrize("kind", ["empty", "truncated", "tail", "corrupted"])\n'
               "def test_bad_resume_data(fsmcheck_v1, kind):\n"
               "    check.check_bad_resume(fsmcheck_v1, SPEC, kind)\n")
    return "".join(out)
