"""The kernel's combination walk, read from ``vfio_mig_get_next_state()``.

:func:`read_kernel_walk` parses the function (from ``drivers/vfio/vfio_main.c``
or a patch of it) into a :class:`~fsmcheck.model.schema.Walk`:

- the next-step table: the function's two-dimensional array, with C's rule
  that a missing designated initializer is 0 (``VFIO_DEVICE_STATE_ERROR``);
- the per-state flag requirements: the one-dimensional array (``~0U`` is
  every flag);
- the skip loop: the ``while`` whose body re-reads the table; its
  conjuncts ``*next != STATE`` are the states that stop the skipping, and it
  must contain the unsupported-state test;
- the final ``return (*next != STATE) ? 0 : -EINVAL`` naming the rejecting
  states, and the ``-EINVAL`` pre-checks of the current and requested states.

State and flag values come from the model (``VFIO_DEVICE_STATE_<NAME>`` is
the state's value, ``VFIO_MIGRATION_<FLAG>`` is ``1 << bit``), cross-checked
against ``include/uapi/linux/vfio.h`` when it is found in the same tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pycparser import c_ast

from ..model.schema import ALL_FLAGS, Model, Walk
from .cparse import ConstantError, evaluate, find_all, parse_expression, parse_function
from .source import SourceError, read_source

__all__ = ["KernelWalk", "read_kernel_walk", "vfio_symbols", "WALK_FUNCTION"]

#: The kernel function that holds the walk.
WALK_FUNCTION = "vfio_mig_get_next_state"


@dataclass
class KernelWalk:
    """A walk read from C, with the lines its parts came from.

    Attributes:
        walk: the walk, ready to replace a model's ``[walk]``.
        path: the C file (or patch) read.
        function_line: line of the function's definition.
        entry_lines: (current, requested) -> line of that table entry; pairs
            left to C's zero default map to the line of the table.
        table_line, loop_line: lines of the table and of the skip loop.
        notes: facts worth a reviewer's eye (defaulted entries, missing rows,
            header mismatches).
    """

    walk: Walk
    path: str
    function_line: int
    entry_lines: dict = field(default_factory=dict)
    table_line: int = 0
    loop_line: int = 0
    notes: list = field(default_factory=list)

    def line_of(self, pair) -> int:
        return self.entry_lines.get(tuple(pair), self.table_line)


def vfio_symbols(model: Model) -> dict[str, int]:
    """``VFIO_DEVICE_STATE_*`` and ``VFIO_MIGRATION_*`` values from the model."""
    symbols = {f"VFIO_DEVICE_STATE_{s.name}": s.value for s in model.states}
    symbols.update({f"VFIO_MIGRATION_{f}": 1 << bit for f, bit in model.flag_bits.items()})
    symbols["VFIO_DEVICE_STATE_NR"] = max(s.value for s in model.states) + 1
    return symbols


def _header_notes(path: Path, symbols: dict[str, int]) -> list[str]:
    for parent in path.resolve().parents:
        header = parent / "include" / "uapi" / "linux" / "vfio.h"
        if header.is_file():
            break
    else:
        return []
    text = header.read_text(errors="replace")
    notes = []
    for name, value in re.findall(r"^\s*(VFIO_DEVICE_STATE_\w+)\s*=\s*(\d+)\s*,", text, re.MULTILINE):
        if name in symbols and symbols[name] != int(value):
            notes.append(f"{header}: {name} = {value}, the model says {symbols[name]}")
    for name, body in re.findall(r"^#define\s+(VFIO_MIGRATION_\w+)\s+(.+?)\s*$", text, re.MULTILINE):
        try:
            value = evaluate(parse_expression(body), {})
        except ConstantError:
            continue
        if name in symbols and symbols[name] != value:
            notes.append(f"{header}: {name} = {value}, the model says {symbols[name]}")
    return notes


def read_kernel_walk(path: str | Path, model: Model, function: str = WALK_FUNCTION) -> KernelWalk:
    """Parse the walk in ``function`` of C file (or patch) ``path``.

    Raises:
        SourceError: the function is missing, does not parse, or lacks a
            part of the walk (the message says which, with its line).
    """
    source = read_source(path)
    fn = source.function(function)
    tree = parse_function(fn)
    symbols = vfio_symbols(model)
    by_value = {s.value: s.name for s in model.states}
    where = f"{fn.path}:{fn.first_line}"
    params = [p.name for p in (tree.decl.type.args.params if tree.decl.type.args else [])]
    if len(params) < 4:
        raise SourceError(f"{where}: {function}() should take (device, current, requested, next)")
    cur_name, req_name, next_name = params[1], params[2], params[3]

    decls = _local_arrays(tree)
    local_enums = _local_enum_values(tree, symbols)
    symbols = {**symbols, **local_enums}
    table_decl = next((d for d in decls if _dims(d) == 2), None)
    flags_decl = next((d for d in decls if _dims(d) == 1), None)
    if table_decl is None or flags_decl is None:
        raise SourceError(f"{where}: expected a 2-D next-step table and a 1-D state flags table")
    notes = _header_notes(Path(path), vfio_symbols(model))
    states = model.state_names
    nxt, entry_lines = {}, {}
    rows = _designated(table_decl.init, symbols, f"{fn.path}:{table_decl.coord.line}")
    for cur in states:
        value = symbols[f"VFIO_DEVICE_STATE_{cur}"]
        row_node = rows.get(value)
        if row_node is None:
            notes.append(f"{fn.path}:{table_decl.coord.line}: no row for {cur}: every entry is 0 "
                         f"({by_value.get(0, '0')})")
            cells = {}
        else:
            cells = _designated(row_node, symbols, f"{fn.path}:{table_decl.coord.line}")
        for req in states:
            cell = cells.get(symbols[f"VFIO_DEVICE_STATE_{req}"])
            if cell is None:
                if row_node is not None:
                    notes.append(f"{fn.path}:{row_node.coord.line if row_node.coord else table_decl.coord.line}: "
                                 f"no entry for {cur} -> {req}: it is 0 ({by_value.get(0, '0')})")
                nxt[(cur, req)] = by_value[0]
                continue
            value = evaluate(cell, symbols)
            if value not in by_value:
                raise SourceError(f"{fn.path}:{cell.coord.line}: entry {cur} -> {req} is {value}, not a state")
            nxt[(cur, req)] = by_value[value]
            entry_lines[(cur, req)] = cell.coord.line
    requires = {}
    flag_cells = _designated(flags_decl.init, symbols, f"{fn.path}:{flags_decl.coord.line}")
    all_bits = model.flags_value(model.flag_bits)
    for s in states:
        cell = flag_cells.get(symbols[f"VFIO_DEVICE_STATE_{s}"])
        value = evaluate(cell, symbols) if cell is not None else 0
        if value & ~all_bits:
            requires[s] = frozenset({ALL_FLAGS})
        else:
            requires[s] = model.flags_of(value)

    loop = _skip_loop(tree, table_decl.name)
    if loop is None:
        raise SourceError(f"{where}: no skip loop (a while loop that re-reads {table_decl.name})")
    exits, has_flag_test = set(), False
    for term in _conjuncts(loop.cond):
        if isinstance(term, c_ast.BinaryOp) and term.op == "!=" and _is_deref(term.left, next_name):
            exits.add(by_value[evaluate(term.right, symbols)])
        elif flags_decl.name in _identifiers(term):
            has_flag_test = True
        else:
            raise SourceError(f"{fn.path}:{term.coord.line}: skip-loop condition term not understood")
    if not has_flag_test:
        raise SourceError(f"{fn.path}:{loop.coord.line}: the skip loop does not test {flags_decl.name}")
    reject = _rejecting_states(tree, next_name, symbols, by_value)
    checks = _prechecks(tree, flags_decl.name)
    walk = Walk(next=nxt, requires=requires, exits=frozenset(exits), reject=frozenset(reject),
                check_current=cur_name in checks, check_requested=req_name in checks,
                source=f"{fn.path}: {function}()", line=fn.first_line)
    return KernelWalk(walk, fn.path, fn.first_line, entry_lines, table_decl.coord.line,
                      loop.coord.line, notes)


_all = find_all


def _local_arrays(tree):
    return [d for d in _all(tree.body, c_ast.Decl) if isinstance(d.type, c_ast.ArrayDecl) and d.init is not None]


def _dims(decl) -> int:
    n, t = 0, decl.type
    while isinstance(t, c_ast.ArrayDecl):
        n, t = n + 1, t.type
    return n


def _local_enum_values(tree, symbols) -> dict[str, int]:
    out = {}
    for enum in _all(tree.body, c_ast.Enum):
        if enum.values is None:
            continue
        value = -1
        for item in enum.values.enumerators:
            value = evaluate(item.value, {**symbols, **out}) if item.value is not None else value + 1
            out[item.name] = value
    return out


def _designated(init, symbols, where) -> dict[int, c_ast.Node]:
    """{index: value node} of a designated initializer list."""
    if not isinstance(init, c_ast.InitList):
        raise SourceError(f"{where}: expected an initializer list")
    out, position = {}, 0
    for item in init.exprs:
        if isinstance(item, c_ast.NamedInitializer):
            designator = item.name[0]
            # pycparser >= 3.1 wraps "[index]" in an ArrayDesignator node.
            designator = getattr(designator, "expr", designator) if type(designator).__name__ == \
                "ArrayDesignator" else designator
            position = evaluate(designator, symbols)
            out[position] = item.expr
        else:
            out[position] = item
        position += 1
    return out


def _skip_loop(tree, table_name):
    for loop in _all(tree.body, c_ast.While):
        if table_name in _identifiers(loop.stmt):
            return loop
    return None


def _conjuncts(node):
    if isinstance(node, c_ast.BinaryOp) and node.op == "&&":
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _identifiers(node) -> set[str]:
    return {n.name for n in _all(node, c_ast.ID)} | ({node.name} if isinstance(node, c_ast.ID) else set())


def _is_deref(node, name) -> bool:
    return isinstance(node, c_ast.UnaryOp) and node.op == "*" and isinstance(node.expr, c_ast.ID) \
        and node.expr.name == name


def _is_einval(node) -> bool:
    return isinstance(node, c_ast.UnaryOp) and node.op == "-" and isinstance(node.expr, c_ast.ID) \
        and node.expr.name == "EINVAL"


def _rejecting_states(tree, next_name, symbols, by_value) -> set[str]:
    """States X such that the last return fails when ``*next == X``."""
    returns = [s for s in tree.body.block_items or [] if isinstance(s, c_ast.Return)]
    if not returns:
        return set()
    expr = returns[-1].expr
    if isinstance(expr, c_ast.TernaryOp) and isinstance(expr.cond, c_ast.BinaryOp):
        cond = expr.cond
        if _is_deref(cond.left, next_name):
            state = by_value[evaluate(cond.right, symbols)]
            ok_when_true = isinstance(expr.iftrue, c_ast.Constant) and expr.iftrue.value == "0"
            if cond.op == "!=" and ok_when_true and _is_einval(expr.iffalse):
                return {state}
            if cond.op == "==" and _is_einval(expr.iftrue):
                return {state}
    return set()


def _prechecks(tree, flags_table) -> set[str]:
    """Names of the variables whose flags an ``if (...) return -EINVAL;`` checks."""
    checked = set()
    for stmt in tree.body.block_items or []:
        if not isinstance(stmt, c_ast.If):
            continue
        body = stmt.iftrue
        ret = body if isinstance(body, c_ast.Return) else (
            body.block_items[0] if isinstance(body, c_ast.Compound) and body.block_items else None)
        if not (isinstance(ret, c_ast.Return) and _is_einval(ret.expr)):
            continue
        for ref in _all(stmt.cond, c_ast.ArrayRef):
            if isinstance(ref.name, c_ast.ID) and ref.name.name == flags_table and isinstance(ref.subscript, c_ast.ID):
                checked.add(ref.subscript.name)
    return checked
