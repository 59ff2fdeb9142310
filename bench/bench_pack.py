"""The conformance pack's speed (issue 14), each figure with its baseline
measured in the same run (the machine is shared: compare ratios, not times).

(a) reference adapter opens/s: every open deriving what its flag set allows
    (``derive_table`` and the rest: the cache emptied before each open, as
    every open did before the cache) vs now (derived once per flag set);
    the same for the v1 driver's arc graph.
(b) the whole pack (``generated_tests``, ``--fsmcheck-seed=0``) through the
    harness vs a bare pass-through (this file loaded as a pytest plugin sets
    the private ``_DIRECT`` switch of ``fsmcheck.pack.calls``: every adapter call made on the
    test's thread, no worker, no time limit -- for measuring only), and
    through the harness with its worker as it was before issue 14 (a queue
    and an event per call); plus the cost of one call each way.
(c) ``fsmcheck mutate`` wall time, cold (no killing-order file) and warm
    (with the file the cold run wrote; both in a temporary cache
    directory, removed afterwards), vs one plain pack run of (b).

Usage: ``python bench/bench_pack.py [--rounds N] [--jobs N] [--no-mutate]``.
Exits 1 if a pack or mutate run fails (the figures would mean nothing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT / "generated_tests"
SEED = 0


_CALLS = [0]


class _QueueWorker:
    """The harness's worker as it was before issue 14 (a queue, an event and a
    list per call), for the before/after figure of (b)."""

    def __init__(self):
        import queue
        import threading

        self._calls = queue.SimpleQueue()
        self.busy = False
        self.thread = threading.Thread(target=self._loop, name="fsmcheck-adapter", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            item = self._calls.get()
            if item is None:
                return
            fn, args, box, done = item
            try:
                box.append((True, fn(*args)))
            except BaseException as exc:
                box.append((False, exc))
            done.set()

    def run(self, fn, args, timeout):
        import threading

        box, done = [], threading.Event()
        self._calls.put((fn, args, box, done))
        if not done.wait(timeout):
            return False, False, None
        ok, value = box[0]
        return True, ok, value

    def abandon(self):
        pass

    def stop(self):
        self._calls.put(None)


def pytest_configure(config):
    """As a pytest plugin (``-p bench_pack``): ``BENCH_PACK_MODE=bare`` the
    bare pass-through of (b), counting the adapter calls; ``worker`` every
    call through the harness's worker thread (none inline); ``before`` the
    same with the worker as it was before issue 14."""
    from fsmcheck.pack import calls

    mode = os.environ.get("BENCH_PACK_MODE")
    if mode in ("worker", "before"):  # every call through a worker thread, none inline
        calls._SET_ASYNC_EXC = None
        if mode == "before":
            calls._Worker = _QueueWorker
        return
    calls._DIRECT = True
    direct = calls._direct

    def counted(fn, args):
        _CALLS[0] += 1
        return direct(fn, args)

    calls._direct = counted


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"bench_pack: {_CALLS[0]} adapter calls")


# -- (a) opens/s ------------------------------------------------------------------------------
def _opens_per_second(open_one, clear, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        if clear is not None:
            clear()
        open_one(count).close()
        count += 1
    return count / (time.perf_counter() - start)


def bench_opens(seconds: float) -> list[tuple[str, float, float]]:
    """``(driver, opens/s deriving every open, opens/s now)``."""
    from fsmcheck.drivers.reference import ReferenceV2Adapter
    from fsmcheck.drivers.v1_device import ReferenceV1Adapter, derive_v1
    from fsmcheck.drivers.v2_device import derive

    v2, v1 = ReferenceV2Adapter(), ReferenceV1Adapter()
    flag_sets = (1, 3, 5, 7)
    v2_open = lambda i: v2.open(flag_sets[i % 4])  # noqa: E731
    v1_open = lambda i: v1.open()  # noqa: E731
    out = []
    for name, open_one, cache in (("v2 (4 flag sets)", v2_open, derive), ("v1", v1_open, derive_v1)):
        before = _opens_per_second(open_one, cache.cache_clear, seconds)
        now = _opens_per_second(open_one, None, seconds)
        out.append((name, before, now))
    return out


# -- (b) the pack through the harness vs bare ---------------------------------------------------
def run_pack(mode: str = "harness") -> tuple[float, str, int]:
    """Wall seconds of one whole pack run (``mode``: ``harness``, ``worker``,
    ``before`` or ``bare``); its last line; the adapter calls it made
    (counted in the bare run only, else 0)."""
    env = dict(os.environ)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(PACK), f"--fsmcheck-seed={SEED}"]
    if mode != "harness":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), env.get("PYTHONPATH")]))
        env["BENCH_PACK_MODE"] = mode
        args[4:4] = ["-p", "bench_pack"]
    start = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    if proc.returncode != 0:
        sys.exit(f"bench: the pack failed ({mode}): {last}\n{proc.stdout[-3000:]}")
    calls = next((int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("bench_pack: ")), 0)
    return seconds, last, calls


def bench_call(calls: int) -> dict[str, float]:
    """Microseconds of one GET: through the harness inline (the reference
    adapter, watched), through its worker thread, through the bare
    pass-through, and the device alone."""
    from fsmcheck.drivers.reference import ReferenceV2Adapter
    from fsmcheck.pack import calls as pack_calls, harness

    adapter = ReferenceV2Adapter()
    device = adapter.open(1)
    start = time.perf_counter()
    for _ in range(calls):
        device.get_state()
    out = {"device alone": (time.perf_counter() - start) / calls * 1e6}
    device.close()
    for mode, owner, bare in (("inline", adapter, False), ("worker", None, False), ("bare", None, True)):
        h = harness.Harness(adapter.open(1), {}, label="bench", adapter=owner)
        pack_calls._DIRECT = bare
        try:
            h.get()
            start = time.perf_counter()
            for _ in range(calls):
                h.get()
                h.log.clear()
            out[mode] = (time.perf_counter() - start) / calls * 1e6
        finally:
            pack_calls._DIRECT = False
            h.close()
    return out


# -- (c) mutate --------------------------------------------------------------------------------
def run_mutate(cache: Path, jobs: int) -> float:
    exe = shutil.which("fsmcheck", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-c", "from fsmcheck.cli import main; main()"]
    env = dict(os.environ, XDG_CACHE_HOME=str(cache), NO_COLOR="1")
    start = time.perf_counter()
    proc = subprocess.run([*cmd, "mutate", "--pack", str(PACK), "--seed", str(SEED), "--jobs", str(jobs)],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"bench: fsmcheck mutate exited {proc.returncode}\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    score = next((line for line in proc.stdout.splitlines() if line.startswith("mutation score:")), "?")
    print(f"    {score}")
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="pack runs of each kind, interleaved (median)")
    parser.add_argument("--jobs", type=int, default=2, help="fsmcheck mutate --jobs")
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per opens/s figure")
    parser.add_argument("--no-mutate", action="store_true", help="leave out (c)")
    args = parser.parse_args(argv)
    print(f"bench_pack: pack {PACK.relative_to(ROOT)}, state-machine seed {SEED}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")

    print("(a) reference adapter open()")
    for name, before, now in bench_opens(args.seconds):
        print(f"    {name:17s} deriving every open {before:9,.0f} opens/s ({1e6 / before:7.1f} us)   "
              f"derived once {now:9,.0f} opens/s ({1e6 / now:6.1f} us)   x{now / before:.1f}")

    print(f"(b) whole pack: harness (reference calls inline, watched), every call on its worker thread, "
          f"the worker as before issue 14, bare pass-through ({args.rounds} rounds each, interleaved; median)")
    times = {"harness": [], "worker": [], "before": [], "bare": []}
    lasts, calls = {}, 0
    for _ in range(args.rounds):
        for mode in times:
            seconds, lasts[mode], counted = run_pack(mode)
            times[mode].append(seconds)
            calls = counted or calls
    med = {mode: statistics.median(values) for mode, values in times.items()}
    for mode, values in times.items():
        print(f"    {mode:8s} {med[mode]:6.2f} s  ({', '.join(f'{s:.2f}' for s in values)})  {lasts[mode]}")
    b = med["bare"]
    print(f"    / bare: harness {med['harness'] / b:.2f}, worker {med['worker'] / b:.2f}, "
          f"before {med['before'] / b:.2f};  per adapter call ({calls:,} calls) over bare: "
          + ", ".join(f"{mode} {(med[mode] - b) / max(calls, 1) * 1e6:.0f} us" for mode in ("harness", "worker", "before")))
    print("    one GET: " + ", ".join(f"{mode} {us:.1f} us" for mode, us in bench_call(20000).items()))

    if not args.no_mutate:
        print(f"(c) fsmcheck mutate --jobs {args.jobs} vs one plain pack run")
        from fsmcheck.mutate import order_key

        key = order_key(PACK, SEED)
        with tempfile.TemporaryDirectory(prefix="bench-pack-") as tmp:
            cold = run_mutate(Path(tmp), args.jobs)
            warm = run_mutate(Path(tmp), args.jobs)
        if order_key(PACK, SEED) != key:
            print("    (fsmcheck's sources changed during the runs: the warm run may have found the file stale)")
        plain, _, _ = run_pack()
        print(f"    mutate cold {cold:6.1f} s = {cold / plain:4.1f} x the pack;  "
              f"warm (killing-order file) {warm:6.1f} s = {warm / plain:4.1f} x the pack;  "
              f"plain pack {plain:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
