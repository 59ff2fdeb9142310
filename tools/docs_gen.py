"""The documentation pages derived from the code and from measurements
(used by ``tools/mkdocs_hooks.py``; ``python tools/docs_gen.py PAGE``
prints one).

* :func:`model_tables`: every table of a model file and the keys it may hold,
  read with :mod:`ast` from the model loader's own tables
  (``fsmcheck/model/loader.py``: ``_TOP_KEYS`` and each ``unknown_keys``
  call, which is what rejects any other key), so the page cannot list a key
  the loader refuses or miss one it accepts;
* :func:`benchmarks_page`: the output files ``make bench`` writes into
  ``build/bench/`` (one per benchmark script), shown as measured.
"""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOADER = ROOT / "fsmcheck" / "model" / "loader.py"

#: The order in which ``make bench`` runs its scripts (the page follows it).
BENCH_ORDER = ["bench_verify", "bench_scale", "bench_startup", "bench_pack", "bench_fleet", "bench_trace",
               "bench_orchestration"]


def title_of(markdown: str) -> str:
    """The first ``# `` heading of a page."""
    return next(line[2:].strip() for line in markdown.splitlines() if line.startswith("# "))


def _table_name(path: tuple) -> str:
    """A loader key path as TOML writes the table: ``("arcs", i)`` ->
    ``[[arcs]]``, ``("profiles", name)`` -> ``[profiles.NAME]``."""
    parts, array = [], False
    for part in path:
        if isinstance(part, str):
            parts.append(part)
        elif part == "NAME":
            parts.append("NAME")
        else:
            array = True
    inner = ".".join(parts) or "(top level)"
    return f"[[{inner}]]" if array else (f"[{inner}]" if parts else inner)


def _path(node: ast.AST, names: dict) -> tuple | None:
    """A key-path expression of the loader as a tuple: string constants
    stay, an integer variable becomes ``0`` (an array index), a string
    variable ``"NAME"``; ``kp + (...)`` is followed."""
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _path(node.left, names), _path(node.right, names)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.Tuple):
        out = []
        for elt in node.elts:
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str):
                out.append(elt.value)
            elif isinstance(elt, ast.Name) and elt.id in ("i", "j", "k", "index"):
                out.append(0)
            else:
                out.append("NAME")
        return tuple(out)
    return None


@functools.lru_cache(maxsize=None)
def model_keys(loader: Path = LOADER) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``((table, (key, ...)), ...)``: the top-level tables, then every
    table whose keys the loader checks, in the loader's order.

    Raises:
        ValueError: the loader no longer has the tables this reads (the
            page must then be generated from where they went).
    """
    tree = ast.parse(loader.read_text(encoding="utf-8"))
    tables: list[tuple[str, tuple[str, ...]]] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_TOP_KEYS"
                                                for t in node.targets):
            tables.append(("(top level)", tuple(sorted(ast.literal_eval(node.value)))))
    for func in (n for n in tree.body if isinstance(n, ast.FunctionDef)):
        names: dict[str, tuple] = {}
        for node in ast.walk(func):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                path = _path(node.value, names) if isinstance(node.value, (ast.Tuple, ast.BinOp)) else None
                if path is not None:
                    names[node.targets[0].id] = path
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "unknown_keys" and len(node.args) == 3
                    and isinstance(node.args[2], ast.Set)):
                path = _path(node.args[1], names)
                keys = tuple(ast.literal_eval(e) for e in node.args[2].elts)
                if path is not None and path:
                    tables.append((_table_name(path), keys))
    if len(tables) < 2:
        raise ValueError(f"{loader}: no key tables found (_TOP_KEYS, unknown_keys(..., {{...}}))")
    return tuple(tables)


#: What each table of a model file declares: the prose the loader cannot
#: give. A table the loader accepts and this does not describe fails the
#: docs build (:func:`model_tables`), so the reference cannot omit one.
DESCRIPTIONS = {
    "format": "the format version: `1`",
    "[model]": "`name`, `title`, `encoding` (`enum` or `bits`), `width` of `device_state` in bits, `sources`",
    "[encoding]": "bit models: `mask`, bit names, `valid` — the validity predicate over `s` (a safe expression "
                  "subset: `& \\| ^ ~ << >> + -`, comparisons, `and/or/not`, `if/else`)",
    "[device]": "`initial` (state at open), `reset` (reset target), `error`",
    "[flags]": "feature-flag `bits`, flags that are `always` set, the defined flag `sets`",
    "[[states]]": "`name`, `value` (the kernel's number / bit encoding), `needs` (flags that bring it), "
                  "`requestable`, `doc`",
    "[groups]": "named state groups (`NAME = [states]`), e.g. the saving group, the running states",
    "[sessions]": "which `groups` hold a data session, and their `directions`",
    "[[arcs]]": "`from`, `to`, `needs` / `unless` flags, `session` effect (`starts`, `keeps`, `ends`, `none`), "
                "`tag`, `source`",
    "[[blocked]]": "requests that fail although a path exists; `unless` flags lift the block (vfio.h's "
                   "\"reserved for a future flag\")",
    "[[capabilities]]": "optional device capabilities the pack tests: `name` (a suite must exist, e.g. "
                        "`PRECOPY_INFO_REINIT`), `feature` (VFIO_DEVICE_FEATURE number), `needs` flags, "
                        "`states`, `source`",
    "[combination]": "the path rule: `path` (`shortest`), `no_interior` groups, `within_group` (a path wholly "
                     "inside such a group is admissible)",
    "[profiles.NAME]": "`arcs = \"declared\"` (optionally only some `tags`) or `\"all-requestable\"`",
    "[walk]": "an implementation under review: `next` table, per-state `requires` (`\"*\"` = every flag), "
              "skip-loop `exits`, `reject` results. Only ever checked, never a source of results",
    "[correspondence]": "another `model` (a file beside this one, or a shipped model's name), its `profile`, "
                        "and a state `map`",
    "[p2p]": "the P2P quiesce rule across devices: the `initiating` and `accepting` groups, the `flag` that "
             "brings the P2P states, `source`",
    "[region]": "region-based protocols (v1): the migration region's register `fields`",
    "[[region.fields]]": "one register: `name`, `offset`, `width`, `access`",
    "[properties]": "`check`: which properties to decide (default: every applicable one)",
}


def model_tables() -> str:
    """The table of every table of a model file, its keys (from the loader)
    and what it declares (:data:`DESCRIPTIONS`).

    Raises:
        ValueError: the loader accepts a table :data:`DESCRIPTIONS` does not
            describe, or ``DESCRIPTIONS`` describes one the loader refuses.
    """
    tables = model_keys()
    top = dict(tables)["(top level)"]
    rows = [(name, keys) for name, keys in tables if name != "(top level)"]
    covered = {name.strip("[]").split(".")[0] for name, _ in rows}
    rows += [(f"[{key}]" if key != "format" else key, ()) for key in top if key not in covered]
    order = list(DESCRIPTIONS)
    missing = [name for name, _ in rows if name not in DESCRIPTIONS]
    stale = [name for name in DESCRIPTIONS if name not in {n for n, _ in rows}]
    if missing or stale:
        raise ValueError(f"tools/docs_gen.py DESCRIPTIONS: undescribed {missing}, not in the loader {stale}")
    rows.sort(key=lambda row: order.index(row[0]))
    lines = ["| table | keys (the loader's) | what it declares |", "|---|---|---|"]
    for name, keys in rows:
        shown = ", ".join(f"`{k}`" for k in keys) or "—"
        lines.append(f"| `{name}` | {shown} | {DESCRIPTIONS[name]} |")
    return "\n".join(lines)


def benchmarks_page(directory: Path) -> str:
    """The page of measured figures: each output file of the last ``make
    bench`` (or ``make bench-ci``) in ``directory``, as written, with the
    command and time it records in its first lines."""
    lines = ["# Measured figures", "",
             "Generated at build time from the output files of the last `make bench` (about 20 minutes) "
             "or `make bench-ci` (its bounded form, in CI) in `build/bench/`: each benchmark prints its "
             "figures with a ratio against a baseline measured in the same run (the machine is noisy: "
             "compare ratios, not times). Nothing here is copied by hand.", ""]
    files = sorted(directory.glob("*.txt"), key=lambda p: (BENCH_ORDER.index(p.stem) if p.stem in BENCH_ORDER
                                                            else len(BENCH_ORDER), p.stem))
    if not files:
        lines += ["No measurements in this build: run `make bench` (or `make bench-ci`) before `make docs`."]
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace").rstrip("\n")
        lines += [f"## {path.stem}", "", "```text", text.replace("```", "'''"), "```", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def exit_codes_table() -> str:
    """Every command's exit codes, from :data:`fsmcheck.options.EXIT_CODES`."""
    sys.path.insert(0, str(ROOT))
    from fsmcheck.options import EXIT_CODES

    return "\n".join(["| exit | meaning |", "|---|---|"] + [f"| **{code}** | {text} |" for code, text in EXIT_CODES])


def pytest_exit_table() -> str:
    """``run-pack``'s mapping of pytest's exit codes, from
    :data:`fsmcheck.options.PYTEST_EXIT` and :class:`pytest.ExitCode`."""
    sys.path.insert(0, str(ROOT))
    import pytest

    from fsmcheck.options import PYTEST_EXIT

    rows = [f"| {int(code)} `{code.name}` | **{PYTEST_EXIT[int(code)]}** |" for code in pytest.ExitCode]
    return "\n".join(["| pytest's exit | fsmcheck run-pack's |", "|---|---|"] + rows)


#: Fragments ``tools/mkdocs_hooks.py`` puts where a page says ``<!-- generated: NAME -->``.
FRAGMENTS = {"exit-codes": exit_codes_table, "pytest-exit-codes": pytest_exit_table, "model-tables": model_tables}


if __name__ == "__main__":
    page = sys.argv[1] if len(sys.argv) > 1 else "model-format"
    print(model_tables() if page == "model-format" else benchmarks_page(ROOT / "build" / "bench"))
