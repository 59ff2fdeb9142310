"""Benchmark: the two engines, and generating a pack, on models of N states.

Run with ``make bench`` (or ``python bench/bench_scale.py [--states 8 16 ...]
[--repeat R] [--generate N]``). The models are
:func:`fuzz.strategies.scale_model` (a v2-shaped model of N states, one flag
set, every pair with one least path of up to N - 3 arcs, a walk of N * N
entries; every property but correspondence and p2p-quiesce applies and
holds). For each N it prints the median time of each engine over every
property, z3's ratio against networkx (the baseline, measured in the same
run), each engine's growth per doubling of N, and how many z3 queries each
engine run makes (``Solver.check`` and ``Fixedpoint.query`` calls): one per
property and configuration where the logic allows (issue 14). Then
``fsmcheck generate`` of the N = ``--generate`` model (both engines, then
the pack) with its ratio against the networkx baseline of that N.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import z3  # noqa: E402

from fsmcheck.engines import explicit, symbolic  # noqa: E402
from fsmcheck.generate.pack import pack_files  # noqa: E402
from fsmcheck.model import load_model  # noqa: E402
from fsmcheck.model.properties import applicable  # noqa: E402
from fsmcheck.verifier.verify import verify_model  # noqa: E402
from fuzz.strategies import scale_model  # noqa: E402

_QUERIES = {"n": 0}


def _counting(method):
    def wrapper(*args, **kwargs):
        _QUERIES["n"] += 1
        return method(*args, **kwargs)
    return wrapper


z3.Solver.check = _counting(z3.Solver.check)
z3.Fixedpoint.query = _counting(z3.Fixedpoint.query)


def _engine(check, model) -> tuple[float, int, set]:
    """Seconds, z3 queries and verdict statuses of ``check`` over every
    applicable property and configuration (caches cleared first)."""
    symbolic._relations_of.cache_clear()
    explicit._table.cache_clear()
    _QUERIES["n"] = 0
    start = time.perf_counter()
    statuses = set()
    configs = model.configs()
    for prop in applicable(model):
        for config in (configs[:1] if prop.scope == "model" else configs):
            statuses.add(check(prop.name, model, config).status)
    return time.perf_counter() - start, _QUERIES["n"], statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, nargs="+", default=[8, 16, 32, 64, 128])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--generate", type=int, default=128, help="N of the generate measurement (0: skip)")
    args = parser.parse_args()
    print(f"{'N':>5} {'networkx (baseline)':>20} {'z3':>10} {'z3/nx':>7} {'nx growth':>10} {'z3 growth':>10} "
          f"{'z3 queries':>11}")
    previous = None
    with tempfile.TemporaryDirectory() as tmp:
        baselines = {}
        for n in args.states:
            path = Path(tmp) / f"scale{n}.toml"
            path.write_text(scale_model(n))
            model = load_model(path)
            runs_nx = [_engine(explicit.check, model) for _ in range(args.repeat)]
            runs_z3 = [_engine(symbolic.check, model) for _ in range(args.repeat)]
            nx_s = statistics.median(r[0] for r in runs_nx)
            z3_s = statistics.median(r[0] for r in runs_z3)
            statuses = runs_nx[0][2] | runs_z3[0][2]
            if statuses != {"holds"}:
                raise SystemExit(f"N={n}: verdicts {sorted(statuses)}; the scale model must hold")
            baselines[n] = nx_s
            growth = ("" if previous is None else
                      f"{nx_s / previous[0]:9.1f}x {z3_s / previous[1]:9.1f}x")
            print(f"{n:5d} {nx_s * 1000:17.1f} ms {z3_s * 1000:7.1f} ms {z3_s / nx_s:7.1f} "
                  f"{growth:>21} {runs_z3[0][1]:11d}")
            previous = (nx_s, z3_s)
        if args.generate:
            n = args.generate
            path = Path(tmp) / f"scale{n}.toml"
            path.write_text(scale_model(n))
            model = load_model(path)
            base = baselines.get(n) or _engine(explicit.check, model)[0]
            symbolic._relations_of.cache_clear()
            explicit._table.cache_clear()
            start = time.perf_counter()
            results = verify_model(model)
            files = pack_files(model)
            seconds = time.perf_counter() - start
            size = sum(len(text) for text in files.values())
            verdicts = {r.status for r in results}
            print(f"generate N={n} (verify on both engines, then the pack: {size / 1e6:.0f} MB of test data): "
                  f"{seconds:.1f} s = {seconds / base:.1f} x the networkx baseline; verdicts {sorted(verdicts)}")


if __name__ == "__main__":
    main()
