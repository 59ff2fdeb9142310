"""Benchmark: large models (a chain of N states, default 10,000).

Run with ``python bench/bench_large.py [--states N] [--repeat R]``. The
baseline, measured in the same run, is one pass building a name -> state
dictionary over the model's states (what ``Model.state()`` used to do on
every call); loading the model, compiling its arc graph and deriving the
explicit engine's reachability are printed as ratios against it. With the
lookups indexed once, compiling the arc graph costs a few baseline passes,
not one per arc endpoint (issue 13: 17.7 s for 10,000 states).
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

from fsmcheck.engines import explicit  # noqa: E402
from fsmcheck.model import load_model  # noqa: E402
from fsmcheck.semantics.graphs import arc_graph  # noqa: E402
from fuzz.strategies import chain_model  # noqa: E402


def _median(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "chain.toml"
        path.write_text(chain_model(args.states))
        model = load_model(path)
        config = model.configs()[0]
        base = _median(lambda: {s.name: s for s in model.states}, args.repeat * 5)
        rows = [
            ("load_model", _median(lambda: load_model(path), args.repeat)),
            ("arc_graph", _median(lambda: arc_graph(model, config), args.repeat)),
            ("networkx reachability", _median(lambda: explicit.check("reachability", model, config), args.repeat)),
        ]
    print(f"chain of {args.states} states; baseline (one name -> state dict) {base * 1000:.2f} ms")
    for name, seconds in rows:
        print(f"  {name:24s} {seconds:8.3f} s  {seconds / base:10.1f} x baseline")


if __name__ == "__main__":
    main()
