"""Validity predicates over a fixed-width ``device_state``.

A bit-encoded model states which requested values are valid as an expression
in one variable ``s``, the requested ``device_state`` (an unsigned integer of
the model's width), for example the v1 header's
``VFIO_DEVICE_STATE_VALID()`` (seed 000)::

    (s & 0x4) == 0 or (s & 0x7) == 0x4

The language is a small, safe subset of Python expression syntax: integer
literals, ``s``, ``& | ^ ~ << >> + -``, comparisons (unsigned), ``and``,
``or``, ``not`` and ``A if C else B``. :func:`parse_predicate` checks it and
returns a :class:`Predicate` that evaluates on Python integers and compiles to
a z3 bit-vector formula, so both engines read the same rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

__all__ = ["Predicate", "PredicateError", "parse_predicate"]

#: Deepest expression tree :func:`parse_predicate` accepts (a nesting of
#: operators and parentheses); deeper text is a :class:`PredicateError`, so
#: no recursive walk here or in z3 can exhaust the interpreter's stack.
MAX_DEPTH = 64

_ARITH = {
    ast.BitAnd: lambda a, b: a & b,
    ast.BitOr: lambda a, b: a | b,
    ast.BitXor: lambda a, b: a ^ b,
    # Operands are at most 64 bits wide and results are masked to the width,
    # so a shift by 64 or more is 0 (as in z3's bvshl), never a huge integer.
    ast.LShift: lambda a, b: a << b if b < 64 else 0,
    ast.RShift: lambda a, b: a >> b,
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
}
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


class PredicateError(ValueError):
    """Raised by :func:`parse_predicate` for text outside the language."""


@dataclass(frozen=True)
class Predicate:
    """A parsed validity predicate over ``s`` of ``width`` bits.

    Attributes:
        text: the source text.
        width: bit width of ``s`` (1..64).
        support: the bits of ``s`` the value can depend on, as a mask. When
            ``s`` is only read through ``s & CONST`` it is the union of the
            constants; any other use of ``s`` makes it every bit.
    """

    text: str
    width: int
    support: int
    _tree: ast.expr = field(compare=False)

    def __call__(self, value: int) -> bool:
        """Evaluate on an integer ``value`` (taken modulo ``2**width``)."""
        mask = (1 << self.width) - 1
        return bool(_to_bool(_eval(self._tree, value & mask, mask)))

    def to_z3(self, s):
        """Return a z3 ``BoolRef`` for the predicate on bit-vector ``s``.

        ``s`` must be a z3 ``BitVecRef`` of :attr:`width` bits.
        """
        import z3

        out = _z3(self._tree, s, z3)
        return out if z3.is_bool(out) else out != 0


def parse_predicate(text: str, width: int) -> Predicate:
    """Parse ``text`` as a predicate over ``s`` of ``width`` bits.

    Raises:
        PredicateError: on syntax errors, unknown names, calls, attribute
            access or any construct outside the language; the message names
            the construct. Also for text nested deeper than
            :data:`MAX_DEPTH` or too large to parse.
    """
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError as exc:
        raise PredicateError(f"syntax error in predicate: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise PredicateError(f"predicate too deeply nested to parse (limit {MAX_DEPTH} levels)") from None
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise PredicateError(f"predicate nested {depth} levels deep (limit {MAX_DEPTH})")
    _check(tree)
    full = (1 << width) - 1
    return Predicate(text=text, width=width, support=_support(tree, full) & full, _tree=tree)


def _depth(tree: ast.AST) -> int:
    """Height of ``tree``, computed without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _check(node: ast.AST) -> None:
    if isinstance(node, ast.Name):
        if node.id != "s":
            raise PredicateError(f"unknown name {node.id!r}: the only variable is s")
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, int) or isinstance(node.value, bool) or node.value < 0:
            raise PredicateError(f"constant {node.value!r}: only non-negative integers")
    elif isinstance(node, ast.BinOp):
        if type(node.op) not in _ARITH:
            raise PredicateError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.left)
        _check(node.right)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.Invert, ast.Not)):
            raise PredicateError(f"operator {type(node.op).__name__} is not allowed")
        _check(node.operand)
    elif isinstance(node, ast.BoolOp):
        for value in node.values:
            _check(value)
    elif isinstance(node, ast.Compare):
        for op in node.ops:
            if not isinstance(op, _COMPARE):
                raise PredicateError(f"comparison {type(op).__name__} is not allowed")
        _check(node.left)
        for comparator in node.comparators:
            _check(comparator)
    elif isinstance(node, ast.IfExp):
        _check(node.test)
        _check(node.body)
        _check(node.orelse)
    else:
        raise PredicateError(f"{type(node).__name__} is not allowed in a predicate")


def _support(node: ast.AST, full: int) -> int:
    if isinstance(node, ast.Name):
        return full
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        for a, b in ((node.left, node.right), (node.right, node.left)):
            if isinstance(a, ast.Name) and isinstance(b, ast.Constant):
                return b.value
    return _children_support(node, full)


def _children_support(node: ast.AST, full: int) -> int:
    out = 0
    for child in ast.iter_child_nodes(node):
        out |= _support(child, full)
    return out


def _to_bool(value) -> bool:
    return value if isinstance(value, bool) else value != 0


def _eval(node: ast.AST, s: int, mask: int):
    if isinstance(node, ast.Name):
        return s
    if isinstance(node, ast.Constant):
        return node.value & mask
    if isinstance(node, ast.BinOp):
        return _ARITH[type(node.op)](_eval(node.left, s, mask), _eval(node.right, s, mask)) & mask
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, s, mask)
        return (not _to_bool(value)) if isinstance(node.op, ast.Not) else (~value & mask)
    if isinstance(node, ast.BoolOp):
        values = (_to_bool(_eval(v, s, mask)) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, s, mask)
        for op, comp in zip(node.ops, node.comparators):
            right = _eval(comp, s, mask)
            if not _compare(op, left, right):
                return False
            left = right
        return True
    return _eval(node.body if _to_bool(_eval(node.test, s, mask)) else node.orelse, s, mask)


def _compare(op, a, b) -> bool:
    return {
        ast.Eq: a == b, ast.NotEq: a != b, ast.Lt: a < b,
        ast.LtE: a <= b, ast.Gt: a > b, ast.GtE: a >= b,
    }[type(op)]


def _z3(node: ast.AST, s, z3):
    width = s.size()

    def bv(value):
        return z3.If(value, z3.BitVecVal(1, width), z3.BitVecVal(0, width)) if z3.is_bool(value) else value

    def boolean(value):
        return value if z3.is_bool(value) else value != 0

    if isinstance(node, ast.Name):
        return s
    if isinstance(node, ast.Constant):
        return z3.BitVecVal(node.value, width)
    if isinstance(node, ast.BinOp):
        a, b = bv(_z3(node.left, s, z3)), bv(_z3(node.right, s, z3))
        if isinstance(node.op, ast.RShift):
            return z3.LShR(a, b)
        if isinstance(node.op, ast.LShift):
            return a << b  # z3's bvshl: a shift by the width or more is 0, as _ARITH's
        return _ARITH[type(node.op)](a, b)
    if isinstance(node, ast.UnaryOp):
        value = _z3(node.operand, s, z3)
        return z3.Not(boolean(value)) if isinstance(node.op, ast.Not) else ~bv(value)
    if isinstance(node, ast.BoolOp):
        values = [boolean(_z3(v, s, z3)) for v in node.values]
        return z3.And(*values) if isinstance(node.op, ast.And) else z3.Or(*values)
    if isinstance(node, ast.Compare):
        parts, left = [], bv(_z3(node.left, s, z3))
        for op, comp in zip(node.ops, node.comparators):
            right = bv(_z3(comp, s, z3))
            parts.append({
                ast.Eq: lambda: left == right, ast.NotEq: lambda: left != right,
                ast.Lt: lambda: z3.ULT(left, right), ast.LtE: lambda: z3.ULE(left, right),
                ast.Gt: lambda: z3.UGT(left, right), ast.GtE: lambda: z3.UGE(left, right),
            }[type(op)]())
            left = right
        return z3.And(*parts)
    test = boolean(_z3(node.test, s, z3))
    body, orelse = _z3(node.body, s, z3), _z3(node.orelse, s, z3)
    if z3.is_bool(body) or z3.is_bool(orelse):
        return z3.If(test, boolean(body), boolean(orelse))
    return z3.If(test, body, orelse)
