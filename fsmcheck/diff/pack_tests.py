"""The generated pack's tests, and those that appear, disappear or change
expectation between two models.

Both models are compiled with the pack compiler
(:func:`fsmcheck.generate.pack.pack_files`) into memory; nothing is written.
Each module's source is read back with :mod:`ast` -- its data constants
(``SPEC``, ``PAIRS``...) with :func:`ast.literal_eval`, each test function's
``pytest.mark.parametrize`` values and ``ids`` -- to list the test ids pytest
collects (``test_pair[RUNNING->STOP]``; tests/test_diff.py checks them against
``pytest --collect-only``) and, for each, its *expectation*: what the test
asserts, computed from the module's ``SPEC``:

- ``test_pair``: the derived table entry (outcome and path);
- ``test_rejected``: EINVAL (state unchanged);
- ``test_reset``: the reset state; ``test_saving_session``: the session
  effect of each arc on the path;
- ``test_w_method``: the state after each input, run on the table;
- ``test_arc_tour`` and ``TestStateMachine`` (whose oracle is the whole
  table): the tour, or the table and arcs;
- the others: their parameters.

Tests are compared per module; a new module is compared with the old module
of its baseline flag set (:mod:`.matching`), so a module for a flag set that
only adds a flag lists what differs from the suite it extends.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..generate.pack import pack_files
from ..model.schema import Model
from .matching import Pairing

__all__ = ["PackTest", "ModuleChange", "pack_tests", "pack_changes"]


@dataclass(frozen=True)
class PackTest:
    """One collected test: its id (``test_pair[RUNNING->STOP]``) and what it expects."""

    id: str
    expectation: object


@dataclass
class ModuleChange:
    """The tests of one pack module that appear, disappear or change expectation.

    Attributes:
        module: the new module's file name (the old one's when removed).
        baseline: the old module's file name it is compared with, or None
            (the whole module is new).
        appear, disappear: test ids.
        changed: ``(test id, old expectation, new expectation)``.
    """

    module: str
    baseline: str | None
    appear: list[str] = field(default_factory=list)
    disappear: list[str] = field(default_factory=list)
    changed: list[tuple[str, object, object]] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready dict (see the README's ``fsmcheck diff --json``)."""
        return {"module": self.module, "baseline": self.baseline, "appear": self.appear,
                "disappear": self.disappear,
                "changed": [{"test": t, "old": _jsonable(a), "new": _jsonable(b)} for t, a, b in self.changed]}


def _jsonable(value):
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _constants(tree: ast.Module) -> dict:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, value = node.targets[0].id, node.value
            if isinstance(value, ast.Call) and value.args and name == "SPEC":
                value = value.args[0]
            try:
                out[name] = ast.literal_eval(value)
            except ValueError:
                continue
    return out


def _default_id(value, argname: str, index: int) -> str:
    if isinstance(value, (str, int, float, bool)):
        return str(value)
    return f"{argname}{index}"


def _parametrized(func: ast.FunctionDef, constants: dict) -> list[tuple[str, tuple]]:
    """(id suffix, parameter tuple) for each parametrization of ``func``; one
    ``("", ())`` for a plain test."""
    for deco in func.decorator_list:
        if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "pytest.mark.parametrize":
            names = [n.strip() for n in ast.literal_eval(deco.args[0]).split(",")]
            values = eval(compile(ast.Expression(deco.args[1]), "<pack>", "eval"),  # noqa: S307 - our own output
                          {"__builtins__": {}}, dict(constants))
            ids = None
            for kw in deco.keywords:
                if kw.arg == "ids":
                    ids = eval(compile(ast.Expression(kw.value), "<pack>", "eval"),  # noqa: S307
                               {"__builtins__": {"str": str}}, dict(constants))
            rows = [tuple(v) if len(names) > 1 else (v,) for v in values]
            if ids is None:
                ids = ["-".join(_default_id(x, n, i) for x, n in zip(row, names)) for i, row in enumerate(rows)]
            return [(f"[{i}]", row) for i, row in zip(ids, rows)]
    return [("", ())]


def _run_table(spec: dict, inputs: list) -> list[str]:
    """The state after each input of a W-method sequence, from ``spec``'s table."""
    names = {v: k for k, v in spec["states"].items()}
    state, out = spec["initial"], []
    for step in inputs:
        if step[0] == "reset":
            state = spec["reset"]
        else:
            requested = names.get(step[1])
            outcome, path = spec["table"].get(state, {}).get(requested, ["rejected", []])
            if outcome == "path":
                state = path[-1]
        out.append(state)
    return out


def _expectation(name: str, params: tuple, spec: dict, constants: dict):
    table = spec.get("table", {})
    if name == "test_pair":
        return table[params[0]][params[1]]
    if name == "test_rejected":
        return "EINVAL"  # the reason is a message that names the flag set, not an expectation
    if name == "test_reset":
        return [params[0], spec.get("reset")]
    if name == "test_saving_session":
        arcs = {(a, b): s for a, b, s in spec.get("arcs", [])}
        return [list(params[0]), [arcs.get(step) for step in zip(params[0], params[0][1:])]]
    if name == "test_w_method":
        return _run_table(spec, params[0])
    if name == "test_arc_tour":
        return constants.get("ARC_TOUR")
    return list(params)


def pack_tests(model: Model) -> dict[str, dict[str, PackTest]]:
    """``{module file name: {test id: PackTest}}`` of ``model``'s pack, compiled in memory.

    Raises:
        ValueError: the model is of no kind the pack compiler takes.
    """
    out = {}
    for module, source in pack_files(model).items():
        tree = ast.parse(source)
        constants = _constants(tree)
        spec = constants.get("SPEC", {})
        tests = {}
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for suffix, params in _parametrized(node, constants):
                    tid = node.name + suffix
                    tests[tid] = PackTest(tid, _expectation(node.name, params, spec, constants))
            elif (isinstance(node, ast.Assign) and len(node.targets) == 1
                  and isinstance(node.targets[0], ast.Name) and node.targets[0].id.startswith("Test")):
                tid = node.targets[0].id
                tests[tid] = PackTest(tid, [spec.get("table"), spec.get("arcs"), spec.get("supported")])
        out[module] = tests
    return out


def _module_flags(model: Model) -> dict[frozenset, str]:
    """Flag set -> module name for a v2-style pack (v1: the empty set)."""
    from ..generate.render import module_name

    if model.encoding == "enum" and model.combination is not None:
        return {c.flags: module_name(model.name, [f for f in model.flag_order if f in c.flags])
                for c in model.configs()}
    return {frozenset(): module_name(model.name, None)}


def pack_changes(old: Model, new: Model, pairings: list[Pairing]) -> list[ModuleChange]:
    """Per module, the tests that appear, disappear or change expectation;
    modules with no difference are left out."""
    a, b = pack_tests(old), pack_tests(new)
    old_mod, new_mod = _module_flags(old), _module_flags(new)
    pairs = []
    for p in pairings:
        om = old_mod.get(p.old.flags) if p.old is not None else None
        nm = new_mod.get(p.new.flags) if p.new is not None else None
        if (om, nm) not in pairs:
            pairs.append((om, nm))
    if not pairings or old.encoding == "bits" or new.encoding == "bits":
        pairs = [(next(iter(a), None), next(iter(b), None))]
    out = []
    for om, nm in pairs:
        ta = a.get(om, {}) if om else {}
        tb = b.get(nm, {}) if nm else {}
        change = ModuleChange(nm or om, om if nm else None)
        change.appear = [t for t in tb if t not in ta]
        change.disappear = [t for t in ta if t not in tb]
        change.changed = [(t, ta[t].expectation, tb[t].expectation) for t in tb
                          if t in ta and ta[t].expectation != tb[t].expectation]
        if change.appear or change.disappear or change.changed:
            out.append(change)
    return out
