"""Benchmark: fsmcheck's start-up, and ``fsmcheck verify`` against SPIN.

Run with ``python bench/bench_startup.py [--repeat N] [MODEL]`` (default:
the shipped ``models/vfio_v1.toml``). Each round measures, one after the
other so that a busy machine slows all of them alike:

(a) ``fsmcheck --help`` (a subprocess: the start-up of every command);
(b) ``fsmcheck verify MODEL`` (a subprocess: start-up, both engines, output);
(c) SPIN on the same model's Promela export, the same steps as
    :func:`fsmcheck.export.spin.check` for every configuration (``spin -a``,
    ``cc``, one ``pan`` run for the assertions and one per LTL claim);
(d) ``python -c pass`` with the same interpreter (bare start-up).

It prints the median and the fastest of each (wall time, and the CPU time
of the subprocesses), then the ratios: SPIN / verify (the goal is >= 10),
start-up / bare Python, and start-up in seconds (the goal is < 0.2 s).
``--pythonpath DIR`` runs (a) and (b) from another fsmcheck tree (e.g. an
older commit unpacked with ``git archive``) for before/after figures.

The subprocesses read and write compiled bytecode in a temporary
``PYTHONPYCACHEPREFIX``, as an installed fsmcheck has its ``.pyc`` files,
even where ``PYTHONDONTWRITEBYTECODE`` is set; ``--no-bytecode-cache`` keeps
the environment as it is (with ``PYTHONDONTWRITEBYTECODE=1`` every run
compiles fsmcheck's sources again).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsmcheck.export import spin  # noqa: E402
from fsmcheck.model import load_model  # noqa: E402

#: The goals of issue 14.
STARTUP_GOAL_S = 0.2
SPIN_RATIO_GOAL = 10.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the subprocesses) of ``run()``."""
    cpu, start = _children_cpu(), time.perf_counter()
    run()
    return time.perf_counter() - start, _children_cpu() - cpu


def _command(argv: list[str], env: dict, expect: int = 0):
    def run() -> None:
        proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if proc.returncode != expect:
            sys.exit(f"{' '.join(argv)} exited {proc.returncode} (expected {expect}): {proc.stderr[-500:]}")
    return run


def _spin(model):
    def run() -> None:
        for config in model.configs():
            verdicts = spin.check(model, config)
            if verdicts.no_invalid_entry != "holds" or verdicts.reachability != "holds":
                sys.exit(f"SPIN does not find {model.name} [{config.label}] correct: {verdicts}")
    return run


def main() -> None:
    """Measure (a)-(d) ``--repeat`` times, interleaved, and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="rounds (median and minimum of each measure)")
    parser.add_argument("--pythonpath", type=Path, default=None,
                        help="run fsmcheck from this source tree (PYTHONPATH) instead of the installed one")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE / PYTHONPYCACHEPREFIX as the environment sets them")
    parser.add_argument("model", nargs="?", default=str(ROOT / "models/vfio_v1.toml"))
    args = parser.parse_args()

    env = dict(os.environ, NO_COLOR="1")
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = tempfile.mkdtemp(prefix="fsmcheck-bench-pyc-")
    if args.pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.pythonpath.resolve()), env.get("PYTHONPATH")]))
    fsmcheck = [sys.executable, "-c", "import sys; from fsmcheck.cli import main; sys.argv[0] = 'fsmcheck'; main()"]
    script = Path(sys.executable).parent / "fsmcheck"
    if script.exists():  # the console script users run
        fsmcheck = [str(script)]
    model = load_model(args.model)
    measures = {
        "fsmcheck --help": _command([*fsmcheck, "--help"], env),
        f"fsmcheck verify {Path(args.model).name}": _command([*fsmcheck, "verify", args.model], env),
        "python -c pass": _command([sys.executable, "-c", "pass"], env),
    }
    if shutil.which("spin") and shutil.which("cc"):
        measures["SPIN (spin -a, cc, pan per claim)"] = _spin(model)
    else:
        print("SPIN or cc is not installed (Debian: apt-get install spin gcc): no SPIN baseline", file=sys.stderr)

    for run in measures.values():  # warm the file cache and the .pyc files
        run()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in measures}
    for _ in range(args.repeat):
        for name, run in measures.items():
            times[name].append(_timed(run))
    if not args.no_bytecode_cache:
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)

    def median(name: str, index: int = 0) -> float:
        return statistics.median(t[index] for t in times[name])

    print(f"{len(model.configs())} configuration(s) of {model.name}; {args.repeat} rounds, interleaved; "
          + ("bytecode as the environment sets it" if args.no_bytecode_cache else "bytecode cached")
          + (f"; fsmcheck from {args.pythonpath}" if args.pythonpath else ""))
    print(f"{'':38} {'median wall':>12} {'min wall':>10} {'median CPU':>11}")
    for name in measures:
        print(f"{name:38} {median(name) * 1000:9.0f} ms {min(t[0] for t in times[name]) * 1000:7.0f} ms "
              f"{median(name, 1) * 1000:8.0f} ms")
    names = list(measures)
    startup, verify, bare = (median(n) for n in names[:3])
    print(f"start-up (fsmcheck --help): {startup:.3f} s (goal < {STARTUP_GOAL_S} s); "
          f"{startup / bare:.1f}x bare Python ({bare:.3f} s)")
    if len(names) > 3:
        spin_time = median(names[3])
        print(f"SPIN / fsmcheck verify: {spin_time / verify:.1f}x wall, "
              f"{median(names[3], 1) / median(names[1], 1):.1f}x CPU (goal >= {SPIN_RATIO_GOAL:.0f}x)")
    print(f"fsmcheck verify / bare Python: {verify / bare:.1f}x; verify minus --help: {verify - startup:.3f} s")


if __name__ == "__main__":
    main()
