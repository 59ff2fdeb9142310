"""Benchmark: the v2 pack on a fleet of mtty mdevs in the VM, 1, 2 and 4 workers.

Run with ``python bench/bench_fleet.py [--workers 1,2,4] [--seed N]
[--accel auto|kvm|tcg]`` (as root, like ``make vm-e2e``: it uses the same
Debian packages, ``mtty.ko`` and initramfs, vm/e2e.py). The initramfs is
built once; then for each worker count N the VM boots with N vCPUs and N
mtty mdevs and runs the pack with ``-n N`` (one mdev per pytest-xdist
worker; N = 1 runs without xdist, the one-device baseline), all with the
same state-machine seed, so every run executes the same tests.

Printed per N: the tests and their outcome, pytest's exit code, the seconds
the pack ran in the guest (guest clock, from the pytest command's start to
its end: collection included), the seconds QEMU ran (host clock: boot,
pack, JUnit transfer, power-off), and both as speed-ups over the 1-worker
run measured in this same invocation (the first count given is the
baseline). Under TCG a vCPU is one host thread (``-accel
tcg,thread=multi``), so the speed-up is bounded by the host's free cores
(``os.cpu_count()`` is printed with the load average). Every VM is killed
at ``--timeout`` seconds; the run leaves only build/vm behind. Exit 0 when
every run passed (pytest exit 0), else 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "vm"))

_spec = importlib.util.spec_from_file_location("vm_e2e", ROOT / "vm" / "e2e.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)
vmimage = e2e.vmimage


def _counts(text: str) -> list[int]:
    try:
        counts = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected worker counts such as 1,2,4") from None
    if not counts or any(not 1 <= n <= e2e.MAX_WORKERS for n in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: each count must be 1..{e2e.MAX_WORKERS}")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=_counts, default=[1, 2, 4], metavar="N,N,...",
                        help="worker counts, the first is the baseline (default 1,2,4)")
    parser.add_argument("--seed", type=int, default=None, help="state-machine seed (default: random, printed)")
    parser.add_argument("--accel", choices=["auto", "kvm", "tcg"], default="auto")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds each VM may run (default 1800)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    vmimage.set_tag("bench-fleet")
    vmimage.step(f"state-machine seed {seed}; workers {','.join(map(str, args.workers))}; "
                 f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    vmimage.ensure_packages()
    release = vmimage.kernel_release()
    initrd = e2e.build_initramfs(release, vmimage.build_mtty(release), seed, None)
    rows = []
    for n in args.workers:
        load = os.getloadavg()[0]
        run = e2e.run_vm(release, initrd, args.accel, args.timeout, seed, n)
        counts = e2e.junit_counts(run["junit"]) if run["junit"] else None
        rows.append((n, run, counts, load))
    base_pack, base_wall = rows[0][1]["pack"], rows[0][1]["wall"]
    print()
    print(f"| workers | accel | tests | passed | skipped | xfailed | failed+errors | exit | pack s (guest) "
          f"| QEMU s (host) | pack speed-up vs {rows[0][0]} | QEMU speed-up vs {rows[0][0]} | host load at start |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, run, counts, load in rows:
        c = counts or {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "xfailed": 0}
        passed = c["tests"] - c["failures"] - c["errors"] - c["skipped"] - c["xfailed"]
        print(f"| {n} | {run['accel']} | {c['tests']} | {passed} | {c['skipped']} | {c['xfailed']} "
              f"| {c['failures'] + c['errors']} | {run['code']} | {run['pack']:.1f} | {run['wall']:.1f} "
              f"| {base_pack / run['pack']:.2f} | {base_wall / run['wall']:.2f} | {load:.2f} |")
    same = len({(r[2] or {}).get("tests") for r in rows}) == 1
    print(f"\nseed {seed}; every run the same {rows[0][2]['tests'] if same and rows[0][2] else '?'} tests: {same}")
    return 0 if all(run["code"] == 0 for _, run, _, _ in rows) and same else 1


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"bench-fleet: {time.monotonic() - started:.0f} s in all")
    sys.exit(code)
