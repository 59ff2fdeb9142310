"""The documentation pages derived from the code and from measurements
(used by ``tools/mkdocs_hooks.py``; ``python tools/docs_gen.py PAGE``
prints one).

* :func:`model_format_page`: the model-format reference, from the JSON
  Schema the loader checks model files against (``fsmcheck/model/format.py``);
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


def model_format_page() -> str:
    """The model-format reference: :func:`fsmcheck.model.format_reference`,
    rendered from the JSON Schema the loader checks every model file
    against (so it lists exactly the tables and keys the loader accepts)."""
    sys.path.insert(0, str(ROOT))
    from fsmcheck.model.format import format_reference

    return format_reference()


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
    print(model_format_page() if page == "model-format" else benchmarks_page(ROOT / "build" / "bench"))
