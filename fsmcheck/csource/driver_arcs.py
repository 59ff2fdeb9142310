"""The arcs a driver's step function handles, read from its C source.

A VFIO migration driver implements one FSM arc per branch of its step
function (``mtty_step_state``, ``mlx5vf_pci_step_device_state_locked``...):
``if (cur == A && new == B) {...}``, or grouped forms such as
``(cur == A && (new == B || new == C)) || ...``. :func:`read_driver_arcs`
finds that function, expands each top-level ``if`` condition into its
(current, requested) pairs, and classifies each branch:

- whether it returns a data session: ``always`` (every non-error return is a
  file), ``never`` (every one is ``NULL``), ``maybe`` (both occur);
- which calls it makes whose result it discards although the callee returns
  an error code (an integer result such as ``int``) -- a failed step that would be reported as success (the NVMe RFC's
  STOP -> RUNNING, seed 004). Callees are looked up in the file (or patch),
  the other C files and headers of its directory, and the headers it
  includes through a kernel tree's include paths (:mod:`.includes`); a
  callee whose declaration is found nowhere is listed as ``unresolved``.

:func:`compare_arcs` sets that against the arcs the kernel's walk asks of a
driver with the given flags (derived from the model's combination table).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pycparser import c_ast

from ..semantics.combination import PATH, derive_table
from ..model.schema import Config, Model
from .cparse import ConstantError, evaluate, find_all, parse_expression, parse_function
from .includes import find_tree, included_headers
from .kernel_walk import vfio_symbols
from .source import CFunction, Source, SourceError, read_source

__all__ = ["DriverArcs", "HandledArc", "ArcComparison", "compare_arcs", "find_flags", "read_driver_arcs",
           "find_tree"]

_STATE = re.compile(r"\b(\w+)\s*==\s*VFIO_DEVICE_STATE_\w+")


@dataclass(frozen=True)
class HandledArc:
    """One arc a driver handles: ``session`` is always/never/maybe/unknown;
    ``discarded`` lists (callee, line) whose non-void result the branch drops;
    ``unresolved`` lists (callee, line) called as a statement whose declaration
    was not found (its result may be an error the branch drops)."""

    src: str
    dst: str
    line: int
    session: str
    discarded: tuple[tuple[str, int], ...] = ()
    unresolved: tuple[tuple[str, int], ...] = ()


@dataclass
class DriverArcs:
    """What :func:`read_driver_arcs` found in a driver."""

    path: str
    function: str
    line: int
    current_var: str
    requested_var: str
    arcs: list[HandledArc] = field(default_factory=list)
    tree: str | None = None


def _candidates(source: Source) -> list[CFunction]:
    scored = []
    for fn in source.functions():
        names = set(_STATE.findall(fn.text))
        if len(names) >= 2 and "&&" in fn.text:
            scored.append((len(_STATE.findall(fn.text)), fn))
    return [fn for _, fn in sorted(scored, key=lambda x: -x[0])]


def read_driver_arcs(path: str | Path, model: Model, function: str | None = None,
                     tree: str | Path | None = None) -> DriverArcs:
    """Find and analyse the step function of the driver in ``path`` (a C file
    or a patch email).

    ``tree`` is the kernel tree whose include paths resolve the driver's
    ``#include <...>`` headers (callee declarations); None finds it by walking
    up from ``path`` to the nearest directory with ``include/`` (a patch: no
    tree unless given). The tree used is kept in :attr:`DriverArcs.tree`.

    Raises:
        SourceError: no step function, or it does not parse; ``tree`` is given
            but is not a directory.
    """
    source = read_source(path)
    if function:
        fn = source.function(function)
    else:
        found = _candidates(source)
        if not found:
            raise SourceError(f"{source.path}: no step function (a function testing "
                              "`cur == VFIO_DEVICE_STATE_X && new == VFIO_DEVICE_STATE_Y`)")
        fn = found[0]
    ast = parse_function(fn)
    symbols = vfio_symbols(model)
    by_value = {s.value: s.name for s in model.states}
    params = {p.name for p in (ast.decl.type.args.params if ast.decl.type.args else []) if p.name}
    variables = set(_STATE.findall(fn.text))
    requested = [v for v in variables if v in params]
    current = [v for v in variables if v not in params]
    if len(requested) != 1 or len(current) != 1:
        current = [v for v in variables if "cur" in v] or current
        requested = [v for v in variables if v not in current]
    if len(requested) != 1 or len(current) != 1:
        raise SourceError(f"{fn.path}:{fn.first_line}: cannot tell the current from the requested state "
                          f"among {sorted(variables)} in {fn.name}()")
    cur_var, req_var = current[0], requested[0]
    if tree is not None:
        if not Path(tree).is_dir():
            raise SourceError(f"--tree {tree}: not a directory")
        kernel = Path(tree)
    else:
        kernel = None if source.patch else find_tree(path)
    branches = []
    for stmt in ast.body.block_items or []:
        if not isinstance(stmt, c_ast.If):
            continue
        pairs = _pairs(stmt.cond, cur_var, req_var, symbols, by_value)
        if pairs:
            branches.append((stmt, pairs))
    wanted = {name for stmt, _ in branches for name, _ in _statement_calls(stmt.iftrue)}
    returns_value = _return_types(source, Path(path), kernel, wanted)
    result = DriverArcs(fn.path, fn.name, fn.first_line, cur_var, req_var,
                        tree=str(kernel) if kernel is not None else None)
    for stmt, pairs in branches:
        session = _session(stmt.iftrue)
        calls = _statement_calls(stmt.iftrue)
        discarded = tuple(sorted({c for c in calls if returns_value.get(c[0]) == "error"}))
        unresolved = tuple(sorted({c for c in calls if c[0] not in returns_value}))
        for src, dst, line in pairs:
            result.arcs.append(HandledArc(src, dst, line, session, discarded, unresolved))
    return result


def _dnf(node) -> list[list[c_ast.Node]]:
    if isinstance(node, c_ast.BinaryOp) and node.op == "||":
        return _dnf(node.left) + _dnf(node.right)
    if isinstance(node, c_ast.BinaryOp) and node.op == "&&":
        return [a + b for a in _dnf(node.left) for b in _dnf(node.right)]
    return [[node]]


def _pairs(cond, cur_var, req_var, symbols, by_value):
    out = []
    for conj in _dnf(cond):
        cur, req, line = set(), set(), cond.coord.line
        for atom in conj:
            if isinstance(atom, c_ast.BinaryOp) and atom.op == "==" and isinstance(atom.left, c_ast.ID):
                try:
                    state = by_value[evaluate(atom.right, symbols)]
                except (ConstantError, KeyError):
                    continue
                if atom.left.name == cur_var:
                    cur.add(state)
                    line = atom.coord.line
                elif atom.left.name == req_var:
                    req.add(state)
        if len(cur) == 1 and len(req) == 1:
            out.append((cur.pop(), req.pop(), line))
    return out


_all = find_all


def _return_kinds(expr) -> set[str]:
    if expr is None:
        return {"none"}
    if isinstance(expr, c_ast.TernaryOp):
        return _return_kinds(expr.iftrue) | _return_kinds(expr.iffalse)
    if isinstance(expr, c_ast.ID) and expr.name == "NULL":
        return {"none"}
    if isinstance(expr, c_ast.Constant) and expr.value == "0":
        return {"none"}
    if isinstance(expr, c_ast.Cast):
        return _return_kinds(expr.expr)
    if isinstance(expr, c_ast.FuncCall) and isinstance(expr.name, c_ast.ID) and expr.name.name in (
            "ERR_PTR", "ERR_CAST"):
        return {"error"}
    return {"file"}


def _session(branch) -> str:
    kinds = set()
    for ret in _all(branch, c_ast.Return):
        kinds |= _return_kinds(ret.expr)
    kinds.discard("error")
    if kinds == {"file"}:
        return "always"
    if kinds == {"none"}:
        return "never"
    return "maybe" if kinds else "unknown"


def _statement_calls(branch) -> list[tuple[str, int]]:
    """(callee, line) of every call made as a whole statement (its result
    unused) in ``branch`` and its nested blocks."""
    statements = []
    for compound in [branch] + _all(branch, c_ast.Compound):
        items = compound.block_items if isinstance(compound, c_ast.Compound) else [compound]
        statements.extend(items or [])
    return [(stmt.name.name, stmt.coord.line) for stmt in statements
            if isinstance(stmt, c_ast.FuncCall) and isinstance(stmt.name, c_ast.ID)]


_PROTOTYPE = re.compile(r"^(?P<head>[A-Za-z_][\w \t\*]*?[\s\*])(?P<name>[A-Za-z_]\w*)\s*\(", re.MULTILINE)
_MACRO = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(?P<name>[A-Za-z_]\w*)", re.MULTILINE)


#: Return types that carry an error code (0 or -errno) a caller must not drop.
_ERROR_TYPES = re.compile(r"^(?:unsigned\s+|signed\s+)?(?:int|long|long\s+long|ssize_t|s8|s16|s32|s64|__s32|__s64)$")
_ATTRIBUTES = re.compile(r"\b(static|inline|extern|const|__always_inline|noinline|__must_check|__init|__exit|"
                         r"__cold|__pure|noinstr|notrace|asmlinkage|__weak)\b")


def _declarations(text: str, out: dict[str, str]) -> None:
    """Add the functions ``text`` declares or defines (name -> ``error`` for an
    integer result such as ``int``, ``void``, or ``other`` for pointers and
    the rest) and its macros (name -> ``macro``: no declared result)."""
    for m in _PROTOTYPE.finditer(text):
        head = " ".join(_ATTRIBUTES.sub("", m.group("head")).split())
        if not head or head in ("return", "else") or head.endswith(("=", ",")):
            continue
        kind = "void" if head == "void" else "error" if _ERROR_TYPES.match(head) else "other"
        out.setdefault(m.group("name"), kind)
    for m in _MACRO.finditer(text):
        out.setdefault(m.group("name"), "macro")


def _return_types(source: Source, path: Path, tree: Path | None, wanted: set[str]) -> dict[str, str]:
    """Function name -> result kind (see :func:`_declarations`), from the
    definitions and prototypes of the source, of its directory, and of the
    headers it includes (through ``tree``'s include paths), read until every
    name in ``wanted`` is declared."""
    out: dict[str, str] = {}
    _declarations(source.text, out)
    local = path.is_file() and not source.patch
    if local:
        for p in sorted(path.parent.glob("*.[ch]")):
            if p != path:
                _declarations(p.read_text(errors="replace"), out)
    if wanted - set(out):
        for _header, text in included_headers(source.text, path.parent if local else None, tree):
            _declarations(text, out)
            if not wanted - set(out):
                break
    return out


def find_flags(path: str | Path, model: Model) -> tuple[frozenset[str], str] | None:
    """The driver's declared ``migration_flags``, and where (``file:line``).

    Looks in ``path`` first, then in the other ``.c`` files of its directory
    (a patch: only its added C). Returns None when no assignment is found.

    Raises:
        SourceError: several assignments with different values.
    """
    source = read_source(path)
    files = [(source.path, source.text, source.lines)]
    path = Path(path)
    if not source.patch:
        files += [(str(p), p.read_text(errors="replace"), None) for p in sorted(path.parent.glob("*.c")) if p != path]
    symbols = vfio_symbols(model)
    found = []
    for name, text, lines in files:
        for m in re.finditer(r"\bmigration_flags\s*=\s*([^;]+);", text):
            try:
                value = evaluate(parse_expression(m.group(1)), symbols)
            except ConstantError:
                continue
            index = text.count("\n", 0, m.start())
            line = lines[index] if lines else index + 1
            flags = model.flags_of(value)
            found.append((flags, f"{name}:{line}"))
        if found:
            break
    values = {f for f, _ in found}
    if len(values) > 1:
        raise SourceError("several migration_flags values: " + "; ".join(
            f"{'|'.join(sorted(f))} at {w}" for f, w in found))
    return found[0] if found else None


@dataclass
class ArcComparison:
    """The driver's arcs against the arcs the walk requires for ``config``."""

    config: Config
    required: list[tuple[str, str]]
    missing: list[tuple[str, str]]
    extra: list[HandledArc]
    session_errors: list[str]
    session_notes: list[str]
    discarded: list[str]
    unresolved: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No missing arc, no session mismatch, no discarded failure."""
        return not (self.missing or self.session_errors or self.discarded)


def required_arcs(model: Model, config: Config) -> list[tuple[str, str]]:
    """The arcs the walk will ask a driver for: every step of every derived
    combination path of ``config``, in state order."""
    steps = set()
    for (cur, _req), entry in derive_table(model, config).items():
        if entry.outcome == PATH:
            steps.update(zip((cur,) + entry.path, entry.path))
    order = model.state_names
    return sorted(steps, key=lambda a: (order.index(a[0]), order.index(a[1])))


def compare_arcs(driver: DriverArcs, model: Model, config: Config) -> ArcComparison:
    """Compare a driver's handled arcs with those its flags require."""
    required = required_arcs(model, config)
    handled = {(a.src, a.dst): a for a in driver.arcs}
    missing = [a for a in required if a not in handled]
    extra = [a for key, a in handled.items() if key not in set(required)]
    effects = {(a.src, a.dst): a.session for a in model.arcs if a.enabled(config.flags)}
    errors, notes, discarded, unresolved = [], [], [], []
    for key in required:
        arc = handled.get(key)
        if arc is None:
            continue
        where = f"{driver.path}:{arc.line}"
        effect = effects.get(key, "none")
        if effect == "starts" and arc.session == "never":
            errors.append(f"{where}: {key[0]} -> {key[1]} returns no data_fd; the model says it starts a session")
        elif effect != "starts" and arc.session == "always":
            errors.append(f"{where}: {key[0]} -> {key[1]} returns a data_fd; the model says {effect!r}")
        elif arc.session in ("maybe", "unknown"):
            notes.append(f"{where}: {key[0]} -> {key[1]} {arc.session} returns a data_fd (model: {effect})")
        for callee, line in arc.discarded:
            discarded.append(f"{driver.path}:{line}: {key[0]} -> {key[1]} discards the result of {callee}(): "
                             "a failed step would be reported as success")
        for callee, line in arc.unresolved:
            unresolved.append(f"{driver.path}:{line}: {key[0]} -> {key[1]} calls {callee}() as a statement; "
                              "its declaration was not found, so a dropped error result cannot be ruled out")
    return ArcComparison(config, required, missing, extra, errors, notes, discarded, unresolved)
