"""Benchmark: how long each engine takes on the shipped models.

Run with ``make bench`` (or ``python bench/bench_verify.py [--repeat N]``).
Times are the median of N runs. The baseline, measured in the same run, is
the explicit (networkx) engine on the same model; z3 and the full verify
(both engines plus comparison) are printed as ratios against it, so the
figures are comparable across noisy machines.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsmcheck.engines import explicit, symbolic  # noqa: E402
from fsmcheck.model import load_model  # noqa: E402
from fsmcheck.model.properties import applicable  # noqa: E402
from fsmcheck.verifier.verify import verify_model  # noqa: E402


def _engine_seconds(check, model) -> float:
    start = time.perf_counter()
    configs = model.configs()
    for prop in applicable(model):
        for config in (configs[:1] if prop.scope == "model" else configs):
            check(prop.name, model, config)
    return time.perf_counter() - start


def _median(fn, repeat: int) -> float:
    return statistics.median(fn() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("models", nargs="*", default=[str(ROOT / "models/vfio_v1.toml"),
                                                      str(ROOT / "models/vfio_v2.toml")])
    args = parser.parse_args()
    print(f"{'model':10} {'networkx (baseline)':>20} {'z3':>12} {'z3/nx':>8} {'verify':>10} {'verify/nx':>10}")
    for path in args.models:
        model = load_model(path)
        base = _median(lambda: _engine_seconds(explicit.check, model), args.repeat)
        z3_time = _median(lambda: _engine_seconds(symbolic.check, model), args.repeat)
        full = _median(lambda: (lambda t: (verify_model(model), time.perf_counter() - t)[1])(time.perf_counter()),
                       args.repeat)
        print(f"{model.name:10} {base * 1000:17.1f} ms {z3_time * 1000:9.1f} ms {z3_time / base:8.1f} "
              f"{full * 1000:7.1f} ms {full / base:10.1f}")


if __name__ == "__main__":
    main()
