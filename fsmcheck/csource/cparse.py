"""Parsing one C function with pycparser, and evaluating constants.

Kernel code uses GNU C and kernel macros pycparser does not know. Before
parsing, :func:`parse_function` declares the kernel's scalar typedefs, drops
attributes and address-space markers, and puts a ``#line`` directive before
every line so that node coordinates are lines of the original file (or of
the patch email the function came from).
"""

from __future__ import annotations

import re

from pycparser import c_ast, c_parser

try:  # pycparser 3
    from pycparser.c_parser import ParseError
except ImportError:  # pycparser 2
    from pycparser.plyparser import ParseError

from .source import CFunction, SourceError

__all__ = ["ConstantError", "evaluate", "find_all", "parse_function", "parse_expression"]

_PRELUDE = "\n".join(
    f"typedef int {name};" for name in (
        "u8", "u16", "u32", "u64", "s8", "s16", "s32", "s64", "bool", "size_t", "ssize_t",
        "loff_t", "__u8", "__u16", "__u32", "__u64", "__s32", "__s64", "gfp_t", "atomic_t",
    )
) + "\n"

_DROP = [
    (re.compile(r"__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)"), ""),
    (re.compile(r"\b(?:__user|__iomem|__rcu|__force|__must_check|__always_unused|__maybe_unused|"
                r"__init|__exit|noinline|__always_inline|inline)\b"), ""),
]


class ConstantError(ValueError):
    """An expression is not a constant fsmcheck can evaluate."""


def parse_function(fn: CFunction) -> c_ast.FuncDef:
    """Parse ``fn`` and return its pycparser ``FuncDef``.

    Raises:
        SourceError: pycparser cannot parse it; the message gives the file
            and line.
    """
    body = fn.text
    for pattern, repl in _DROP:
        body = pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)) if not repl else repl, body)
    out = [_PRELUDE]
    for number, line in zip(fn.lines, body.split("\n")):
        out.append(f'# {number} "{fn.path}"\n{line}\n')
    try:
        unit = c_parser.CParser().parse("".join(out), fn.path)
    except ParseError as exc:
        raise SourceError(f"{exc}: pycparser cannot parse {fn.name}()") from None
    for node in unit.ext:
        if isinstance(node, c_ast.FuncDef) and node.decl.name == fn.name:
            return node
    raise SourceError(f"{fn.path}:{fn.first_line}: {fn.name}() did not parse as a function")


def parse_expression(text: str) -> c_ast.Node:
    """Parse a C expression (e.g. a ``#define`` body)."""
    try:
        unit = c_parser.CParser().parse(f"int __fsmcheck_value = {text};")
    except ParseError as exc:
        raise ConstantError(f"cannot parse expression {text!r}: {exc}") from None
    return unit.ext[0].init


def evaluate(node: c_ast.Node, symbols: dict[str, int]) -> int:
    """Evaluate a constant integer expression.

    ``symbols`` maps identifiers (enum constants, macros) to values. ``~0U``
    is the 32-bit all-ones value.

    Raises:
        ConstantError: an unknown identifier or an unsupported construct.
    """
    if isinstance(node, c_ast.Constant):
        text = node.value.rstrip("uUlL")
        try:
            return int(text, 0) if not (len(text) > 1 and text[0] == "0" and text[1].isdigit()) else int(text, 8)
        except ValueError:
            raise ConstantError(f"not an integer constant: {node.value}") from None
    if isinstance(node, c_ast.ID):
        if node.name not in symbols:
            raise ConstantError(f"unknown identifier {node.name}")
        return symbols[node.name]
    if isinstance(node, c_ast.UnaryOp):
        value = evaluate(node.expr, symbols)
        ops = {"-": lambda v: -v, "+": lambda v: v, "~": lambda v: ~v & 0xFFFFFFFF, "!": lambda v: int(not v)}
        if node.op in ops:
            return ops[node.op](value)
    if isinstance(node, c_ast.BinaryOp):
        a, b = evaluate(node.left, symbols), evaluate(node.right, symbols)
        ops = {"|": a | b, "&": a & b, "^": a ^ b, "+": a + b, "-": a - b, "*": a * b,
               "<<": a << b if node.op == "<<" else 0, ">>": a >> b if node.op == ">>" else 0}
        if node.op in ops:
            return ops[node.op]
    if isinstance(node, c_ast.Cast):
        return evaluate(node.expr, symbols)
    raise ConstantError(f"unsupported constant expression {type(node).__name__}"
                        + (f" at line {node.coord.line}" if getattr(node, "coord", None) else ""))


class _Finder(c_ast.NodeVisitor):
    def __init__(self, kind):
        self.kind, self.found = kind, []

    def generic_visit(self, node):
        if isinstance(node, self.kind):
            self.found.append(node)
        for child in node:
            self.visit(child)


def find_all(node: c_ast.Node, kind) -> list:
    """Every node of type ``kind`` in the tree under ``node`` (itself included), in order."""
    finder = _Finder(kind)
    finder.visit(node)
    return finder.found
