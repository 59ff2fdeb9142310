"""Which pack tests can kill a violation of which rule, read from the code.

A check in :mod:`fsmcheck.pack.v2_checks` (or ``v1_checks``,
``v2_machine``) fails a device by raising a
:class:`~fsmcheck.pack.harness.ProtocolViolation` that cites ``RULES[key]``;
it records an advisory by passing ``RULES[key]`` to ``advise``. This module
reads those citations from the source with :mod:`ast` -- directly, through
helper functions (a helper's rule parameter is bound at its call sites, or
by its default) and through conditional keys (``RULES["a" if c else "b"]``)
-- and maps them onto the test functions of a generated pack (each calls
one ``check.check_*`` function, or builds the state machine). Nothing is
listed by hand, so the list cannot drift from the checks.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from pathlib import Path

from ..inputs import InputError, read_text

__all__ = ["Citations", "cited_by_checks", "pack_citations"]


@dataclass
class _Function:
    node: ast.AST
    params: list[str]
    defaults: dict[str, ast.AST]
    kills: set = field(default_factory=set)
    advises: set = field(default_factory=set)
    rule_params: set = field(default_factory=set)
    calls: list = field(default_factory=list)


def _strings(node) -> set[str]:
    """String constants an expression can evaluate to (constants and both
    branches of conditional expressions)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body) | _strings(node.orelse)
    return set()


def _names(node) -> set[str]:
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.IfExp):
        return _names(node.body) | _names(node.orelse)
    return set()


def _functions(tree: ast.Module) -> dict[str, _Function]:
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            positional = args.posonlyargs + args.args
            defaults = dict(zip([a.arg for a in positional][len(positional) - len(args.defaults):], args.defaults))
            defaults.update({a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None})
            out[node.name] = _Function(node, params, defaults)
    return out


def _in_advise(parents, node) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "advise":
            return True
    return False


def cited_by_checks(modules) -> dict[str, tuple[frozenset, frozenset]]:
    """``{function name: (rule keys it can fail on, rule keys it advises on)}``
    for the top-level functions of ``modules`` (imported modules; their
    source is parsed), calls between them followed."""
    funcs: dict[str, _Function] = {}
    for module in modules:
        tree = ast.parse(inspect.getsource(module))
        parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
        found = _functions(tree)
        for fn in found.values():
            for node in ast.walk(fn.node):
                if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "RULES":
                    target = fn.advises if _in_advise(parents, node) else fn.kills
                    target |= _strings(node.slice)
                    fn.rule_params |= _names(node.slice) & set(fn.params)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                    fn.calls.append((node.func.id, node))
        funcs.update(found)
    changed = True
    while changed:  # a parameter passed on as another function's rule parameter is one too
        changed = False
        for fn in funcs.values():
            for name, call in fn.calls:
                callee = funcs.get(name)
                if callee is None:
                    continue
                for param, arg in _bound(callee, call).items():
                    if param in callee.rule_params and _names(arg) & set(fn.params) - fn.rule_params:
                        fn.rule_params |= _names(arg) & set(fn.params)
                        changed = True
    memo: dict[str, tuple[set, set]] = {}

    def resolve(name: str, stack=()) -> tuple[set, set]:
        if name in memo:
            return memo[name]
        fn = funcs[name]
        kills, advises = set(fn.kills), set(fn.advises)
        for callee_name, call in fn.calls:
            callee = funcs.get(callee_name)
            if callee is None or callee_name in stack:
                continue
            k, a = resolve(callee_name, stack + (name,))
            kills |= k
            advises |= a
            bound = _bound(callee, call)
            for param in callee.rule_params:
                arg = bound.get(param, callee.defaults.get(param))
                if arg is not None:
                    kills |= _strings(arg)
        memo[name] = (kills, advises)
        return memo[name]

    return {name: tuple(map(frozenset, resolve(name))) for name in funcs}


def _bound(callee: _Function, call: ast.Call) -> dict[str, ast.AST]:
    bound = dict(zip(callee.params, call.args))
    bound.update({kw.arg: kw.value for kw in call.keywords if kw.arg})
    return bound


@dataclass(frozen=True)
class Citations:
    """Per protocol, rule key -> test ids (``module::function``) that can fail
    on it (``kills``) or report an advisory on it (``advises``)."""

    kills: dict
    advises: dict


def _check_modules(protocol: str):
    if protocol == "v2":
        from ..pack import v2_checks, v2_machine

        return [v2_checks, v2_machine]
    from ..pack import v1_checks

    return [v1_checks]


def _parse_module(path, text: str) -> ast.Module:
    """``ast.parse`` of a pack module.

    Raises:
        InputError: the file is not Python (a syntax error at its line; a NUL
            byte; nesting too deep for the parser).
    """
    try:
        return ast.parse(text, filename=str(path))
    except SyntaxError as exc:
        raise InputError.at(str(path), exc.lineno or 1, "<python>", f"not Python: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InputError.at(str(path), 1, "<python>", f"not Python: {exc or type(exc).__name__}") from None


def pack_citations(pack) -> Citations:
    """Map every test function of a generated pack onto the rules its check
    cites. ``pack`` is the pack's directory (its ``test_*.py`` are read) or
    ``{module file name: source}`` (:func:`fsmcheck.generate.pack.pack_files`).
    A module's protocol is v1 when it imports ``v1_checks``.

    Raises:
        InputError: a module that cannot be read (not UTF-8, too large) or
            is not Python, at its line.
    """
    cited = {p: cited_by_checks(_check_modules(p)) for p in ("v2", "v1")}
    kills: dict = {}
    advises: dict = {}
    if isinstance(pack, dict):
        modules = sorted(pack.items())
    else:
        modules = [(path, read_text(path).text) for path in sorted(Path(pack).glob("test_*.py"))]
    for path, text in modules:
        name = Path(path).name
        protocol = "v1" if "v1_checks" in text else "v2"
        table = cited[protocol]
        for node in _parse_module(path, text).body:
            targets = []
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                targets = [(node.name, n.func.attr) for n in ast.walk(node) if isinstance(n, ast.Call)
                           and isinstance(n.func, ast.Attribute) and n.func.attr in table]
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and \
                    isinstance(node.value.func, ast.Name) and node.value.func.id in table:
                targets = [(node.targets[0].id, node.value.func.id)]
            for test, check in targets:
                test_id = f"{name}::{test}"
                k, a = table[check]
                for key in k:
                    kills.setdefault((protocol, key), []).append(test_id)
                for key in a:
                    advises.setdefault((protocol, key), []).append(test_id)
    return Citations(kills, advises)
