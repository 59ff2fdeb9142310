"""Benchmark: check-trace throughput (lines/s) on a synthetic day of QEMU logging.

Run with ``make bench-trace`` (or ``python bench/bench_trace.py [--lines N]
[--repeat R] [--seed S]``). The trace is built from the real source trace
(tests/qemu_traces/source.trace): its lines (realize events dropped) are
repeated until ``--lines`` lines (default 10**6), in a temporary directory
removed afterwards. Each copy is one full migration of two devices, so the
checker's per-device work, the P2P rule and the data-session checks all run
throughout.

Measured as CPU seconds of this process (``time.process_time``: the machine
may be shared, and the work is single-threaded), each the median of
``--repeat`` runs, printed as lines/s with its ratio against the baseline
measured in the same run (wall seconds are printed beside them):

* baseline: reading the file line by line and doing nothing;
* parse: the QEMU log reader alone (``fsmcheck.tracecheck.qemu_log``);
* check: ``check_trace`` with the flag set given (one pass);
* check auto: ``check_trace`` with ``--flags auto`` (two passes).

Then the peak Python memory (tracemalloc) of one checked pass over a tenth of
the lines and over all of them: constant memory means the two are close.
No randomness is used; ``--seed`` is accepted and printed for uniformity.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsmcheck.model import load_model  # noqa: E402
from fsmcheck.tracecheck import check_trace, open_trace  # noqa: E402
from fsmcheck.tracecheck.qemu_log import read_qemu_log  # noqa: E402


def build(source: Path, target: Path, lines: int) -> int:
    """Write ``lines`` lines to ``target`` by repeating ``source``; returns the count."""
    body = [l for l in source.read_text().splitlines(keepends=True) if "vfio_migration_realize" not in l]
    written = 0
    with open(target, "w") as out:
        while written < lines:
            chunk = body[: lines - written]
            out.writelines(chunk)
            written += len(chunk)
    return written


def _seconds(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.process_time() - cpu, time.perf_counter() - wall


def _raw(path: Path) -> None:
    with open(path, encoding="utf-8", errors="replace") as handle:
        for _ in handle:
            pass


def _parse(path: Path) -> None:
    for _ in read_qemu_log(path):
        pass


def _peak(model, path: Path, flags) -> tuple[float, int]:
    tracemalloc.start()
    report = check_trace(model, open_trace(path), flags)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, report.violations_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10**6, help="lines of the synthetic trace")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--seed", type=int, default=0, help="accepted for uniformity; nothing is random")
    parser.add_argument("--source", type=Path, default=ROOT / "tests/qemu_traces/source.trace")
    parser.add_argument("--model", type=Path, default=ROOT / "models/vfio_v2.toml")
    args = parser.parse_args()
    model = load_model(args.model)
    flags = frozenset(["STOP_COPY", "P2P", "PRE_COPY"])
    print(f"seed {args.seed}; source {args.source.name}; repeat {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        path, small = Path(tmp) / "day.trace", Path(tmp) / "tenth.trace"
        n = build(args.source, path, args.lines)
        build(args.source, small, max(args.lines // 10, 1))
        runs = {
            "baseline (read lines)": lambda: _raw(path),
            "parse (qemu_log)": lambda: _parse(path),
            "check (--flags given)": lambda: check_trace(model, open_trace(path), flags),
            "check (--flags auto)": lambda: check_trace(model, open_trace(path), None),
        }
        times = {}
        for name, fn in runs.items():
            samples = [_seconds(fn) for _ in range(args.repeat)]
            times[name] = (statistics.median(c for c, _ in samples), statistics.median(w for _, w in samples))
        base = times["baseline (read lines)"][0]
        print(f"{n} lines")
        print(f"{'measurement':24} {'CPU s':>8} {'lines/s (CPU)':>14} {'x baseline':>11} {'wall s':>8}")
        for name, (cpu, wall) in times.items():
            print(f"{name:24} {cpu:8.3f} {n / cpu:14,.0f} {cpu / base:11.1f} {wall:8.3f}")
        tenth, _ = _peak(model, small, flags)
        full, violations = _peak(model, path, flags)
        print(f"peak traced memory of one check: {tenth:.2f} MiB at {n // 10} lines, {full:.2f} MiB at {n} lines "
              f"({violations} violations)")


if __name__ == "__main__":
    main()
