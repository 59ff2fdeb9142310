"""Mutation score: run a conformance pack against every mutant driver.

Each run is a separate pytest process (a mutant must not leak state into the
next) with JUnit XML output; a mutant is *killed* when at least one test
fails, and the suites that killed it are the test functions that failed. The
reference drivers must pass.

- :mod:`.runs`: one pack run and its JUnit result (:class:`MutantResult`);
- :mod:`.pool`: where the runs execute -- the standard library's process
  pool, each run a fresh process forked from a server that has already
  imported pytest, hypothesis and the pack's modules;
- :mod:`.order`: which test to try first -- the pack's modules most likely to
  kill, and the killing-order file kept between runs;
- :mod:`.score`: the score: the references, then every mutant;
- :mod:`.command`: ``fsmcheck mutate``.

The names below are imported from their submodules on first use (PEP 562),
so that ``fsmcheck mutate --help`` (which imports :mod:`.command`) loads
none of them (``tests/test_startup.py``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .order import ORDER_FILE, default_cache_dir, kill_order, order_key
    from .runs import MutantResult, all_mutants, run_pack
    from .score import score

__all__ = ["MutantResult", "all_mutants", "run_pack", "score", "default_cache_dir", "order_key",
           "kill_order", "ORDER_FILE"]

_SOURCES = {
    **dict.fromkeys(("ORDER_FILE", "default_cache_dir", "kill_order", "order_key"), ".order"),
    **dict.fromkeys(("MutantResult", "all_mutants", "run_pack"), ".runs"),
    "score": ".score",
}


def __getattr__(name: str):
    """Import an exported name from its submodule on first use."""
    source = _SOURCES.get(name)
    if source is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(source, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
