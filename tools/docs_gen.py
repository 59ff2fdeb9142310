"""The documentation pages derived from the code and from measurements
(used by ``tools/mkdocs_hooks.py``; ``python tools/docs_gen.py PAGE``
prints one).

* :data:`FORMAT_PAGES`: the format reference of each input file kind, from
  the JSON Schema its loader checks every file against (models:
  ``fsmcheck/model/format.py``; orchestration files:
  ``fsmcheck/orchestration/format.py``; errata: ``fsmcheck/pack/errata.py``;
  the rule catalogue: ``fsmcheck/rules/catalogue.py``);
* :func:`benchmarks_page`: the output files ``make bench`` writes into
  ``build/bench/`` (one per benchmark script), shown as measured.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The order in which ``make bench`` runs its scripts (the page follows it).
BENCH_ORDER = ["bench_verify", "bench_scale", "bench_startup", "bench_pack", "bench_fleet", "bench_trace",
               "bench_orchestration"]


def title_of(markdown: str) -> str:
    """The first ``# `` heading of a page."""
    return next(line[2:].strip() for line in markdown.splitlines() if line.startswith("# "))


#: Each input file kind's format reference: page -> (the module whose
#: ``SCHEMA`` its loader checks every file against, the page's title).
FORMAT_PAGES = {
    "model-format-reference.md": ("fsmcheck.model.format", "Model file format"),
    "orchestration-format-reference.md": ("fsmcheck.orchestration.format", "Orchestration file format"),
    "errata-format-reference.md": ("fsmcheck.pack.errata", "Errata file format"),
    "catalogue-format-reference.md": ("fsmcheck.rules.catalogue", "Rule catalogue format"),
}


def format_page(name: str) -> str:
    """The format reference ``name`` (a key of :data:`FORMAT_PAGES`), rendered by
    :func:`fsmcheck.inputs.schema.reference` from the schema (so it lists exactly
    the tables and keys the loader accepts)."""
    import importlib

    sys.path.insert(0, str(ROOT))
    from fsmcheck.inputs.schema import reference

    module, title = FORMAT_PAGES[name]
    return reference(importlib.import_module(module).SCHEMA, title)


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
FRAGMENTS = {"exit-codes": exit_codes_table, "pytest-exit-codes": pytest_exit_table}


if __name__ == "__main__":
    page = sys.argv[1] if len(sys.argv) > 1 else "model-format"
    name = f"{page}-reference.md"
    print(format_page(name) if name in FORMAT_PAGES else benchmarks_page(ROOT / "build" / "bench"))
