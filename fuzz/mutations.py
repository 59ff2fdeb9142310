"""Hypothesis strategies for malformed model files: mutations of the shipped
models, as a new user's mistakes (and a fuzzer's) would make them.

:func:`mutated_models` draws a shipped model and applies 1-4 mutations:
deleting, duplicating, swapping and truncating lines; replacing values with
numbers (negative, huge), odd strings (NUL, 5,000 characters, U+2028),
arrays and inline tables; deep nesting of arrays, inline tables and
validity-predicate expressions; inserting single characters anywhere; and
line separators TOML allows in comments (U+2028, U+2029, U+0085).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import strategies as st

__all__ = ["SHIPPED", "mutated_models"]

ROOT = Path(__file__).resolve().parent.parent
#: The models mutations start from: the two shipped models and the test toy.
SHIPPED = {p.name: p.read_text(encoding="utf-8")
           for p in (ROOT / "models" / "vfio_v1.toml", ROOT / "models" / "vfio_v2.toml",
                     ROOT / "tests" / "models" / "door.toml")}

_VALUE = re.compile(r'(=\s*)("(?:[^"\\\n]|\\.)*"|-?\d[\w.]*|true|false|\[[^\n]*\]|\{[^\n]*\})')
_CHARS = st.sampled_from(list("[]{}=\"',.#\\\n-0xs*") + ["\u2028", "\u2029", "\u0085", "\x00", "\t", "\r", "\ufeff"])
_ODD_VALUES = st.sampled_from([
    "-1", "-5", "64", "99999999999999999999", "0x" + "f" * 40, "-0x1", "1.5", "nan", "inf", "true",
    '""', json.dumps("a\x00b"), json.dumps("x" * 5000), json.dumps("\u2028"), '"[/]"', '"[red]"',
    '["STOP"]', '{ a = "STOP" }', "[]", "{}", "[[1]]", '"s"', "1979-05-27", '"*"',
])


def _deep(draw) -> str:
    n = draw(st.sampled_from([50, 99, 101, 300, 1000, 5000]))
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return "[" * n + "1" + "]" * n
    if kind == 1:
        return "{ a = " * n + "1" + " }" * n
    if kind == 2:
        return json.dumps("(" * n + "s" + ")" * n)
    if kind == 3:
        return json.dumps("not " * n + "s")
    return json.dumps(" + ".join(["s"] * n) + " == 0")


@st.composite
def _mutate(draw, text: str) -> str:
    lines = text.split("\n")
    op = draw(st.integers(0, 10))
    i = draw(st.integers(0, max(len(lines) - 1, 0)))
    if op == 0:
        del lines[i]
    elif op == 1:
        lines.insert(i, lines[i])
    elif op == 2:
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif op == 3:
        return text[:draw(st.integers(0, len(text)))]
    elif op in (4, 5, 6):
        candidates = [k for k, line in enumerate(lines) if _VALUE.search(line)]
        if candidates:
            k = draw(st.sampled_from(candidates))
            matches = list(_VALUE.finditer(lines[k]))
            m = draw(st.sampled_from(matches))
            new = _deep(draw) if op == 6 else draw(_ODD_VALUES)
            lines[k] = lines[k][:m.start(2)] + new + lines[k][m.end(2):]
    elif op == 7:
        pos = draw(st.integers(0, len(text)))
        return text[:pos] + draw(_CHARS) + text[pos:]
    elif op == 8:
        # a line separator inside a comment: TOML allows it, lines stay as they were
        comments = [k for k, line in enumerate(lines) if "#" in line]
        if comments:
            k = draw(st.sampled_from(comments))
            lines[k] += draw(st.sampled_from(["\u2028", "\u2029", "\u0085"])) + " more"
    elif op == 9:
        lines.insert(i, draw(st.sampled_from([
            "[[arcs]]", "[walk.next]", "[encoding]", "bits = { X = -1 }", "mask = -1",
            'model = "vfio_v1.toml\\u0000"', 'model = "' + "y" * 5000 + '"', "[correspondence]",
            'map = { STOP = "NOPE" }', 'profile = "nope"', "STOP = { STOP = [\"STOP\"] }",
            '[[arcs]]\nfrom = "RUNNING"\nto = "STOP"\nsession = "starts"'])))
    else:
        lines[i] = lines[i].replace("=", draw(st.sampled_from(["==", "", "= =", "=["])), 1)
    return "\n".join(lines)


@st.composite
def mutated_models(draw) -> tuple[str, str]:
    """``(shipped file name, mutated text)``."""
    name = draw(st.sampled_from(sorted(SHIPPED)))
    text = SHIPPED[name]
    for _ in range(draw(st.integers(1, 4))):
        text = draw(_mutate(text))
    return name, text
