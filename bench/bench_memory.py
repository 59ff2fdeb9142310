"""Benchmark: peak memory (RSS) of ``fsmcheck verify`` as models grow (issue 23).

Run with ``make bench`` (or ``python bench/bench_memory.py [--states 125 250
500] [--scale 32 64 128]``). Each measurement is one ``fsmcheck verify -q``
in a child process of a small parent that reports the child's peak resident
set size (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` of that parent:
one child only), so native memory (z3's) counts too. Models: a chain of N
states with a ``[combination]`` rule (:func:`fuzz.strategies.chain_model`; its
table has N^2 cells), and the engine-scaling model
(:func:`fuzz.strategies.scale_model`). Printed per N: seconds, peak MiB, and
the growth of the peak over the previous N (with ``python -c pass``'s RSS,
the baseline measured in the same run, taken off): 4x per doubling is
quadratic, 8x cubic. Exit 1 when the largest chain's peak reaches
``--limit-mib`` (default 1024: the issue's bound for 500 states).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.strategies import chain_model, scale_model  # noqa: E402

_PARENT = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
print(json.dumps({"rc": code, "s": time.perf_counter() - start,
                  "kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def peak(argv: list[str]) -> dict:
    """``{"rc", "s", "kb"}`` of ``argv`` run as a child: exit code, wall
    seconds and peak RSS in KiB."""
    out = subprocess.run([sys.executable, "-c", _PARENT, json.dumps(argv)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def _series(title: str, sizes: list[int], text_of, tmp: Path, base_kb: int) -> dict:
    print(f"{title}\n{'N':>6} {'seconds':>9} {'peak MiB':>9} {'growth':>8} exit")
    previous, last = None, None
    for n in sizes:
        path = tmp / f"m{n}.toml"
        path.write_text(text_of(n))
        got = peak([sys.executable, "-m", "fsmcheck.cli", "verify", "-q", "--timeout-ms", "600000", str(path)])
        net = max(got["kb"] - base_kb, 1)
        growth = f"{net / previous[1]:.2f}x" if previous else "-"
        if previous and n != 2 * previous[0]:
            growth += f" (x{n / previous[0]:g} N)"
        print(f"{n:>6} {got['s']:>9.1f} {got['kb'] / 1024:>9.0f} {growth:>8} {got['rc']}", flush=True)
        previous, last = (n, net), got
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--states", type=int, nargs="*", default=[125, 250, 500], help="chain sizes")
    parser.add_argument("--scale", type=int, nargs="*", default=[32, 64, 128], help="scale-model sizes")
    parser.add_argument("--limit-mib", type=float, default=1024.0)
    args = parser.parse_args()
    base = peak([sys.executable, "-c", "pass"])["kb"]
    print(f"baseline: python -c pass, peak {base / 1024:.0f} MiB (taken off before the growth ratios)")
    with tempfile.TemporaryDirectory() as tmp:
        last = None
        if args.states:
            last = _series("chain of N states with [combination] (fsmcheck verify, both engines)", args.states,
                           lambda n: chain_model(n) + '[combination]\npath = "shortest"\n', Path(tmp), base)
        if args.scale:
            _series("scale model of N states (fsmcheck verify, both engines)", args.scale, scale_model,
                    Path(tmp), base)
    if last is not None and last["kb"] / 1024 >= args.limit_mib:
        print(f"FAIL: the {args.states[-1]}-state chain peaked at {last['kb'] / 1024:.0f} MiB "
              f"(limit {args.limit_mib:g} MiB)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
