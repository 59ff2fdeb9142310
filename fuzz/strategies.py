"""Hypothesis strategies for valid fsmcheck models, written as TOML files.

:func:`model_files` draws a random *valid* model (the loader accepts it) and
returns its files: ``{"m.toml": text}`` plus, when it has a
``[correspondence]``, the other model ``{"other.toml": text}``. It covers what
the engines must agree on:

- enum sorts and bit encodings (a mask of 1-3 bits anywhere in the low 8,
  widths 3..32, validity predicates that match ``requestable``, that do not,
  and that read reserved bits);
- feature flags, flag sets, arcs per flag set (duplicate arcs for one pair
  with the same effect), blocked pairs;
- session groups with effects that are right and wrong, a combination rule
  with and without ``within_group``;
- profiles: ``declared`` with and without tags, ``all-requestable``;
- walks (random next tables: loops, rejects, exits);
- a correspondence to a second random model;
- odd state names: ``""``, rich markup (``[/]``, ``[red]``), emoji codes
  (``:100:``), names z3 might print alike (``s0``, ``<null>``), quotes,
  backslashes, dots, non-ASCII.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

__all__ = ["chain_model", "model_files", "scale_model", "ODD_NAMES"]

#: Names that broke printing or the z3 encoding before (issue 13).
ODD_NAMES = ["", "[/]", "[red]", ":100:", "s0", "s1", "<null>", "a b", "\u00fc", "\\", '"', "x.y", "*",
             "STOP", "'", "#", "=", "\u2028"]

FLAGS = ["F0", "F1", "F2"]
EFFECTS = ["starts", "keeps", "ends", "none"]

_NAME_TEXT = st.text(st.characters(blacklist_categories=("Cs",), max_codepoint=0x2FFF), max_size=6)


def _q(value) -> str:
    """A TOML value (JSON strings and arrays of strings are TOML too)."""
    return json.dumps(value)


def _names(draw, n: int) -> list[str]:
    pool = st.one_of(st.sampled_from(ODD_NAMES), _NAME_TEXT, st.sampled_from([f"S{i}" for i in range(8)]))
    return draw(st.lists(pool, min_size=n, max_size=n, unique=True))


@st.composite
def _model(draw, *, name: str = "m"):
    """``(TOML lines, state names, profile names)`` of one valid model called
    ``name`` (without a correspondence; :func:`model_files` adds one)."""
    bits = draw(st.booleans())
    lines = ["format = 1", "[model]", f"name = {_q(name)}", f'encoding = "{"bits" if bits else "enum"}"']
    if bits:
        width = draw(st.sampled_from([3, 4, 5, 8, 16, 32]))
        positions = sorted(draw(st.lists(st.integers(0, min(width, 8) - 1), min_size=1, max_size=3, unique=True)))
        mask = sum(1 << p for p in positions)
        values = sorted({sum(((v >> i) & 1) << p for i, p in enumerate(positions)) for v in range(1 << len(positions))})
        flags, flag_sets, always = [], [[]], []
    else:
        width = draw(st.sampled_from([4, 8, 32]))
        n = draw(st.integers(2, 6))
        values = list(range(n))
        flags = FLAGS[:draw(st.integers(0, 3))]
        always = draw(st.lists(st.sampled_from(flags), unique=True, max_size=1)) if flags else []
        flag_sets = draw(st.lists(st.lists(st.sampled_from(flags), unique=True).map(lambda s, a=always: sorted(set(s) | set(a))),
                                  min_size=1, max_size=3, unique_by=tuple)) if flags else [[]]
    lines.append(f"width = {width}")
    n = len(values)
    names = _names(draw, n)
    has_error = draw(st.booleans()) and n > 2
    error = names[-1] if has_error else None
    requestable = {s: draw(st.booleans()) if s not in (names[0], error) else s != error for s in names}
    if bits:
        # a predicate written from `requestable`, or from another set (validity fails), possibly also
        # reading a reserved bit (networkx cannot decide validity then)
        chosen = requestable if draw(st.booleans()) else {s: draw(st.booleans()) for s in names}
        ok = [v for s, v in zip(names, values) if chosen[s]] or [values[0]]
        text = " or ".join(f"(s & {mask:#x}) == {v:#x}" for v in ok)
        reserved = [b for b in range(min(width, 8)) if not (mask >> b) & 1]
        if reserved and draw(st.integers(0, 4)) == 0:
            text = f"((s & {1 << draw(st.sampled_from(reserved)):#x}) == 0) and ({text})"
        lines += ["[encoding]", f"mask = {mask:#x}", f"valid = {_q(text)}"]
    needs = {s: ([] if s in (names[0], error) or not flags else
                 draw(st.lists(st.sampled_from(flags), unique=True, max_size=2))) for s in names}
    if flags:
        lines += ["[flags]", "bits = { " + ", ".join(f"{f} = {i}" for i, f in enumerate(flags)) + " }",
                  f"always = {_q(always)}", f"sets = {_q(flag_sets)}"]
    for s, v in zip(names, values):
        lines += ["[[states]]", f"name = {_q(s)}", f"value = {v}", f"needs = {_q(needs[s])}",
                  f"requestable = {str(requestable[s]).lower()}"]
    lines += ["[device]", f"initial = {_q(names[0])}", f"reset = {_q(names[0])}"]
    if error:
        lines.append(f"error = {_q(error)}")
    # groups: two disjoint session groups and a third group for no_interior
    shuffled = draw(st.permutations(names))
    k1, k2 = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    g1, g2 = list(shuffled[:k1]), list(shuffled[k1:k1 + k2])
    g3 = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
    lines += ["[groups]", f"g1 = {_q(g1)}", f"g2 = {_q(g2)}", f"g3 = {_q(g3)}"]
    if draw(st.booleans()):
        lines += ["[sessions]", 'groups = ["g1", "g2"]']
    pairs = [(a, b) for a in names for b in names if a != b]
    arcs = draw(st.lists(st.tuples(st.sampled_from(pairs), st.sampled_from(EFFECTS), st.sampled_from(["a", "b"])),
                         max_size=12, unique_by=lambda a: a[0]))
    for (a, b), effect, tag in arcs:
        need = draw(st.lists(st.sampled_from(flags), unique=True, max_size=1)) if flags else []
        lines += ["[[arcs]]", f"from = {_q(a)}", f"to = {_q(b)}", f"needs = {_q(need)}",
                  f"session = {_q(effect)}", f"tag = {_q(tag)}"]
        if flags and need and draw(st.integers(0, 3)) == 0:
            # the same step once more under other flags: not a conflict (same effect and tag)
            lines += ["[[arcs]]", f"from = {_q(a)}", f"to = {_q(b)}", f"unless = {_q(need)}",
                      f"session = {_q(effect)}", f"tag = {_q(tag)}"]
    for a, b in draw(st.lists(st.sampled_from(pairs), unique=True, max_size=2)):
        lines += ["[[blocked]]", f"from = {_q(a)}", f"to = {_q(b)}"]
    if draw(st.booleans()):
        no_interior = draw(st.lists(st.sampled_from(["g1", "g2", "g3"]), unique=True, max_size=2))
        lines += ["[combination]", f"no_interior = {_q(no_interior)}",
                  f"within_group = {str(draw(st.booleans())).lower()}"]
    profiles = ["spec"]
    if draw(st.booleans()):
        profiles = []
        for pname in draw(st.lists(st.sampled_from(["p", "q", "lenient"]), unique=True, min_size=1, max_size=2)):
            kind = "all-requestable" if pname == "lenient" else "declared"
            lines += [f"[profiles.{pname}]", f'arcs = "{kind}"']
            if kind == "declared" and draw(st.booleans()) and arcs:
                lines.append(f"tags = {_q(sorted({t for _, _, t in arcs}))}")
            profiles.append(pname)
    if draw(st.booleans()):
        exits = draw(st.lists(st.sampled_from(names), unique=True, max_size=1))
        lines += ["[walk]", f"exits = {_q(exits)}", f"reject = {_q(exits)}",
                  f"check_current = {str(draw(st.booleans())).lower()}",
                  f"check_requested = {str(draw(st.booleans())).lower()}", "[walk.requires]"]
        for s in names:
            lines.append(f"{_q(s)} = {_q(['*'] if s == error and flags else needs[s])}")
        lines.append("[walk.next]")
        for cur in names:
            row = ", ".join(f"{_q(req)} = {_q(draw(st.sampled_from([req, cur] + names)))}" for req in names)
            lines.append(f"{_q(cur)} = {{ {row} }}")
    return lines, names, profiles


@st.composite
def model_files(draw) -> dict[str, str]:
    """``{file name: TOML text}``: ``m.toml`` (the model to verify) and, if it
    has a ``[correspondence]``, ``other.toml``."""
    lines, names, _ = draw(_model())
    files = {}
    if draw(st.integers(0, 3)) == 0:
        other_lines, other_names, other_profiles = draw(_model(name="other"))
        files["other.toml"] = "\n".join(other_lines) + "\n"
        mapped = draw(st.lists(st.sampled_from(names), unique=True))
        if draw(st.booleans()):
            mapped = sorted(set(mapped) | {names[0]}, key=names.index)
        mapping = ", ".join(f"{_q(s)} = {_q(draw(st.sampled_from(other_names)))}" for s in mapped)
        lines += ["[correspondence]", 'model = "other.toml"', f"profile = {_q(draw(st.sampled_from(other_profiles)))}",
                  f"map = {{ {mapping} }}"]
    files["m.toml"] = "\n".join(lines) + "\n"
    return files


def chain_model(n: int) -> str:
    """TOML text of a valid enum model that is a chain S0 -> S1 -> ... -> S(n-1)
    (n >= 1 states, n - 1 arcs): the large-model input of the ``verify``
    deadline tests and ``bench/bench_large.py``."""
    lines = ["format = 1", "[model]", 'name = "chain"', "[device]", 'initial = "S0"', 'reset = "S0"']
    for i in range(n):
        lines += ["[[states]]", f'name = "S{i}"', f"value = {i}"]
    for i in range(n - 1):
        lines += ["[[arcs]]", f'from = "S{i}"', f'to = "S{i + 1}"']
    return "\n".join(lines) + "\n"


def scale_model(n: int) -> str:
    """TOML text of a v2-shaped enum model of ``n`` states (``n >= 4``), one
    flag set: the input of the engine-scaling benchmark
    (``bench/bench_scale.py``) and its tests.

    ``ERROR`` (the error state, not requestable) and ``S1 .. S(n-1)`` on a
    chain of arcs both ways. ``S1`` is the state at open and after reset and
    forms the group ``resuming``; ``S(n-1)`` forms ``saving``: both are
    session groups and ``no_interior`` groups of the combination rule
    (``within_group``), and the arcs into and out of them start and end
    sessions. Every accepted pair has one shortest admissible path, of up to
    ``n - 3`` arcs. The ``[walk]`` carries the requests out along the chain
    (its ``next`` table has ``n * n`` entries), so every property of the
    shipped v2 model but ``correspondence`` and ``p2p-quiesce`` applies and
    holds.
    """
    if n < 4:
        raise ValueError(f"scale_model needs n >= 4 states, got {n}")
    names = ["ERROR"] + [f"S{i}" for i in range(1, n)]
    last = n - 1
    lines = ["format = 1", "[model]", f'name = "scale{n}"', 'encoding = "enum"', "width = 32",
             "[device]", 'initial = "S1"', 'reset = "S1"', 'error = "ERROR"']
    for i, name in enumerate(names):
        lines += ["[[states]]", f'name = "{name}"', f"value = {i}"]
        if name == "ERROR":
            lines.append("requestable = false")
    lines += ["[groups]", 'resuming = ["S1"]', f'saving = ["S{last}"]',
              "[sessions]", 'groups = ["saving", "resuming"]']

    def effect(i: int, j: int) -> str:
        ends = {1, last}
        return "ends" if i in ends else "starts" if j in ends else "none"

    for i in range(1, last):
        for a, b in ((i, i + 1), (i + 1, i)):
            lines += ["[[arcs]]", f'from = "S{a}"', f'to = "S{b}"', f'session = "{effect(a, b)}"']
    lines += ["[combination]", 'path = "shortest"', 'no_interior = ["saving", "resuming"]', "within_group = true",
              "[walk]", 'exits = ["ERROR"]', 'reject = ["ERROR"]',
              "[walk.requires]", 'ERROR = ["*"]', "[walk.next]"]
    for cur in range(n):
        row = []
        for req in range(n):
            if cur == 0 or req == 0:
                nxt = 0
            else:
                nxt = cur if req == cur else cur + 1 if req > cur else cur - 1
            row.append(f"{names[req]} = \"{names[nxt]}\"")
        lines.append(f"{names[cur]} = {{ {', '.join(row)} }}")
    return "\n".join(lines) + "\n"
